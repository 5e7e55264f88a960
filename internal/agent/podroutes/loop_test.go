package podroutes

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/knftables"
)

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func apiNode(name, podCIDR, ip string, ready corev1.ConditionStatus, since time.Time) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.NodeSpec{PodCIDR: podCIDR, PodCIDRs: []string{podCIDR}},
		Status: corev1.NodeStatus{
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready, LastTransitionTime: metav1.NewTime(since)}},
		},
	}
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func hasRoutes(r *FakeRouter, dsts ...string) func() bool {
	return func() bool {
		var got []string
		for _, rt := range r.Routes() {
			got = append(got, rt.Dst.String())
		}
		return slices.Equal(got, dsts)
	}
}

// TestRunFollowsNodesAndClock drives Run's loop with fakes: routes follow
// node events and the grace period ends without an event; the masquerade
// table follows the node subnets and goes at stop; routes stay.
func TestRunFollowsNodesAndClock(t *testing.T) {
	clk := &clock{now: time.Now()}
	client := fake.NewClientset(
		apiNode("n1", "10.244.1.0/24", "192.168.1.11", corev1.ConditionTrue, clk.Now()),
		apiNode("n2", "10.244.2.0/24", "192.168.1.12", corev1.ConditionTrue, clk.Now()),
	)
	sub := netip.MustParsePrefix("192.168.1.0/24")
	h := &fakeHost{connected: []netip.Prefix{sub}, node: []netip.Prefix{sub}}
	router := &FakeRouter{}
	nft := knftables.NewFake(knftables.IPv4Family, DefaultTableName)
	ipt := &fakeIPTables{policy: "DROP"}
	var logMu sync.Mutex
	var logs []string
	s, err := Config{Client: client, NodeName: "n1", NodeIP: "192.168.1.11",
		ClusterCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12"}.parse()
	if err != nil {
		t.Fatal(err)
	}
	s.interval = 20 * time.Millisecond
	r := &runner{s: s, client: client, router: router, host: h, nft: nft, iptables: ipt.runner(t), now: clk.Now,
		logf: func(f string, a ...any) {
			logMu.Lock()
			defer logMu.Unlock()
			logs = append(logs, f)
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	eventually(t, "route to n2", hasRoutes(router, "10.244.2.0/24"))
	if len(ipt.rules) != 4 {
		t.Errorf("FORWARD accepts = %v, want 4 under a DROP policy", ipt.rules)
	}
	if !strings.Contains(nft.Dump(), "ip daddr 192.168.1.0/24 return") {
		t.Errorf("masquerade table lacks the node subnet:\n%s", nft.Dump())
	}

	nodes := client.CoreV1().Nodes()
	if _, err := nodes.Create(ctx, apiNode("n3", "10.244.3.0/24", "192.168.1.13", corev1.ConditionTrue, clk.Now()), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "route to n3 added", hasRoutes(router, "10.244.2.0/24", "10.244.3.0/24"))

	if _, err := nodes.UpdateStatus(ctx, apiNode("n2", "10.244.2.0/24", "192.168.1.12", corev1.ConditionUnknown, clk.Now()), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	sets := router.Sets()
	eventually(t, "a sync after n2 went Unknown", func() bool { return router.Sets() > sets+1 })
	if !hasRoutes(router, "10.244.2.0/24", "10.244.3.0/24")() {
		t.Fatalf("n2's route went within the grace period: %v", router.Routes())
	}
	clk.Add(DefaultGracePeriod) // no event: the periodic sync must notice
	eventually(t, "route to n2 removed after the grace period", hasRoutes(router, "10.244.3.0/24"))

	if err := nodes.Delete(ctx, "n3", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "route to n3 removed with the node", hasRoutes(router))

	h.setNodeSubnets(netip.MustParsePrefix("192.168.9.0/24"))
	eventually(t, "masquerade table follows the node subnet", func() bool {
		d := nft.Dump()
		return strings.Contains(d, "192.168.9.0/24") && !strings.Contains(d, "192.168.1.0/24")
	})

	if _, err := nodes.Create(ctx, apiNode("n4", "10.244.4.0/24", "192.168.1.14", corev1.ConditionTrue, clk.Now()), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "route to n4", hasRoutes(router, "10.244.4.0/24"))
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	done <- nil // for t.Cleanup
	if d := nft.Dump(); d != "" {
		t.Errorf("masquerade table left after a clean stop:\n%s", d)
	}
	if !hasRoutes(router, "10.244.4.0/24")() {
		t.Errorf("routes after a clean stop = %v, want kept", router.Routes())
	}
}

// TestRunSetsNothingBeforeSync checks that no Set happens before the node
// cache has synced: an empty list would remove the routes running pods use.
func TestRunSetsNothingBeforeSync(t *testing.T) {
	client := fake.NewClientset()
	s, err := Config{Client: client, NodeName: "n1", NodeIP: "192.168.1.11",
		ClusterCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12"}.parse()
	if err != nil {
		t.Fatal(err)
	}
	sub := netip.MustParsePrefix("192.168.1.0/24")
	router := &FakeRouter{}
	r := &runner{s: s, client: client, router: router, host: &fakeHost{connected: []netip.Prefix{sub}, node: []netip.Prefix{sub}},
		nft: knftables.NewFake(knftables.IPv4Family, DefaultTableName), now: time.Now, logf: t.Logf}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // ends before the cache can sync
	if err := r.run(ctx); err != nil {
		t.Fatalf("run: %v", err)
	}
	if router.Sets() != 0 {
		t.Errorf("Set called %d times without a synced node list", router.Sets())
	}
}

func TestConfigParse(t *testing.T) {
	client := fake.NewClientset()
	ok := Config{Client: client, NodeName: "n1", NodeIP: "192.168.1.11", ClusterCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12"}
	s, err := ok.parse()
	if err != nil {
		t.Fatal(err)
	}
	if s.mode != ModeHostGW || s.grace != DefaultGracePeriod || s.table != DefaultTableName {
		t.Errorf("defaults = %q %v %q", s.mode, s.grace, s.table)
	}
	for name, mutate := range map[string]func(*Config){
		"mode":         func(c *Config) { c.Mode = "vxlan" },
		"node IP":      func(c *Config) { c.NodeIP = "fd00::1" },
		"cluster CIDR": func(c *Config) { c.ClusterCIDR = "" },
		"service CIDR": func(c *Config) { c.ServiceCIDR = "10.96.0.0" },
		"NodeName":     func(c *Config) { c.NodeName = "" },
	} {
		c := ok
		mutate(&c)
		if _, err := c.parse(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("bad %s: err = %v, want one naming it", name, err)
		}
	}
}
