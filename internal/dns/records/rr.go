package records

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// SOA timers, as CoreDNS's kubernetes plugin sets them. The specification
// defines no SOA; the minimum (the negative-answer TTL) is the record TTL.
const (
	soaRefresh = 7200
	soaRetry   = 1800
	soaExpire  = 86400
)

func (ix *Index) hdr(owner string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: owner, Rrtype: t, Class: dns.ClassINET, Ttl: ix.ttl}
}

// addr is an A or AAAA record, by the address's family.
func (ix *Index) addr(owner string, ip netip.Addr) dns.RR {
	if ip.Is4() {
		return &dns.A{Hdr: ix.hdr(owner, dns.TypeA), A: ip.AsSlice()}
	}
	return &dns.AAAA{Hdr: ix.hdr(owner, dns.TypeAAAA), AAAA: ip.AsSlice()}
}

func (ix *Index) srvRR(owner string, port uint16, target string, weight uint16) dns.RR {
	return &dns.SRV{Hdr: ix.hdr(owner, dns.TypeSRV), Priority: 0, Weight: weight, Port: port, Target: target}
}

// soa is the SOA of zone (the cluster zone, or in-addr.arpa. / ip6.arpa.
// for reverse names), as CoreDNS forms it: ns.dns.<zone>,
// hostmaster.<zone>, a serial that moves with every change.
func (ix *Index) soa(zone string) dns.RR {
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ix.ttl},
		Ns:      "ns.dns." + zone,
		Mbox:    "hostmaster." + zone,
		Serial:  ix.serial,
		Refresh: soaRefresh,
		Retry:   soaRetry,
		Expire:  soaExpire,
		Minttl:  ix.ttl,
	}
}

// parseReverse reads a lower-case, fully qualified reverse name: four
// octets under in-addr.arpa. or 32 nibbles under ip6.arpa. zone is the
// reverse zone it is under.
func parseReverse(name string) (ip netip.Addr, zone string, ok bool) {
	switch {
	case strings.HasSuffix(name, ".in-addr.arpa."):
		labels := dns.SplitDomainName(strings.TrimSuffix(name, ".in-addr.arpa."))
		if len(labels) != 4 {
			return netip.Addr{}, "", false
		}
		var b [4]byte
		for i, l := range labels {
			v, err := strconv.ParseUint(l, 10, 8)
			if err != nil || (len(l) > 1 && l[0] == '0') {
				return netip.Addr{}, "", false
			}
			b[3-i] = byte(v)
		}
		return netip.AddrFrom4(b), "in-addr.arpa.", true
	case strings.HasSuffix(name, ".ip6.arpa."):
		labels := dns.SplitDomainName(strings.TrimSuffix(name, ".ip6.arpa."))
		if len(labels) != 32 {
			return netip.Addr{}, "", false
		}
		var b [16]byte
		for i, l := range labels {
			v, err := strconv.ParseUint(l, 16, 4)
			if err != nil || len(l) != 1 {
				return netip.Addr{}, "", false
			}
			// labels[0] is the low nibble of the last byte.
			pos := 31 - i
			b[pos/2] |= byte(v) << (4 * (1 - pos%2))
		}
		return netip.AddrFrom16(b), "ip6.arpa.", true
	}
	return netip.Addr{}, "", false
}
