// Package proxy is Wharf's service proxy, run by every agent: it watches
// Services and EndpointSlices, computes the desired state with package
// model (pure), and has a backend program it into the kernel: package nft
// (the default mode; iptables and userspace come later behind the same
// call). Stale UDP conntrack entries are deleted after each sync (package
// conntrack). See README.md for the theory.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"sigs.k8s.io/knftables"

	"github.com/wharf-io/wharf/internal/proxy/conntrack"
	"github.com/wharf-io/wharf/internal/proxy/model"
	"github.com/wharf-io/wharf/internal/proxy/nft"
)

// Config configures Run.
type Config struct {
	// Client reads Services and EndpointSlices. Required.
	Client kubernetes.Interface
	// NodeName decides which endpoints are local for the Local traffic
	// policies. Required.
	NodeName string
	// NodeIP is the node's primary IPv4 address, where NodePorts listen
	// by default. Required unless NodePortAddresses has no "primary".
	NodeIP string
	// ClusterCIDR is the pod range (e.g. 10.244.0.0/16). Clients outside
	// it are masqueraded when they reach a cluster IP; pods are not, so an
	// endpoint sees a pod client's own address. Empty masquerades nothing
	// but hairpin and external traffic.
	ClusterCIDR string
	// ServiceCIDR is the service range (e.g. 10.96.0.0/12): traffic to an
	// unallocated address in it is dropped. Empty: no drop.
	ServiceCIDR string
	// ClusterDNS is the node-local cluster DNS address (e.g. 10.96.0.10):
	// put on lo, NOTRACKed for port 53, never DNATed, rejected or dropped.
	// Empty: none.
	ClusterDNS string
	// NodePortAddresses choose where NodePorts are served: "primary" (the
	// default: NodeIP, as kube-proxy's nftables mode) and/or CIDRs selecting
	// local addresses; "0.0.0.0/0" means every local address but loopback.
	NodePortAddresses []string
	// MinSyncPeriod is the least time between two syncs; changes arriving
	// meanwhile are applied together (default 100ms; kube-proxy's is 1s).
	MinSyncPeriod time.Duration
	// TableName is the nftables table (family ip) the proxy owns (default
	// "wharf").
	TableName string
}

// settings are a Config checked and parsed.
type settings struct {
	minSync    time.Duration
	table      string
	nodeIP     netip.Addr
	dns        netip.Addr
	modelOpts  model.Options
	backendCfg nft.Config
}

// parse checks c and fills in the defaults.
func (c *Config) parse(localAddrs func() ([]netip.Addr, error)) (*settings, error) {
	if c.Client == nil {
		return nil, errors.New("proxy: Config.Client is required")
	}
	if c.NodeName == "" {
		return nil, errors.New("proxy: Config.NodeName is required")
	}
	s := &settings{minSync: c.MinSyncPeriod, table: c.TableName}
	if s.minSync <= 0 {
		s.minSync = 100 * time.Millisecond
	}
	if s.table == "" {
		s.table = nft.DefaultTable
	}
	var err error
	if s.backendCfg.ClusterCIDR, err = optionalPrefix("ClusterCIDR", c.ClusterCIDR); err != nil {
		return nil, err
	}
	if s.backendCfg.ServiceCIDR, err = optionalPrefix("ServiceCIDR", c.ServiceCIDR); err != nil {
		return nil, err
	}
	if c.ClusterDNS != "" {
		if s.dns, err = netip.ParseAddr(c.ClusterDNS); err != nil || !s.dns.Is4() {
			return nil, fmt.Errorf("proxy: ClusterDNS %q is not an IPv4 address", c.ClusterDNS)
		}
	}
	if c.NodeIP != "" {
		if s.nodeIP, err = netip.ParseAddr(c.NodeIP); err != nil || !s.nodeIP.Is4() {
			return nil, fmt.Errorf("proxy: NodeIP %q is not an IPv4 address", c.NodeIP)
		}
	}
	s.backendCfg.ClusterDNS = s.dns
	s.modelOpts = model.Options{NodeName: c.NodeName, ClusterDNS: s.dns}
	if err := s.nodePorts(c.NodePortAddresses, localAddrs); err != nil {
		return nil, err
	}
	return s, nil
}

