// Package forward sends the questions cluster DNS does not own to upstream
// resolvers: over UDP, again over TCP when the UDP answer is truncated,
// through a cache of positive and negative answers, and with CoreDNS's
// loop detection (a random probe name that must never come back to us).
package forward

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Defaults for Config's zero fields.
const (
	DefaultTimeout   = 2 * time.Second
	DefaultCacheSize = 10000
	// DefaultMaxTTL and DefaultMaxNegativeTTL are CoreDNS cache's caps.
	DefaultMaxTTL         = time.Hour
	DefaultMaxNegativeTTL = 30 * time.Minute
	// upstreamUDPSize is the EDNS0 buffer size asked of upstreams: the DNS
	// flag day 2020 size, which avoids IP fragmentation.
	upstreamUDPSize = 1232
)

var (
	// ErrLoop is returned by Forward once our loop probe came back to us:
	// an upstream forwards to this server, and forwarding is off.
	ErrLoop = errors.New("forwarding loop detected: an upstream resolver sends queries back to this server")
	// ErrNoUpstreams is returned by Forward when there is no upstream.
	ErrNoUpstreams = errors.New("no upstream resolvers")
)

// Config configures a Forwarder.
type Config struct {
	// Upstreams are the resolvers' "host:port" addresses, tried in turn
	// until one answers; each query starts with the next one.
	Upstreams []string
	// Timeout bounds one exchange with one upstream; DefaultTimeout if 0.
	Timeout time.Duration
	// CacheSize caps the cached answers; DefaultCacheSize if 0, none if
	// negative.
	CacheSize int
	// MaxTTL and MaxNegativeTTL cap how long answers are cached;
	// DefaultMaxTTL and DefaultMaxNegativeTTL if 0.
	MaxTTL, MaxNegativeTTL time.Duration
}

// Forwarder forwards questions to upstream resolvers. Safe for concurrent
// use.
type Forwarder struct {
	upstreams []string
	udp, tcp  *dns.Client
	cache     *cache // nil: no cache
	next      atomic.Uint32
	loop      loopDetector
}

// New returns a Forwarder.
func New(c Config) *Forwarder {
	timeout := cmp(c.Timeout, DefaultTimeout)
	f := &Forwarder{
		upstreams: c.Upstreams,
		udp:       &dns.Client{Net: "udp", Timeout: timeout, UDPSize: upstreamUDPSize},
		tcp:       &dns.Client{Net: "tcp", Timeout: timeout},
		loop:      newLoopDetector(),
	}
	if c.CacheSize >= 0 {
		f.cache = newCache(cmp(c.CacheSize, DefaultCacheSize), cmp(c.MaxTTL, DefaultMaxTTL), cmp(c.MaxNegativeTTL, DefaultMaxNegativeTTL))
	}
	return f
}

// cmp returns v, or def when v is zero.
func cmp[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Upstreams returns the upstream addresses.
func (f *Forwarder) Upstreams() []string { return f.upstreams }

// Forward answers req (one question) from the cache or an upstream. The
// answer has req's ID and question and no OPT record: the caller adds its
// own EDNS0 and truncates for its client.
func (f *Forwarder) Forward(ctx context.Context, req *dns.Msg) (*dns.Msg, error) {
	if f.loop.arrived(req.Question[0].Name) || f.loop.detected.Load() {
		return nil, ErrLoop
	}
	k := keyOf(req)
	if f.cache != nil {
		if m, ok := f.cache.get(k, time.Now()); ok {
			return replyTo(req, m), nil
		}
	}
	m, err := f.exchange(ctx, upstreamQuery(req))
	if err != nil {
		return nil, err
	}
	if f.cache != nil {
		f.cache.set(k, m, time.Now())
	}
	return replyTo(req, m), nil
}

// upstreamQuery is the query sent upstream for req: its question and flags,
// a fresh ID, and EDNS0 with our buffer size and the client's DO bit. The
// client's own EDNS0 options are not passed on.
func upstreamQuery(req *dns.Msg) *dns.Msg {
	q := new(dns.Msg)
	q.Id = dns.Id()
	q.RecursionDesired = req.RecursionDesired
	q.CheckingDisabled = req.CheckingDisabled
	q.Question = []dns.Question{req.Question[0]}
	do := false
	if opt := req.IsEdns0(); opt != nil {
		do = opt.Do()
	}
	q.SetEdns0(upstreamUDPSize, do)
	return q
}

// replyTo makes m the answer to req.
func replyTo(req, m *dns.Msg) *dns.Msg {
	m.Id = req.Id
	m.Question = req.Question
	return m
}

// exchange asks the upstreams in turn, starting with the next in rotation,
// until one answers. A truncated UDP answer is asked again over TCP of the
// same upstream. The answer has no OPT record.
func (f *Forwarder) exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	if len(f.upstreams) == 0 {
		return nil, ErrNoUpstreams
	}
	start := int(f.next.Add(1))
	var errs []error
	for i := range f.upstreams {
		up := f.upstreams[(start+i)%len(f.upstreams)]
		m, err := f.exchangeOne(ctx, q, up)
		if err == nil {
			stripOPT(m)
			return m, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("forward %s %s: %w", q.Question[0].Name, dns.TypeToString[q.Question[0].Qtype], errors.Join(errs...))
}

func (f *Forwarder) exchangeOne(ctx context.Context, q *dns.Msg, upstream string) (*dns.Msg, error) {
	m, _, err := f.udp.ExchangeContext(ctx, q, upstream)
	if err == nil && m.Truncated {
		m, _, err = f.tcp.ExchangeContext(ctx, q, upstream)
	}
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", upstream, err)
	}
	return m, nil
}

func stripOPT(m *dns.Msg) {
	extra := m.Extra[:0]
	for _, rr := range m.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	m.Extra = extra
}

// CacheLen returns the number of cached answers (for tests and metrics).
func (f *Forwarder) CacheLen() int {
	if f.cache == nil {
		return 0
	}
	return f.cache.len()
}
