package e2e

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-io/wharf/test/e2e/framework"
	"github.com/wharf-io/wharf/test/e2e/sandbox"
)

// cluster is a server in node 1 of a sandbox and agents in the others.
type cluster struct {
	*framework.Server
	sb     *sandbox.Sandbox
	agents []*framework.Agent
}

// startCluster runs `wharf up` in node 1 and `wharf agent` in the other
// nodes, each with a netns prefix of its own (an agent's CNI GC removes
// every namespace with its prefix that none of its pods holds).
func startCluster(t *testing.T, nodes int) *cluster {
	return startClusterWith(t, nodes, nil, nil)
}

// startClusterWith is startCluster with extra flags for some agents (by
// node index, 1 for node-2), after prepare has seen the sandbox.
func startClusterWith(t *testing.T, nodes int, extra map[int][]string, prepare func(*sandbox.Sandbox)) *cluster {
	t.Helper()
	sb := sandbox.New(t, sandbox.Options{Nodes: nodes})
	if prepare != nil {
		prepare(sb)
	}
	sb.ServeDNS(sb.Resolver, map[string]string{"outside.example.": sb.Outside.IP})
	common := func(i int) []string {
		return []string{fmt.Sprintf("--node-name=node-%d", i+1), fmt.Sprintf("--netns-prefix=wharf-%s-pod-n%d-", sb.ID, i+1),
			"--dns-upstream=" + sb.Resolver.IP + ":53", "--route-grace-period=5s"}
	}
	s := framework.Start(t, framework.Options{Agent: true, Netns: sb.Nodes[0].NetnsPath(), Extra: append(common(0),
		"--bind-address=0.0.0.0", "--advertise-address="+sb.Nodes[0].IP, "--node-monitor-grace-period=15s")})
	c := &cluster{Server: s, sb: sb}
	for i := 1; i < nodes; i++ {
		c.agents = append(c.agents, framework.StartAgent(t, framework.AgentOptions{
			Server: fmt.Sprintf("https://%s:%d", sb.Nodes[0].IP, s.Port), TokenFile: filepath.Join(s.DataDir, "token"),
			Netns: sb.Nodes[i].NetnsPath(), Extra: append(common(i), extra[i]...),
		}))
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", tail(s.Log(), 40))
			for i, a := range c.agents {
				t.Logf("agent node-%d log:\n%s", i+2, tail(a.Log(), 30))
			}
			for _, n := range sb.Nodes {
				out, _ := sb.Exec(n, "ip", "route")
				t.Logf("routes of %s:\n%s", n.Name, out)
			}
		}
	})
	waitFor(t, 90*time.Second, func() (bool, string) {
		out, _ := s.Kubectl("get", "nodes", "--no-headers")
		return strings.Count(out, " Ready ") == nodes, out
	})
	waitFor(t, 60*time.Second, func() (bool, string) {
		out, _ := s.Kubectl("get", "sa", "default")
		return strings.Contains(out, "default"), out
	})
	return c
}

