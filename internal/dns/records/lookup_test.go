package records

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func ips(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

// fixture is a small cluster: every kind of service, a dual-stack one,
// headless endpoints with and without hostnames, ready and not, and
// namespaces named svc and pod.
func fixture(o Options) *Index {
	ix := NewIndex(o)
	ix.SetService(Service{Namespace: "default", Name: "web", Kind: ClusterIP, ClusterIPs: ips("10.96.0.20"),
		Ports: []Port{{"http", "tcp", 80}, {"dns", "udp", 53}, {"", "tcp", 8080}}})
	ix.SetService(Service{Namespace: "default", Name: "dual", Kind: ClusterIP, ClusterIPs: ips("10.96.0.21", "fd00::21")})
	ix.SetService(Service{Namespace: "default", Name: "headless", Kind: Headless, Ports: []Port{{"http", "tcp", 80}}})
	ix.SetEndpointSlice(EndpointSlice{Namespace: "default", Name: "headless-v4", Service: "headless",
		Ports: []Port{{"http", "tcp", 8080}},
		Endpoints: []Endpoint{
			{Addresses: ips("10.244.1.5"), Hostname: "web-0", Ready: true},
			{Addresses: ips("10.244.2.6"), Ready: true},
			{Addresses: ips("10.244.3.7"), Ready: false},
		}})
	ix.SetEndpointSlice(EndpointSlice{Namespace: "default", Name: "headless-v6", Service: "headless",
		Ports:     []Port{{"http", "tcp", 8080}},
		Endpoints: []Endpoint{{Addresses: ips("fd00::1:5"), Hostname: "web-0", Ready: true}}})
	ix.SetService(Service{Namespace: "default", Name: "empty", Kind: Headless})
	ix.SetEndpointSlice(EndpointSlice{Namespace: "default", Name: "empty-1", Service: "empty",
		Endpoints: []Endpoint{{Addresses: ips("10.244.4.8"), Ready: false}}})
	ix.SetService(Service{Namespace: "default", Name: "tolerant", Kind: Headless, PublishNotReady: true})
	ix.SetEndpointSlice(EndpointSlice{Namespace: "default", Name: "tolerant-1", Service: "tolerant",
		Endpoints: []Endpoint{{Addresses: ips("10.244.5.9"), Ready: false}}})
	ix.SetService(Service{Namespace: "default", Name: "ext", Kind: ExternalName, ExternalName: "www.example.com"})
	ix.SetService(Service{Namespace: "svc", Name: "api", Kind: ClusterIP, ClusterIPs: ips("10.96.0.30")})
	ix.SetService(Service{Namespace: "pod", Name: "x", Kind: ClusterIP, ClusterIPs: ips("10.96.0.31")})
	return ix
}

// show formats records one per line, fields separated by single spaces,
// with the SOA serial (a timestamp) zeroed.
func show(rrs []dns.RR) string {
	var lines []string
	for _, rr := range rrs {
		if soa, ok := rr.(*dns.SOA); ok {
			c := *soa
			c.Serial = 0
			rr = &c
		}
		lines = append(lines, strings.Join(strings.Fields(rr.String()), " "))
	}
	return strings.Join(lines, "\n")
}

const (
	soaZone = "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 0 7200 1800 86400 5"
	soaV4   = "in-addr.arpa. 5 IN SOA ns.dns.in-addr.arpa. hostmaster.in-addr.arpa. 0 7200 1800 86400 5"
	nx      = dns.RcodeNameError
)

type lookupCase struct {
	name   string
	qname  string
	qtype  uint16
	notOur bool   // forwarded
	rcode  int    // dns.RcodeSuccess unless NXDOMAIN
	answer string // show(Answer)
	ns     string // show(Ns)
	extra  string // show(Extra)
}

func runLookups(t *testing.T, ix *Index, cases []lookupCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, ours := ix.Lookup(c.qname, c.qtype)
			if ours == c.notOur {
				t.Fatalf("Lookup(%s %s): ours=%v, want %v", c.qname, dns.TypeToString[c.qtype], ours, !c.notOur)
			}
			if c.notOur {
				return
			}
			got := []string{dns.RcodeToString[res.Rcode], show(res.Answer), show(res.Ns), show(res.Extra)}
			want := []string{dns.RcodeToString[c.rcode], c.answer, c.ns, c.extra}
			if !slices.Equal(got, want) {
				t.Errorf("Lookup(%s %s):\n got rcode %s\n%s\nns: %s\nextra: %s\nwant rcode %s\n%s\nns: %s\nextra: %s",
					c.qname, dns.TypeToString[c.qtype], got[0], got[1], got[2], got[3], want[0], want[1], want[2], want[3])
			}
		})
	}
}

