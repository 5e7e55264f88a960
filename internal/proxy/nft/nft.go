// Package nft is the service proxy's nftables backend (the default mode):
// it programs a model.State into one table of Wharf's own with
// sigs.k8s.io/knftables, in kube-proxy's nftables layout (verdict maps
// keyed by address, protocol and port; a chain per service port choosing
// an endpoint with numgen; a chain per endpoint doing DNAT), and keeps it
// there incrementally: a sync rewrites only the chains and map elements of
// services whose state changed. See ../README.md for the theory.
package nft

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/wharf-io/wharf/internal/proxy/model"
)

// DefaultTable is the table's default name.
const DefaultTable = "wharf"

// staleDeleteDelay is how long a flushed, unreferenced chain or set waits
// before it is deleted. kube-proxy waits too: kernels before 6.2 can fail
// to delete a chain in the transaction that drops its last reference.
const staleDeleteDelay = time.Second

// Config is what the backend needs besides the desired state.
type Config struct {
	// ClusterCIDR, when valid, is the pod range: clients outside it are
	// masqueraded when they reach a cluster IP, pods are not.
	ClusterCIDR netip.Prefix
	// ServiceCIDR, when valid, is the service range: traffic to an
	// unallocated address in it is dropped.
	ServiceCIDR netip.Prefix
	// ClusterDNS, when valid, is the node-local DNS address: exempt from
	// the guards and NOTRACKed for port 53.
	ClusterDNS netip.Addr
	// NodePortAddresses are the node addresses that accept NodePorts.
	NodePortAddresses []netip.Addr
	// NodePortAllLocal accepts NodePorts on every local address but
	// 127.0.0.0/8 instead (nodePortAddresses 0.0.0.0/0).
	NodePortAllLocal bool
}

// Result tells the caller what a successful Sync left to do.
type Result struct {
	// Changed counts the services whose objects were rewritten.
	Changed int
	// ResyncAfter, when non-zero, asks for another Sync after that long:
	// stale chains or sets wait to be deleted.
	ResyncAfter time.Duration
}

// Proxier programs desired states into one nftables table. It is not
// safe for concurrent use; one sync loop drives it.
type Proxier struct {
	nft knftables.Interface
	cfg Config
	r   renderer
	now func() time.Time

	// applied is the state of the last successful Sync.
	applied map[model.ServiceKey]*model.ServiceState
	// stale holds flushed chains and sets waiting for deletion.
	stale map[staleObject]time.Time
	// recreate replaces the whole table at the next full sync, after a
	// full sync failed (e.g. an older table of a different shape).
	recreate bool
}

// staleObject is a chain or set to delete later.
type staleObject struct {
	set  bool
	name string
}

// New returns a Proxier writing through nft (knftables.New(IPv4Family,
// table) or a knftables.Fake).
func New(nft knftables.Interface, cfg Config) *Proxier {
	p := &Proxier{nft: nft, cfg: cfg, now: time.Now, stale: map[staleObject]time.Time{}}
	p.r = renderer{cfg: &p.cfg}
	return p
}

// Sync makes the table match st. With full it rewrites everything (and
// removes objects of ours it does not know, e.g. left by an earlier
// process); otherwise it touches only services whose state differs from
// the last successful Sync. A failed Sync changes nothing in the kernel
// (one transaction) and the caller should make the next one full.
func (p *Proxier) Sync(ctx context.Context, st *model.State, full bool) (Result, error) {
	if full || p.applied == nil {
		return p.fullSync(ctx, st)
	}
	return p.partialSync(ctx, st)
}

// fullSync rewrites the whole table in one transaction.
func (p *Proxier) fullSync(ctx context.Context, st *model.State) (Result, error) {
	existing := map[staleObject]bool{}
	tx := p.nft.NewTransaction()
	waiting := p.stale
	if p.recreate {
		tx.Add(&knftables.Table{})
		tx.Delete(&knftables.Table{})
		waiting = nil
	} else if err := p.listOwned(ctx, existing); err != nil {
		return Result{}, err
	}
	p.writeStatic(tx)
	desired := map[staleObject]bool{}
	for _, key := range sortedKeys(st.Services) {
		o := p.r.service(st.Services[key])
		p.writeObjects(tx, o, nil)
		o.names(desired)
	}
	stale := p.nextStale(tx, waiting, desired)
	for obj := range existing {
		if !desired[obj] && !isStatic(obj) {
			if _, ok := stale[obj]; !ok {
				flushStale(tx, obj)
				stale[obj] = p.now()
			}
		}
	}
	if err := p.nft.Run(ctx, tx); err != nil {
		p.recreate = true
		return Result{}, fmt.Errorf("full sync of nftables table: %w", err)
	}
	p.recreate = false
	p.applied = maps.Clone(st.Services)
	p.stale = stale
	return Result{Changed: len(st.Services), ResyncAfter: p.resyncAfter()}, nil
}

