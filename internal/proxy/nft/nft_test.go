package nft

import (
	"context"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/wharf-io/wharf/internal/proxy/model"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

var testCfg = Config{
	ClusterCIDR:       netip.MustParsePrefix("10.244.0.0/16"),
	ServiceCIDR:       netip.MustParsePrefix("10.96.0.0/12"),
	ClusterDNS:        netip.MustParseAddr("10.96.0.10"),
	NodePortAddresses: []netip.Addr{netip.MustParseAddr("192.168.1.10")},
}

var modelOpts = model.Options{NodeName: "node1", ClusterDNS: testCfg.ClusterDNS}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, x := range s {
		out = append(out, netip.MustParseAddr(x))
	}
	return out
}

// svc makes a one-port service in namespace ns1.
func svc(name, clusterIP string, proto model.Protocol, port, nodePort uint16, mod ...func(*model.Service)) *model.Service {
	s := &model.Service{
		Key:        model.ServiceKey{Namespace: "ns1", Name: name},
		ClusterIPs: addrs(clusterIP),
		Ports:      []model.PortSpec{{Name: "p" + itoa(int(port)), Protocol: proto, Port: port, NodePort: nodePort}},
	}
	for _, m := range mod {
		m(s)
	}
	return s
}

// eps makes a slice for svc's only port with ready endpoints "ip@node".
func eps(s *model.Service, target uint16, endpoints ...string) *model.EndpointSlice {
	sl := &model.EndpointSlice{Service: s.Key, Ports: []model.EndpointPort{{Name: s.Ports[0].Name, Protocol: s.Ports[0].Protocol, Port: target}}}
	for _, e := range endpoints {
		ip, node, _ := strings.Cut(e, "@")
		sl.Endpoints = append(sl.Endpoints, model.Endpoint{Addrs: addrs(ip), Ready: true, Serving: true, NodeName: node})
	}
	return sl
}

// world is a set of services and slices that can be turned into a State.
type world struct {
	tr *model.Tracker
}

func newWorld() *world { return &world{tr: model.NewTracker(modelOpts)} }

func (w *world) add(s *model.Service, sl *model.EndpointSlice) *world {
	w.tr.SetService(s)
	if sl != nil {
		w.tr.SetSlice(model.SliceKey{Namespace: s.Key.Namespace, Name: s.Key.Name + "-1"}, sl)
	}
	return w
}

// sampleService is the report's example: ClusterIP + NodePort, two
// endpoints (one local), ClientIP affinity.
func sampleService() (*model.Service, *model.EndpointSlice) {
	s := svc("web", "10.96.0.50", model.TCP, 80, 30080, func(s *model.Service) { s.AffinityTimeout = 10800 * time.Second })
	return s, eps(s, 8080, "10.244.0.5@node1", "10.244.1.7@node2")
}

// allShapes has every kind of service this slice of the proxy handles.
func allShapes() *world {
	w := newWorld()
	s, sl := sampleService()
	w.add(s, sl)
	noEps := svc("empty", "10.96.0.60", model.UDP, 53, 0)
	w.add(noEps, nil)
	local := svc("local", "10.96.0.70", model.TCP, 443, 30443, func(s *model.Service) {
		s.ExternalPolicyLocal = true
		s.ExternalIPs = addrs("192.168.50.1")
		s.LoadBalancerIPs = addrs("192.168.60.1")
	})
	w.add(local, eps(local, 8443, "10.244.0.8@node1", "10.244.1.9@node2"))
	remoteOnly := svc("itp", "10.96.0.80", model.TCP, 80, 0, func(s *model.Service) { s.InternalPolicyLocal = true })
	w.add(remoteOnly, eps(remoteOnly, 80, "10.244.1.3@node2"))
	dns := svc("kube-dns", "10.96.0.10", model.UDP, 53, 0)
	w.add(dns, eps(dns, 53, "10.244.0.2@node1"))
	return w
}

func syncOK(t *testing.T, p *Proxier, st *model.State, full bool) Result {
	t.Helper()
	res, err := p.Sync(context.Background(), st, full)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return res
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update to accept):\n%s", name, lineDiff(string(want), got))
	}
}

func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for _, l := range w {
		if !slices.Contains(g, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

func TestGoldenSampleService(t *testing.T) {
	fake := knftables.NewFake(knftables.IPv4Family, DefaultTable)
	s, sl := sampleService()
	syncOK(t, New(fake, testCfg), newWorld().add(s, sl).tr.State(), true)
	checkGolden(t, "sample.golden", fake.Dump())
}

func TestGoldenAllShapes(t *testing.T) {
	fake := knftables.NewFake(knftables.IPv4Family, DefaultTable)
	syncOK(t, New(fake, testCfg), allShapes().tr.State(), true)
	checkGolden(t, "all-shapes.golden", fake.Dump())
}

func TestGoldenNodePortsOnAllLocalAddresses(t *testing.T) {
	fake := knftables.NewFake(knftables.IPv4Family, DefaultTable)
	cfg := testCfg
	cfg.NodePortAddresses, cfg.NodePortAllLocal = nil, true
	syncOK(t, New(fake, cfg), newWorld().tr.State(), true)
	checkGolden(t, "nodeports-all-local.golden", fake.Dump())
}

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
