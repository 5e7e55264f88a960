package agent

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/wharf-io/wharf/internal/agent/container"
	"github.com/wharf-io/wharf/internal/agent/images"
	"github.com/wharf-io/wharf/internal/agent/kubeletserver"
	"github.com/wharf-io/wharf/internal/agent/podnet"
	"github.com/wharf-io/wharf/internal/agent/pods"
)

// runPods runs this node's pods and the kubelet endpoint until ctx ends.
func runPods(ctx context.Context, c *Config, client kubernetes.Interface) error {
	cidr, err := waitPodCIDR(ctx, client, c.NodeName)
	if err != nil {
		return err
	}
	table, err := images.Load(filepath.Join(c.DataDir, "images"))
	if err != nil {
		return err
	}
	net, err := podnet.New(podnet.Config{
		DataDir: c.DataDir, ConfDir: c.CNIConfDir, BinDirs: c.CNIBinDirs, NetnsPrefix: c.NetnsPrefix,
		BridgeName: c.BridgeName,
	})
	if err != nil {
		return fmt.Errorf("pod network: %w", err)
	}
	if net.EnabledIPForward() {
		fmt.Fprintf(os.Stderr, "wharf agent: enabled IPv4 forwarding (net.ipv4.ip_forward=1)\n")
	}
	if err := net.WriteDefaultConfig(cidr); err != nil {
		return fmt.Errorf("pod network: %w", err)
	}
	exe, _ := os.Executable()
	rt := &container.Runtime{Root: filepath.Join(c.DataDir, "containers"), InitPath: exe}
	if p := filepath.Join(filepath.Dir(exe), "wharf-init"); isExecutable(p) {
		rt.InitPath, rt.InitArgs = p, []string{}
	}
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: c.NodeName})
	m := pods.New(pods.Config{
		NodeName: c.NodeName, NodeIP: c.NodeIP, DataDir: c.DataDir,
		DNS:     pods.DNSConfig{ClusterDNS: c.ClusterDNS, ClusterDomain: c.ClusterDomain},
		Network: net, Runtime: rt, Images: table, Client: client, WharfBinary: exe,
		Exec:           execProbe(rt),
		StopPodsOnExit: !c.KeepPodsOnExit, Recorder: recorder,
	})
	srv, err := kubeletServer(c, &pods.Streams{M: m, Exec: rt.Exec, Attach: rt.Attach})
	if err != nil {
		return err
	}
	go func() {
		if err := srv.Run(ctx); err != nil && ctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "wharf agent: kubelet endpoint: %v\n", err)
		}
	}()
	return m.Run(ctx)
}

func kubeletServer(c *Config, p kubeletserver.Provider) (*kubeletserver.Server, error) {
	certFile, keyFile, caFile, err := servingCert(c)
	if err != nil {
		return nil, fmt.Errorf("kubelet serving certificate: %w", err)
	}
	return kubeletserver.New(kubeletserver.Config{
		Address:  net.JoinHostPort(c.NodeIP, strconv.Itoa(c.KubeletPort)),
		CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile,
		Provider: p,
	})
}

// isExecutable says whether path is an executable file.
func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// execProbe runs exec probes through the runtime, collecting output.
func execProbe(rt *container.Runtime) func(ctx context.Context, id string, cmd []string) (int, string, error) {
	return func(ctx context.Context, id string, cmd []string) (int, string, error) {
		var out limitedBuffer
		code, err := rt.Exec(ctx, id, cmd, nil, &out, &out, false, nil)
		return code, out.String(), err
	}
}

// limitedBuffer keeps the first 10 KiB written to it, as kubelet keeps of
// a probe's output.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 10240 - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }

// waitPodCIDR waits until the node IPAM controller gave the node its
// podCIDR.
func waitPodCIDR(ctx context.Context, client kubernetes.Interface, node string) (string, error) {
	for {
		n, err := client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err == nil && n.Spec.PodCIDR != "" {
			return n.Spec.PodCIDR, nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
