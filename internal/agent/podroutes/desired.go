package podroutes

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// nodeState is what routing needs of a v1 Node, converted once at the edge
// (nodeFromAPI) so that desiredRoutes never sees an API object.
type nodeState struct {
	Name string
	// PodCIDR is the node's IPv4 pod range; invalid when it has none yet.
	PodCIDR netip.Prefix
	// InternalIP is the node's first IPv4 InternalIP; invalid when none.
	InternalIP netip.Addr
	// Ready is the status of the node's Ready condition: "True", "False",
	// "Unknown", or "" when the node has no Ready condition.
	Ready corev1.ConditionStatus
	// ReadySince is the Ready condition's lastTransitionTime.
	ReadySince time.Time
}

// Route sends a node's pods' traffic to that node: Dst via Via.
type Route struct {
	// Node names the node the route leads to (for logs and errors).
	Node string
	// Dst is the node's pod CIDR.
	Dst netip.Prefix
	// Via is the node's InternalIP, the route's gateway.
	Via netip.Addr
}

// String describes the route for logs and errors.
func (r Route) String() string { return fmt.Sprintf("%s via %s (node %s)", r.Dst, r.Via, r.Node) }

// skippedNode is a node that should be routed but cannot be, and why; the
// caller logs it.
type skippedNode struct {
	Node   string
	Reason string
}

// routeInput is everything desiredRoutes decides from besides the nodes.
type routeInput struct {
	// Self is this node's name: it never gets a route to itself.
	Self string
	// Now and Grace decide whether a NotReady node keeps its route.
	Now   time.Time
	Grace time.Duration
	// Connected are the host's directly connected IPv4 subnets; a gateway
	// outside them is unreachable without another hop, which host-gw
	// cannot express.
	Connected []netip.Prefix
}

// desiredRoutes is host-gw's routing table: for every other node with a
// pod CIDR and an InternalIP that is Ready, or has been NotReady/Unknown
// for less than the grace period, its pod CIDR via its InternalIP. Routes
// are sorted by destination. Nodes that qualify but cannot be routed
// (gateway not directly reachable, pod CIDR overlapping ours or another
// node's) are returned in skipped.
func desiredRoutes(nodes []nodeState, in routeInput) (routes []Route, skipped []skippedNode) {
	var own netip.Prefix
	for _, n := range nodes {
		if n.Name == in.Self {
			own = n.PodCIDR
		}
	}
	for _, n := range nodes {
		if n.Name == in.Self || !n.PodCIDR.IsValid() || !n.InternalIP.IsValid() || !routable(n, in.Now, in.Grace) {
			continue
		}
		switch {
		case own.IsValid() && own.Overlaps(n.PodCIDR):
			skipped = append(skipped, skippedNode{n.Name, fmt.Sprintf("its pod CIDR %s overlaps this node's %s", n.PodCIDR, own)})
		case !containedIn(n.InternalIP, in.Connected):
			skipped = append(skipped, skippedNode{n.Name, fmt.Sprintf("its InternalIP %s is not on a directly connected subnet "+
				"(host-gw needs the nodes on one L2 segment)", n.InternalIP)})
		default:
			routes = append(routes, Route{Node: n.Name, Dst: n.PodCIDR.Masked(), Via: n.InternalIP})
		}
	}
	slices.SortFunc(routes, func(a, b Route) int { return comparePrefix(a.Dst, b.Dst) })
	return dropConflicts(routes, &skipped), skipped
}

// routable reports whether n's Ready condition lets it keep a route at now.
// A node without a Ready condition, or NotReady since an unknown time, gets
// none: there is nothing to measure the grace period from.
func routable(n nodeState, now time.Time, grace time.Duration) bool {
	switch n.Ready {
	case corev1.ConditionTrue:
		return true
	case corev1.ConditionFalse, corev1.ConditionUnknown:
		return !n.ReadySince.IsZero() && now.Sub(n.ReadySince) < grace
	}
	return false
}

// dropConflicts removes routes (sorted by Dst) whose destinations overlap:
// two nodes claiming one range is an allocation error, and routing it to
// either would send half the pods' traffic to the wrong node.
func dropConflicts(routes []Route, skipped *[]skippedNode) []Route {
	bad := make([]bool, len(routes))
	for i := range routes {
		for j := i + 1; j < len(routes) && routes[j].Dst.Overlaps(routes[i].Dst); j++ {
			bad[i], bad[j] = true, true
		}
	}
	var out []Route
	for i, r := range routes {
		if bad[i] {
			*skipped = append(*skipped, skippedNode{r.Node, fmt.Sprintf("its pod CIDR %s overlaps another node's", r.Dst)})
			continue
		}
		out = append(out, r)
	}
	return out
}

func containedIn(a netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// nodeFromAPI converts a v1 Node. Only IPv4 is used: the pod network is
// IPv4-only (see podnet.DefaultConflist).
func nodeFromAPI(n *corev1.Node) nodeState {
	out := nodeState{Name: n.Name}
	cidrs := n.Spec.PodCIDRs
	if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
		cidrs = []string{n.Spec.PodCIDR}
	}
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil && p.Addr().Is4() {
			out.PodCIDR = p.Masked()
			break
		}
	}
	for _, a := range n.Status.Addresses {
		if ip, err := netip.ParseAddr(a.Address); a.Type == corev1.NodeInternalIP && err == nil && ip.Is4() {
			out.InternalIP = ip
			break
		}
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			out.Ready, out.ReadySince = c.Status, c.LastTransitionTime.Time
		}
	}
	return out
}
