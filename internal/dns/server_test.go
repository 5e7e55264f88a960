package dns

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/wharf-io/wharf/internal/dns/forward"
)

// cluster is the fake zone the server tests ask.
func cluster() fakeRecords {
	var many []string
	for i := range 100 {
		many = append(many, fmt.Sprintf("many.default.svc.cluster.local. 5 IN A 10.244.0.%d", i))
	}
	return fakeRecords{
		"web.default.svc.cluster.local. A":    {Answer: mustRRs("web.default.svc.cluster.local. 5 IN A 10.96.0.20")},
		"web.default.svc.cluster.local. AAAA": {Ns: mustRRs(zoneSOA)},
		"_http._tcp.web.default.svc.cluster.local. SRV": {
			Answer: mustRRs("_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local."),
			Extra:  mustRRs("web.default.svc.cluster.local. 5 IN A 10.96.0.20"),
		},
		"many.default.svc.cluster.local. A":  {Answer: mustRRs(many...)},
		"ext.default.svc.cluster.local. A":   {Answer: mustRRs("ext.default.svc.cluster.local. 5 IN CNAME example.com.")},
		"alias.default.svc.cluster.local. A": {Answer: mustRRs("alias.default.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local.")},
	}
}

func bigTXT() func(*dns.Msg) *dns.Msg {
	var rrs []string
	for i := range 40 {
		rrs = append(rrs, fmt.Sprintf(`big.example. 60 IN TXT "%02d %s"`, i, strings.Repeat("x", 60)))
	}
	return answer(rrs...)
}

// upstreamAnswers is the fake upstream's table.
func upstreamAnswers() map[string]func(*dns.Msg) *dns.Msg {
	return map[string]func(*dns.Msg) *dns.Msg{
		"example.com. A":   answer("example.com. 60 IN A 192.0.2.1"),
		"big.example. TXT": bigTXT(),
		"nodata.example. A": func(req *dns.Msg) *dns.Msg {
			return negative(req, dns.RcodeSuccess, 30)
		},
		"slow.example. A": func(req *dns.Msg) *dns.Msg {
			time.Sleep(time.Second)
			return answer("slow.example. 60 IN A 192.0.2.9")(req)
		},
	}
}

// setup starts a fake upstream and a server in front of it.
func setup(t *testing.T) (server string, up *fakeUpstream, fwd *forward.Forwarder) {
	up = startUpstream(t, upstreamAnswers())
	fwd = forward.New(forward.Config{Upstreams: []string{up.addr}})
	return serve(t, []string{"127.0.0.1:0"}, &Handler{Records: cluster(), Forwarder: fwd})[0], up, fwd
}

func answers(m *dns.Msg) string {
	var out []string
	for _, rr := range m.Answer {
		out = append(out, strings.Join(strings.Fields(rr.String()), " "))
	}
	return strings.Join(out, "\n")
}

func TestServerClusterAnswers(t *testing.T) {
	srv, _, _ := setup(t)
	cases := []struct {
		name   string
		q      query
		rcode  int
		answer string
		soa    bool // SOA in authority
		extra  int  // records in additional, OPT excluded
	}{
		{"A over UDP", query{"udp", "web.default.svc.cluster.local.", dns.TypeA, 0}, dns.RcodeSuccess,
			"web.default.svc.cluster.local. 5 IN A 10.96.0.20", false, 0},
		{"A over TCP", query{"tcp", "web.default.svc.cluster.local.", dns.TypeA, 0}, dns.RcodeSuccess,
			"web.default.svc.cluster.local. 5 IN A 10.96.0.20", false, 0},
		{"NODATA", query{"udp", "web.default.svc.cluster.local.", dns.TypeAAAA, 0}, dns.RcodeSuccess, "", true, 0},
		{"NXDOMAIN", query{"udp", "nope.default.svc.cluster.local.", dns.TypeA, 0}, dns.RcodeNameError, "", true, 0},
		{"SRV with additional A", query{"udp", "_http._tcp.web.default.svc.cluster.local.", dns.TypeSRV, 0}, dns.RcodeSuccess,
			"_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local.", false, 1},
		{"ExternalName CNAME followed upstream", query{"udp", "ext.default.svc.cluster.local.", dns.TypeA, 0}, dns.RcodeSuccess,
			"ext.default.svc.cluster.local. 5 IN CNAME example.com.\nexample.com. 60 IN A 192.0.2.1", false, 0},
		{"CNAME followed in the zone", query{"udp", "alias.default.svc.cluster.local.", dns.TypeA, 0}, dns.RcodeSuccess,
			"alias.default.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local.\nweb.default.svc.cluster.local. 5 IN A 10.96.0.20", false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := ask(t, srv, c.q)
			extra := 0
			for _, rr := range m.Extra {
				if rr.Header().Rrtype != dns.TypeOPT {
					extra++
				}
			}
			hasSOA := len(m.Ns) == 1 && m.Ns[0].Header().Rrtype == dns.TypeSOA
			if m.Rcode != c.rcode || answers(m) != c.answer || hasSOA != c.soa || extra != c.extra || !m.Authoritative {
				t.Errorf("got rcode %s aa=%v answer\n%s\nSOA in authority %v, %d additional\nwant rcode %s aa=true answer\n%s\nSOA %v, %d additional",
					dns.RcodeToString[m.Rcode], m.Authoritative, answers(m), hasSOA, extra,
					dns.RcodeToString[c.rcode], c.answer, c.soa, c.extra)
			}
		})
	}
}

