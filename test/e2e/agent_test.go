package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wharf-io/wharf/test/e2e/framework"
)

// TestAgentJoinsAndKeepsItsNodeAlive: `wharf up` runs the agent, which
// joins with the server's token as system:node:<name>, registers a Ready
// node with its address and capacity, gets a pod CIDR and renews its Lease;
// a wrong token is refused at once.
func TestAgentJoinsAndKeepsItsNodeAlive(t *testing.T) {
	// 192.0.2.50 (TEST-NET-1) is only written into the Node's status.
	s := framework.Start(t, framework.Options{Agent: true, Extra: []string{"--node-name=test-node", "--node-ip=192.0.2.50", "--disable=pods,proxy,dns"}})
	client := s.Client()
	ctx := context.Background()
	waitFor(t, 30*time.Second, func() (bool, string) {
		out := s.MustKubectl("get", "nodes", "-o", "wide")
		return matches(`test-node\s+Ready\s+<none>\s+\S+\s+v1\.37\.2\s+192\.0\.2\.50\s`, out), out
	})
	waitFor(t, 30*time.Second, func() (bool, string) {
		n, err := client.CoreV1().Nodes().Get(ctx, "test-node", metav1.GetOptions{})
		return err == nil && n.Spec.PodCIDR == "10.244.0.0/24", n.Spec.PodCIDR
	})
	n, _ := client.CoreV1().Nodes().Get(ctx, "test-node", metav1.GetOptions{})
	if cpu := n.Status.Capacity.Cpu(); cpu.IsZero() {
		t.Errorf("capacity %v", n.Status.Capacity)
	}
	lease, err := client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, "test-node", metav1.GetOptions{})
	if err != nil || lease.Spec.RenewTime == nil {
		t.Fatalf("node lease: %v %v", lease, err)
	}
	// The agent's credentials are a node's, not the admin's.
	kc := readFile(t, filepath.Join(s.DataDir, "agent", "node.kubeconfig"))
	if strings.Contains(kc, "wharf-admin") {
		t.Error("the agent holds admin credentials")
	}
	out, err := s.Kubectl("--kubeconfig", filepath.Join(s.DataDir, "agent", "node.kubeconfig"), "auth", "whoami")
	if err != nil || !strings.Contains(out, "system:node:test-node") || !strings.Contains(out, "system:nodes") {
		t.Errorf("agent identity: %v %s", err, out)
	}
	// A wrong secret with the right CA hash is refused, not retried.
	token := readFile(t, filepath.Join(s.DataDir, "token"))
	hash, _, _ := strings.Cut(token, "::")
	cmd := exec.Command(s.Bin, "agent", "--server", s.URL(), "--token", hash+"::wrong", "--data-dir", t.TempDir(),
		"--node-name", "intruder", "--node-ip", "192.0.2.51")
	cmd.Env = os.Environ()
	done := make(chan []byte)
	go func() { o, _ := cmd.CombinedOutput(); done <- o }()
	select {
	case o := <-done:
		if !strings.Contains(string(o), "invalid join token") {
			t.Errorf("wrong token: %s", o)
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Error("an agent with a wrong token kept retrying")
	}
}