func TestLookupServiceRecords(t *testing.T) {
	A, AAAA, SRV := dns.TypeA, dns.TypeAAAA, dns.TypeSRV
	runLookups(t, fixture(Options{}), []lookupCase{
		{name: "ClusterIP A", qname: "web.default.svc.cluster.local.", qtype: A,
			answer: "web.default.svc.cluster.local. 5 IN A 10.96.0.20"},
		{name: "case-insensitive, owner as asked", qname: "WEB.Default.SVC.cluster.LOCAL.", qtype: A,
			answer: "WEB.Default.SVC.cluster.LOCAL. 5 IN A 10.96.0.20"},
		{name: "ClusterIP AAAA of an IPv4 service is NODATA", qname: "web.default.svc.cluster.local.", qtype: AAAA,
			ns: soaZone},
		{name: "ClusterIP TXT is NODATA", qname: "web.default.svc.cluster.local.", qtype: dns.TypeTXT, ns: soaZone},
		{name: "dual-stack A", qname: "dual.default.svc.cluster.local.", qtype: A,
			answer: "dual.default.svc.cluster.local. 5 IN A 10.96.0.21"},
		{name: "dual-stack AAAA", qname: "dual.default.svc.cluster.local.", qtype: AAAA,
			answer: "dual.default.svc.cluster.local. 5 IN AAAA fd00::21"},
		{name: "ANY", qname: "dual.default.svc.cluster.local.", qtype: dns.TypeANY,
			answer: "dual.default.svc.cluster.local. 5 IN A 10.96.0.21\ndual.default.svc.cluster.local. 5 IN AAAA fd00::21"},
		{name: "missing service is NXDOMAIN", qname: "nope.default.svc.cluster.local.", qtype: A, rcode: nx, ns: soaZone},
		{name: "missing namespace is NXDOMAIN", qname: "web.nope.svc.cluster.local.", qtype: A, rcode: nx, ns: soaZone},
		{name: "name below a ClusterIP service is NXDOMAIN", qname: "a.web.default.svc.cluster.local.", qtype: A, rcode: nx, ns: soaZone},
		{name: "too deep is NXDOMAIN", qname: "a._http._tcp.web.default.svc.cluster.local.", qtype: A, rcode: nx, ns: soaZone},

		{name: "SRV named TCP port", qname: "_http._tcp.web.default.svc.cluster.local.", qtype: SRV,
			answer: "_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local.",
			extra:  "web.default.svc.cluster.local. 5 IN A 10.96.0.20"},
		{name: "SRV named UDP port", qname: "_dns._udp.web.default.svc.cluster.local.", qtype: SRV,
			answer: "_dns._udp.web.default.svc.cluster.local. 5 IN SRV 0 100 53 web.default.svc.cluster.local.",
			extra:  "web.default.svc.cluster.local. 5 IN A 10.96.0.20"},
		{name: "SRV wrong protocol is NXDOMAIN", qname: "_http._udp.web.default.svc.cluster.local.", qtype: SRV, rcode: nx, ns: soaZone},
		{name: "SRV unknown port is NXDOMAIN", qname: "_https._tcp.web.default.svc.cluster.local.", qtype: SRV, rcode: nx, ns: soaZone},
		{name: "A on an SRV name is NODATA", qname: "_http._tcp.web.default.svc.cluster.local.", qtype: A, ns: soaZone},
		{name: "_tcp is an empty non-terminal", qname: "_tcp.web.default.svc.cluster.local.", qtype: SRV, ns: soaZone},
		{name: "_sctp without ports is NXDOMAIN", qname: "_sctp.web.default.svc.cluster.local.", qtype: SRV, rcode: nx, ns: soaZone},

		{name: "ExternalName A is its CNAME", qname: "ext.default.svc.cluster.local.", qtype: A,
			answer: "ext.default.svc.cluster.local. 5 IN CNAME www.example.com."},
		{name: "ExternalName CNAME", qname: "ext.default.svc.cluster.local.", qtype: dns.TypeCNAME,
			answer: "ext.default.svc.cluster.local. 5 IN CNAME www.example.com."},
		{name: "ExternalName SRV is its CNAME", qname: "ext.default.svc.cluster.local.", qtype: SRV,
			answer: "ext.default.svc.cluster.local. 5 IN CNAME www.example.com."},
	})
}

