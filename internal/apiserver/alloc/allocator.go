package alloc

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net"
	"strconv"
)

// Key prefixes of the allocations, outside the API's /registry tree.
const (
	ipPrefix   = "/wharf/alloc/serviceips/"
	portPrefix = "/wharf/alloc/nodeports/"
)

// ErrFull says no address or port is left.
var ErrFull = errors.New("range is full")

// ErrAllocated says the requested address or port belongs to another service.
var ErrAllocated = errors.New("provided IP is already allocated")

// errPortAllocated is ErrAllocated's wording for ports.
var errPortAllocated = errors.New("provided port is already allocated")

// Range is a contiguous set of candidates: offsets 0..Size-1 from a base.
type Range interface {
	// Size is how many candidates there are.
	Size() int64
	// At returns the key suffix of candidate i.
	At(i int64) string
	// Contains reports whether a requested value is in the range.
	Contains(v string) bool
	// String names the range in errors.
	String() string
}

// IPRange is the usable addresses of a service CIDR: all but the network
// address (and, for IPv4, the broadcast address), as upstream allocates.
type IPRange struct {
	cidr *net.IPNet
	base *big.Int
	size int64
}

// NewIPRange parses a CIDR.
func NewIPRange(cidr string) (*IPRange, error) {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil, fmt.Errorf("service CIDR %q: %w", cidr, err)
	}
	ones, bits := n.Mask.Size()
	hostBits := bits - ones
	if hostBits > 40 {
		hostBits = 40 // a trillion addresses is plenty; keeps offsets in int64
	}
	size := int64(1)<<hostBits - 1 // minus the network address
	if bits == 32 {
		size-- // and the broadcast address
	}
	if size < 1 {
		return nil, fmt.Errorf("service CIDR %s has no usable addresses", cidr)
	}
	base := new(big.Int).SetBytes(ipBytes(n.IP))
	base.Add(base, big.NewInt(1))
	return &IPRange{cidr: n, base: base, size: size}, nil
}

func ipBytes(ip net.IP) []byte {
	if v4 := ip.To4(); v4 != nil {
		return v4
	}
	return ip.To16()
}

// Size implements Range.
func (r *IPRange) Size() int64 { return r.size }

// At implements Range.
func (r *IPRange) At(i int64) string {
	v := new(big.Int).Add(r.base, big.NewInt(i))
	b := v.Bytes()
	n := len(ipBytes(r.cidr.IP))
	ip := make(net.IP, n)
	copy(ip[n-len(b):], b)
	return ip.String()
}

// Offset returns the offset of ip in the range, or -1.
func (r *IPRange) Offset(ip net.IP) int64 {
	if ip == nil || !r.cidr.Contains(ip) {
		return -1
	}
	v := new(big.Int).SetBytes(ipBytes(ip))
	v.Sub(v, r.base)
	if v.Sign() < 0 || !v.IsInt64() || v.Int64() >= r.size {
		return -1
	}
	return v.Int64()
}

// Contains implements Range.
func (r *IPRange) Contains(v string) bool { return r.Offset(net.ParseIP(v)) >= 0 }

// String implements Range.
func (r *IPRange) String() string { return r.cidr.String() }

// PortRange is a node port range such as 30000-32767.
type PortRange struct{ Base, Max int }

// ParsePortRange parses "30000-32767".
func ParsePortRange(s string) (PortRange, error) {
	var r PortRange
	if _, err := fmt.Sscanf(s, "%d-%d", &r.Base, &r.Max); err != nil || r.Base < 1 || r.Max > 65535 || r.Base > r.Max {
		return PortRange{}, fmt.Errorf("invalid port range %q: want FROM-TO within 1-65535", s)
	}
	return r, nil
}

// Size implements Range.
func (r PortRange) Size() int64 { return int64(r.Max - r.Base + 1) }

// At implements Range.
func (r PortRange) At(i int64) string { return strconv.Itoa(r.Base + int(i)) }

// Contains implements Range.
func (r PortRange) Contains(v string) bool {
	p, err := strconv.Atoi(v)
	return err == nil && p >= r.Base && p <= r.Max
}

