package agent

import (
	"context"
	"fmt"
	"net"

	"k8s.io/client-go/kubernetes"

	"github.com/wharf-io/wharf/internal/agent/podroutes"
	clusterdns "github.com/wharf-io/wharf/internal/dns"
	"github.com/wharf-io/wharf/internal/proxy"
)

// runProxy runs the service proxy (nftables) for this node.
func runProxy(ctx context.Context, c *Config, client kubernetes.Interface) error {
	var dnsIP string
	if len(c.ClusterDNS) > 0 && !c.DisableDNS {
		dnsIP = c.ClusterDNS[0]
	}
	err := proxy.Run(ctx, proxy.Config{
		Client: client, NodeName: c.NodeName, NodeIP: c.NodeIP,
		ClusterCIDR: c.ClusterCIDR, ServiceCIDR: c.ServiceCIDR, ClusterDNS: dnsIP,
		NodePortAddresses: c.NodePortAddresses,
	})
	if err != nil {
		return fmt.Errorf("service proxy: %w", err)
	}
	return nil
}

// runDNS serves cluster DNS on the cluster DNS address of this node.
func runDNS(ctx context.Context, c *Config, client kubernetes.Interface) error {
	var listen []string
	for _, ip := range c.ClusterDNS {
		listen = append(listen, net.JoinHostPort(ip, "53"))
	}
	err := clusterdns.Run(ctx, clusterdns.Config{
		Client: client, Listen: listen, Zone: c.ClusterDomain, Upstreams: c.DNSUpstreams,
	})
	if err != nil {
		return fmt.Errorf("cluster DNS: %w", err)
	}
	return nil
}

// runPodNetwork routes other nodes' pod ranges (host-gw) and masquerades
// pod traffic leaving the cluster.
func runPodNetwork(ctx context.Context, c *Config, client kubernetes.Interface) error {
	err := podroutes.Run(ctx, podroutes.Config{
		Client: client, NodeName: c.NodeName, NodeIP: c.NodeIP,
		ClusterCIDR: c.ClusterCIDR, ServiceCIDR: c.ServiceCIDR, Mode: c.PodNetwork, GracePeriod: c.RouteGracePeriod,
	})
	if err != nil {
		return fmt.Errorf("pod network: %w", err)
	}
	return nil
}
