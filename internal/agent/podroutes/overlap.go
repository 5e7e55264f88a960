package podroutes

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Ranges are the cluster's address ranges, checked against the host by
// CheckOverlaps.
type Ranges struct {
	// ClusterCIDR and ServiceCIDR are required (IPv4).
	ClusterCIDR, ServiceCIDR string
	// PodCIDR is this node's share of ClusterCIDR when known: only a
	// bridge's addresses and routes inside it are taken for the CNI
	// bridge's. Empty (the agent checks before it learns its podCIDR): any
	// bridge's inside ClusterCIDR are.
	PodCIDR string
}

// hostEntry is one address or route of the host.
type hostEntry struct {
	What   string // "address 10.0.0.5/24 on eth0", "route 10.0.0.0/8 via 192.168.1.1 dev eth0 table 254"
	Prefix netip.Prefix
	Link   string // the link's name; "" for none
	Bridge bool   // the link is a bridge
	Ours   bool   // a route of RouteProtocol
}

// CheckOverlaps refuses cluster ranges that overlap each other or an
// address or route of this host that is not Wharf's own; the error names
// both. As Docker's network overlap check (libnetwork netutils), a route
// covering a range counts as much as one inside it; the default route does
// not. Wharf's own are: routes of RouteProtocol, the CNI bridge's
// addresses and routes inside this node's pod range, and the proxy's /32
// cluster DNS address (and its local route) on lo inside ServiceCIDR.
func CheckOverlaps(r Ranges) error {
	return checkOverlapsAt(&netlink.Handle{}, r)
}

func checkOverlapsAt(nl *netlink.Handle, r Ranges) error {
	entries, err := readHostEntries(nl)
	if err != nil {
		return fmt.Errorf("check the cluster ranges against the host: %w", err)
	}
	return findOverlaps(r, entries)
}

// findOverlaps is CheckOverlaps on a snapshot of the host.
func findOverlaps(r Ranges, host []hostEntry) error {
	cluster, err := parseV4Prefix("cluster CIDR", r.ClusterCIDR)
	if err != nil {
		return err
	}
	service, err := parseV4Prefix("service CIDR", r.ServiceCIDR)
	if err != nil {
		return err
	}
	pod := cluster
	if r.PodCIDR != "" {
		if pod, err = parseV4Prefix("pod CIDR", r.PodCIDR); err != nil {
			return err
		}
	}
	if cluster.Overlaps(service) {
		return fmt.Errorf("cluster CIDR %s overlaps service CIDR %s", cluster, service)
	}
	var errs []error
	for _, e := range host {
		if e.Ours || e.Prefix.Bits() == 0 {
			continue
		}
		if cluster.Overlaps(e.Prefix) && !(e.Bridge && pod.Contains(e.Prefix.Addr()) && e.Prefix.Bits() >= pod.Bits()) {
			errs = append(errs, fmt.Errorf("cluster CIDR %s overlaps the host's %s", cluster, e.What))
		}
		if service.Overlaps(e.Prefix) && !(e.Link == "lo" && e.Prefix.Bits() == 32 && service.Contains(e.Prefix.Addr())) {
			errs = append(errs, fmt.Errorf("service CIDR %s overlaps the host's %s", service, e.What))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("choose cluster ranges that the host does not use: %w", errors.Join(errs...))
	}
	return nil
}

func parseV4Prefix(what, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("%s %q is not an IPv4 CIDR", what, s)
	}
	return p.Masked(), nil
}

// readHostEntries lists the IPv4 addresses and the IPv4 routes of every
// routing table in nl's network namespace.
func readHostEntries(nl *netlink.Handle) ([]hostEntry, error) {
	links, err := nl.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	type linkInfo struct {
		name   string
		bridge bool
	}
	byIndex := map[int]linkInfo{}
	for _, l := range links {
		byIndex[l.Attrs().Index] = linkInfo{l.Attrs().Name, l.Type() == "bridge"}
	}
	addrs, err := nl.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	var out []hostEntry
	for _, a := range addrs {
		if p, ok := prefixOf(a.IPNet); ok {
			li := byIndex[a.LinkIndex]
			out = append(out, hostEntry{What: fmt.Sprintf("address %s on %s", a.IPNet, li.name),
				Prefix: p, Link: li.name, Bridge: li.bridge})
		}
	}
	routes, err := nl.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	for _, rt := range routes {
		if p, ok := prefixOf(rt.Dst); ok {
			li := byIndex[rt.LinkIndex]
			out = append(out, hostEntry{What: describeRoute(rt, p, li.name), Prefix: p, Link: li.name,
				Bridge: li.bridge, Ours: rt.Protocol == RouteProtocol})
		}
	}
	return out, nil
}

func describeRoute(rt netlink.Route, dst netip.Prefix, link string) string {
	s := "route " + dst.String()
	if rt.Gw != nil {
		s += " via " + rt.Gw.String()
	}
	if link != "" {
		s += " dev " + link
	}
	return s + fmt.Sprintf(" table %d", rt.Table)
}
