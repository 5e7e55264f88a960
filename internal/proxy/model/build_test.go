package model

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

var (
	svcKey = ServiceKey{"ns", "web"}
	opts   = Options{NodeName: "node1", ClusterDNS: netip.MustParseAddr("10.96.0.10")}
)

func ip(s string) netip.Addr     { return netip.MustParseAddr(s) }
func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
func aps(s ...string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, x := range s {
		out = append(out, ap(x))
	}
	return out
}

func baseService() *Service {
	return &Service{
		Key:        svcKey,
		ClusterIPs: []netip.Addr{ip("10.96.0.20")},
		Ports:      []PortSpec{{Name: "http", Protocol: TCP, Port: 80}},
	}
}

func ep(addr, node string, ready, serving, terminating bool) Endpoint {
	return Endpoint{Addrs: []netip.Addr{ip(addr)}, NodeName: node, Ready: ready, Serving: serving, Terminating: terminating}
}

func slice(eps ...Endpoint) *EndpointSlice {
	return &EndpointSlice{Service: svcKey, Ports: []EndpointPort{{Name: "http", Protocol: TCP, Port: 8080}}, Endpoints: eps}
}

func TestBuildService(t *testing.T) {
	ready := func(a, n string) Endpoint { return ep(a, n, true, true, false) }
	term := func(a, n string) Endpoint { return ep(a, n, false, true, true) }
	tests := []struct {
		name   string
		svc    func(*Service)
		slices []*EndpointSlice
		want   *ServicePort // nil: no state at all
	}{
		{
			name:   "ready endpoints, sorted",
			slices: []*EndpointSlice{slice(ready("10.244.1.5", "node2"), ready("10.244.0.5", "node1"), ep("10.244.0.9", "node1", false, false, false))},
			want:   &ServicePort{ClusterEndpoints: aps("10.244.0.5:8080", "10.244.1.5:8080"), HasEndpoints: true},
		},
		{
			name:   "serving-terminating used only when none is ready",
			slices: []*EndpointSlice{slice(term("10.244.0.7", "node1"), ep("10.244.0.8", "node1", false, false, true))},
			want:   &ServicePort{ClusterEndpoints: aps("10.244.0.7:8080"), HasEndpoints: true},
		},
		{
			name:   "terminating ignored when one is ready",
			slices: []*EndpointSlice{slice(term("10.244.0.7", "node1"), ready("10.244.1.1", "node2"))},
			want:   &ServicePort{ClusterEndpoints: aps("10.244.1.1:8080"), HasEndpoints: true},
		},
		{
			name:   "no endpoints",
			slices: nil,
			want:   &ServicePort{},
		},
		{
			name: "duplicates across slices and other ports ignored",
			slices: []*EndpointSlice{
				slice(ready("10.244.0.5", "node1")),
				slice(ready("10.244.0.5", "node1")),
				{Service: svcKey, Ports: []EndpointPort{{Name: "other", Protocol: TCP, Port: 9}, {Name: "http", Protocol: UDP, Port: 9}},
					Endpoints: []Endpoint{ready("10.244.9.9", "node1")}},
			},
			want: &ServicePort{ClusterEndpoints: aps("10.244.0.5:8080"), HasEndpoints: true},
		},
		{
			name:   "internalTrafficPolicy Local keeps only local endpoints",
			svc:    func(s *Service) { s.InternalPolicyLocal = true },
			slices: []*EndpointSlice{slice(ready("10.244.1.5", "node2"), ready("10.244.0.5", "node1"))},
			want:   &ServicePort{InternalLocal: true, LocalEndpoints: aps("10.244.0.5:8080"), HasEndpoints: true},
		},
		{
			name:   "internalTrafficPolicy Local with no local endpoint still knows others exist",
			svc:    func(s *Service) { s.InternalPolicyLocal = true },
			slices: []*EndpointSlice{slice(ready("10.244.1.5", "node2"))},
			want:   &ServicePort{InternalLocal: true, HasEndpoints: true},
		},
		{
			name: "externalTrafficPolicy Local: cluster endpoints for cluster IP, local for node port",
			svc: func(s *Service) {
				s.ExternalPolicyLocal = true
				s.Ports[0].NodePort = 30080
			},
			slices: []*EndpointSlice{slice(ready("10.244.1.5", "node2"), ready("10.244.0.5", "node1"), term("10.244.0.6", "node1"))},
			want: &ServicePort{NodePort: 30080, ExternalLocal: true, HasEndpoints: true,
				ClusterEndpoints: aps("10.244.0.5:8080", "10.244.1.5:8080"), LocalEndpoints: aps("10.244.0.5:8080")},
		},
		{
			name: "externalTrafficPolicy Local falls back to local terminating endpoints",
			svc: func(s *Service) {
				s.ExternalPolicyLocal = true
				s.LoadBalancerIPs = []netip.Addr{ip("192.168.5.1")}
			},
			slices: []*EndpointSlice{slice(ready("10.244.1.5", "node2"), term("10.244.0.6", "node1"))},
			want: &ServicePort{LoadBalancerIPs: []netip.Addr{ip("192.168.5.1")}, ExternalLocal: true, HasEndpoints: true,
				ClusterEndpoints: aps("10.244.1.5:8080"), LocalEndpoints: aps("10.244.0.6:8080")},
		},
		{
			name: "externalTrafficPolicy Local is meaningless without external addresses",
			svc:  func(s *Service) { s.ExternalPolicyLocal = true },
			want: &ServicePort{},
		},
		{
			name: "session affinity and external IPs carried",
			svc: func(s *Service) {
				s.AffinityTimeout = 10 * time.Second
				s.ExternalIPs = []netip.Addr{ip("192.168.9.9")}
			},
			want: &ServicePort{AffinityTimeout: 10 * time.Second, ExternalIPs: []netip.Addr{ip("192.168.9.9")}},
		},
		{
			name: "the cluster DNS address gets no service rules",
			svc:  func(s *Service) { s.ClusterIPs = []netip.Addr{ip("10.96.0.10")} },
		},
		{
			name: "a service on the cluster DNS address keeps its node port",
			svc: func(s *Service) {
				s.ClusterIPs = []netip.Addr{ip("10.96.0.10")}
				s.Ports[0].NodePort = 30053
			},
			want: &ServicePort{ClusterIPs: []netip.Addr{}, NodePort: 30053},
		},
		{
			name: "headless gets nothing",
			svc:  func(s *Service) { s.ClusterIPs = nil },
		},
		{
			name: "no ports gets nothing",
			svc:  func(s *Service) { s.Ports = nil },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := baseService()
			if tt.svc != nil {
				tt.svc(svc)
			}
			got := BuildService(svc, tt.slices, opts)
			if tt.want == nil {
				if got != nil {
					t.Fatalf("got %+v, want no state", got)
				}
				return
			}
			want := *tt.want
			want.Service, want.Name, want.Protocol, want.Port = svcKey, "http", TCP, 80
			if want.ClusterIPs == nil {
				want.ClusterIPs = svc.ClusterIPs
			} else if len(want.ClusterIPs) == 0 {
				want.ClusterIPs = nil
			}
			if got == nil || len(got.Ports) != 1 {
				t.Fatalf("got %+v, want one port", got)
			}
			if !reflect.DeepEqual(got.Ports[0], want) {
				t.Errorf("got  %+v\nwant %+v", got.Ports[0], want)
			}
		})
	}
}

