package records

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultTTL is the TTL of cluster records unless Options say otherwise:
// CoreDNS's kubernetes plugin default.
const DefaultTTL = 5

// Options configure an Index.
type Options struct {
	// Zone is the cluster domain, "cluster.local" when empty.
	Zone string
	// TTL of every cluster record and of negative answers (the SOA's
	// minimum); DefaultTTL when zero.
	TTL uint32
	// NoLegacyNames turns off the <svc>.<ns>.<zone> form (answered like
	// <svc>.<ns>.svc.<zone> by default).
	NoLegacyNames bool
}

// Index holds the services and endpoint slices of the cluster and answers
// Lookup for the cluster zone and the reverse names of cluster IPs and
// headless endpoints. Writers (Set*, Delete*) recompute only the service
// they touch, so a write is visible to the next Lookup. Safe for concurrent
// use.
type Index struct {
	zone   string // lower case, fully qualified: "cluster.local."
	ttl    uint32
	legacy bool

	mu         sync.RWMutex
	services   map[string]*Service                  // "ns/name"
	slices     map[string]map[string]*EndpointSlice // service key -> slice name -> slice
	sliceOwner map[string]string                    // "ns/slice" -> service key
	views      map[string]*view                     // service key -> records
	namespaces map[string]int                       // namespace -> number of services
	ptr        map[netip.Addr][]ptrTarget
	serial     uint32
}

// view is what one service answers, computed from the service and its
// slices whenever either changes.
type view struct {
	svc *Service
	// endpoints are the ready endpoints of a headless service, one per
	// (name, address), sorted by name then address.
	endpoints []endpointRecord
}

// endpointRecord is one address of a ready endpoint of a headless service.
type endpointRecord struct {
	name  string // hostname, or the address with dashes
	addr  netip.Addr
	ports []Port // the slice's ports
}

// ptrTarget is one PTR record: the service it came from and its target.
type ptrTarget struct {
	key    string
	target string // fully qualified
}

// NewIndex returns an empty Index.
func NewIndex(o Options) *Index {
	zone := strings.ToLower(strings.Trim(o.Zone, "."))
	if zone == "" {
		zone = "cluster.local"
	}
	ttl := o.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	return &Index{
		zone:       zone + ".",
		ttl:        ttl,
		legacy:     !o.NoLegacyNames,
		services:   map[string]*Service{},
		slices:     map[string]map[string]*EndpointSlice{},
		sliceOwner: map[string]string{},
		views:      map[string]*view{},
		namespaces: map[string]int{},
		ptr:        map[netip.Addr][]ptrTarget{},
		serial:     uint32(time.Now().Unix()),
	}
}

// Zone returns the cluster zone, fully qualified ("cluster.local.").
func (ix *Index) Zone() string { return ix.zone }

func key(ns, name string) string { return ns + "/" + name }

// SetService adds or replaces a service.
func (ix *Index) SetService(s Service) {
	k := key(s.Namespace, s.Name)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if _, ok := ix.services[k]; !ok {
		ix.namespaces[s.Namespace]++
	}
	ix.services[k] = &s
	ix.rebuild(k)
}

// DeleteService removes a service; its slices stay, for a service of the
// same name created later.
func (ix *Index) DeleteService(ns, name string) {
	k := key(ns, name)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if _, ok := ix.services[k]; !ok {
		return
	}
	delete(ix.services, k)
	if ix.namespaces[ns]--; ix.namespaces[ns] <= 0 {
		delete(ix.namespaces, ns)
	}
	ix.rebuild(k)
}

// SetEndpointSlice adds or replaces an endpoint slice.
func (ix *Index) SetEndpointSlice(s EndpointSlice) {
	sk := key(s.Namespace, s.Name)
	k := key(s.Namespace, s.Service)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if old, ok := ix.sliceOwner[sk]; ok && old != k {
		ix.removeSlice(old, s.Name)
		ix.rebuild(old)
	}
	if ix.slices[k] == nil {
		ix.slices[k] = map[string]*EndpointSlice{}
	}
	ix.slices[k][s.Name] = &s
	ix.sliceOwner[sk] = k
	ix.rebuild(k)
}