func TestLookupHeadlessRecords(t *testing.T) {
	A, AAAA, SRV := dns.TypeA, dns.TypeAAAA, dns.TypeSRV
	runLookups(t, fixture(Options{}), []lookupCase{
		{name: "one A per ready endpoint", qname: "headless.default.svc.cluster.local.", qtype: A,
			answer: "headless.default.svc.cluster.local. 5 IN A 10.244.2.6\nheadless.default.svc.cluster.local. 5 IN A 10.244.1.5"},
		{name: "AAAA of ready IPv6 endpoints", qname: "headless.default.svc.cluster.local.", qtype: AAAA,
			answer: "headless.default.svc.cluster.local. 5 IN AAAA fd00::1:5"},
		{name: "hostname A", qname: "web-0.headless.default.svc.cluster.local.", qtype: A,
			answer: "web-0.headless.default.svc.cluster.local. 5 IN A 10.244.1.5"},
		{name: "hostname AAAA", qname: "web-0.headless.default.svc.cluster.local.", qtype: AAAA,
			answer: "web-0.headless.default.svc.cluster.local. 5 IN AAAA fd00::1:5"},
		{name: "endpoint without hostname by dashed address", qname: "10-244-2-6.headless.default.svc.cluster.local.", qtype: A,
			answer: "10-244-2-6.headless.default.svc.cluster.local. 5 IN A 10.244.2.6"},
		{name: "dashed name AAAA is NODATA", qname: "10-244-2-6.headless.default.svc.cluster.local.", qtype: AAAA, ns: soaZone},
		{name: "unready endpoint is NXDOMAIN", qname: "10-244-3-7.headless.default.svc.cluster.local.", qtype: A, rcode: nx, ns: soaZone},
		{name: "unknown hostname is NXDOMAIN", qname: "web-9.headless.default.svc.cluster.local.", qtype: A, rcode: nx, ns: soaZone},
		{name: "SRV per endpoint name, endpoint ports", qname: "_http._tcp.headless.default.svc.cluster.local.", qtype: SRV,
			answer: "_http._tcp.headless.default.svc.cluster.local. 5 IN SRV 0 50 8080 10-244-2-6.headless.default.svc.cluster.local.\n" +
				"_http._tcp.headless.default.svc.cluster.local. 5 IN SRV 0 50 8080 web-0.headless.default.svc.cluster.local.",
			extra: "10-244-2-6.headless.default.svc.cluster.local. 5 IN A 10.244.2.6\n" +
				"web-0.headless.default.svc.cluster.local. 5 IN A 10.244.1.5\n" +
				"web-0.headless.default.svc.cluster.local. 5 IN AAAA fd00::1:5"},
		{name: "no ready endpoints is NXDOMAIN", qname: "empty.default.svc.cluster.local.", qtype: A, rcode: nx, ns: soaZone},
		{name: "no ready endpoints: AAAA NXDOMAIN too", qname: "empty.default.svc.cluster.local.", qtype: AAAA, rcode: nx, ns: soaZone},
		{name: "publishNotReadyAddresses counts unready endpoints", qname: "tolerant.default.svc.cluster.local.", qtype: A,
			answer: "tolerant.default.svc.cluster.local. 5 IN A 10.244.5.9"},
	})
}