func TestTrackerKeepsUnchangedServicePointers(t *testing.T) {
	tr := NewTracker(opts)
	other := baseService()
	other.Key = ServiceKey{"ns", "other"}
	tr.SetService(baseService())
	tr.SetService(other)
	s1 := tr.State()
	if tr.Pending() {
		t.Fatal("pending after State")
	}
	tr.SetSlice(SliceKey{"ns", "web-abc"}, slice(ep("10.244.0.5", "node1", true, true, false)))
	if !tr.Pending() {
		t.Fatal("slice change not pending")
	}
	s2 := tr.State()
	if s1.Services[other.Key] != s2.Services[other.Key] {
		t.Error("unchanged service got a new state")
	}
	if s1.Services[svcKey] == s2.Services[svcKey] {
		t.Error("changed service kept its state")
	}
	if got := s2.Services[svcKey].Ports[0].ClusterEndpoints; !reflect.DeepEqual(got, aps("10.244.0.5:8080")) {
		t.Errorf("endpoints %v", got)
	}
	tr.DeleteSlice(SliceKey{"ns", "web-abc"})
	if got := tr.State().Services[svcKey].Ports[0].ClusterEndpoints; got != nil {
		t.Errorf("endpoints after slice deletion %v", got)
	}
	tr.DeleteService(svcKey)
	if _, ok := tr.State().Services[svcKey]; ok {
		t.Error("deleted service still has state")
	}
}

func TestStaleUDP(t *testing.T) {
	udpSvc := func(nodePort uint16, eps ...string) *State {
		return &State{Services: map[ServiceKey]*ServiceState{svcKey: {Key: svcKey, Ports: []ServicePort{{
			Service: svcKey, Name: "dns", Protocol: UDP, Port: 53, NodePort: nodePort,
			ClusterIPs: []netip.Addr{ip("10.96.0.20")}, ExternalIPs: []netip.Addr{ip("192.168.9.9")},
			ClusterEndpoints: aps(eps...),
		}}}}}
	}
	empty := &State{Services: map[ServiceKey]*ServiceState{}}
	tests := []struct {
		name     string
		old, cur *State
		want     StaleConntrack
	}{
		{"no endpoints to some: destinations", udpSvc(30053), udpSvc(30053, "10.244.0.5:53"), StaleConntrack{Destinations: []Flow{
			{UDP, netip.Addr{}, 30053}, {UDP, ip("10.96.0.20"), 53}, {UDP, ip("192.168.9.9"), 53}}}},
		{"new service with endpoints: destinations", empty, udpSvc(0, "10.244.0.5:53"), StaleConntrack{Destinations: []Flow{
			{UDP, ip("10.96.0.20"), 53}, {UDP, ip("192.168.9.9"), 53}}}},
		{"endpoint replaced: reply source of the old one", udpSvc(0, "10.244.0.5:53"), udpSvc(0, "10.244.0.6:53"),
			StaleConntrack{ReplySources: []Flow{{UDP, ip("10.244.0.5"), 53}}}},
		{"service deleted: its endpoints", udpSvc(0, "10.244.0.5:53"), empty,
			StaleConntrack{ReplySources: []Flow{{UDP, ip("10.244.0.5"), 53}}}},
		{"unchanged: nothing", udpSvc(0, "10.244.0.5:53"), udpSvc(0, "10.244.0.5:53"), StaleConntrack{}},
		{"endpoints to none: nothing to flush by destination", udpSvc(0), udpSvc(0), StaleConntrack{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := StaleUDP(tt.old, tt.cur); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
	tcp := udpSvc(0, "10.244.0.5:53")
	tcp.Services[svcKey].Ports[0].Protocol = TCP
	if got := StaleUDP(empty, tcp); !got.Empty() {
		t.Errorf("TCP service yields %+v", got)
	}
}