func TestServerTruncatesLargeUDPAnswers(t *testing.T) {
	srv, _, _ := setup(t)
	const many = "many.default.svc.cluster.local."
	cases := []struct {
		name      string
		q         query
		truncated bool
		records   int // at least; all 100 when not truncated
		opt       bool
	}{
		{"UDP without EDNS0: 512 bytes", query{"udp", many, dns.TypeA, 0}, true, 1, false},
		{"UDP with EDNS0 4096: whole", query{"udp", many, dns.TypeA, 4096}, false, 100, true},
		{"UDP with EDNS0 below 512: 512", query{"udp", many, dns.TypeA, 100}, true, 1, true},
		{"TCP: whole", query{"tcp", many, dns.TypeA, 0}, false, 100, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := ask(t, srv, c.q)
			m.Compress = true
			wire, _ := m.Pack()
			size := 512
			if c.q.edns > 512 {
				size = int(c.q.edns)
			}
			if c.q.net == "udp" && len(wire) > size {
				t.Errorf("answer of %d bytes over UDP, client takes %d", len(wire), size)
			}
			if m.Truncated != c.truncated || len(m.Answer) < c.records || (!c.truncated && len(m.Answer) != 100) {
				t.Errorf("TC=%v with %d records, want TC=%v with %d", m.Truncated, len(m.Answer), c.truncated, c.records)
			}
			opt := m.IsEdns0()
			if (opt != nil) != c.opt || (opt != nil && opt.UDPSize() != advertisedUDPSize) {
				t.Errorf("OPT %v, want present=%v with size %d", opt, c.opt, advertisedUDPSize)
			}
		})
	}
}

func TestServerRejectsUnknownEDNSVersion(t *testing.T) {
	srv, _, _ := setup(t)
	m := new(dns.Msg)
	m.SetQuestion("web.default.svc.cluster.local.", dns.TypeA)
	m.SetEdns0(1232, false)
	m.IsEdns0().SetVersion(1)
	r, err := dns.Exchange(m, srv)
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeBadVers || len(r.Answer) != 0 {
		t.Fatalf("rcode %s with %d answers, want BADVERS and none", dns.RcodeToString[r.Rcode], len(r.Answer))
	}
}

func TestServerForwardsAndCaches(t *testing.T) {
	srv, up, fwd := setup(t)
	cases := []struct {
		name  string
		q     query
		rcode int
		want  string
	}{
		{"positive", query{"udp", "example.com.", dns.TypeA, 0}, dns.RcodeSuccess, "example.com. 60 IN A 192.0.2.1"},
		{"NXDOMAIN", query{"udp", "nx.example.", dns.TypeA, 0}, dns.RcodeNameError, ""},
		{"NODATA", query{"udp", "nodata.example.", dns.TypeA, 0}, dns.RcodeSuccess, ""},
		{"reverse name that is not ours", query{"udp", "1.2.0.192.in-addr.arpa.", dns.TypePTR, 0}, dns.RcodeNameError, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for i := range 3 {
				m := ask(t, srv, c.q)
				if m.Rcode != c.rcode || m.Authoritative || !m.RecursionAvailable {
					t.Fatalf("ask %d: rcode %s aa=%v ra=%v, want %s aa=false ra=true",
						i, dns.RcodeToString[m.Rcode], m.Authoritative, m.RecursionAvailable, dns.RcodeToString[c.rcode])
				}
				if got := answers(m); got != c.want {
					t.Fatalf("ask %d: answer %q, want %q", i, got, c.want)
				}
				if c.rcode != dns.RcodeSuccess || c.want == "" {
					if len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != dns.TypeSOA {
						t.Fatalf("ask %d: negative answer without SOA: %v", i, m.Ns)
					}
				}
			}
			name := strings.ToLower(c.q.name)
			if n := up.count("udp", name, c.q.qtype); n != 1 {
				t.Errorf("upstream asked %d times, want once (then cached)", n)
			}
		})
	}
	if n := fwd.CacheLen(); n != len(cases) {
		t.Errorf("cache holds %d answers, want %d", n, len(cases))
	}
}