// nodePorts resolves NodePortAddresses into the backend's addresses.
func (s *settings) nodePorts(specs []string, localAddrs func() ([]netip.Addr, error)) error {
	if len(specs) == 0 {
		specs = []string{"primary"}
	}
	seen := map[netip.Addr]bool{}
	for _, spec := range specs {
		if spec == "primary" {
			if !s.nodeIP.IsValid() {
				return errors.New(`proxy: NodePortAddresses "primary" needs NodeIP`)
			}
			seen[s.nodeIP] = true
			continue
		}
		pfx, err := netip.ParsePrefix(spec)
		if err != nil || !pfx.Addr().Is4() {
			return fmt.Errorf("proxy: NodePortAddresses entry %q is neither \"primary\" nor an IPv4 CIDR", spec)
		}
		if pfx.Bits() == 0 {
			s.backendCfg.NodePortAllLocal = true
			continue
		}
		addrs, err := localAddrs()
		if err != nil {
			return fmt.Errorf("proxy: list local addresses for NodePortAddresses: %w", err)
		}
		for _, a := range addrs {
			if pfx.Contains(a) {
				seen[a] = true
			}
		}
	}
	for a := range seen {
		s.backendCfg.NodePortAddresses = append(s.backendCfg.NodePortAddresses, a)
	}
	slices.SortFunc(s.backendCfg.NodePortAddresses, netip.Addr.Compare)
	return nil
}

func optionalPrefix(field, v string) (netip.Prefix, error) {
	if v == "" {
		return netip.Prefix{}, nil
	}
	p, err := netip.ParsePrefix(v)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("proxy: %s %q is not an IPv4 CIDR", field, v)
	}
	return p.Masked(), nil
}

// deps are the OS-facing parts, replaced by fakes in tests.
type deps struct {
	newNFT  func(table string) (knftables.Interface, error)
	host    host
	cleaner conntrack.Cleaner
	addrs   func() ([]netip.Addr, error)
}

// Run runs the service proxy in nftables mode until ctx ends, then removes
// its table and the cluster DNS address from lo (a clean stop). After a
// kill -9 the rules stay and keep serving; the next Run reconciles them.
func Run(ctx context.Context, c Config) error {
	return run(ctx, c, deps{
		newNFT:  func(table string) (knftables.Interface, error) { return knftables.New(knftables.IPv4Family, table) },
		host:    newLinuxHost(),
		cleaner: conntrack.New(nil),
		addrs:   interfaceAddrs,
	})
}

func run(ctx context.Context, c Config, d deps) error {
	s, err := c.parse(d.addrs)
	if err != nil {
		return err
	}
	if err := d.host.CheckBridgeNetfilter(); err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	nftIface, err := d.newNFT(s.table)
	if err != nil {
		return fmt.Errorf("proxy: nftables unusable: %w", err)
	}
	klog.InfoS("Starting service proxy", "mode", "nftables", "table", "ip "+s.table, "minSyncPeriod", s.minSync,
		"nodePortAddresses", s.backendCfg.NodePortAddresses, "clusterDNS", c.ClusterDNS)
	if s.dns.IsValid() {
		if err := d.host.EnsureLoopbackAddr(s.dns); err != nil {
			return fmt.Errorf("proxy: %w", err)
		}
	}
	tracker := model.NewTracker(s.modelOpts)
	backend := nft.New(nftIface, s.backendCfg)
	factory := informers.NewSharedInformerFactory(c.Client, 0)
	sy := &syncer{tracker: tracker, backend: backend, cleaner: d.cleaner, now: time.Now}
	r := newRunner(sy.sync, s.minSync, fullSyncPeriod, func(err error) { klog.ErrorS(err, "Service proxy sync failed; retrying") })
	if sy.synced, err = watch(factory, tracker, r.Trigger); err != nil {
		return fmt.Errorf("proxy: watch services: %w", err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	r.Trigger()
	r.Run(ctx)
	factory.Shutdown()
	return cleanup(backend, d.host, s.dns)
}

// cleanup removes everything Run programmed.
func cleanup(b backend, h host, dns netip.Addr) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := b.Cleanup(ctx)
	if dns.IsValid() {
		err = errors.Join(err, h.RemoveLoopbackAddr(dns))
	}
	if err != nil {
		return fmt.Errorf("proxy: clean stop: %w", err)
	}
	klog.InfoS("Stopped service proxy and removed its rules")
	return nil
}

// interfaceAddrs lists the host's IPv4 interface addresses.
func interfaceAddrs() ([]netip.Addr, error) {
	ifAddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range ifAddrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out, nil
}
