package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-io/wharf/test/e2e/sandbox"
)

// TestDockerNetworkModels (C4): Docker's bridge, host, macvlan and none
// models as Wharf runs them: the default bridge (node-1), a user's macvlan
// conflist (node-2: pods on the node subnet itself, reached from the
// outside host), a loopback-only conflist (node-3: pods with lo only) and
// hostNetwork (the node's own addresses, in the pods test).
func TestDockerNetworkModels(t *testing.T) {
	macvlanDir, loDir := t.TempDir(), t.TempDir()
	lo := `{"cniVersion": "1.0.0", "name": "none", "plugins": [{"type": "loopback"}]}`
	if err := os.WriteFile(filepath.Join(loDir, "10-none.conflist"), []byte(lo), 0o644); err != nil {
		t.Fatal(err)
	}
	var prefix string
	c := startClusterWith(t, 3, map[int][]string{
		1: {"--cni-conf-dir=" + macvlanDir},
		2: {"--cni-conf-dir=" + loDir},
	}, func(sb *sandbox.Sandbox) {
		prefix = strings.TrimSuffix(sb.NodeSubnet, ".0/24")
		macvlan := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "lan", "plugins": [{"type": "macvlan", "master": "eth0", "mode": "bridge",
  "ipam": {"type": "host-local", "ranges": [[{"subnet": "%s", "rangeStart": "%s.200", "rangeEnd": "%s.210", "gateway": "%s.1"}]],
           "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "%s"}}]}`, sb.NodeSubnet, prefix, prefix, prefix, filepath.Join(macvlanDir, "ipam"))
		if err := os.WriteFile(filepath.Join(macvlanDir, "10-lan.conflist"), []byte(macvlan), 0o644); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("macvlan: a pod on the node subnet, reached from outside", func(t *testing.T) {
		// No readiness probe: a macvlan interface cannot talk to its own
		// host (the parent's), so the node's probes cannot reach the pod —
		// the known macvlan limitation, as with Docker.
		c.apply(t, `apiVersion: v1
kind: Pod
metadata:
  name: lan
spec:
  nodeName: node-2
  containers:
  - name: web
    image: wharf/netexec
`)
		var ip string
		waitFor(t, 60*time.Second, func() (bool, string) {
			out, _ := c.Kubectl("get", "pod", "lan", "-o", "jsonpath={.status.phase} {.status.podIP}")
			f := strings.Fields(out)
			if len(f) == 2 && f[0] == "Running" {
				ip = f[1]
				return true, out
			}
			return false, out
		})
		if !strings.HasPrefix(ip, prefix+".2") {
			t.Fatalf("macvlan pod IP %s, want one of %s.200-210", ip, prefix)
		}
		waitFor(t, 30*time.Second, func() (bool, string) {
			out, err := c.sb.Exec(c.sb.Outside, "curl", "-s", "--max-time", "2", "http://"+ip+":8080/hostname")
			return err == nil && strings.TrimSpace(out) == "lan", out
		})
	})
	t.Run("none: a pod with loopback only", func(t *testing.T) {
		c.apply(t, `apiVersion: v1
kind: Pod
metadata:
  name: alone
spec:
  nodeName: node-3
  containers:
  - name: c
    image: busybox
    command: ["sleep", "3600"]
`)
		waitFor(t, 60*time.Second, func() (bool, string) {
			out, _ := c.Kubectl("get", "pod", "alone", "-o", "jsonpath={.status.phase}|{.status.podIP}")
			if out != "Running|" {
				desc, _ := c.Kubectl("describe", "pod", "alone")
				return false, out + "\n" + desc
			}
			return true, out
		})
		out, err := c.Kubectl("exec", "alone", "--", "cat", "/proc/net/dev")
		if err != nil || !strings.Contains(out, "lo:") || strings.Contains(out, "eth0") {
			t.Errorf("interfaces of a loopback-only pod: %v\n%s", err, out)
		}
	})
}
