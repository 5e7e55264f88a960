package dns

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/wharf-io/wharf/internal/dns/records"
)

// fakeRecords owns cluster.local.: it answers the questions in its map
// ("name TYPE") and NXDOMAIN for every other name of the zone.
type fakeRecords map[string]records.Result

func (f fakeRecords) Lookup(qname string, qtype uint16) (records.Result, bool) {
	name := strings.ToLower(qname)
	if name != "cluster.local." && !strings.HasSuffix(name, ".cluster.local.") {
		return records.Result{}, false
	}
	if r, ok := f[name+" "+dns.TypeToString[qtype]]; ok {
		return r, true
	}
	return records.Result{Rcode: dns.RcodeNameError, Ns: []dns.RR{mustRR(zoneSOA)}}, true
}

const zoneSOA = "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5"

func mustRR(s string) dns.RR {
	r, err := dns.NewRR(s)
	if err != nil {
		panic(fmt.Sprintf("NewRR(%q): %v", s, err))
	}
	return r
}

func mustRRs(s ...string) []dns.RR {
	var out []dns.RR
	for _, x := range s {
		out = append(out, mustRR(x))
	}
	return out
}

// fakeUpstream is a resolver on 127.0.0.1 (UDP and TCP, one port) that
// answers from a table, truncating UDP answers to the asker's size, and
// counts the queries it gets per transport.
type fakeUpstream struct {
	addr    string
	answers map[string]func(q *dns.Msg) *dns.Msg // "name TYPE"
	// forwardTo, when set, makes it a resolver that sends every query on
	// to that address (a loop when it is ours).
	forwardTo string

	mu      sync.Mutex
	queries map[string]int // "udp name TYPE" -> count
}

func startUpstream(t *testing.T, answers map[string]func(q *dns.Msg) *dns.Msg) *fakeUpstream {
	t.Helper()
	u := &fakeUpstream{answers: answers, queries: map[string]int{}}
	u.addr = serve(t, []string{"127.0.0.1:0"}, u)[0]
	return u
}

func (u *fakeUpstream) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	q := req.Question[0]
	key := strings.ToLower(q.Name) + " " + dns.TypeToString[q.Qtype]
	u.mu.Lock()
	u.queries[w.LocalAddr().Network()+" "+key]++
	forwardTo := u.forwardTo
	u.mu.Unlock()
	var m *dns.Msg
	switch f := u.answers[key]; {
	case forwardTo != "":
		r, _, err := (&dns.Client{Timeout: time.Second}).Exchange(req, forwardTo)
		if err != nil {
			r = new(dns.Msg).SetRcode(req, dns.RcodeServerFailure)
		}
		m = r
	case f != nil:
		m = f(req)
	default:
		m = negative(req, dns.RcodeNameError, 30)
	}
	rcode := m.Rcode
	m.SetReply(req)
	m.Rcode = rcode
	m.Truncate(maxResponseSize(req, w.LocalAddr()))
	_ = w.WriteMsg(m)
}

func (u *fakeUpstream) count(transport, name string, qtype uint16) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.queries[transport+" "+name+" "+dns.TypeToString[qtype]]
}

// answer returns an upstream answer of the given records.
func answer(rrs ...string) func(*dns.Msg) *dns.Msg {
	return func(req *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.Answer = mustRRs(rrs...)
		return m
	}
}

// negative is an NXDOMAIN or NODATA answer with an SOA of the given minimum.
func negative(req *dns.Msg, rcode int, minTTL int) *dns.Msg {
	m := new(dns.Msg)
	m.Rcode = rcode
	m.Ns = mustRRs(fmt.Sprintf("example. 300 IN SOA ns.example. h.example. 1 7200 1800 86400 %d", minTTL))
	return m
}

// serve runs a Server for h on addrs until the test ends and returns its
// bound addresses.
func serve(t *testing.T, addrs []string, h dns.Handler) []string {
	t.Helper()
	s, err := Listen(addrs, h)
	if err != nil {
		t.Fatalf("Listen(%v): %v", addrs, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s.Addrs()
}

// query is one question to ask.
type query struct {
	net   string // "udp" or "tcp"
	name  string
	qtype uint16
	edns  uint16 // EDNS0 buffer size; 0: no EDNS0
}

func ask(t *testing.T, addr string, q query) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(q.name, q.qtype)
	if q.edns > 0 {
		m.SetEdns0(q.edns, false)
	}
	c := &dns.Client{Net: q.net, Timeout: 3 * time.Second, UDPSize: 65535}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s %s to %s: %v", q.net, q.name, dns.TypeToString[q.qtype], addr, err)
	}
	return r
}

// freePort returns a 127.0.0.1 address whose port is free for UDP and TCP.
func freePort(t *testing.T) string {
	t.Helper()
	pc, ln, err := listenPair("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	pc.Close()
	ln.Close()
	return addr
}
