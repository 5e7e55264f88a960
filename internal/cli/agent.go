package cli

import (
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

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
}

func newAgentCommand() *cobra.Command {
	o := &agentOptions{}
	cmd := &cobra.Command{
		Use:   "agent --server URL --token TOKEN",
		Short: "Run a node: join the cluster at --server with the server's join token",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
	o.addNodeFlags(fs)
	return cmd
}