func TestLookupPTR(t *testing.T) {
	PTR := dns.TypePTR
	v6, _ := dns.ReverseAddr("fd00::21")
	runLookups(t, fixture(Options{}), []lookupCase{
		{name: "cluster IP", qname: "20.0.96.10.in-addr.arpa.", qtype: PTR,
			answer: "20.0.96.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local."},
		{name: "cluster IPv6", qname: v6, qtype: PTR,
			answer: v6 + " 5 IN PTR dual.default.svc.cluster.local."},
		{name: "headless endpoint with hostname", qname: "5.1.244.10.in-addr.arpa.", qtype: PTR,
			answer: "5.1.244.10.in-addr.arpa. 5 IN PTR web-0.headless.default.svc.cluster.local."},
		{name: "headless endpoint without hostname", qname: "6.2.244.10.in-addr.arpa.", qtype: PTR,
			answer: "6.2.244.10.in-addr.arpa. 5 IN PTR 10-244-2-6.headless.default.svc.cluster.local."},
		{name: "A on a cluster IP's reverse name is NODATA", qname: "20.0.96.10.in-addr.arpa.", qtype: dns.TypeA, ns: soaV4},
		{name: "unknown address is forwarded", qname: "99.0.96.10.in-addr.arpa.", qtype: PTR, notOur: true},
		{name: "unready endpoint is forwarded", qname: "7.3.244.10.in-addr.arpa.", qtype: PTR, notOur: true},
		{name: "partial reverse name is forwarded", qname: "96.10.in-addr.arpa.", qtype: PTR, notOur: true},
		{name: "outside name is forwarded", qname: "example.com.", qtype: dns.TypeA, notOur: true},
		{name: "zone suffix without dot boundary is forwarded", qname: "xcluster.local.", qtype: dns.TypeA, notOur: true},
	})
}

func TestLookupZoneRecords(t *testing.T) {
	A, AAAA := dns.TypeA, dns.TypeAAAA
	runLookups(t, fixture(Options{}), []lookupCase{
		{name: "schema version", qname: "dns-version.cluster.local.", qtype: dns.TypeTXT,
			answer: `dns-version.cluster.local. 5 IN TXT "1.1.0"`},
		{name: "schema version A is NODATA", qname: "dns-version.cluster.local.", qtype: A, ns: soaZone},
		{name: "zone SOA", qname: "cluster.local.", qtype: dns.TypeSOA, answer: soaZone},
		{name: "zone A is NODATA", qname: "cluster.local.", qtype: A, ns: soaZone},
		{name: "svc is an empty non-terminal", qname: "svc.cluster.local.", qtype: A, ns: soaZone},
		{name: "namespace is an empty non-terminal", qname: "default.svc.cluster.local.", qtype: A, ns: soaZone},
		{name: "unknown top label is NXDOMAIN", qname: "nope.cluster.local.", qtype: A, rcode: nx, ns: soaZone},

		{name: "pod A", qname: "10-244-1-5.default.pod.cluster.local.", qtype: A,
			answer: "10-244-1-5.default.pod.cluster.local. 5 IN A 10.244.1.5"},
		{name: "pod A in any namespace", qname: "1-2-3-4.whatever.pod.cluster.local.", qtype: A,
			answer: "1-2-3-4.whatever.pod.cluster.local. 5 IN A 1.2.3.4"},
		{name: "pod AAAA", qname: "fd00--5.default.pod.cluster.local.", qtype: AAAA,
			answer: "fd00--5.default.pod.cluster.local. 5 IN AAAA fd00::5"},
		{name: "pod A of an IPv6 pod is NODATA", qname: "fd00--5.default.pod.cluster.local.", qtype: A, ns: soaZone},
		{name: "pod AAAA of an IPv4 pod is NODATA", qname: "10-244-1-5.default.pod.cluster.local.", qtype: AAAA, ns: soaZone},
		{name: "pod name not an address is NXDOMAIN", qname: "web.default.pod.cluster.local.", qtype: A, rcode: nx, ns: soaZone},
		{name: "pod octet out of range is NXDOMAIN", qname: "10-244-1-256.default.pod.cluster.local.", qtype: A, rcode: nx, ns: soaZone},
		{name: "below a pod name is NXDOMAIN", qname: "a.10-244-1-5.default.pod.cluster.local.", qtype: A, rcode: nx, ns: soaZone},
		{name: "pod namespace is an empty non-terminal", qname: "default.pod.cluster.local.", qtype: A, ns: soaZone},
	})
}

