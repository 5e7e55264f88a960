package podnet

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"sync"
)

// Fake is an in-memory Network for tests that cannot be root: it hands out
// IPv4 addresses of a CIDR as host-local would (the first is the bridge's
// gateway and is skipped, the lowest free one next) and touches nothing on
// the host. Its errors are the real ones' kinds (ErrSandboxExists). The zero
// value is not usable; call NewFake.
type Fake struct {
	// SetupErr, when set, makes Setup fail with it and allocate nothing.
	SetupErr error

	mu     sync.Mutex
	base   uint32 // network address of the CIDR
	size   uint32 // number of addresses in the CIDR
	inUse  map[uint32]string
	byUID  map[string]fakeSandbox
	prefix string
}

type fakeSandbox struct {
	pod   PodRef
	sb    Sandbox
	ports []PortMapping
}

var _ Network = (*Fake)(nil)

// NewFake returns a Fake handing out addresses of the IPv4 cidr.
func NewFake(cidr string) (*Fake, error) {
	_, ipnet, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil, fmt.Errorf("fake pod network: %w", err)
	}
	v4 := ipnet.IP.To4()
	ones, bits := ipnet.Mask.Size()
	if v4 == nil || bits != 32 || ones > 30 {
		return nil, fmt.Errorf("fake pod network: %s is not an IPv4 CIDR with room for pods", cidr)
	}
	return &Fake{
		base:   binary.BigEndian.Uint32(v4),
		size:   1 << (32 - ones),
		inUse:  map[uint32]string{},
		byUID:  map[string]fakeSandbox{},
		prefix: DefaultNetnsPrefix,
	}, nil
}

// Setup allocates the lowest free address to pod.
func (f *Fake) Setup(_ context.Context, pod PodRef, ports []PortMapping) (Sandbox, error) {
	if err := validatePod(pod); err != nil {
		return Sandbox{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.SetupErr != nil {
		return Sandbox{}, fmt.Errorf("set up network of pod %s: %w", pod, f.SetupErr)
	}
	if _, ok := f.byUID[pod.UID]; ok {
		return Sandbox{}, fmt.Errorf("set up network of pod %s: %w", pod, ErrSandboxExists)
	}
	// Skip the network address and the gateway; stop before broadcast.
	for off := uint32(2); off < f.size-1; off++ {
		if _, used := f.inUse[f.base+off]; used {
			continue
		}
		f.inUse[f.base+off] = pod.UID
		ip := make(net.IP, 4)
		binary.BigEndian.PutUint32(ip, f.base+off)
		sb := Sandbox{
			NetnsPath: filepath.Join(DefaultNetnsDir, NetnsName(f.prefix, pod)),
			IPs:       []net.IP{ip},
			Interface: PodInterface,
		}
		f.byUID[pod.UID] = fakeSandbox{pod: pod, sb: sb, ports: slices.Clone(ports)}
		return cloneSandbox(sb), nil
	}
	return Sandbox{}, fmt.Errorf("set up network of pod %s: no free address in the pod CIDR", pod)
}

// Recover returns pod's sandbox if Setup made one and Teardown has not
// removed it.
func (f *Fake) Recover(_ context.Context, pod PodRef) (Sandbox, bool, error) {
	if err := validatePod(pod); err != nil {
		return Sandbox{}, false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.byUID[pod.UID]
	if !ok {
		return Sandbox{}, false, nil
	}
	return cloneSandbox(e.sb), true, nil
}

// Teardown frees pod's address; a pod without one is not an error.
func (f *Fake) Teardown(_ context.Context, pod PodRef) error {
	if err := validatePod(pod); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.release(pod.UID)
	return nil
}

// GC frees the address of every pod not in keep.
func (f *Fake) GC(_ context.Context, keep []PodRef) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	kept := make(map[string]bool, len(keep))
	for _, p := range keep {
		kept[p.UID] = true
	}
	for uid := range f.byUID {
		if !kept[uid] {
			f.release(uid)
		}
	}
	return nil
}

// Sandbox returns pod's sandbox and the ports it was set up with.
func (f *Fake) Sandbox(pod PodRef) (Sandbox, []PortMapping, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.byUID[pod.UID]
	if !ok {
		return Sandbox{}, nil, false
	}
	return cloneSandbox(e.sb), slices.Clone(e.ports), true
}

// Pods returns the pods that have a sandbox, in no particular order.
func (f *Fake) Pods() []PodRef {
	f.mu.Lock()
	defer f.mu.Unlock()
	pods := make([]PodRef, 0, len(f.byUID))
	for _, e := range f.byUID {
		pods = append(pods, e.pod)
	}
	return pods
}

// release frees uid's address; f.mu must be held.
func (f *Fake) release(uid string) {
	e, ok := f.byUID[uid]
	if !ok {
		return
	}
	for _, ip := range e.sb.IPs {
		delete(f.inUse, binary.BigEndian.Uint32(ip.To4()))
	}
	delete(f.byUID, uid)
}

func cloneSandbox(sb Sandbox) Sandbox {
	out := sb
	out.IPs = make([]net.IP, len(sb.IPs))
	for i, ip := range sb.IPs {
		out.IPs[i] = slices.Clone(ip)
	}
	return out
}
