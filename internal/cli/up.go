package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/wharf-io/wharf/internal/agent"
	"github.com/wharf-io/wharf/internal/apiserver"
)

// upComponents are what `wharf up --disable` can leave out.
var upComponents = sets.New("agent", "pods", "proxy", "dns")

// newUpCommand is `wharf up`: everything on one machine, the API server with
// embedded etcd and this machine's node agent in one process.
func newUpCommand() *cobra.Command {
	o := &serverOptions{}
	a := &agentOptions{}
	var disable []string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run a whole cluster on this machine (server, embedded etcd and this node's agent)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyDisable(&a.cfg, disable, upComponents); err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			if !sets.New(disable...).Has("agent") {
				go runLocalAgent(ctx, o, a.cfg)
			}
			return o.run(ctx)
		},
	}
	o.addFlags(cmd.Flags())
	a.addNodeFlags(cmd.Flags())
	cmd.Flags().StringSliceVar(&disable, "disable", nil, "components not to run: agent (no node here), pods, proxy, dns (left to your own kube-proxy or CoreDNS)")
	return cmd
}

// runLocalAgent joins this machine's agent to the server of `wharf up`, with
// the token the server writes, once it is there.
func runLocalAgent(ctx context.Context, o *serverOptions, cfg agent.Config) {
	dir := dataDir(o.dataDir)
	tokenFile := filepath.Join(dir, "token")
	for {
		data, err := os.ReadFile(tokenFile)
		if err == nil && len(data) > 0 {
			cfg.Token = strings.TrimSpace(string(data))
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	host := o.api.BindAddress
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	cfg.Server = fmt.Sprintf("https://%s:%d", host, o.api.SecurePort)
	cfg.DataDir = dir
	cfg.ClusterDomain = o.api.ClusterDomain
	cfg.ClusterCIDR, cfg.ServiceCIDR = o.api.ClusterCIDR, o.api.ServiceCIDR
	if dns := o.api.ClusterDNS; dns != "" {
		cfg.ClusterDNS = []string{dns}
	} else if ip := apiserver.ClusterDNSIP(o.api.ServiceCIDR); ip != nil {
		cfg.ClusterDNS = []string{ip.String()}
	}
	if err := agent.Run(ctx, cfg); err != nil && ctx.Err() == nil {
		logf("agent: %v", err)
	}
}
