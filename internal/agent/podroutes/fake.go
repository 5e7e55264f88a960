package podroutes

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
)

// FakeRouter is an in-memory Router for tests: it holds the routes the
// last Set gave it, refusing (as the kernel does) a route whose gateway is
// outside Connected when Connected is set.
type FakeRouter struct {
	mu sync.Mutex
	// Connected, if not nil, are the subnets a gateway must be in.
	Connected []netip.Prefix
	routes    []Route
	sets      int
}

// Set implements Router.
func (f *FakeRouter) Set(routes []Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sets++
	f.routes = f.routes[:0]
	var err error
	for _, r := range routes {
		if f.Connected != nil && !containedIn(r.Via, f.Connected) {
			err = fmt.Errorf("route %s: network is unreachable", r)
			continue
		}
		f.routes = append(f.routes, r)
	}
	return err
}

// Cleanup implements Router.
func (f *FakeRouter) Cleanup() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes = nil
	return nil
}

// Routes returns a copy of the routes in place.
func (f *FakeRouter) Routes() []Route {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.routes)
}

// Sets counts the calls of Set.
func (f *FakeRouter) Sets() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sets
}

// fakeHost is a host whose subnets a test sets.
type fakeHost struct {
	mu        sync.Mutex
	connected []netip.Prefix
	node      []netip.Prefix
}

func (h *fakeHost) Connected() ([]netip.Prefix, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.connected), nil
}

func (h *fakeHost) NodeSubnets(netip.Addr) ([]netip.Prefix, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.node), nil
}

func (h *fakeHost) setNodeSubnets(p ...netip.Prefix) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.node = p
}
