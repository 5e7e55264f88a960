package records

import (
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// SchemaVersion is the version of the Kubernetes DNS schema served, in the
// dns-version.<zone> TXT record.
const SchemaVersion = "1.1.0"

// Result is the answer to one question.
type Result struct {
	// Rcode is dns.RcodeSuccess or dns.RcodeNameError (NXDOMAIN).
	Rcode int
	// Answer holds the records of the asked name and type, owned by the
	// name as it was asked; empty for NXDOMAIN and for NODATA (the name
	// exists, with no record of that type). A CNAME answers every type.
	Answer []dns.RR
	// Ns holds the zone's SOA when Answer is empty (RFC 2308).
	Ns []dns.RR
	// Extra holds the address records of SRV targets.
	Extra []dns.RR
}

// node is what a name holds: all its records, whatever their type.
type node struct {
	exists bool
	rrs    []dns.RR
	extra  []dns.RR // added when an SRV record is answered
}

// Lookup answers a question. ours is false for a name outside the cluster
// zone, including a reverse name that is not a cluster IP or a headless
// endpoint's address: the caller forwards those. Names compare
// case-insensitively.
func (ix *Index) Lookup(qname string, qtype uint16) (res Result, ours bool) {
	qname = dns.Fqdn(qname)
	name := strings.ToLower(qname)
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var n node
	zone := ix.zone
	switch {
	case name == ix.zone || strings.HasSuffix(name, "."+ix.zone):
		rel := dns.SplitDomainName(strings.TrimSuffix(name, ix.zone))
		n = ix.resolve(qname, reverse(rel))
	default:
		var ok bool
		if n, zone, ok = ix.resolvePTR(qname, name); !ok {
			return Result{}, false
		}
	}
	return ix.result(n, qtype, zone), true
}

// result picks the records of type qtype out of a node, or the SOA of zone
// for a negative answer.
func (ix *Index) result(n node, qtype uint16, zone string) Result {
	if !n.exists {
		return Result{Rcode: dns.RcodeNameError, Ns: []dns.RR{ix.soa(zone)}}
	}
	var res Result
	for _, rr := range n.rrs {
		t := rr.Header().Rrtype
		if t == qtype || qtype == dns.TypeANY || (t == dns.TypeCNAME && qtype != dns.TypeCNAME) {
			res.Answer = append(res.Answer, rr)
		}
	}
	if len(res.Answer) == 0 {
		res.Ns = []dns.RR{ix.soa(zone)}
	} else if res.Answer[0].Header().Rrtype == dns.TypeSRV {
		res.Extra = n.extra
	}
	return res
}

// resolve finds the records of a name under the zone; rel holds its labels
// from the zone outwards (_http._tcp.web.default.svc -> svc default web
// _tcp _http). owner is the name as asked.
func (ix *Index) resolve(owner string, rel []string) node {
	switch {
	case len(rel) == 0:
		return node{exists: true, rrs: []dns.RR{ix.soa(ix.zone)}}
	case len(rel) == 1 && rel[0] == "dns-version":
		txt := &dns.TXT{Hdr: ix.hdr(owner, dns.TypeTXT), Txt: []string{SchemaVersion}}
		return node{exists: true, rrs: []dns.RR{txt}}
	case rel[0] == "svc":
		return ix.resolveService(owner, rel[1:])
	case rel[0] == "pod":
		return ix.resolvePod(owner, rel[1:])
	case ix.legacy:
		// <svc>.<ns>.<zone>: the chapter's form. Namespaces named svc and
		// pod are read the .svc./.pod. way above, so they win.
		return ix.resolveService(owner, rel)
	}
	return node{}
}

// resolveService resolves <parts...>.svc.<zone>, parts from the namespace
// outwards.
func (ix *Index) resolveService(owner string, parts []string) node {
	switch len(parts) {
	case 0:
		return node{exists: len(ix.services) > 0}
	case 1:
		return node{exists: ix.namespaces[parts[0]] > 0}
	}
	v := ix.views[key(parts[0], parts[1])]
	if v == nil || (v.svc.Kind == Headless && len(v.endpoints) == 0) {
		// The spec: a headless service without ready endpoints is NXDOMAIN.
		return node{}
	}
	switch {
	case len(parts) == 2:
		return ix.serviceNode(owner, v)
	case len(parts) == 3 && strings.HasPrefix(parts[2], "_"):
		return node{exists: len(ix.srv(owner, v, parts[2][1:], "")) > 0}
	case len(parts) == 3 && v.svc.Kind == Headless:
		return ix.endpointNode(owner, v, parts[2])
	case len(parts) == 4 && strings.HasPrefix(parts[2], "_") && strings.HasPrefix(parts[3], "_"):
		srv := ix.srv(owner, v, parts[2][1:], parts[3][1:])
		return node{exists: len(srv) > 0, rrs: srv, extra: ix.srvExtra(v, srv)}
	}
	return node{}
}

// serviceNode holds the records of <svc>.<ns>.svc.<zone>.
func (ix *Index) serviceNode(owner string, v *view) node {
	n := node{exists: true}
	switch v.svc.Kind {
	case ClusterIP:
		for _, ip := range v.svc.ClusterIPs {
			n.rrs = append(n.rrs, ix.addr(owner, ip))
		}
	case Headless:
		for _, e := range v.endpoints {
			n.rrs = append(n.rrs, ix.addr(owner, e.addr))
		}
	case ExternalName:
		n.rrs = []dns.RR{&dns.CNAME{Hdr: ix.hdr(owner, dns.TypeCNAME), Target: v.svc.ExternalName + "."}}
	}
	return n
}

// endpointNode holds the records of <hostname>.<svc>.<ns>.svc.<zone>.
func (ix *Index) endpointNode(owner string, v *view, name string) node {
	var n node
	for _, e := range v.endpoints {
		if e.name == name {
			n.exists = true
			n.rrs = append(n.rrs, ix.addr(owner, e.addr))
		}
	}
	return n
}

// srv lists the SRV records of _<port>._<proto> on a service; an empty
// port lists every named port of proto (to tell whether _<proto> exists).
func (ix *Index) srv(owner string, v *view, proto, port string) []dns.RR {
	match := func(p Port) bool {
		return p.Name != "" && p.Protocol == proto && (port == "" || p.Name == port)
	}
	var out []dns.RR
	switch v.svc.Kind {
	case ClusterIP:
		for _, p := range v.svc.Ports {
			if match(p) {
				out = append(out, ix.srvRR(owner, p.Port, ix.serviceName(v.svc), 100))
			}
		}
	case Headless:
		// One record per (endpoint name, port): an endpoint with an IPv4
		// and an IPv6 address under one hostname is one target.
		type target struct {
			name string
			port uint16
		}
		var targets []target
		seen := map[target]bool{}
		for _, e := range v.endpoints {
			for _, p := range e.ports {
				if t := (target{e.name, p.Port}); match(p) && !seen[t] {
					seen[t] = true
					targets = append(targets, t)
				}
			}
		}
		weight := uint16(max(1, 100/max(1, len(targets))))
		for _, t := range targets {
			out = append(out, ix.srvRR(owner, t.port, t.name+"."+ix.serviceName(v.svc), weight))
		}
	}
	return out
}

// srvExtra holds the address records of the targets of srv.
func (ix *Index) srvExtra(v *view, srv []dns.RR) []dns.RR {
	var out []dns.RR
	seen := map[string]bool{}
	for _, rr := range srv {
		target := rr.(*dns.SRV).Target
		if seen[target] {
			continue
		}
		seen[target] = true
		if v.svc.Kind == ClusterIP {
			out = append(out, ix.serviceNode(target, v).rrs...)
			continue
		}
		name := strings.TrimSuffix(target, "."+ix.serviceName(v.svc))
		out = append(out, ix.endpointNode(target, v, name).rrs...)
	}
	return out
}

// resolvePod resolves <parts...>.pod.<zone>: a-b-c-d.<ns>.pod.<zone> is
// a.b.c.d for any namespace, as kubeadm's Corefile (`pods insecure`) serves
// it; every namespace exists.
func (ix *Index) resolvePod(owner string, parts []string) node {
	switch len(parts) {
	case 0, 1:
		return node{exists: true}
	case 2:
		ip, ok := parseDashed(parts[1])
		if !ok {
			return node{}
		}
		return node{exists: true, rrs: []dns.RR{ix.addr(owner, ip)}}
	}
	return node{}
}

// resolvePTR answers a reverse name (in-addr.arpa, ip6.arpa) of a cluster IP
// or headless endpoint. ok is false when the name is not one of ours.
func (ix *Index) resolvePTR(owner, name string) (n node, zone string, ok bool) {
	ip, zone, ok := parseReverse(name)
	if !ok {
		return node{}, "", false
	}
	targets := ix.ptr[ip]
	if len(targets) == 0 {
		return node{}, "", false
	}
	n.exists = true
	for _, t := range targets {
		n.rrs = append(n.rrs, &dns.PTR{Hdr: ix.hdr(owner, dns.TypePTR), Ptr: t.target})
	}
	return n, zone, true
}

// parseDashed reads a pod name: 10-244-1-5 or fd00--5.
func parseDashed(label string) (netip.Addr, bool) {
	if ip, err := netip.ParseAddr(strings.ReplaceAll(label, "-", ".")); err == nil && ip.Is4() {
		return ip, true
	}
	if ip, err := netip.ParseAddr(strings.ReplaceAll(label, "-", ":")); err == nil && ip.Is6() && !ip.Is4In6() {
		return ip, true
	}
	return netip.Addr{}, false
}

func reverse(s []string) []string {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
	return s
}
