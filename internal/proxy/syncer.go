package proxy

import (
	"context"
	"time"

	"k8s.io/klog/v2"

	"github.com/wharf-io/wharf/internal/proxy/conntrack"
	"github.com/wharf-io/wharf/internal/proxy/model"
	"github.com/wharf-io/wharf/internal/proxy/nft"
)

// fullSyncPeriod is how often the whole table is rewritten even without
// changes, repairing any drift (kube-proxy nftables: 1 h).
const fullSyncPeriod = time.Hour

// backend programs one data-plane mode. nftables is the first; iptables
// and userspace implement the same call.
type backend interface {
	Sync(ctx context.Context, st *model.State, full bool) (nft.Result, error)
	Cleanup(ctx context.Context) error
}

// syncer is one sync: desired state from the tracker into the backend,
// then stale conntrack entries out.
type syncer struct {
	tracker *model.Tracker
	backend backend
	cleaner conntrack.Cleaner
	synced  func() bool
	now     func() time.Time

	applied  *model.State
	needFull bool
	lastFull time.Time
}

// sync implements the runner's fn.
func (s *syncer) sync(ctx context.Context) (time.Duration, error) {
	if !s.synced() {
		// kube-proxy: no sync until Services and EndpointSlices are listed,
		// or a restart would briefly reject every service. The handlers'
		// HasSynced can trail the informers' (the first Trigger may come
		// before the listed objects reached the tracker), so look again
		// shortly instead of waiting for the next event.
		return 50 * time.Millisecond, nil
	}
	start := s.now()
	st := s.tracker.State()
	full := s.applied == nil || s.needFull || start.Sub(s.lastFull) >= fullSyncPeriod
	res, err := s.backend.Sync(ctx, st, full)
	if err != nil {
		s.needFull = true
		return 0, err
	}
	if full {
		s.needFull, s.lastFull = false, start
	}
	// At the first sync nothing is known of what was live before, and
	// flushing every UDP service's entries would disrupt them
	// (kubernetes#122740); later syncs flush exactly what changed.
	if s.applied != nil {
		s.clearConntrack(model.StaleUDP(s.applied, st))
	}
	s.applied = st
	klog.V(2).InfoS("Synced service proxy rules", "full", full, "services", len(st.Services),
		"changed", res.Changed, "duration", s.now().Sub(start))
	return res.ResyncAfter, nil
}

// clearConntrack deletes stale entries; a failure is logged, not retried:
// the entries time out on their own.
func (s *syncer) clearConntrack(stale model.StaleConntrack) {
	if stale.Empty() {
		return
	}
	n, err := s.cleaner.Clear(stale)
	if err != nil {
		klog.ErrorS(err, "Clearing stale UDP conntrack entries", "deleted", n)
		return
	}
	klog.V(2).InfoS("Cleared stale UDP conntrack entries", "deleted", n)
}
