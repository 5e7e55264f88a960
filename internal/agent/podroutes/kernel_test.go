package podroutes

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"
)

// cluster is two "nodes" on 192.168.50.0/24, each with a "pod" behind a
// veth in its pod CIDR, and an "outside" host on 203.0.113.0/24 that only
// node A reaches and that has no route back to any pod.
type cluster struct {
	nodeA, nodeB, podA, podB, outside *nsWorker
}

func newCluster(t *testing.T) *cluster {
	c := &cluster{
		nodeA: newNS(t, "nodeA"), nodeB: newNS(t, "nodeB"),
		podA: newNS(t, "podA"), podB: newNS(t, "podB"), outside: newNS(t, "outside"),
	}
	c.nodeA.veth(t, "eth0", c.nodeB, "eth0")
	c.nodeA.addr(t, "eth0", "192.168.50.1/24")
	c.nodeB.addr(t, "eth0", "192.168.50.2/24")
	for _, p := range []struct {
		node, pod *nsWorker
		gw, ip    string
	}{{c.nodeA, c.podA, "10.244.1.1", "10.244.1.2"}, {c.nodeB, c.podB, "10.244.2.1", "10.244.2.2"}} {
		p.node.veth(t, "pod0", p.pod, "eth0") // stands in for the CNI bridge
		p.node.addr(t, "pod0", p.gw+"/24")
		p.pod.addr(t, "eth0", p.ip+"/24")
		p.pod.defaultVia(t, p.gw)
		p.node.forwarding(t)
	}
	c.nodeA.veth(t, "eth1", c.outside, "eth0")
	c.nodeA.addr(t, "eth1", "203.0.113.1/24")
	c.outside.addr(t, "eth0", "203.0.113.2/24")
	return c
}

// clusterNodes is the API's view of the two nodes.
func clusterNodes() []nodeState {
	now := time.Now()
	return []nodeState{
		node("a", "10.244.1.0/24", "192.168.50.1", corev1.ConditionTrue, now),
		node("b", "10.244.2.0/24", "192.168.50.2", corev1.ConditionTrue, now),
	}
}

// program routes node self as Run's sync does: desired routes from the
// node list and the namespace's connected subnets, through the netlink
// router.
func program(t *testing.T, w *nsWorker, self string) {
	t.Helper()
	connected, err := netlinkHost{w.nl}.Connected()
	if err != nil {
		t.Fatal(err)
	}
	routes, skipped := desiredRoutes(clusterNodes(), routeInput{Self: self, Now: time.Now(), Grace: time.Minute, Connected: connected})
	if len(routes) != 1 || len(skipped) != 0 {
		t.Fatalf("%s: routes %v, skipped %v; want one route", w.name, routes, skipped)
	}
	if err := newNetlinkRouter(w.nl, t.Logf).Set(routes); err != nil {
		t.Fatalf("%s: Set: %v", w.name, err)
	}
}

// masquerade installs node w's masquerade table (nft runs on w's thread).
func masquerade(t *testing.T, w *nsWorker, nodeIP string) {
	t.Helper()
	subnets, err := netlinkHost{w.nl}.NodeSubnets(netip.MustParseAddr(nodeIP))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(subnets, []netip.Prefix{mustPrefix("192.168.50.0/24")}) {
		t.Fatalf("%s: node subnets %v, want [192.168.50.0/24]", w.name, subnets)
	}
	w.do(func() {
		var nft knftables.Interface
		if nft, err = knftables.New(knftables.IPv4Family, DefaultTableName); err == nil {
			err = replaceMasq(context.Background(), nft, newMasqRanges(mustPrefix("10.244.0.0/16"), mustPrefix("10.96.0.0/12"), subnets))
		}
	})
	if err != nil {
		t.Fatalf("%s: masquerade table: %v", w.name, err)
	}
}

// iptables runs iptables on w's thread.
func iptables(t *testing.T, w *nsWorker, args ...string) string {
	t.Helper()
	var out string
	var err error
	w.do(func() { out, err = execIPTables(args...) })
	if err != nil {
		t.Fatalf("%s: %v", w.name, err)
	}
	return out
}

