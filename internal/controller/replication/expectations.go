package replication

import (
	"sync"
	"time"
)

// ExpectationsTimeout is how long a controller waits for the pod informer
// to report the creations and deletions it asked for before it acts again
// anyway (upstream's value): a watch event that never comes must not stop
// the owner for good.
const ExpectationsTimeout = 5 * time.Minute

// Expectations records, per owner key, the pod creations and deletions a
// controller has asked the API server for and not yet seen through its pod
// informer. While an owner has any, its pods are not counted again (the
// informer would show too few or too many and the controller would create
// or delete twice); upstream's ControllerExpectations with the deletions
// tracked by pod key, as UIDTrackingControllerExpectations does.
type Expectations struct {
	mu  sync.Mutex
	m   map[string]*expectation
	now func() time.Time
}

type expectation struct {
	adds      int
	deletions map[string]struct{}
	timestamp time.Time
}

// NewExpectations returns an empty record.
func NewExpectations() *Expectations {
	return &Expectations{m: map[string]*expectation{}, now: time.Now}
}

// ExpectCreations records that n pods are about to be created for key,
// replacing whatever was expected before.
func (e *Expectations) ExpectCreations(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[key] = &expectation{adds: n, timestamp: e.now()}
}

// ExpectDeletions records that the pods named by podKeys (namespace/name)
// are about to be deleted for key, replacing what was expected before.
func (e *Expectations) ExpectDeletions(key string, podKeys []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := &expectation{deletions: make(map[string]struct{}, len(podKeys)), timestamp: e.now()}
	for _, k := range podKeys {
		x.deletions[k] = struct{}{}
	}
	e.m[key] = x
}

// CreationObserved lowers the pending creations of key by one: the
// informer showed a new pod, or a create was not attempted or failed.
func (e *Expectations) CreationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok && x.adds > 0 {
		x.adds--
	}
}

// DeletionObserved records that the pod podKey is gone (or going) for key;
// a pod counts once, whether seen as terminating or deleted.
func (e *Expectations) DeletionObserved(key, podKey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		delete(x.deletions, podKey)
	}
}

// Satisfied reports whether key may be reconciled: nothing is pending, or
// what is pending has waited longer than ExpectationsTimeout.
func (e *Expectations) Satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	if !ok {
		return true
	}
	if x.adds <= 0 && len(x.deletions) == 0 {
		return true
	}
	return e.now().Sub(x.timestamp) > ExpectationsTimeout
}

// Pending returns the creations and deletions still expected for key.
func (e *Expectations) Pending(key string) (adds, deletions int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		return x.adds, len(x.deletions)
	}
	return 0, 0
}

// Delete forgets key (its owner is gone).
func (e *Expectations) Delete(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}
