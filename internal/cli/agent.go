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
	o.addNodeFlags(fs)
	return cmd
}