func TestServerRetriesTruncatedUpstreamOverTCP(t *testing.T) {
	srv, up, _ := setup(t)
	m := ask(t, srv, query{"tcp", "big.example.", dns.TypeTXT, 0})
	if m.Truncated || len(m.Answer) != 40 {
		t.Fatalf("TC=%v, %d records; want the whole 40", m.Truncated, len(m.Answer))
	}
	if u, tc := up.count("udp", "big.example.", dns.TypeTXT), up.count("tcp", "big.example.", dns.TypeTXT); u != 1 || tc != 1 {
		t.Fatalf("upstream got %d UDP and %d TCP queries, want 1 and 1", u, tc)
	}
	// From the cache, truncated again for a UDP client without EDNS0.
	m = ask(t, srv, query{"udp", "big.example.", dns.TypeTXT, 0})
	if !m.Truncated {
		t.Fatalf("UDP answer of %d records not truncated", len(m.Answer))
	}
	if n := up.count("tcp", "big.example.", dns.TypeTXT); n != 1 {
		t.Errorf("upstream asked again (%d TCP queries); want the cached answer", n)
	}
}

func TestServerFailedUpstreamIsSERVFAIL(t *testing.T) {
	dead := freePort(t) // nothing listens: UDP gets port unreachable
	fwd := forward.New(forward.Config{Upstreams: []string{dead}, Timeout: 300 * time.Millisecond})
	srv := serve(t, []string{"127.0.0.1:0"}, &Handler{Records: cluster(), Forwarder: fwd})[0]
	if m := ask(t, srv, query{"udp", "example.com.", dns.TypeA, 0}); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	noFwd := serve(t, []string{"127.0.0.1:0"}, &Handler{Records: cluster()})[0]
	if m := ask(t, noFwd, query{"udp", "example.com.", dns.TypeA, 0}); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("without forwarder: rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
}

// TestServerNoHeadOfLineBlocking asks cluster names while a slow upstream
// query is in flight, and many queries at once.
func TestServerNoHeadOfLineBlocking(t *testing.T) {
	srv, _, _ := setup(t)
	slow := make(chan *dns.Msg, 1)
	go func() {
		m := new(dns.Msg)
		m.SetQuestion("slow.example.", dns.TypeA)
		r, _, _ := (&dns.Client{Timeout: 3 * time.Second}).Exchange(m, srv)
		slow <- r
	}()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			q := query{"udp", "web.default.svc.cluster.local.", dns.TypeA, 0}
			if i%2 == 1 {
				q = query{"tcp", "example.com.", dns.TypeA, 0}
			}
			m := new(dns.Msg)
			m.SetQuestion(q.name, q.qtype)
			r, _, err := (&dns.Client{Net: q.net, Timeout: 2 * time.Second}).Exchange(m, srv)
			if err == nil && (r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1) {
				err = fmt.Errorf("%s: rcode %s, %d answers", q.name, dns.RcodeToString[r.Rcode], len(r.Answer))
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if d := time.Since(start); d > 700*time.Millisecond {
		t.Errorf("200 queries took %v while a slow upstream query was in flight", d)
	}
	if r := <-slow; r == nil || len(r.Answer) != 1 {
		t.Errorf("slow query: %v", r)
	}
}

func TestLoopDetection(t *testing.T) {
	loopy := startUpstream(t, nil)
	fwd := forward.New(forward.Config{Upstreams: []string{loopy.addr}, Timeout: time.Second})
	srv := serve(t, []string{"127.0.0.1:0"}, &Handler{Records: cluster(), Forwarder: fwd})[0]
	loopy.mu.Lock()
	loopy.forwardTo = srv // the upstream sends everything back to us
	loopy.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := fwd.Probe(ctx, 3); !errors.Is(err, forward.ErrLoop) {
		t.Fatalf("Probe: %v, want ErrLoop", err)
	}
	if n := loopy.count("udp", strings.ToLower(fwd.ProbeName()), dns.TypeHINFO); n != 1 {
		t.Errorf("probe reached the upstream %d times, want once (no circling)", n)
	}
	if m := ask(t, srv, query{"udp", "example.com.", dns.TypeA, 0}); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("after the loop: rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	if n := loopy.count("udp", "example.com.", dns.TypeA); n != 0 {
		t.Errorf("forwarded %d queries after the loop was detected", n)
	}
	if m := ask(t, srv, query{"udp", "web.default.svc.cluster.local.", dns.TypeA, 0}); len(m.Answer) != 1 {
		t.Errorf("cluster names stopped working after the loop: %v", m)
	}

	good := startUpstream(t, upstreamAnswers())
	fwd = forward.New(forward.Config{Upstreams: []string{good.addr}})
	serve(t, []string{"127.0.0.1:0"}, &Handler{Records: cluster(), Forwarder: fwd})
	if err := fwd.Probe(ctx, 3); err != nil || fwd.Looping() {
		t.Errorf("Probe without a loop: %v, looping %v", err, fwd.Looping())
	}
}

// TestListenReusePort binds a second server on the first one's port, as a
// restarted agent does before the old one exits.
func TestListenReusePort(t *testing.T) {
	first := serve(t, []string{"127.0.0.1:0"}, &Handler{Records: cluster()})[0]
	second := serve(t, []string{first}, &Handler{Records: cluster()})[0]
	if first != second {
		t.Fatalf("second server on %s, want %s", second, first)
	}
	if m := ask(t, second, query{"tcp", "web.default.svc.cluster.local.", dns.TypeA, 0}); len(m.Answer) != 1 {
		t.Fatalf("answer %v", m)
	}
}
