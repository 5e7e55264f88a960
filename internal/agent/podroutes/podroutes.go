// Package podroutes is the pod network across nodes, run by every agent
// (issue 6): pods on different nodes reach each other by their own IPs,
// and pods reach the outside through the node's address.
//
// Three parts, each in the node's own kernel:
//
//   - Routes, as Flannel's host-gw: every other node's podCIDR via that
//     node's InternalIP, for nodes that are Ready or NotReady for less
//     than the grace period. Desired routes are a pure function of the
//     Node list and the clock (desiredRoutes); a Router programs them
//     (host-gw: netlink routes of protocol RouteProtocol).
//   - Masquerade, as ip-masq-agent: packets from the cluster CIDR to
//     anywhere but the cluster CIDR, the service CIDR and the node
//     subnets are masqueraded, in an nftables table of its own. The table
//     is deleted when Run ends cleanly, so pods lose outside access while
//     the agent is stopped cleanly; routes stay (running pods keep
//     reaching each other across an agent restart).
//   - Firewalls users already have: when the iptables FORWARD policy is
//     DROP (Docker sets it), accepts for the cluster and service CIDRs.
//
// CheckOverlaps, for the agent's start, refuses cluster ranges that the
// host already uses.
package podroutes

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"sigs.k8s.io/knftables"
)

// Pod network modes.
const (
	// ModeHostGW routes pod CIDRs via node addresses (nodes on one L2
	// segment).
	ModeHostGW = "host-gw"
	// ModeNone leaves pod routing and masquerade to the user's own CNI.
	ModeNone = "none"
)

// Defaults.
const (
	DefaultGracePeriod = 40 * time.Second
	DefaultTableName   = "wharf-masq"
	// resyncPeriod is how often routes are recomputed without an event,
	// so a NotReady node's grace period ends on time and routes someone
	// deleted come back.
	resyncPeriod = 5 * time.Second
)

// Config configures Run.
type Config struct {
	// Client reads Nodes. Required.
	Client kubernetes.Interface
	// NodeName is this node: it gets no route to itself. Required.
	NodeName string
	// NodeIP is this node's IPv4 address; the subnets of its interface
	// are not masqueraded. Required.
	NodeIP string
	// ClusterCIDR (pods) and ServiceCIDR (services) are IPv4 CIDRs.
	// Required.
	ClusterCIDR, ServiceCIDR string
	// Mode is ModeHostGW (the default) or ModeNone. In ModeNone Run
	// removes routes and the masquerade table an earlier run left, and
	// returns.
	Mode string
	// GracePeriod is how long a NotReady or Unknown node keeps its route,
	// from its Ready condition's lastTransitionTime (default 40s, the node
	// lifecycle controller's node-monitor-grace-period).
	GracePeriod time.Duration
	// TableName is the nftables table (family ip) of the masquerade rule
	// (default "wharf-masq").
	TableName string
}

// settings are a Config checked and parsed.
type settings struct {
	self            string
	nodeIP          netip.Addr
	cluster, svc    netip.Prefix
	mode            string
	grace, interval time.Duration
	table           string
}

// parse checks c and fills in the defaults.
func (c Config) parse() (*settings, error) {
	s := &settings{self: c.NodeName, mode: c.Mode, grace: c.GracePeriod, table: c.TableName, interval: resyncPeriod}
	if s.mode == "" {
		s.mode = ModeHostGW
	}
	if s.mode != ModeHostGW && s.mode != ModeNone {
		return nil, fmt.Errorf("pod network: mode %q is neither %q nor %q", c.Mode, ModeHostGW, ModeNone)
	}
	if s.grace <= 0 {
		s.grace = DefaultGracePeriod
	}
	if s.table == "" {
		s.table = DefaultTableName
	}
	if c.Client == nil || c.NodeName == "" {
		return nil, errors.New("pod network: Config.Client and Config.NodeName are required")
	}
	var err error
	if s.nodeIP, err = netip.ParseAddr(c.NodeIP); err != nil || !s.nodeIP.Is4() {
		return nil, fmt.Errorf("pod network: node IP %q is not an IPv4 address", c.NodeIP)
	}
	if s.cluster, err = parseV4Prefix("cluster CIDR", c.ClusterCIDR); err != nil {
		return nil, fmt.Errorf("pod network: %w", err)
	}
	if s.svc, err = parseV4Prefix("service CIDR", c.ServiceCIDR); err != nil {
		return nil, fmt.Errorf("pod network: %w", err)
	}
	return s, nil
}

// Run keeps the pod network of this node until ctx ends: FORWARD accepts
// if needed, the masquerade table, and in ModeHostGW the routes to other
// nodes' pods. It returns an error if the node cannot take part (no nft,
// a DROP policy it cannot open, the node IP on no interface); routing
// errors later are logged and retried. At a clean end the masquerade
// table is deleted and the routes are kept.
func Run(ctx context.Context, c Config) error {
	s, err := c.parse()
	if err != nil {
		return err
	}
	nft, err := knftables.New(knftables.IPv4Family, s.table)
	if err != nil {
		return fmt.Errorf("pod network: nftables: %w", err)
	}
	nl := &netlink.Handle{}
	r := &runner{
		s: s, client: c.Client, router: newNetlinkRouter(nl, infof), host: netlinkHost{nl},
		nft: nft, now: time.Now, logf: infof,
	}
	if haveIPTables() {
		r.iptables = execIPTables
	}
	if s.mode == ModeNone {
		return r.cleanupNone(ctx)
	}
	return r.run(ctx)
}

// Cleanup removes what Run leaves behind after a clean stop or a crash:
// the routes, the masquerade table (c.TableName) and the FORWARD accepts
// for c.ClusterCIDR and c.ServiceCIDR (for `wharf reset`). c.Client and
// c.NodeName are not needed.
func Cleanup(ctx context.Context, c Config) error {
	var errs []error
	if err := newNetlinkRouter(&netlink.Handle{}, infof).Cleanup(); err != nil {
		errs = append(errs, err)
	}
	if c.TableName == "" {
		c.TableName = DefaultTableName
	}
	if nft, err := knftables.New(knftables.IPv4Family, c.TableName); err == nil {
		errs = append(errs, deleteMasq(ctx, nft))
	}
	cluster, err1 := parseV4Prefix("cluster CIDR", c.ClusterCIDR)
	svc, err2 := parseV4Prefix("service CIDR", c.ServiceCIDR)
	if err1 == nil && err2 == nil && haveIPTables() {
		errs = append(errs, removeForward(execIPTables, cluster, svc))
	}
	return errors.Join(errs...)
}

func infof(format string, args ...any) { klog.Infof("Pod network: "+format, args...) }
