package forward

import (
	"hash/maphash"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// cacheShards spreads the cache over locks, so concurrent queries for
// different names rarely wait on each other.
const cacheShards = 16

// cacheKey identifies a forwarded question. DO and CD change what the
// upstream returns, so they are part of it.
type cacheKey struct {
	name          string // lower case
	qtype, qclass uint16
	do, cd        bool
}

// keyOf is the cache key of a query.
func keyOf(m *dns.Msg) cacheKey {
	q := m.Question[0]
	k := cacheKey{name: strings.ToLower(q.Name), qtype: q.Qtype, qclass: q.Qclass, cd: m.CheckingDisabled}
	if opt := m.IsEdns0(); opt != nil {
		k.do = opt.Do()
	}
	return k
}

type cacheEntry struct {
	msg     *dns.Msg
	stored  time.Time
	expires time.Time
}

type cacheShard struct {
	mu      sync.Mutex
	entries map[cacheKey]*cacheEntry
}

// cache holds forwarded answers, positive and negative (RFC 2308), for
// their TTL capped at maxTTL (maxNegTTL for negative ones), at most size
// entries; when full, an arbitrary entry makes room, as CoreDNS's cache
// does.
type cache struct {
	seed      maphash.Seed
	perShard  int
	maxTTL    time.Duration
	maxNegTTL time.Duration
	shards    [cacheShards]cacheShard
}

func newCache(size int, maxTTL, maxNegTTL time.Duration) *cache {
	c := &cache{seed: maphash.MakeSeed(), perShard: max(1, size/cacheShards), maxTTL: maxTTL, maxNegTTL: maxNegTTL}
	for i := range c.shards {
		c.shards[i].entries = map[cacheKey]*cacheEntry{}
	}
	return c
}

func (c *cache) shard(k cacheKey) *cacheShard {
	return &c.shards[maphash.String(c.seed, k.name)%cacheShards]
}

// get returns a copy of the cached answer with its TTLs lowered by the time
// it has spent in the cache.
func (c *cache) get(k cacheKey, now time.Time) (*dns.Msg, bool) {
	s := c.shard(k)
	s.mu.Lock()
	e, ok := s.entries[k]
	if ok && !now.Before(e.expires) {
		delete(s.entries, k)
		ok = false
	}
	s.mu.Unlock()
	if !ok {
		return nil, false
	}
	m := e.msg.Copy()
	age := uint32(now.Sub(e.stored) / time.Second)
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			h.Ttl -= min(h.Ttl, age)
		}
	}
	return m, true
}

// set caches m (an upstream answer without OPT record) if it can be cached.
func (c *cache) set(k cacheKey, m *dns.Msg, now time.Time) {
	ttl := c.ttl(m)
	if ttl <= 0 {
		return
	}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.entries[k]; !ok && len(s.entries) >= c.perShard {
		for old := range s.entries {
			delete(s.entries, old)
			break
		}
	}
	s.entries[k] = &cacheEntry{msg: m.Copy(), stored: now, expires: now.Add(ttl)}
}

// ttl is how long m may be cached: the smallest TTL of its records for an
// answer, the SOA's (the smaller of its TTL and minimum, RFC 2308 section
// 5) for NXDOMAIN and NODATA, zero for anything else (errors, truncated
// answers, negative answers without SOA).
func (c *cache) ttl(m *dns.Msg) time.Duration {
	if m.Truncated || (m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError) {
		return 0
	}
	if m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0 {
		least := ^uint32(0)
		for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
			for _, rr := range sec {
				least = min(least, rr.Header().Ttl)
			}
		}
		return min(time.Duration(least)*time.Second, c.maxTTL)
	}
	for _, rr := range m.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return min(time.Duration(min(soa.Hdr.Ttl, soa.Minttl))*time.Second, c.maxNegTTL)
		}
	}
	return 0
}

// len returns the number of cached entries, expired ones included.
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.entries)
		s.mu.Unlock()
	}
	return n
}