// partialSync rewrites the services whose state changed.
func (p *Proxier) partialSync(ctx context.Context, st *model.State) (Result, error) {
	tx := p.nft.NewTransaction()
	changed := 0
	staleNow := map[staleObject]bool{}
	desired := map[staleObject]bool{}
	for _, key := range sortedKeys(st.Services) {
		cur, old := st.Services[key], p.applied[key]
		if old == cur || reflect.DeepEqual(old, cur) {
			continue
		}
		changed++
		oldObjs, curObjs := p.r.service(old), p.r.service(cur)
		p.writeObjects(tx, curObjs, oldObjs)
		curObjs.names(desired)
		gone(oldObjs, curObjs, staleNow)
	}
	for _, key := range sortedKeys(p.applied) {
		if _, ok := st.Services[key]; !ok {
			old := p.applied[key]
			changed++
			oldObjs := p.r.service(old)
			p.writeObjects(tx, &objects{}, oldObjs)
			gone(oldObjs, &objects{}, staleNow)
		}
	}
	stale := p.nextStale(tx, p.stale, desired)
	for obj := range staleNow {
		flushStale(tx, obj)
		stale[obj] = p.now()
	}
	if tx.NumOperations() > 0 {
		if err := p.nft.Run(ctx, tx); err != nil {
			return Result{}, fmt.Errorf("sync of %d changed services into nftables: %w", changed, err)
		}
	}
	p.applied = maps.Clone(st.Services)
	p.stale = stale
	return Result{Changed: changed, ResyncAfter: p.resyncAfter()}, nil
}

// Cleanup deletes the table. Nothing of ours is left afterwards.
func (p *Proxier) Cleanup(ctx context.Context) error {
	tx := p.nft.NewTransaction()
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	if err := p.nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("delete nftables table: %w", err)
	}
	p.applied = nil
	p.stale = map[staleObject]time.Time{}
	return nil
}

// listOwned adds the chains and sets present in the table to into. A
// missing table is not an error.
func (p *Proxier) listOwned(ctx context.Context, into map[staleObject]bool) error {
	for _, kind := range []string{"chains", "sets"} {
		names, err := p.nft.List(ctx, kind)
		if knftables.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("list nftables %s: %w", kind, err)
		}
		for _, n := range names {
			into[staleObject{set: kind == "sets", name: n}] = true
		}
	}
	return nil
}

// nextStale returns the stale objects still waiting, after adding to tx
// the deletion of those that waited long enough and dropping those that
// are desired again.
func (p *Proxier) nextStale(tx *knftables.Transaction, waiting map[staleObject]time.Time, desired map[staleObject]bool) map[staleObject]time.Time {
	next := map[staleObject]time.Time{}
	now := p.now()
	for obj, since := range waiting {
		switch {
		case desired[obj]:
		case now.Sub(since) >= staleDeleteDelay:
			if obj.set {
				tx.Delete(&knftables.Set{Name: obj.name})
			} else {
				tx.Delete(&knftables.Chain{Name: obj.name})
			}
		default:
			next[obj] = since
		}
	}
	return next
}

// resyncAfter is when the oldest waiting stale object may be deleted.
func (p *Proxier) resyncAfter() time.Duration {
	if len(p.stale) == 0 {
		return 0
	}
	return staleDeleteDelay
}

func flushStale(tx *knftables.Transaction, obj staleObject) {
	if !obj.set {
		tx.Flush(&knftables.Chain{Name: obj.name})
	}
}

func isStatic(obj staleObject) bool {
	if obj.set {
		return obj.name == clusterIPsSet || obj.name == nodePortIPsSet
	}
	for _, bc := range baseChains {
		if bc.name == obj.name {
			return true
		}
	}
	for _, c := range staticChains {
		if c == obj.name {
			return true
		}
	}
	return false
}

// sortedKeys orders services so transactions (and golden files) do not
// depend on map iteration.
func sortedKeys(m map[model.ServiceKey]*model.ServiceState) []model.ServiceKey {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b model.ServiceKey) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return keys
}