// String implements Range.
func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.Base, r.Max) }

// Allocator hands out members of one Range, one KV key each.
type Allocator struct {
	kv     KV
	r      Range
	prefix string
	taken  error
}

// NewIPAllocator allocates cluster IPs from r.
func NewIPAllocator(kv KV, r *IPRange) *Allocator {
	return &Allocator{kv: kv, r: r, prefix: ipPrefix, taken: ErrAllocated}
}

// NewPortAllocator allocates node ports from r.
func NewPortAllocator(kv KV, r PortRange) *Allocator {
	return &Allocator{kv: kv, r: r, prefix: portPrefix, taken: errPortAllocated}
}

// Range returns what the allocator hands out.
func (a *Allocator) Range() Range { return a.r }

// Allocate claims value for owner, or any free member when value is "". A
// value the owner already holds is returned as is, so a retried request
// succeeds. With dryRun nothing is written.
func (a *Allocator) Allocate(ctx context.Context, owner, value string, dryRun bool) (string, error) {
	if value != "" {
		if !a.r.Contains(value) {
			return "", &OutOfRangeError{Value: value, Range: a.r}
		}
		return value, a.claim(ctx, owner, value, dryRun)
	}
	size := a.r.Size()
	// Random picks from the upper band first, as upstream keeps the lower
	// band for addresses users ask for (KEP-3070).
	static := min(max(16, size/16), 256)
	if static >= size {
		static = 0
	}
	for i := 0; i < 16; i++ {
		v := a.r.At(static + rand.Int64N(size-static))
		if err := a.claim(ctx, owner, v, dryRun); err == nil {
			return v, nil
		} else if !errors.Is(err, a.taken) {
			return "", err
		}
	}
	return a.scan(ctx, owner, static, dryRun)
}

// scan walks the whole range from a random point, skipping what is taken.
func (a *Allocator) scan(ctx context.Context, owner string, static int64, dryRun bool) (string, error) {
	used, err := a.kv.List(ctx, a.prefix)
	if err != nil {
		return "", err
	}
	size := a.r.Size()
	if int64(len(used)) >= size {
		return "", ErrFull
	}
	start := rand.Int64N(size)
	for band := 0; band < 2; band++ {
		for i := int64(0); i < size; i++ {
			off := (start + i) % size
			if (band == 0) != (off >= static) {
				continue
			}
			v := a.r.At(off)
			if _, ok := used[a.prefix+v]; ok {
				continue
			}
			if err := a.claim(ctx, owner, v, dryRun); err == nil {
				return v, nil
			} else if !errors.Is(err, a.taken) {
				return "", err
			}
		}
	}
	return "", ErrFull
}

func (a *Allocator) claim(ctx context.Context, owner, value string, dryRun bool) error {
	key := a.prefix + value
	if dryRun {
		cur, ok, err := a.kv.Get(ctx, key)
		if err != nil {
			return err
		}
		if ok && cur != owner {
			return a.taken
		}
		return nil
	}
	created, cur, err := a.kv.Create(ctx, key, owner)
	if err != nil {
		return fmt.Errorf("allocate %s: %w", value, err)
	}
	if !created && cur != owner {
		return a.taken
	}
	return nil
}

// Release frees value if owner still holds it.
func (a *Allocator) Release(ctx context.Context, owner, value string) error {
	if value == "" {
		return nil
	}
	return a.kv.Delete(ctx, a.prefix+value, owner)
}

// Owned returns every allocation and its owner.
func (a *Allocator) Owned(ctx context.Context) (map[string]string, error) {
	kvs, err := a.kv.List(ctx, a.prefix)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(kvs))
	for k, v := range kvs {
		out[k[len(a.prefix):]] = v
	}
	return out, nil
}

// OutOfRangeError says a requested value is outside the range.
type OutOfRangeError struct {
	Value string
	Range Range
}

func (e *OutOfRangeError) Error() string {
	if _, ok := e.Range.(PortRange); ok {
		return fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %s", e.Range)
	}
	return fmt.Sprintf("the provided IP (%s) is not in the valid range. The range of valid IPs is %s", e.Value, e.Range)
}
