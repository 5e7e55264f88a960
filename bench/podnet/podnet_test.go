// Package podnet measures the pod network across nodes against the
// physical limit of the sandbox: two nodes' own namespaces talking over the
// same links. Figures: TCP connect latency p50/p99 and HTTP throughput,
// pod to pod across nodes and node to node, and the time from a node
// joining to the other node routing its pod range.
package podnet

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wharf-io/wharf/test/e2e/framework"
	"github.com/wharf-io/wharf/test/e2e/sandbox"
)

// TestPodNetworkBench: `WHARF_BENCH=1 go test -v -run TestPodNetworkBench ./bench/podnet/`.
func TestPodNetworkBench(t *testing.T) {
	if os.Getenv("WHARF_BENCH") != "1" || testing.Short() {
		t.Skip("set WHARF_BENCH=1 to run the pod network benchmark")
	}
	sb := sandbox.New(t, sandbox.Options{Nodes: 2})
	n1, n2 := sb.Nodes[0], sb.Nodes[1]
	flags := func(i int) []string {
		return []string{fmt.Sprintf("--node-name=node-%d", i), fmt.Sprintf("--netns-prefix=wharf-%s-pod-n%d-", sb.ID, i),
			"--dns-upstream=" + sb.Resolver.IP + ":53"}
	}
	s := framework.Start(t, framework.Options{Agent: true, Netns: n1.NetnsPath(),
		Extra: append(flags(1), "--bind-address=0.0.0.0", "--advertise-address="+n1.IP)})
	joined := time.Now()
	framework.StartAgent(t, framework.AgentOptions{Server: fmt.Sprintf("https://%s:%d", n1.IP, s.Port),
		TokenFile: filepath.Join(s.DataDir, "token"), Netns: n2.NetnsPath(), Extra: flags(2)})
	wait(t, 90*time.Second, func() bool {
		out, _ := sb.Exec(n1, "ip", "route", "show", "proto", "87")
		return strings.Contains(out, "via "+n2.IP)
	})
	t.Logf("node-2 agent start -> node-1 routes its pod range: %v", time.Since(joined).Round(time.Millisecond))

	for _, p := range []struct{ name, node string }{{"server", "node-2"}, {"client", "node-1"}} {
		s.MustKubectlIn(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  nodeName: %s
  containers:
  - name: c
    image: wharf/netexec
    readinessProbe:
      tcpSocket:
        port: 8080
      periodSeconds: 1
`, p.name, p.node), "apply", "-f", "-")
	}
	var serverIP string
	wait(t, 60*time.Second, func() bool {
		out, _ := s.Kubectl("get", "pod", "server", "client", "-o", `jsonpath={.items[*].status.conditions[?(@.type=="Ready")].status}`)
		ip, _ := s.Kubectl("get", "pod", "server", "-o", "jsonpath={.status.podIP}")
		serverIP = strings.TrimSpace(ip)
		return out == "True True" && serverIP != ""
	})
	sb.Start(n2, framework.Binary(t), "netexec", "--http-port=18080")
	time.Sleep(time.Second)

	const conns, size = 200, 256 << 20
	script := func(url string) string {
		return fmt.Sprintf(`for i in $(seq %d); do curl -s -o /dev/null -w "%%{time_connect}\n" %s/hostname; done;
curl -s -o /dev/null -w "speed %%{speed_download}\n" "%s/bytes?n=%d"`, conns, url, url, size)
	}
	podOut := s.MustKubectl("exec", "client", "--", "sh", "-c", script("http://"+serverIP+":8080"))
	nodeOut, err := sb.Exec(n1, "sh", "-c", script("http://"+n2.IP+":18080"))
	if err != nil {
		t.Fatalf("node to node: %v\n%s", err, nodeOut)
	}
	pod, node := parse(t, podOut), parse(t, nodeOut)
	t.Logf("TCP connect across nodes over %d connections: pod->pod p50 %v p99 %v; node->node p50 %v p99 %v; ratio p50 %.2f p99 %.2f",
		conns, pod.p50, pod.p99, node.p50, node.p99, ratio(pod.p50, node.p50), ratio(pod.p99, node.p99))
	t.Logf("HTTP throughput (%d MiB): pod->pod %.0f MiB/s, node->node %.0f MiB/s, ratio %.2f",
		size>>20, pod.mibps, node.mibps, pod.mibps/node.mibps)
}

type result struct {
	p50, p99 time.Duration
	mibps    float64
}

func parse(t *testing.T, out string) result {
	var lat []time.Duration
	var r result
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "speed "); ok {
			bps, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			r.mibps = bps / (1 << 20)
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(l), 64); err == nil && f > 0 {
			lat = append(lat, time.Duration(f*float64(time.Second)))
		}
	}
	if len(lat) < 10 || r.mibps == 0 {
		t.Fatalf("unparsable output:\n%s", out)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	r.p50, r.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	return r
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

func wait(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