// TestPodsReachPodsAcrossNodesWithoutNAT is C1 across nodes and
// masquerade to the outside, on a real kernel, behind Docker's FORWARD
// DROP policy.
func TestPodsReachPodsAcrossNodesWithoutNAT(t *testing.T) {
	needRoot(t)
	if !haveIPTables() {
		t.Skip("needs the iptables binary")
	}
	c := newCluster(t)
	for _, n := range []*nsWorker{c.nodeA, c.nodeB} {
		iptables(t, n, "-P", "FORWARD", "DROP") // as Docker does
		var changed bool
		var err error
		n.do(func() {
			changed, err = ensureForward(execIPTables, mustPrefix("10.244.0.0/16"), mustPrefix("10.96.0.0/12"))
		})
		if err != nil || !changed {
			t.Fatalf("%s: ensureForward: changed=%v err=%v", n.name, changed, err)
		}
		n.do(func() {
			changed, err = ensureForward(execIPTables, mustPrefix("10.244.0.0/16"), mustPrefix("10.96.0.0/12"))
		})
		if err != nil || changed {
			t.Fatalf("%s: second ensureForward: changed=%v err=%v, want no change", n.name, changed, err)
		}
		if out := iptables(t, n, "-S", "FORWARD"); strings.Count(out, forwardComment) != 4 {
			t.Fatalf("%s: FORWARD is\n%s\nwant 4 wharf accepts", n.name, out)
		}
	}
	if err := c.podA.dial("10.244.2.2:8080", 300*time.Millisecond); err == nil {
		t.Fatal("pod A reached pod B before any route existed; the test proves nothing")
	}
	program(t, c.nodeA, "a")
	program(t, c.nodeB, "b")
	masquerade(t, c.nodeA, "192.168.50.1")
	masquerade(t, c.nodeB, "192.168.50.2")

	if src := sourceSeen(t, c.podA, c.podB, "10.244.2.2:8080"); src != "10.244.1.2" {
		t.Errorf("pod B saw pod A as %s, want its pod IP 10.244.1.2 (no NAT between pods)", src)
	}
	if src := sourceSeen(t, c.podB, c.podA, "10.244.1.2:8081"); src != "10.244.2.2" {
		t.Errorf("pod A saw pod B as %s, want 10.244.2.2", src)
	}
	if src := sourceSeen(t, c.podA, c.nodeB, "192.168.50.2:8082"); src != "10.244.1.2" {
		t.Errorf("node B saw pod A as %s, want 10.244.1.2 (no NAT between pods and nodes)", src)
	}
	if src := sourceSeen(t, c.podA, c.outside, "203.0.113.2:8083"); src != "203.0.113.1" {
		t.Errorf("outside saw pod A as %s, want node A's address 203.0.113.1 (masqueraded)", src)
	}
	var err error
	c.nodeA.do(func() { err = removeForward(execIPTables, mustPrefix("10.244.0.0/16"), mustPrefix("10.96.0.0/12")) })
	if out := iptables(t, c.nodeA, "-S", "FORWARD"); err != nil || strings.Contains(out, forwardComment) {
		t.Errorf("removeForward: err=%v, FORWARD is\n%s", err, out)
	}
}

