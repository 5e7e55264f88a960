package podroutes

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// host reads the node's own addressing.
type host interface {
	// Connected returns the IPv4 subnets the host reaches directly: the
	// destinations of its main-table link-scope routes (not lo's).
	Connected() ([]netip.Prefix, error)
	// NodeSubnets returns the IPv4 subnets of the interface holding ip
	// (the node subnets of ip-masq-agent's rule), sorted.
	NodeSubnets(ip netip.Addr) ([]netip.Prefix, error)
}

// netlinkHost is the host of a netlink handle's network namespace.
type netlinkHost struct{ nl *netlink.Handle }

// Connected implements host.
func (h netlinkHost) Connected() ([]netip.Prefix, error) {
	filter := &netlink.Route{Table: unix.RT_TABLE_MAIN, Scope: netlink.SCOPE_LINK}
	rs, err := h.nl.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_SCOPE)
	if err != nil {
		return nil, fmt.Errorf("list connected routes: %w", err)
	}
	var out []netip.Prefix
	for _, r := range rs {
		if p, ok := prefixOf(r.Dst); ok && r.Gw == nil && r.Protocol != RouteProtocol && !isLoopback(h.nl, r.LinkIndex) {
			out = append(out, p)
		}
	}
	return out, nil
}

func isLoopback(nl *netlink.Handle, index int) bool {
	l, err := nl.LinkByIndex(index)
	return err == nil && l.Attrs().Flags&net.FlagLoopback != 0
}

// NodeSubnets implements host.
func (h netlinkHost) NodeSubnets(ip netip.Addr) ([]netip.Prefix, error) {
	addrs, err := h.nl.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	link := -1
	for _, a := range addrs {
		if got, ok := netip.AddrFromSlice(a.IP.To4()); ok && got == ip {
			link = a.LinkIndex
		}
	}
	if link < 0 {
		return nil, fmt.Errorf("node IP %s is on no interface of this host", ip)
	}
	var out []netip.Prefix
	for _, a := range addrs {
		if p, ok := prefixOf(a.IPNet); ok && a.LinkIndex == link && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, comparePrefix)
	return out, nil
}
