package forward

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"k8s.io/klog/v2"
)

// logf reports a detected loop.
var logf = klog.Errorf

// loopDetector is CoreDNS's loop plugin, simplified: at start the
// forwarder asks its upstreams for a random name no client will ever ask
// (<random>.<random>.loop.wharf. HINFO). The probe goes to the upstreams
// directly, never through our own listener, so the name arriving at our
// Forward at all means an upstream sent it back to us: a loop. Forwarding
// then stops (ErrLoop, SERVFAIL to clients) instead of every outside query
// circling until it times out.
type loopDetector struct {
	name     string // lower case, fully qualified
	detected atomic.Bool
}

func newLoopDetector() loopDetector {
	return loopDetector{name: fmt.Sprintf("%d.%d.loop.wharf.", rand.Uint64(), rand.Uint64())}
}

// arrived reports whether qname is the probe, marking the loop detected
// (and logging it once) if so.
func (l *loopDetector) arrived(qname string) bool {
	if !strings.EqualFold(qname, l.name) {
		return false
	}
	if l.detected.CompareAndSwap(false, true) {
		logf("wharf dns: loop detected: the probe %s HINFO sent upstream came back to this server; "+
			"an upstream resolver forwards to us (a resolv.conf naming this server?); forwarding is off", l.name)
	}
	return true
}

// Looping reports whether a forwarding loop was detected.
func (f *Forwarder) Looping() bool { return f.loop.detected.Load() }

// ProbeName is the random name of the loop probe.
func (f *Forwarder) ProbeName() string { return f.loop.name }

// Probe sends the loop probe upstream until an upstream answers it
// (whatever the answer), up to attempts times a second apart, or ctx ends.
// It returns ErrLoop if the probe came back to us meanwhile, else the last
// exchange's error. Run it once, after the server listens.
func (f *Forwarder) Probe(ctx context.Context, attempts int) error {
	q := new(dns.Msg)
	q.SetQuestion(f.loop.name, dns.TypeHINFO)
	var err error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
		_, err = f.exchange(ctx, q)
		if f.Looping() {
			return ErrLoop
		}
		if err == nil {
			return nil
		}
	}
	return err
}
