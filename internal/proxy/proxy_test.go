package proxy

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/knftables"

	"github.com/wharf-io/wharf/internal/proxy/conntrack"
)

// fakeHost records the lo address.
type fakeHost struct {
	mu       sync.Mutex
	bridgeNF error
	lo       map[netip.Addr]bool
}

func (h *fakeHost) CheckBridgeNetfilter() error { return h.bridgeNF }
func (h *fakeHost) EnsureLoopbackAddr(a netip.Addr) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lo[a] = true
	return nil
}
func (h *fakeHost) RemoveLoopbackAddr(a netip.Addr) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.lo, a)
	return nil
}
func (h *fakeHost) has(a netip.Addr) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lo[a]
}

func testConfig() Config {
	return Config{Client: fake.NewClientset(), NodeName: "node1", NodeIP: "192.168.1.10",
		ClusterCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12", ClusterDNS: "10.96.0.10", MinSyncPeriod: 10 * time.Millisecond}
}

func apiService() *v1.Service {
	return &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: v1.ServiceSpec{Type: v1.ServiceTypeClusterIP, ClusterIP: "10.96.0.50", ClusterIPs: []string{"10.96.0.50"},
			Ports: []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolUDP, Port: 80}}},
	}
}

func apiSlice(ips ...string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "web-x", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(v1.ProtocolUDP), Port: ptr.To[int32](8080)}},
	}
	for _, ip := range ips {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip}, NodeName: ptr.To("node1")})
	}
	return s
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRunProgramsWatchesAndCleansUp drives Run end to end against fakes:
// API objects in, nftables table and conntrack deletions out.
func TestRunProgramsWatchesAndCleansUp(t *testing.T) {
	c := testConfig()
	ctx := context.Background()
	cs := c.Client.(*fake.Clientset)
	if _, err := cs.CoreV1().Services("default").Create(ctx, apiService(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	nftFake := knftables.NewFake(knftables.IPv4Family, "wharf")
	h := &fakeHost{lo: map[netip.Addr]bool{}}
	ct := &conntrack.Fake{}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, c, deps{newNFT: func(string) (knftables.Interface, error) { return nftFake, nil },
			host: h, cleaner: ct, addrs: func() ([]netip.Addr, error) { return nil, nil }})
	}()
	dump := func() string { return nftFake.Dump() }
	waitFor(t, "reject for the service without endpoints", func() bool {
		return strings.Contains(dump(), "10.96.0.50 . udp . 80 comment \"default/web:http\" : goto reject-chain")
	})
	if !h.has(netip.MustParseAddr("10.96.0.10")) {
		t.Error("cluster DNS address not on lo")
	}
	if _, err := cs.DiscoveryV1().EndpointSlices("default").Create(ctx, apiSlice("10.244.0.5"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "DNAT to the endpoint", func() bool { return strings.Contains(dump(), "dnat to 10.244.0.5:8080") })
	waitFor(t, "stale UDP entries to the service cleared", func() bool {
		for _, s := range ct.Calls() {
			if len(s.Destinations) == 1 && s.Destinations[0].Addr == netip.MustParseAddr("10.96.0.50") {
				return true
			}
		}
		return false
	})
	if _, err := cs.DiscoveryV1().EndpointSlices("default").Update(ctx, apiSlice("10.244.0.6"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "replaced endpoint", func() bool {
		d := dump()
		return strings.Contains(d, "dnat to 10.244.0.6:8080") && !strings.Contains(d, "dnat to 10.244.0.5:8080")
	})
	waitFor(t, "entries of the removed endpoint cleared", func() bool {
		for _, s := range ct.Calls() {
			if len(s.ReplySources) == 1 && s.ReplySources[0].Addr == netip.MustParseAddr("10.244.0.5") {
				return true
			}
		}
		return false
	})
	if err := cs.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "deleted service's rules gone", func() bool { return !strings.Contains(dump(), "10.96.0.50") })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if d := dump(); d != "" {
		t.Errorf("table left after a clean stop:\n%s", d)
	}
	if h.has(netip.MustParseAddr("10.96.0.10")) {
		t.Error("cluster DNS address left on lo")
	}
}

func TestRunRefusesWithoutBridgeNetfilter(t *testing.T) {
	h := &fakeHost{bridgeNF: errors.New("no br_netfilter"), lo: map[netip.Addr]bool{}}
	err := run(context.Background(), testConfig(), deps{host: h, addrs: func() ([]netip.Addr, error) { return nil, nil }})
	if err == nil || !strings.Contains(err.Error(), "no br_netfilter") {
		t.Fatalf("got %v", err)
	}
}

func TestCheckBridgeNetfilter(t *testing.T) {
	dir := t.TempDir()
	h := &linuxHost{procSys: dir}
	if err := h.CheckBridgeNetfilter(); err == nil || !strings.Contains(err.Error(), "bridge-nf-call-iptables") {
		t.Errorf("absent sysctl: got %v", err)
	}
	path := filepath.Join(dir, "net/bridge/bridge-nf-call-iptables")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.CheckBridgeNetfilter(); err != nil {
		t.Fatalf("enable: %v", err)
	}
	if b, _ := os.ReadFile(path); strings.TrimSpace(string(b)) != "1" {
		t.Errorf("sysctl is %q after the check", b)
	}
}

func TestConfigParse(t *testing.T) {
	local := func() ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("192.168.1.10"), netip.MustParseAddr("172.16.0.4"), netip.MustParseAddr("127.0.0.1")}, nil
	}
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
		check   func(*settings) string
	}{
		{name: "defaults", check: func(s *settings) string {
			if s.table != "wharf" || s.minSync != 100*time.Millisecond {
				return "table/minSync defaults"
			}
			if len(s.backendCfg.NodePortAddresses) != 1 || s.backendCfg.NodePortAddresses[0] != netip.MustParseAddr("192.168.1.10") {
				return "NodePorts default to the primary address"
			}
			return ""
		}, mod: func(c *Config) { c.MinSyncPeriod, c.TableName = 0, "" }},
		{name: "CIDR selects local addresses", mod: func(c *Config) { c.NodePortAddresses = []string{"172.16.0.0/12", "primary"} },
			check: func(s *settings) string {
				if len(s.backendCfg.NodePortAddresses) != 2 {
					return "want 172.16.0.4 and the primary address"
				}
				return ""
			}},
		{name: "all addresses", mod: func(c *Config) { c.NodePortAddresses = []string{"0.0.0.0/0"} },
			check: func(s *settings) string {
				if !s.backendCfg.NodePortAllLocal {
					return "want NodePortAllLocal"
				}
				return ""
			}},
		{name: "no node name", mod: func(c *Config) { c.NodeName = "" }, wantErr: "NodeName"},
		{name: "primary without node IP", mod: func(c *Config) { c.NodeIP = "" }, wantErr: "needs NodeIP"},
		{name: "bad service CIDR", mod: func(c *Config) { c.ServiceCIDR = "10.96.0.0" }, wantErr: "ServiceCIDR"},
		{name: "bad DNS", mod: func(c *Config) { c.ClusterDNS = "dns" }, wantErr: "ClusterDNS"},
		{name: "bad node port spec", mod: func(c *Config) { c.NodePortAddresses = []string{"eth0"} }, wantErr: "eth0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			if tt.mod != nil {
				tt.mod(&c)
			}
			s, err := c.parse(local)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if msg := tt.check(s); msg != "" {
				t.Error(msg)
			}
		})
	}
}