// podOn runs a netexec pod pinned to a node and returns its IP once ready.
func (c *cluster) podOn(t *testing.T, name, node string, labels string) string {
	t.Helper()
	c.apply(t, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  labels: {%s}
spec:
  nodeName: %s
  containers:
  - name: web
    image: wharf/netexec
    readinessProbe:
      tcpSocket:
        port: 8080
      periodSeconds: 1
`, name, labels, node))
	var ip string
	waitFor(t, 60*time.Second, func() (bool, string) {
		out, _ := c.Kubectl("get", "pod", name, "-o", `jsonpath={.status.podIP} {.status.conditions[?(@.type=="Ready")].status}`)
		f := strings.Fields(out)
		if len(f) == 2 && f[1] == "True" {
			ip = f[0]
			return true, out
		}
		return false, out
	})
	return ip
}

func (c *cluster) apply(t *testing.T, yaml string) {
	t.Helper()
	c.MustKubectlIn(yaml, "apply", "-f", "-")
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(strings.TrimSpace(addr))
	if err != nil {
		return strings.TrimSpace(addr)
	}
	return h
}

// TestPodNetworkAcrossNodes: pods on different nodes reach each other by
// IP with no NAT (C1), a node reaches a pod elsewhere (C5), pods reach the
// outside host masqueraded to their node's address, and services work
// across nodes: a ClusterIP from another node's pod and a NodePort on node
// 1 from the outside host to a pod on node 2 (C12).
func TestPodNetworkAcrossNodes(t *testing.T) {
	c := startCluster(t, 3)
	aIP := c.podOn(t, "a", "node-1", "app: a")
	bIP := c.podOn(t, "b", "node-2", "app: b")
	outside := c.sb.Start(c.sb.Outside, framework.Binary(t), "netexec", "--http-port=8080")
	_ = outside

	t.Run("pod to pod across nodes keeps the client IP (C1)", func(t *testing.T) {
		waitFor(t, 30*time.Second, func() (bool, string) {
			out, _ := c.Kubectl("exec", "a", "--", "curl", "-s", "--max-time", "2", "http://"+bIP+":8080/clientip")
			return hostOf(out) == aIP, out
		})
	})
	t.Run("a node reaches a pod on another node (C5)", func(t *testing.T) {
		waitFor(t, 30*time.Second, func() (bool, string) {
			out, err := c.sb.Exec(c.sb.Nodes[2], "curl", "-s", "--max-time", "2", "http://"+aIP+":8080/hostname")
			return err == nil && strings.TrimSpace(out) == "a", out
		})
	})
	t.Run("pods reach the outside host as their node", func(t *testing.T) {
		waitFor(t, 30*time.Second, func() (bool, string) {
			out, _ := c.Kubectl("exec", "a", "--", "curl", "-s", "--max-time", "2", "http://outside.example:8080/clientip")
			return hostOf(out) == c.sb.Nodes[0].IP, out
		})
	})
	t.Run("services across nodes (C12)", func(t *testing.T) {
		c.apply(t, `apiVersion: v1
kind: Service
metadata:
  name: b
spec:
  type: NodePort
  selector:
    app: b
  ports:
  - port: 80
    targetPort: 8080
    nodePort: 30001
`)
		waitFor(t, 30*time.Second, func() (bool, string) {
			out, _ := c.Kubectl("exec", "a", "--", "curl", "-s", "--max-time", "2", "http://b/clientip")
			return hostOf(out) == aIP, out
		})
		url := fmt.Sprintf("http://%s:30001/hostname", c.sb.Nodes[0].IP)
		waitFor(t, 30*time.Second, func() (bool, string) {
			out, err := c.sb.Exec(c.sb.Outside, "curl", "-s", "--max-time", "2", url)
			return err == nil && strings.TrimSpace(out) == "b", out
		})
	})
	t.Run("the scheduler spreads an RC's pods over the nodes", func(t *testing.T) {
		c.apply(t, `apiVersion: v1
kind: ReplicationController
metadata:
  name: spread
spec:
  replicas: 6
  selector:
    app: spread
  template:
    metadata:
      labels:
        app: spread
    spec:
      containers:
      - name: c
        image: busybox
        command: ["sleep", "3600"]
`)
		waitFor(t, 60*time.Second, func() (bool, string) {
			out, _ := c.Kubectl("get", "pods", "-l", "app=spread", "-o", "jsonpath={range .items[*]}{.spec.nodeName} {.status.phase}{\"\\n\"}{end}")
			perNode := map[string]int{}
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				if f := strings.Fields(l); len(f) == 2 && f[1] == "Running" {
					perNode[f[0]]++
				}
			}
			return len(perNode) == 3 && perNode["node-1"]+perNode["node-2"]+perNode["node-3"] == 6, fmt.Sprint(perNode, "\n", out)
		})
	})
	t.Run("a stopped node's route goes after the grace period and comes back", func(t *testing.T) {
		podCIDR, _ := c.Kubectl("get", "node", "node-2", "-o", "jsonpath={.spec.podCIDR}")
		routed := func() (bool, string) {
			out, _ := c.sb.Exec(c.sb.Nodes[0], "ip", "route", "show", podCIDR)
			return strings.Contains(out, "via "+c.sb.Nodes[1].IP), out
		}
		if ok, out := routed(); !ok {
			t.Fatalf("node-1 does not route node-2's %s: %q", podCIDR, out)
		}
		stopped := time.Now()
		c.agents[0].Stop()
		waitFor(t, 90*time.Second, func() (bool, string) { ok, out := routed(); return !ok, out })
		t.Logf("route removed %v after the agent stopped", time.Since(stopped).Round(time.Second))
		c.agents[0].Restart()
		waitFor(t, 60*time.Second, func() (bool, string) { return routed() })
		waitFor(t, 60*time.Second, func() (bool, string) {
			out, _ := c.Kubectl("exec", "a", "--", "curl", "-s", "--max-time", "2", "http://"+bIPAfterRestart(c)+":8080/clientip")
			return hostOf(out) == aIP, out
		})
	})
}

// bIPAfterRestart is pod b's address (a clean stop removed its sandbox; the
// restarted agent gave it a new one).
func bIPAfterRestart(c *cluster) string {
	out, _ := c.Kubectl("get", "pod", "b", "-o", "jsonpath={.status.podIP}")
	return strings.TrimSpace(out)
}
