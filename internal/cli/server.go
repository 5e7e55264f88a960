package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wharf-io/wharf/internal/apiserver"
	"github.com/wharf-io/wharf/internal/etcd"
)

// serverOptions are the flags of `wharf server` (and of `wharf up`, which
// runs a server).
type serverOptions struct {
	dataDir       string
	api           apiserver.Config
	etcdServers   string
	etcdClientURL string
	etcdPeerURL   string
	etcdNoFsync   bool
	tlsSANs       []string
}

func (o *serverOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.dataDir, "data-dir", "", "directory for Wharf's state (default "+DefaultDataDir+", or WHARF_DATA_DIR)")
	fs.StringVar(&o.api.BindAddress, "bind-address", "0.0.0.0", "address the API server listens on")
	fs.IntVar(&o.api.SecurePort, "secure-port", 6443, "HTTPS port of the API server")
	fs.StringVar(&o.api.AdvertiseAddress, "advertise-address", "", "address of this server that nodes and the admin kubeconfig use (default 127.0.0.1)")
	fs.StringVar(&o.etcdServers, "etcd-servers", "", "comma-separated client URLs of an external etcd cluster (default: embedded etcd)")
	fs.StringVar(&o.etcdClientURL, "etcd-client-url", "http://127.0.0.1:2379", "client URL of the embedded etcd (loopback only)")
	fs.StringVar(&o.etcdPeerURL, "etcd-peer-url", "http://127.0.0.1:2380", "peer URL of the embedded etcd")
	fs.BoolVar(&o.etcdNoFsync, "etcd-unsafe-no-fsync", false, "do not fsync the embedded etcd (tests on tmpfs only)")
	fs.StringVar(&o.api.ServiceCIDR, "service-cidr", "10.96.0.0/12", "service IP range")
	fs.StringVar(&o.api.ServiceNodePortRange, "service-node-port-range", "30000-32767", "port range for NodePort services")
	fs.StringVar(&o.api.ClusterCIDR, "cluster-cidr", "10.244.0.0/16", "pod IP range; each node gets a piece of it")
	fs.IntVar(&o.api.NodeCIDRMaskSize, "node-cidr-mask-size", 24, "prefix length of each node's pod range")
	fs.StringSliceVar(&o.api.LBPool, "lb-pool", nil, "LoadBalancer address ranges (CIDR or first-last); default: node addresses")
	fs.StringSliceVar(&o.api.IngressPorts, "ingress-ports", []string{"TCP/80", "TCP/443"}, "ports the ingress controller holds on node addresses (empty when it is disabled)")
	fs.DurationVar(&o.api.NodeMonitorGracePeriod, "node-monitor-grace-period", 40*time.Second, "how long a node may miss heartbeats before it is NotReady")
	fs.StringSliceVar(&o.api.AllowedExternalIPCIDRs, "allowed-external-ip-cidrs", nil, "ranges service externalIPs may use (default: none, as upstream's DenyServiceExternalIPs)")
	fs.BoolVar(&o.api.DisableControllers, "disable-controllers", false, "serve the API only: no controllers and no scheduler in this process")
	fs.StringVar(&o.api.ClusterDomain, "cluster-domain", "cluster.local", "cluster DNS domain")
	fs.StringVar(&o.api.ClusterDNS, "cluster-dns", "", "address of the cluster DNS service (default: the tenth address of --service-cidr)")
	fs.StringSliceVar(&o.tlsSANs, "tls-san", nil, "extra names or addresses for the serving certificate")
	fs.DurationVar(&o.api.CompactionInterval, "etcd-compaction-interval", 5*time.Minute,
		"how often etcd history is compacted, each time to the revision seen one interval earlier")
}

func newServerCommand() *cobra.Command {
	o := &serverOptions{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the API server (with embedded etcd unless --etcd-servers is given)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			return o.run(ctx)
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}

// run starts etcd (embedded, unless external servers are named) and the API
// server, and serves until ctx ends.
func (o *serverOptions) run(ctx context.Context) error {
	dir := dataDir(o.dataDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	cfg := o.api
	cfg.DataDir = dir
	cfg.TLSSANs = o.tlsSANs
	if o.etcdServers != "" {
		cfg.EtcdServers = strings.Split(o.etcdServers, ",")
	} else {
		e, err := etcd.Start(ctx, etcd.Config{DataDir: filepath.Join(dir, "etcd"), ClientURL: o.etcdClientURL,
			PeerURL: o.etcdPeerURL, UnsafeNoFsync: o.etcdNoFsync})
		if err != nil {
			return err
		}
		defer e.Close()
		cfg.EtcdServers = []string{e.ClientURL}
		logf("embedded etcd serving clients on %s", e.ClientURL)
	}
	srv, err := apiserver.New(ctx, cfg)
	if err != nil {
		return err
	}
	logf("API server on https://%s:%d; admin kubeconfig %s", cfg.BindAddress, cfg.SecurePort, srv.Kubeconfig)
	return srv.Run(ctx)
}
