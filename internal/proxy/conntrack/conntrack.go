// Package conntrack deletes the conntrack entries the service proxy's
// model names as stale (model.StaleConntrack), through netlink: one dump
// of the table, every matching entry deleted. It must run after the new
// rules are live, or a packet in between recreates the entry.
package conntrack

import (
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/wharf-io/wharf/internal/proxy/model"
)

// Cleaner deletes stale conntrack entries.
type Cleaner interface {
	// Clear deletes the entries s names and returns how many went.
	Clear(s model.StaleConntrack) (uint, error)
}

// Netlink is the Cleaner of a network namespace.
type Netlink struct {
	h *netlink.Handle
}

// New returns a Cleaner using h (e.g. netlink.NewHandleAt for another
// namespace); nil means the caller's namespace.
func New(h *netlink.Handle) *Netlink {
	if h == nil {
		h = &netlink.Handle{}
	}
	return &Netlink{h: h}
}

// Clear implements Cleaner.
func (n *Netlink) Clear(s model.StaleConntrack) (uint, error) {
	filters := Filters(s)
	if len(filters) == 0 {
		return 0, nil
	}
	deleted, err := n.h.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, filters...)
	if err != nil {
		return deleted, fmt.Errorf("delete %d kinds of stale conntrack entries: %w", len(filters), err)
	}
	return deleted, nil
}

// Filter matches conntrack entries by protocol and either original
// destination (address optional: a node port matches any) or reply
// source. netlink's own ConntrackFilter cannot match a reply source port.
type Filter struct {
	Protocol uint8
	// Reply selects matching on the reply source rather than the
	// original destination.
	Reply bool
	Addr  netip.Addr
	Port  uint16
}

// MatchConntrackFlow implements netlink.CustomConntrackFilter.
func (f Filter) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	if flow.Forward.Protocol != f.Protocol {
		return false
	}
	ip, port := flow.Forward.DstIP, flow.Forward.DstPort
	if f.Reply {
		ip, port = flow.Reverse.SrcIP, flow.Reverse.SrcPort
	}
	if port != f.Port {
		return false
	}
	return !f.Addr.IsValid() || ip.Equal(net.IP(f.Addr.AsSlice()))
}

// Filters turns s into netlink filters.
func Filters(s model.StaleConntrack) []netlink.CustomConntrackFilter {
	var out []netlink.CustomConntrackFilter
	for _, d := range s.Destinations {
		out = append(out, Filter{Protocol: protoNumber(d.Protocol), Addr: d.Addr, Port: d.Port})
	}
	for _, r := range s.ReplySources {
		out = append(out, Filter{Protocol: protoNumber(r.Protocol), Reply: true, Addr: r.Addr, Port: r.Port})
	}
	return out
}

func protoNumber(p model.Protocol) uint8 {
	switch p {
	case model.TCP:
		return unix.IPPROTO_TCP
	case model.UDP:
		return unix.IPPROTO_UDP
	case model.SCTP:
		return unix.IPPROTO_SCTP
	}
	return 0
}

// Fake records what it was asked to clear.
type Fake struct {
	mu      sync.Mutex
	Cleared []model.StaleConntrack
}

// Clear implements Cleaner.
func (f *Fake) Clear(s model.StaleConntrack) (uint, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Cleared = append(f.Cleared, s)
	return 0, nil
}

// Calls returns a copy of what was cleared so far.
func (f *Fake) Calls() []model.StaleConntrack {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]model.StaleConntrack(nil), f.Cleared...)
}
