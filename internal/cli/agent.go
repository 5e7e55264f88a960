package cli

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/wharf-io/wharf/internal/agent"
)

// agentOptions are the flags of `wharf agent` (and the node part of `wharf up`).
type agentOptions struct {
	cfg       agent.Config
	tokenFile string
}

func (o *agentOptions) addNodeFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.cfg.NodeName, "node-name", "", "name of this node (default: the hostname)")
	fs.StringVar(&o.cfg.NodeIP, "node-ip", "", "address of this node (default: the default route's interface address)")
	fs.IntVar(&o.cfg.KubeletPort, "kubelet-port", 10250, "port of the node's endpoint for logs, exec, attach and port-forward (the API server's only)")
	fs.StringVar(&o.cfg.CNIConfDir, "cni-conf-dir", "", "directory of the CNI config to use (default: Wharf's own conflist in <data-dir>/cni/net.d)")
	fs.StringSliceVar(&o.cfg.CNIBinDirs, "cni-bin-dir", nil, "more directories of CNI plugins, searched after <data-dir>/cni/bin")
	fs.StringVar(&o.cfg.NetnsPrefix, "netns-prefix", "wharf-", "prefix of pod network namespace names (as `ip netns` lists them)")
	fs.StringVar(&o.cfg.BridgeName, "cni-bridge", "wharf0", "bridge of the default CNI config")
	fs.BoolVar(&o.cfg.KeepPodsOnExit, "keep-pods-on-exit", false, "leave pods running when the agent stops (they are adopted on restart)")
	fs.StringSliceVar(&o.cfg.NodePortAddresses, "nodeport-addresses", nil, "addresses NodePorts answer on: primary (default, the node IP) or CIDRs")
	fs.StringVar(&o.cfg.PodNetwork, "pod-network", "host-gw", "pod network across nodes: host-gw (routes via node addresses, one L2 segment) or none (your own CNI and routing)")
	fs.DurationVar(&o.cfg.RouteGracePeriod, "route-grace-period", 40*time.Second, "how long a NotReady node keeps its pod route")
	fs.StringSliceVar(&o.cfg.DNSUpstreams, "dns-upstream", nil, "resolvers cluster DNS forwards other names to (default: the host's /etc/resolv.conf)")
}

// agentComponents are what --disable can leave out of a node.
var agentComponents = sets.New("pods", "proxy", "dns")

// applyDisable turns --disable into the agent's switches.
func applyDisable(cfg *agent.Config, disable []string, allowed sets.Set[string]) error {
	for _, d := range disable {
		if !allowed.Has(d) {
			return fmt.Errorf("--disable=%s: not one of %s", d, strings.Join(sets.List(allowed), ", "))
		}
	}
	set := sets.New(disable...)
	cfg.DisablePods, cfg.DisableProxy, cfg.DisableDNS = set.Has("pods"), set.Has("proxy"), set.Has("dns")
	return nil
}

func newAgentCommand() *cobra.Command {
	o := &agentOptions{}
	var disable []string
	cmd := &cobra.Command{
		Use:   "agent --server URL --token TOKEN",
		Short: "Run a node: join the cluster at --server with the server's join token",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyDisable(&o.cfg, disable, agentComponents); err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			if o.tokenFile != "" {
				data, err := os.ReadFile(o.tokenFile)
				if err != nil {
					return err
				}
				o.cfg.Token = strings.TrimSpace(string(data))
			}
			o.cfg.DataDir = dataDir(o.cfg.DataDir)
			return agent.Run(ctx, o.cfg)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.cfg.Server, "server", "", "URL of the API server (https://host:6443)")
	fs.StringVar(&o.cfg.Token, "token", "", "join token (the server's <data-dir>/token)")
	fs.StringVar(&o.tokenFile, "token-file", "", "file holding the join token")
	fs.StringVar(&o.cfg.DataDir, "data-dir", "", "directory for the agent's state (default "+DefaultDataDir+", or WHARF_DATA_DIR)")
	fs.StringSliceVar(&o.cfg.ClusterDNS, "cluster-dns", []string{"10.96.0.10"}, "cluster DNS address for pods' resolv.conf")
	fs.StringVar(&o.cfg.ClusterDomain, "cluster-domain", "cluster.local", "cluster DNS domain")
	fs.StringVar(&o.cfg.ClusterCIDR, "cluster-cidr", "10.244.0.0/16", "pod IP range of the cluster")
	fs.StringVar(&o.cfg.ServiceCIDR, "service-cidr", "10.96.0.0/12", "service IP range of the cluster")
	fs.StringSliceVar(&disable, "disable", nil, "components not to run on this node: "+strings.Join(sets.List(agentComponents), ", "))
	o.addNodeFlags(fs)
	return cmd
}
