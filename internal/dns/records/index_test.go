package records

import (
	"testing"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// answer is the shown answer (or rcode name when empty) of one question.
func answer(ix *Index, qname string, qtype uint16) string {
	res, ours := ix.Lookup(qname, qtype)
	if !ours {
		return "not ours"
	}
	if len(res.Answer) == 0 {
		return dns.RcodeToString[res.Rcode]
	}
	return show(res.Answer)
}

// TestIndexFollowsWrites replays a service's life and checks the answers
// after each write.
func TestIndexFollowsWrites(t *testing.T) {
	ix := NewIndex(Options{})
	const name, ptrName = "db.prod.svc.cluster.local.", "5.0.244.10.in-addr.arpa."
	slice := func(sliceName string, ready bool, addrs ...string) EndpointSlice {
		return EndpointSlice{Namespace: "prod", Name: sliceName, Service: "db",
			Endpoints: []Endpoint{{Addresses: ips(addrs...), Ready: ready}}}
	}
	steps := []struct {
		do            func()
		want, wantPTR string
	}{
		{func() {}, "NXDOMAIN", "not ours"},
		{func() { ix.SetEndpointSlice(slice("db-a", true, "10.244.0.5")) }, "NXDOMAIN", "not ours"}, // slice before its service
		{func() { ix.SetService(Service{Namespace: "prod", Name: "db", Kind: Headless}) },
			name + " 5 IN A 10.244.0.5", ptrName + " 5 IN PTR 10-244-0-5.db.prod.svc.cluster.local."},
		{func() { ix.SetEndpointSlice(slice("db-a", false, "10.244.0.5")) }, "NXDOMAIN", "not ours"},
		{func() { ix.SetEndpointSlice(slice("db-b", true, "10.244.0.6")) }, name + " 5 IN A 10.244.0.6", "not ours"},
		{func() { ix.SetEndpointSlice(slice("db-a", true, "10.244.0.5")) },
			name + " 5 IN A 10.244.0.5\n" + name + " 5 IN A 10.244.0.6", ptrName + " 5 IN PTR 10-244-0-5.db.prod.svc.cluster.local."},
		{func() { ix.DeleteEndpointSlice("prod", "db-b") }, name + " 5 IN A 10.244.0.5", ptrName + " 5 IN PTR 10-244-0-5.db.prod.svc.cluster.local."},
		{func() {
			ix.SetService(Service{Namespace: "prod", Name: "db", Kind: ClusterIP, ClusterIPs: ips("10.96.5.5")})
		}, name + " 5 IN A 10.96.5.5", "not ours"},
		{func() { ix.DeleteService("prod", "db") }, "NXDOMAIN", "not ours"},
		{func() { ix.SetService(Service{Namespace: "prod", Name: "db", Kind: Headless}) }, // slices kept
			name + " 5 IN A 10.244.0.5", ptrName + " 5 IN PTR 10-244-0-5.db.prod.svc.cluster.local."},
		{func() { // the slice moves to another service
			s := slice("db-a", true, "10.244.0.5")
			s.Service = "other"
			ix.SetEndpointSlice(s)
		}, "NXDOMAIN", "not ours"},
	}
	for i, s := range steps {
		s.do()
		if got := answer(ix, name, dns.TypeA); got != s.want {
			t.Errorf("step %d: A %s = %q, want %q", i, name, got, s.want)
		}
		if got := answer(ix, ptrName, dns.TypePTR); got != s.wantPTR {
			t.Errorf("step %d: PTR %s = %q, want %q", i, ptrName, got, s.wantPTR)
		}
	}
	if got := answer(ix, "prod.svc.cluster.local.", dns.TypeA); got != "NOERROR" {
		t.Errorf("namespace with a service: %q, want NOERROR (NODATA)", got)
	}
	ix.DeleteService("prod", "db")
	if got := answer(ix, "prod.svc.cluster.local.", dns.TypeA); got != "NXDOMAIN" {
		t.Errorf("namespace without services: %q, want NXDOMAIN", got)
	}
}

// TestSharedPTR checks that two headless services selecting one pod give two
// PTR records, and deleting one leaves the other.
func TestSharedPTR(t *testing.T) {
	ix := NewIndex(Options{})
	for _, svc := range []string{"a", "b"} {
		ix.SetService(Service{Namespace: "ns", Name: svc, Kind: Headless})
		ix.SetEndpointSlice(EndpointSlice{Namespace: "ns", Name: svc + "-1", Service: svc,
			Endpoints: []Endpoint{{Addresses: ips("10.244.0.9"), Hostname: "p", Ready: true}}})
	}
	const q = "9.0.244.10.in-addr.arpa."
	want := q + " 5 IN PTR p.a.ns.svc.cluster.local.\n" + q + " 5 IN PTR p.b.ns.svc.cluster.local."
	if got := answer(ix, q, dns.TypePTR); got != want {
		t.Fatalf("PTR = %q, want %q", got, want)
	}
	ix.DeleteService("ns", "a")
	if got, want := answer(ix, q, dns.TypePTR), q+" 5 IN PTR p.b.ns.svc.cluster.local."; got != want {
		t.Fatalf("after delete: PTR = %q, want %q", got, want)
	}
}

func TestFromService(t *testing.T) {
	meta := metav1.ObjectMeta{Namespace: "ns", Name: "s"}
	cases := []struct {
		name   string
		spec   corev1.ServiceSpec
		ok     bool
		kind   ServiceKind
		target string
		ips    int
	}{
		{"cluster IP", corev1.ServiceSpec{ClusterIP: "10.96.0.1", ClusterIPs: []string{"10.96.0.1"}}, true, ClusterIP, "", 1},
		{"dual stack", corev1.ServiceSpec{ClusterIP: "10.96.0.1", ClusterIPs: []string{"10.96.0.1", "fd00::1"}}, true, ClusterIP, "", 2},
		{"clusterIPs empty, clusterIP set", corev1.ServiceSpec{ClusterIP: "10.96.0.1"}, true, ClusterIP, "", 1},
		{"NodePort", corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.1"}, true, ClusterIP, "", 1},
		{"not allocated yet", corev1.ServiceSpec{}, false, ClusterIP, "", 0},
		{"headless", corev1.ServiceSpec{ClusterIP: "None", ClusterIPs: []string{"None"}}, true, Headless, "", 0},
		{"external name", corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "WWW.Example.com."}, true, ExternalName, "www.example.com", 0},
	}
	for _, c := range cases {
		got, ok := FromService(&corev1.Service{ObjectMeta: meta, Spec: c.spec})
		if ok != c.ok || got.Kind != c.kind || got.ExternalName != c.target || len(got.ClusterIPs) != c.ips {
			t.Errorf("%s: got %+v ok=%v, want kind %v target %q %d IPs ok=%v", c.name, got, ok, c.kind, c.target, c.ips, c.ok)
		}
	}
	got, _ := FromService(&corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.1",
		Ports: []corev1.ServicePort{{Name: "HTTP", Protocol: corev1.ProtocolTCP, Port: 80}}}})
	if len(got.Ports) != 1 || got.Ports[0] != (Port{"http", "tcp", 80}) {
		t.Errorf("ports: got %+v", got.Ports)
	}
}

