package endpointslice

import (
	"sync"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/wharf-io/wharf/internal/controller/endpoints"
)

// staleWindow bounds how long a write of ours that the informer has not
// shown yet makes the cache count as stale.
const staleWindow = 10 * time.Second

// sliceTracker is upstream's EndpointSliceTracker: it remembers, per
// service, the version of every slice the controller wrote and the slices
// it deleted, so that (1) a sync does not work from a cache that misses its
// own writes (it retries instead of writing twice) and (2) informer events
// caused by its own writes do not queue the service again while changes by
// anybody else do. Upstream compares metadata.generation; Wharf does not
// maintain generation for EndpointSlices (no spec), so the tracker compares
// resourceVersions, which in Wharf are etcd revisions (numbers).
type sliceTracker struct {
	mu        sync.Mutex
	byService map[types.NamespacedName]map[types.UID]tracked
	now       func() time.Time
}

type tracked struct {
	rv      uint64
	deleted bool
	at      time.Time
}

func newSliceTracker() *sliceTracker {
	return &sliceTracker{byService: map[types.NamespacedName]map[types.UID]tracked{}, now: time.Now}
}

func serviceOf(s *discoveryv1.EndpointSlice) (types.NamespacedName, bool) {
	name := s.Labels[discoveryv1.LabelServiceName]
	return types.NamespacedName{Namespace: s.Namespace, Name: name}, name != ""
}

func rvOf(s *discoveryv1.EndpointSlice) (uint64, bool) {
	return endpoints.ParseResourceVersion(s.ResourceVersion)
}

// has reports whether the slice is tracked.
func (t *sliceTracker) has(s *discoveryv1.EndpointSlice) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	key, ok := serviceOf(s)
	if !ok {
		return false
	}
	_, ok = t.byService[key][s.UID]
	return ok
}

// shouldSync is true for a slice this controller did not write in this
// version: one it does not know or a newer one.
func (t *sliceTracker) shouldSync(s *discoveryv1.EndpointSlice) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	key, ok := serviceOf(s)
	if !ok {
		return false
	}
	e, ok := t.byService[key][s.UID]
	if !ok {
		return true
	}
	rv, ok := rvOf(s)
	return !ok || e.deleted || rv > e.rv
}

// update records a slice as written by this controller.
func (t *sliceTracker) update(s *discoveryv1.EndpointSlice) {
	rv, ok := rvOf(s)
	key, ok2 := serviceOf(s)
	if !ok || !ok2 || s.UID == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.byService[key]
	if m == nil {
		m = map[types.UID]tracked{}
		t.byService[key] = m
	}
	m[s.UID] = tracked{rv: rv, at: t.now()}
}

// expectDeletion records a slice this controller deleted.
func (t *sliceTracker) expectDeletion(s *discoveryv1.EndpointSlice) {
	key, ok := serviceOf(s)
	if !ok || s.UID == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.byService[key]
	if m == nil {
		m = map[types.UID]tracked{}
		t.byService[key] = m
	}
	m[s.UID] = tracked{deleted: true, at: t.now()}
}

// handleDeletion forgets a deleted slice and reports whether this
// controller deleted it.
func (t *sliceTracker) handleDeletion(s *discoveryv1.EndpointSlice) bool {
	key, ok := serviceOf(s)
	if !ok {
		return true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.byService[key]
	e, ok := m[s.UID]
	if !ok {
		return true
	}
	delete(m, s.UID)
	if len(m) == 0 {
		delete(t.byService, key)
	}
	return e.deleted
}

// deleteService forgets a service.
func (t *sliceTracker) deleteService(ns, name string) {
	t.mu.Lock()
	delete(t.byService, types.NamespacedName{Namespace: ns, Name: name})
	t.mu.Unlock()
}

// stale reports whether slices (the cache's view of a service's slices)
// miss a write of ours: a slice older than we wrote it, one we deleted, or
// none for one we created.
func (t *sliceTracker) stale(ns, name string, slices []*discoveryv1.EndpointSlice) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.byService[types.NamespacedName{Namespace: ns, Name: name}]
	if len(m) == 0 {
		return false
	}
	now := t.now()
	seen := make(map[types.UID]bool, len(slices))
	for _, s := range slices {
		seen[s.UID] = true
		e, ok := m[s.UID]
		if !ok || now.Sub(e.at) > staleWindow {
			continue
		}
		if e.deleted {
			return true
		}
		if rv, ok := rvOf(s); ok && rv < e.rv {
			return true
		}
	}
	for uid, e := range m {
		if !e.deleted && !seen[uid] && now.Sub(e.at) <= staleWindow {
			return true
		}
	}
	return false
}

// sliceHandler queues the service of a slice that the controller named
// manager manages, when the slice changes in a way the tracker did not
// expect (someone else's write, a deletion, a change of owner service).
func sliceHandler(manager string, tr *sliceTracker, queue func(*discoveryv1.EndpointSlice)) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj interface{}) {
			s, ok := obj.(*discoveryv1.EndpointSlice)
			if ok && managedBy(s, manager) && tr.shouldSync(s) {
				queue(s)
			}
		},
		UpdateFunc: func(old, cur interface{}) {
			o, ok1 := old.(*discoveryv1.EndpointSlice)
			n, ok2 := cur.(*discoveryv1.EndpointSlice)
			if !ok1 || !ok2 {
				return
			}
			if o.Labels[discoveryv1.LabelServiceName] != n.Labels[discoveryv1.LabelServiceName] {
				queue(o)
				queue(n)
				return
			}
			if managedBy(o, manager) != managedBy(n, manager) || (managedBy(n, manager) && tr.shouldSync(n)) {
				queue(n)
			}
		},
		DeleteFunc: func(obj interface{}) {
			s := sliceFromDeleteAction(obj)
			if s != nil && managedBy(s, manager) && tr.has(s) && !tr.handleDeletion(s) {
				queue(s)
			}
		},
	}
}
