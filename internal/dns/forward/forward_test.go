package forward

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func rr(t *testing.T, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("NewRR(%q): %v", s, err)
	}
	return r
}

func msg(t *testing.T, name string, rcode int, answer []string, ns ...string) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.Response = true
	m.Rcode = rcode
	for _, a := range answer {
		m.Answer = append(m.Answer, rr(t, a))
	}
	for _, a := range ns {
		m.Ns = append(m.Ns, rr(t, a))
	}
	return m
}

func TestCacheTTL(t *testing.T) {
	const soa = "example. 300 IN SOA ns.example. h.example. 1 7200 1800 86400 %d"
	cases := []struct {
		name string
		m    *dns.Msg
		want time.Duration
	}{
		{"smallest answer TTL", msg(t, "a.example.", dns.RcodeSuccess, []string{"a.example. 60 IN A 1.1.1.1", "a.example. 30 IN A 1.1.1.2"}), 30 * time.Second},
		{"capped", msg(t, "a.example.", dns.RcodeSuccess, []string{"a.example. 86400 IN A 1.1.1.1"}), time.Hour},
		{"NXDOMAIN: SOA minimum", msg(t, "a.example.", dns.RcodeNameError, nil, strings.Replace(soa, "%d", "20", 1)), 20 * time.Second},
		{"NODATA: SOA TTL when smaller", msg(t, "a.example.", dns.RcodeSuccess, nil, strings.Replace(soa, "%d", "900", 1)), 300 * time.Second},
		{"NXDOMAIN without SOA: not cached", msg(t, "a.example.", dns.RcodeNameError, nil), 0},
		{"SERVFAIL: not cached", msg(t, "a.example.", dns.RcodeServerFailure, nil), 0},
		{"zero TTL: not cached", msg(t, "a.example.", dns.RcodeSuccess, []string{"a.example. 0 IN A 1.1.1.1"}), 0},
	}
	c := newCache(100, time.Hour, 30*time.Minute)
	for _, tc := range cases {
		if got := c.ttl(tc.m); got != tc.want {
			t.Errorf("%s: ttl %v, want %v", tc.name, got, tc.want)
		}
	}
	trunc := msg(t, "a.example.", dns.RcodeSuccess, []string{"a.example. 60 IN A 1.1.1.1"})
	trunc.Truncated = true
	if got := c.ttl(trunc); got != 0 {
		t.Errorf("truncated answer cached for %v", got)
	}
}

func TestCacheAgesAndExpires(t *testing.T) {
	c := newCache(100, time.Hour, time.Hour)
	now := time.Unix(1000, 0)
	m := msg(t, "a.example.", dns.RcodeSuccess, []string{"a.example. 60 IN A 1.1.1.1"})
	k := keyOf(m)
	c.set(k, m, now)
	got, ok := c.get(cacheKey{name: "a.example.", qtype: dns.TypeA, qclass: dns.ClassINET}, now.Add(25*time.Second+time.Millisecond))
	if !ok || got.Answer[0].Header().Ttl != 35 {
		t.Fatalf("after 25 s: ok=%v answer %v, want TTL 35", ok, got)
	}
	if m.Answer[0].Header().Ttl != 60 {
		t.Errorf("get changed the cached message: TTL %d", m.Answer[0].Header().Ttl)
	}
	if _, ok := c.get(k, now.Add(60*time.Second)); ok {
		t.Error("entry served at its expiry")
	}
	if c.len() != 0 {
		t.Errorf("expired entry kept: %d entries", c.len())
	}
	do := k
	do.do = true
	c.set(k, m, now)
	if _, ok := c.get(do, now); ok {
		t.Error("answer without DO served to a DO query")
	}
}

func TestCacheIsCapped(t *testing.T) {
	c := newCache(32, time.Hour, time.Hour)
	now := time.Now()
	for i := range 1000 {
		name := strings.Repeat("x", i%50+1) + "." + string(rune('a'+i%26)) + ".example."
		m := msg(t, name, dns.RcodeSuccess, []string{name + " 60 IN A 1.1.1.1"})
		c.set(keyOf(m), m, now)
	}
	if n := c.len(); n > 32 {
		t.Fatalf("cache holds %d entries, cap 32", n)
	}
}

func TestParseResolvConf(t *testing.T) {
	in := `# comment
search example.com
nameserver 192.0.2.1
nameserver   fe80::1%eth0
nameserver bogus
options ndots:2
nameserver 127.0.0.53
`
	got, err := ParseResolvConf(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.AddrPort{
		netip.MustParseAddrPort("192.0.2.1:53"),
		netip.MustParseAddrPort("[fe80::1%eth0]:53"),
		netip.MustParseAddrPort("127.0.0.53:53"),
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