func TestFromEndpointSlice(t *testing.T) {
	labels := map[string]string{discoveryv1.LabelServiceName: "web"}
	api := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: "web-x", Labels: labels},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To[int32](8080)}, {Name: ptr.To("none")}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.0.0.1"}, Hostname: ptr.To("Web-0")},
			{Addresses: []string{"10.0.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}},
			{Addresses: []string{"10.0.0.3"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
		},
	}
	s, ok := FromEndpointSlice(api)
	if !ok || s.Service != "web" || len(s.Ports) != 1 || s.Ports[0] != (Port{"http", "tcp", 8080}) {
		t.Fatalf("got %+v ok=%v", s, ok)
	}
	ready := []bool{true, false, true} // nil ready reads as ready
	for i, e := range s.Endpoints {
		if e.Ready != ready[i] || len(e.Addresses) != 1 {
			t.Errorf("endpoint %d: %+v, want ready=%v", i, e, ready[i])
		}
	}
	if s.Endpoints[0].Hostname != "web-0" {
		t.Errorf("hostname %q, want web-0", s.Endpoints[0].Hostname)
	}
	if _, ok := FromEndpointSlice(&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "orphan"}}); ok {
		t.Error("slice without a service label accepted")
	}
	fqdn := api.DeepCopy()
	fqdn.AddressType = discoveryv1.AddressTypeFQDN
	if _, ok := FromEndpointSlice(fqdn); ok {
		t.Error("FQDN slice accepted")
	}
}

func TestParseReverse(t *testing.T) {
	for _, ip := range []string{"10.96.0.1", "255.0.10.1", "fd00::1", "2001:db8::abcd:1"} {
		name, _ := dns.ReverseAddr(ip)
		got, _, ok := parseReverse(name)
		if !ok || got.String() != ip {
			t.Errorf("parseReverse(%s) = %v %v, want %s", name, got, ok, ip)
		}
	}
	for _, bad := range []string{"1.0.96.in-addr.arpa.", "01.0.96.10.in-addr.arpa.", "256.0.96.10.in-addr.arpa.", "x.ip6.arpa.", "1.ip6.arpa."} {
		if _, _, ok := parseReverse(bad); ok {
			t.Errorf("parseReverse(%s) accepted", bad)
		}
	}
}
