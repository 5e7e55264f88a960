// Package agent turns a Linux machine into a node: it joins the cluster with
// the server's token (getting a system:node:<name> certificate, never admin
// credentials), registers a Node with its addresses and capacity, and keeps
// it alive with a heartbeat Lease in kube-node-lease and periodic status.
// Pods, the pod network, the proxy, DNS and ingress join it issue by issue.
package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/wharf-io/wharf/internal/agent/podroutes"
	"github.com/wharf-io/wharf/internal/hostnet"
)

// Config is the agent's configuration.
type Config struct {
	// Server is the API server's URL (https://host:6443).
	Server string
	// Token is the join token (the server's <data-dir>/token).
	Token string
	// DataDir holds agent/ (credentials, state).
	DataDir string
	// NodeName defaults to the hostname.
	NodeName string
	// NodeIP defaults to the address of the default route's interface, or
	// of the first non-loopback interface.
	NodeIP string
	// LeaseDuration and RenewInterval time the heartbeat (40 s, 10 s as
	// kubelet's defaults).
	LeaseDuration, RenewInterval time.Duration
	// StatusInterval is how often the Node status is posted (1 minute).
	StatusInterval time.Duration

	// KubeletPort is where the agent serves logs, exec, attach and
	// port-forward to the API server (10250).
	KubeletPort int
	// CNIConfDir, when set, holds the CNI config to use instead of the
	// default conflist written under the data dir; CNIBinDirs are searched
	// for plugins after <data-dir>/cni/bin.
	CNIConfDir string
	CNIBinDirs []string
	// NetnsPrefix starts the name of every pod network namespace ("wharf-").
	NetnsPrefix string
	// BridgeName is the default conflist's bridge ("wharf0").
	BridgeName string
	// ClusterDNS and ClusterDomain go into pods' resolv.conf.
	ClusterDNS    []string
	ClusterDomain string
	// KeepPodsOnExit leaves pods running when the agent stops cleanly (they
	// always survive a crash or kill -9, and are adopted on restart).
	KeepPodsOnExit bool
	// DisablePods runs no pods (node registration only); DisableProxy and
	// DisableDNS leave the service proxy and cluster DNS to the user's own.
	DisablePods, DisableProxy, DisableDNS bool
	// ClusterCIDR and ServiceCIDR are the pod and service ranges (for the
	// proxy's masquerade and guard rules).
	ClusterCIDR, ServiceCIDR string
	// NodePortAddresses selects the addresses NodePorts answer on
	// ("primary", the default, or CIDRs).
	NodePortAddresses []string
	// PodNetwork is "host-gw" (routes to other nodes' pod ranges) or "none"
	// (a user's own CNI and routing); RouteGracePeriod is how long a
	// NotReady node keeps its route.
	PodNetwork       string
	RouteGracePeriod time.Duration
	// DNSUpstreams are where cluster DNS forwards other names (default: the
	// host's resolv.conf).
	DNSUpstreams []string
}

// Defaults fills in unset fields.
func (c *Config) Defaults() error {
	if c.Server == "" || c.Token == "" {
		return fmt.Errorf("the agent needs --server and --token")
	}
	if c.NodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("node name: %w", err)
		}
		c.NodeName = strings.ToLower(h)
	}
	if c.NodeIP == "" {
		ip := hostnet.DefaultIPv4()
		if ip == nil {
			return fmt.Errorf("no address for this node: set --node-ip")
		}
		c.NodeIP = ip.String()
	}
	if net.ParseIP(c.NodeIP) == nil {
		return fmt.Errorf("--node-ip %q is not an IP address", c.NodeIP)
	}
	if c.LeaseDuration == 0 {
		c.LeaseDuration = 40 * time.Second
	}
	if c.RenewInterval == 0 {
		c.RenewInterval = 10 * time.Second
	}
	if c.StatusInterval == 0 {
		c.StatusInterval = time.Minute
	}
	if c.KubeletPort == 0 {
		c.KubeletPort = 10250
	}
	if c.NetnsPrefix == "" {
		c.NetnsPrefix = "wharf-"
	}
	if c.ClusterDomain == "" {
		c.ClusterDomain = "cluster.local"
	}
	if c.ClusterDNS == nil {
		c.ClusterDNS = []string{"10.96.0.10"}
	}
	if c.ClusterCIDR == "" {
		c.ClusterCIDR = "10.244.0.0/16"
	}
	if c.ServiceCIDR == "" {
		c.ServiceCIDR = "10.96.0.0/12"
	}
	if !c.DisablePods {
		ranges := podroutes.Ranges{ClusterCIDR: c.ClusterCIDR, ServiceCIDR: c.ServiceCIDR}
		if err := podroutes.CheckOverlaps(ranges); err != nil {
			return err
		}
	}
	return nil
}

// Run joins, registers and keeps the node alive until ctx ends.
func Run(ctx context.Context, c Config) error {
	if err := c.Defaults(); err != nil {
		return err
	}
	var kubeconfig string
	var err error
	for {
		kubeconfig, err = credentials(&c)
		if err == nil {
			break
		}
		if errors.As(err, &permanentError{}) {
			return err
		}
		fmt.Fprintf(os.Stderr, "wharf agent: %v (retrying)\n", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cfg.UserAgent = "wharf-agent/" + c.NodeName
	// Above kubelet's 50/100: a Wharf node also runs the proxy, DNS and
	// the pod network on this client, and a burst of pods (status, token,
	// events per pod) was held back by the client's own rate limiter.
	cfg.QPS, cfg.Burst = 200, 400
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	n := &nodeStatus{client: client, cfg: &c}
	fmt.Fprintf(os.Stderr, "wharf agent: node %s (%s) joined %s\n", c.NodeName, c.NodeIP, c.Server)
	roles := []func(context.Context, *Config, kubernetes.Interface) error{
		func(ctx context.Context, _ *Config, _ kubernetes.Interface) error { return n.run(ctx) },
	}
	if !c.DisablePods {
		roles = append(roles, runPods, runPodNetwork)
	}
	if !c.DisableProxy {
		roles = append(roles, runProxy)
	}
	if !c.DisableDNS {
		roles = append(roles, runDNS)
	}
	return runAll(ctx, &c, client, roles)
}

// runAll runs the agent's roles until ctx ends; the first to fail stops
// the others and its error is returned.
func runAll(ctx context.Context, c *Config, client kubernetes.Interface, roles []func(context.Context, *Config, kubernetes.Interface) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(roles))
	for _, role := range roles {
		go func() { errs <- role(ctx, c, client) }()
	}
	var first error
	for range roles {
		if err := <-errs; err != nil && first == nil && ctx.Err() == nil {
			first = err
			cancel()
		}
	}
	return first
}