// TestPodsReachOutsideOnlyWithMasquerade checks the outside host is
// unreachable without the table, so the masquerade test above cannot pass
// by accident.
func TestPodsReachOutsideOnlyWithMasquerade(t *testing.T) {
	needRoot(t)
	c := newCluster(t)
	got := c.outside.listen(t, "203.0.113.2:8080")
	if err := c.podA.dial("203.0.113.2:8080", 500*time.Millisecond); err == nil {
		t.Fatalf("pod A reached the outside without masquerade (seen as %s)", <-got)
	}
	masquerade(t, c.nodeA, "192.168.50.1")
	var err error
	c.nodeA.do(func() {
		var nft knftables.Interface
		if nft, err = knftables.New(knftables.IPv4Family, DefaultTableName); err == nil {
			err = deleteMasq(context.Background(), nft)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.podA.dial("203.0.113.2:8080", 500*time.Millisecond); err == nil {
		t.Fatal("pod A reached the outside after the masquerade table was deleted")
	}
}

// ourRoutes lists w's routes of RouteProtocol as "dst via gw".
func ourRoutes(t *testing.T, w *nsWorker) []string {
	t.Helper()
	rs, err := w.nl.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: RouteProtocol}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		out = append(out, r.Dst.String()+" via "+r.Gw.String())
	}
	slices.Sort(out)
	return out
}

func TestNetlinkRouterOwnsOnlyItsRoutes(t *testing.T) {
	needRoot(t)
	a, b := newNS(t, "a"), newNS(t, "b")
	a.veth(t, "eth0", b, "eth0")
	a.addr(t, "eth0", "192.168.50.1/24")
	_, foreignDst, _ := net.ParseCIDR("10.99.0.0/24")
	foreign := &netlink.Route{Dst: foreignDst, Gw: net.ParseIP("192.168.50.9"), Protocol: unix.RTPROT_STATIC}
	if err := a.nl.RouteAdd(foreign); err != nil {
		t.Fatal(err)
	}
	r1 := route("n2", "10.244.2.0/24", "192.168.50.2")
	r2 := route("n3", "10.244.3.0/24", "192.168.50.3")
	first := newNetlinkRouter(a.nl, t.Logf)
	if err := first.Set([]Route{r1, r2}); err != nil {
		t.Fatal(err)
	}
	if got, want := ourRoutes(t, a), []string{"10.244.2.0/24 via 192.168.50.2", "10.244.3.0/24 via 192.168.50.3"}; !slices.Equal(got, want) {
		t.Fatalf("routes = %q, want %q", got, want)
	}
	// A restarted agent: a new router removes what is no longer desired
	// and moves a route whose node changed address.
	second := newNetlinkRouter(a.nl, t.Logf)
	r2.Via = netip.MustParseAddr("192.168.50.33")
	if err := second.Set([]Route{r2}); err != nil {
		t.Fatal(err)
	}
	if got, want := ourRoutes(t, a), []string{"10.244.3.0/24 via 192.168.50.33"}; !slices.Equal(got, want) {
		t.Fatalf("after restart routes = %q, want %q", got, want)
	}
	unreachable := route("far", "10.244.4.0/24", "10.1.2.3")
	err := second.Set([]Route{r2, unreachable})
	if err == nil || !strings.Contains(err.Error(), "node far") {
		t.Errorf("Set with an off-link gateway: err = %v, want one naming node far", err)
	}
	if got := ourRoutes(t, a); !slices.Equal(got, []string{"10.244.3.0/24 via 192.168.50.33"}) {
		t.Errorf("after a failed route the others are %q", got)
	}
	if err := second.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if got := ourRoutes(t, a); len(got) != 0 {
		t.Errorf("after Cleanup our routes are %q", got)
	}
	rs, err := a.nl.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: foreignDst}, netlink.RT_FILTER_DST)
	if err != nil || len(rs) != 1 {
		t.Errorf("the static route 10.99.0.0/24 is gone (%v, %v); Set and Cleanup must leave others' routes", rs, err)
	}
}

func TestCheckOverlapsReadsTheHost(t *testing.T) {
	needRoot(t)
	w := newNS(t, "host")
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "wharf0"}}
	if err := w.nl.LinkAdd(br); err != nil {
		t.Fatal(err)
	}
	w.up(t, "wharf0")
	w.addr(t, "wharf0", "10.244.1.1/24")
	w.addr(t, "lo", "10.96.0.10/32")
	r := Ranges{ClusterCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12", PodCIDR: "10.244.1.0/24"}
	if err := checkOverlapsAt(w.nl, r); err != nil {
		t.Fatalf("CNI bridge and cluster DNS address refused: %v", err)
	}
	other := newNS(t, "other")
	w.veth(t, "eth1", other, "eth0")
	w.addr(t, "eth1", "10.111.0.1/16")
	err := checkOverlapsAt(w.nl, r)
	if err == nil || !strings.Contains(err.Error(), "service CIDR 10.96.0.0/12 overlaps the host's address 10.111.0.1/16 on eth1") {
		t.Errorf("err = %v, want one naming the service CIDR and eth1's address", err)
	}
}
