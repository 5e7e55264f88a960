package podroutes

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Router programs the pod routes to other nodes, as Tailscale's
// wgengine/router does its routes: the desired set is computed elsewhere and
// handed over whole. host-gw (kernel routes via each node's address) is one
// Router; a VXLAN overlay would be another behind the same two calls.
type Router interface {
	// Set makes routes the complete set of this Router's routes: it adds or
	// changes those missing or different and removes those of its own not
	// listed (including any left by an earlier run). It applies what it can
	// and returns the failures, naming each route's node.
	Set(routes []Route) error
	// Cleanup removes every route of this Router's, whichever run made it
	// (for `wharf reset`).
	Cleanup() error
}

// RouteProtocol marks Wharf's routes (rtm_protocol 0x57, 'W'; `ip route`
// shows "proto 87"): a restarted agent recognises its own routes by it, and
// never touches anyone else's. Unassigned in iproute2's rt_protos.
const RouteProtocol netlink.RouteProtocol = 0x57

// netlinkRouter is the host-gw Router: one main-table route per node.
type netlinkRouter struct {
	nl   *netlink.Handle
	logf func(format string, args ...any)
	// nodes names the node of each route the last Set asked for, so that
	// a removal can be logged with it.
	nodes map[netip.Prefix]string
}

// newNetlinkRouter returns the host-gw Router acting in nl's network
// namespace (&netlink.Handle{} is the process's own).
func newNetlinkRouter(nl *netlink.Handle, logf func(string, ...any)) *netlinkRouter {
	return &netlinkRouter{nl: nl, logf: logf, nodes: map[netip.Prefix]string{}}
}

// Set implements Router.
func (r *netlinkRouter) Set(routes []Route) error {
	have, err := r.list()
	if err != nil {
		return err
	}
	want := map[netip.Prefix]bool{}
	var errs []error
	for _, rt := range routes {
		want[rt.Dst] = true
		if old, ok := have[rt.Dst]; ok && old.Via == rt.Via {
			continue
		}
		if err := r.nl.RouteReplace(r.kernelRoute(rt)); err != nil {
			errs = append(errs, fmt.Errorf("route %s: %w", rt, err))
			continue
		}
		r.logf("Added pod route to node %s: %s via %s", rt.Node, rt.Dst, rt.Via)
	}
	for dst, old := range have {
		if want[dst] {
			continue
		}
		if err := r.del(old); err != nil {
			errs = append(errs, err)
			continue
		}
		r.logf("Removed pod route to node %s: %s via %s", r.nodeName(dst), old.Dst, old.Via)
	}
	r.nodes = map[netip.Prefix]string{}
	for _, rt := range routes {
		r.nodes[rt.Dst] = rt.Node
	}
	return errors.Join(errs...)
}

// Cleanup implements Router.
func (r *netlinkRouter) Cleanup() error {
	have, err := r.list()
	if err != nil {
		return err
	}
	var errs []error
	for _, old := range have {
		if err := r.del(old); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// list returns our IPv4 main-table routes by destination. A dump the
// kernel interrupted (routes changing meanwhile) is an error: Set then
// retries on the next sync rather than acting on a partial list.
func (r *netlinkRouter) list() (map[netip.Prefix]Route, error) {
	filter := &netlink.Route{Table: unix.RT_TABLE_MAIN, Protocol: RouteProtocol}
	krs, err := r.nl.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return nil, fmt.Errorf("list routes of protocol %d: %w", RouteProtocol, err)
	}
	out := map[netip.Prefix]Route{}
	for _, kr := range krs {
		dst, ok := prefixOf(kr.Dst)
		if !ok {
			continue
		}
		via, _ := netip.AddrFromSlice(kr.Gw.To4())
		out[dst] = Route{Dst: dst, Via: via}
	}
	return out, nil
}

// nodeName is the node a route of ours led to, as far as this run knows.
func (r *netlinkRouter) nodeName(dst netip.Prefix) string {
	if n, ok := r.nodes[dst]; ok {
		return n
	}
	return "(unknown: route from an earlier run)"
}

func (r *netlinkRouter) del(old Route) error {
	kr := &netlink.Route{Dst: ipNet(old.Dst), Table: unix.RT_TABLE_MAIN, Protocol: RouteProtocol}
	if err := r.nl.RouteDel(kr); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("remove route %s via %s: %w", old.Dst, old.Via, err)
	}
	return nil
}

// kernelRoute is rt as the kernel's route. No device: the kernel takes the
// one of the connected route to the gateway, and refuses ("network is
// unreachable") a gateway that has none, so no route points off-link.
func (r *netlinkRouter) kernelRoute(rt Route) *netlink.Route {
	return &netlink.Route{
		Dst: ipNet(rt.Dst), Gw: rt.Via.AsSlice(),
		Table: unix.RT_TABLE_MAIN, Protocol: RouteProtocol, Scope: netlink.SCOPE_UNIVERSE,
	}
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// prefixOf converts a netlink destination; nil (the default route) and
// non-IPv4 destinations are not ok.
func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP.To4())
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := n.Mask.Size()
	if bits != 32 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, ones).Masked(), true
}