func TestLookupLegacyForm(t *testing.T) {
	A := dns.TypeA
	runLookups(t, fixture(Options{}), []lookupCase{
		{name: "<svc>.<ns>.<zone> like the .svc. form", qname: "web.default.cluster.local.", qtype: A,
			answer: "web.default.cluster.local. 5 IN A 10.96.0.20"},
		{name: "legacy SRV", qname: "_http._tcp.web.default.cluster.local.", qtype: dns.TypeSRV,
			answer: "_http._tcp.web.default.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local.",
			extra:  "web.default.svc.cluster.local. 5 IN A 10.96.0.20"},
		{name: "legacy headless hostname", qname: "web-0.headless.default.cluster.local.", qtype: A,
			answer: "web-0.headless.default.cluster.local. 5 IN A 10.244.1.5"},
		{name: "legacy namespace is an empty non-terminal", qname: "default.cluster.local.", qtype: A, ns: soaZone},
		{name: "legacy missing service is NXDOMAIN", qname: "nope.default.cluster.local.", qtype: A, rcode: nx, ns: soaZone},
		{name: "namespace svc: .svc. reading wins", qname: "api.svc.cluster.local.", qtype: A, rcode: nx, ns: soaZone},
		{name: "namespace svc through the .svc. form", qname: "api.svc.svc.cluster.local.", qtype: A,
			answer: "api.svc.svc.cluster.local. 5 IN A 10.96.0.30"},
		{name: "namespace pod: .pod. reading wins", qname: "x.pod.cluster.local.", qtype: A, ns: soaZone},
		{name: "namespace pod through the .svc. form", qname: "x.pod.svc.cluster.local.", qtype: A,
			answer: "x.pod.svc.cluster.local. 5 IN A 10.96.0.31"},
	})
	runLookups(t, fixture(Options{NoLegacyNames: true}), []lookupCase{
		{name: "legacy form off", qname: "web.default.cluster.local.", qtype: A, rcode: nx, ns: soaZone},
		{name: ".svc. form still on", qname: "web.default.svc.cluster.local.", qtype: A,
			answer: "web.default.svc.cluster.local. 5 IN A 10.96.0.20"},
	})
}

func TestLookupZoneAndTTLOptions(t *testing.T) {
	runLookups(t, fixture(Options{Zone: "Example.Org.", TTL: 30}), []lookupCase{
		{name: "other zone", qname: "web.default.svc.example.org.", qtype: dns.TypeA,
			answer: "web.default.svc.example.org. 30 IN A 10.96.0.20"},
		{name: "negative TTL is the record TTL", qname: "nope.default.svc.example.org.", qtype: dns.TypeA, rcode: nx,
			ns: "example.org. 30 IN SOA ns.dns.example.org. hostmaster.example.org. 0 7200 1800 86400 30"},
		{name: "PTR targets in the zone", qname: "20.0.96.10.in-addr.arpa.", qtype: dns.TypePTR,
			answer: "20.0.96.10.in-addr.arpa. 30 IN PTR web.default.svc.example.org."},
		{name: "cluster.local is not ours", qname: "web.default.svc.cluster.local.", qtype: dns.TypeA, notOur: true},
	})
}
