package model

import (
	"maps"
	"sync"
)

// Tracker folds Service and EndpointSlice events into the desired State,
// recomputing only the services whose Service or slices changed since the
// last call to State (kube-proxy's change trackers, in one place). It is
// safe for concurrent use: informer handlers feed it while the sync loop
// reads it.
type Tracker struct {
	opts Options

	mu       sync.Mutex
	services map[ServiceKey]*Service
	slices   map[SliceKey]*EndpointSlice
	bySvc    map[ServiceKey]map[SliceKey]*EndpointSlice
	dirty    map[ServiceKey]bool
	state    map[ServiceKey]*ServiceState
}

// NewTracker returns an empty Tracker computing states with opts.
func NewTracker(opts Options) *Tracker {
	return &Tracker{
		opts:     opts,
		services: map[ServiceKey]*Service{},
		slices:   map[SliceKey]*EndpointSlice{},
		bySvc:    map[ServiceKey]map[SliceKey]*EndpointSlice{},
		dirty:    map[ServiceKey]bool{},
		state:    map[ServiceKey]*ServiceState{},
	}
}

// SetService records the current form of a Service.
func (t *Tracker) SetService(s *Service) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.services[s.Key] = s
	t.dirty[s.Key] = true
}

// DeleteService forgets a Service.
func (t *Tracker) DeleteService(k ServiceKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.services, k)
	t.dirty[k] = true
}

// SetSlice records the current form of an EndpointSlice.
func (t *Tracker) SetSlice(k SliceKey, s *EndpointSlice) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.unindex(k)
	t.slices[k] = s
	if t.bySvc[s.Service] == nil {
		t.bySvc[s.Service] = map[SliceKey]*EndpointSlice{}
	}
	t.bySvc[s.Service][k] = s
	t.dirty[s.Service] = true
}

// DeleteSlice forgets an EndpointSlice.
func (t *Tracker) DeleteSlice(k SliceKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.unindex(k)
}

// unindex removes slice k (if known) and marks its service dirty.
func (t *Tracker) unindex(k SliceKey) {
	old, ok := t.slices[k]
	if !ok {
		return
	}
	delete(t.slices, k)
	delete(t.bySvc[old.Service], k)
	if len(t.bySvc[old.Service]) == 0 {
		delete(t.bySvc, old.Service)
	}
	t.dirty[old.Service] = true
}

// Pending reports whether a change arrived since the last State.
func (t *Tracker) Pending() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.dirty) > 0
}

// State returns the desired state. Services that did not change keep
// their *ServiceState pointer from the previous call, so a backend can
// find the changed ones by pointer comparison.
func (t *Tracker) State() *State {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range t.dirty {
		var eps []*EndpointSlice
		for _, s := range t.bySvc[k] {
			eps = append(eps, s)
		}
		// Map order must not leak into the result: sort slices by key.
		sortSlices(eps, t.bySvc[k])
		if st := BuildService(t.services[k], eps, t.opts); st != nil {
			t.state[k] = st
		} else {
			delete(t.state, k)
		}
	}
	clear(t.dirty)
	return &State{Services: maps.Clone(t.state)}
}
