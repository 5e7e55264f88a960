// Package dns is the cluster DNS server every node agent runs on the
// cluster DNS address (the kube-dns service's IP, which the service proxy
// puts on the node's lo, exempt from DNAT and conntrack): the records of
// the Kubernetes DNS specification from the API (package records), every
// other name forwarded to the node's resolvers (package forward), over UDP
// and TCP on github.com/miekg/dns.
package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/miekg/dns"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/wharf-io/wharf/internal/dns/forward"
	"github.com/wharf-io/wharf/internal/dns/records"
)

// Defaults for Config's zero fields.
const (
	DefaultListen     = "10.96.0.10:53"
	DefaultZone       = "cluster.local"
	DefaultResolvConf = "/etc/resolv.conf"
	// loopProbeAttempts is how often the loop probe is sent before giving
	// up on upstreams that do not answer.
	loopProbeAttempts = 5
)

// Config configures Run.
type Config struct {
	// Client reads Services and EndpointSlices. Required.
	Client kubernetes.Interface
	// Listen holds the "ip:port" addresses to serve on, UDP and TCP;
	// DefaultListen when empty.
	Listen []string
	// Zone is the cluster domain; DefaultZone when empty.
	Zone string
	// TTL of cluster records; records.DefaultTTL (5 s) when zero.
	TTL uint32
	// ResolvConf names the file whose nameservers are the upstream
	// resolvers when Upstreams is empty; DefaultResolvConf when empty.
	// Nameservers that are one of our own Listen addresses are skipped, so
	// a node whose resolv.conf names the cluster DNS address does not loop.
	ResolvConf string
	// Upstreams are the upstream resolvers ("ip" or "ip:port"); when set,
	// ResolvConf is not read.
	Upstreams []string
}

// Defaults fills the zero fields and checks the rest.
func (c *Config) Defaults() error {
	if c.Client == nil {
		return errors.New("dns: no API client")
	}
	if len(c.Listen) == 0 {
		c.Listen = []string{DefaultListen}
	}
	if c.Zone == "" {
		c.Zone = DefaultZone
	}
	if c.TTL == 0 {
		c.TTL = records.DefaultTTL
	}
	if c.ResolvConf == "" {
		c.ResolvConf = DefaultResolvConf
	}
	for _, a := range c.Listen {
		if _, err := netip.ParseAddrPort(a); err != nil {
			return fmt.Errorf("dns: listen address %q: want ip:port: %w", a, err)
		}
	}
	return nil
}

// Run serves cluster DNS until ctx ends. It binds first (so it can start
// before the address is on lo), answers cluster names with SERVFAIL until
// the informers have synced, as CoreDNS does, and folds every Service and
// EndpointSlice write into the records as the informer delivers it.
func Run(ctx context.Context, c Config) error {
	if err := c.Defaults(); err != nil {
		return err
	}
	upstreams, err := c.upstreams()
	if err != nil {
		return err
	}
	ix := records.NewIndex(records.Options{Zone: c.Zone, TTL: c.TTL})
	gate := &syncGate{Records: ix}
	fwd := forward.New(forward.Config{Upstreams: upstreams})
	srv, err := Listen(c.Listen, &Handler{Records: gate, Forwarder: fwd})
	if err != nil {
		return fmt.Errorf("dns: %w", err)
	}
	klog.Infof("wharf dns: zone %s on %s (udp, tcp), forwarding to %s",
		ix.Zone(), strings.Join(srv.Addrs(), ", "), describeUpstreams(upstreams))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := newWatcher(c.Client, ix)
	w.start(ctx)
	go func() {
		if w.waitForSync(ctx) {
			gate.synced.Store(true)
		}
	}()
	if len(upstreams) > 0 {
		go func() {
			if err := fwd.Probe(ctx, loopProbeAttempts); err != nil && !errors.Is(err, forward.ErrLoop) && ctx.Err() == nil {
				klog.Warningf("wharf dns: loop probe: no upstream answered: %v", err)
			}
		}()
	}
	err = srv.Serve(ctx)
	cancel()
	w.stop()
	return err
}

func describeUpstreams(u []string) string {
	if len(u) == 0 {
		return "nothing (no upstream resolvers: outside names get SERVFAIL)"
	}
	return strings.Join(u, ", ")
}

// upstreams returns the configured upstreams with a port, or the
// resolv.conf nameservers that are not our own addresses.
func (c *Config) upstreams() ([]string, error) {
	if len(c.Upstreams) > 0 {
		out := make([]string, 0, len(c.Upstreams))
		for _, u := range c.Upstreams {
			if _, _, err := net.SplitHostPort(u); err != nil {
				u = net.JoinHostPort(strings.Trim(u, "[]"), "53")
			}
			if _, err := netip.ParseAddrPort(u); err != nil {
				return nil, fmt.Errorf("dns: upstream %q: want ip or ip:port: %w", u, err)
			}
			out = append(out, u)
		}
		return out, nil
	}
	ns, err := forward.ReadResolvConf(c.ResolvConf)
	if err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	var out []string
	for _, n := range ns {
		if !isOwnAddress(n, c.Listen) {
			out = append(out, n.String())
		}
	}
	return out, nil
}

// isOwnAddress reports whether a nameserver is one of our listen addresses
// (an unspecified listen address is every local one: the loopback
// nameservers are then ours too).
func isOwnAddress(ns netip.AddrPort, listen []string) bool {
	for _, l := range listen {
		ap, err := netip.ParseAddrPort(l)
		if err != nil || ap.Port() != ns.Port() {
			continue
		}
		if ap.Addr() == ns.Addr() || (ap.Addr().IsUnspecified() && ns.Addr().IsLoopback()) {
			return true
		}
	}
	return false
}

// syncGate answers cluster names with SERVFAIL until the informers have
// synced: an empty index would otherwise deny names that exist.
type syncGate struct {
	Records
	synced atomic.Bool
}

func (g *syncGate) Lookup(qname string, qtype uint16) (records.Result, bool) {
	res, ours := g.Records.Lookup(qname, qtype)
	if ours && !g.synced.Load() {
		return records.Result{Rcode: dns.RcodeServerFailure}, true
	}
	return res, ours
}