// DeleteEndpointSlice removes an endpoint slice.
func (ix *Index) DeleteEndpointSlice(ns, name string) {
	sk := key(ns, name)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	k, ok := ix.sliceOwner[sk]
	if !ok {
		return
	}
	delete(ix.sliceOwner, sk)
	ix.removeSlice(k, name)
	ix.rebuild(k)
}

func (ix *Index) removeSlice(k, name string) {
	delete(ix.slices[k], name)
	if len(ix.slices[k]) == 0 {
		delete(ix.slices, k)
	}
}

// rebuild recomputes the view of service k and its PTR records. Callers
// hold mu for writing.
func (ix *Index) rebuild(k string) {
	if old := ix.views[k]; old != nil {
		for _, ip := range ix.ptrAddrs(old) {
			ix.ptr[ip] = slices.DeleteFunc(ix.ptr[ip], func(t ptrTarget) bool { return t.key == k })
			if len(ix.ptr[ip]) == 0 {
				delete(ix.ptr, ip)
			}
		}
		delete(ix.views, k)
	}
	if s := ix.services[k]; s != nil {
		v := &view{svc: s}
		if s.Kind == Headless {
			v.endpoints = readyEndpoints(s, ix.slices[k])
		}
		ix.views[k] = v
		ix.addPTRs(k, v)
	}
	ix.serial = max(ix.serial+1, uint32(time.Now().Unix()))
}

// ptrAddrs lists the addresses a view has PTR records for.
func (ix *Index) ptrAddrs(v *view) []netip.Addr {
	if v.svc.Kind == ClusterIP {
		return v.svc.ClusterIPs
	}
	var out []netip.Addr
	for _, e := range v.endpoints {
		out = append(out, e.addr)
	}
	return out
}

func (ix *Index) addPTRs(k string, v *view) {
	s := v.svc
	switch s.Kind {
	case ClusterIP:
		for _, ip := range s.ClusterIPs {
			ix.ptr[ip] = append(ix.ptr[ip], ptrTarget{k, ix.serviceName(s)})
		}
	case Headless:
		for _, e := range v.endpoints {
			ix.ptr[e.addr] = append(ix.ptr[e.addr], ptrTarget{k, e.name + "." + ix.serviceName(s)})
		}
	}
}

// serviceName is <svc>.<ns>.svc.<zone>.
func (ix *Index) serviceName(s *Service) string {
	return s.Name + "." + s.Namespace + ".svc." + ix.zone
}

// readyEndpoints lists the ready addresses of a headless service's slices,
// deduplicated (a pod moving between slices shows in both for a moment),
// sorted so answers are stable.
func readyEndpoints(s *Service, sl map[string]*EndpointSlice) []endpointRecord {
	type nameAddr struct {
		name string
		addr netip.Addr
	}
	seen := map[nameAddr]bool{}
	var out []endpointRecord
	for _, slice := range sl {
		for _, e := range slice.Endpoints {
			if !e.Ready && !s.PublishNotReady {
				continue
			}
			for _, a := range e.Addresses {
				n := nameAddr{e.Hostname, a}
				if n.name == "" {
					n.name = DashedAddr(a)
				}
				if seen[n] {
					continue
				}
				seen[n] = true
				out = append(out, endpointRecord{name: n.name, addr: a, ports: slice.Ports})
			}
		}
	}
	slices.SortFunc(out, func(a, b endpointRecord) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return a.addr.Compare(b.addr)
	})
	return out
}

// DashedAddr is the name of an endpoint without a hostname, as CoreDNS
// forms it: 10.244.1.5 -> 10-244-1-5, fd00::5 -> fd00--5.
func DashedAddr(a netip.Addr) string {
	if a.Is4() {
		return strings.ReplaceAll(a.String(), ".", "-")
	}
	return strings.ReplaceAll(a.String(), ":", "-")
}
