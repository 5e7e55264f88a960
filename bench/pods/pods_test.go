// Package pods measures the node agent: pod create to Ready over 100 pods
// (IP assigned, process started, a trivial readiness probe passed), the
// wharf process's RSS with 100 pods, and deleting them all.
package pods

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/wharf-io/wharf/test/e2e/framework"
	"github.com/wharf-io/wharf/test/e2e/sandbox"
)

// TestPodsBench: `WHARF_BENCH=1 go test -v -run TestPodsBench ./bench/pods/`.
func TestPodsBench(t *testing.T) {
	if os.Getenv("WHARF_BENCH") != "1" || testing.Short() {
		t.Skip("set WHARF_BENCH=1 to run the pods benchmark")
	}
	const n = 100
	sb := sandbox.New(t, sandbox.Options{Nodes: 1})
	prefix := "wharf-" + sb.ID + "-pod-"
	s := framework.Start(t, framework.Options{Agent: true, Netns: sb.Nodes[0].NetnsPath(),
		Extra: []string{"--node-name=node-1", "--netns-prefix=" + prefix, "--dns-upstream=" + sb.Resolver.IP + ":53"}})
	client := s.Client()
	ctx := context.Background()
	for {
		if _, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	w, err := client.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{LabelSelector: "app=bench"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	created := map[string]time.Time{}
	ready := map[string]time.Duration{}
	done := make(chan struct{})
	go func() {
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || ev.Type == watch.Deleted {
				continue
			}
			mu.Lock()
			if _, seen := ready[p.Name]; !seen && isReady(p) {
				ready[p.Name] = time.Since(created[p.Name])
				if len(ready) == n {
					close(done)
				}
			}
			mu.Unlock()
		}
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("bench-%03d", i)
		mu.Lock()
		created[name] = time.Now()
		mu.Unlock()
		if _, err := client.CoreV1().Pods("default").Create(ctx, benchPod(name), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		t.Fatalf("only %d of %d pods ready", len(ready), n)
	}
	all := time.Since(start)
	var d []time.Duration
	for _, v := range ready {
		d = append(d, v)
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	t.Logf("create -> Ready over %d pods: p50 %v p99 %v max %v (all ready %v after the first create)",
		n, d[n/2].Round(time.Millisecond), d[n*99/100-1].Round(time.Millisecond), d[n-1].Round(time.Millisecond), all.Round(time.Millisecond))
	time.Sleep(3 * time.Second)
	t.Logf("wharf up (server + agent) RSS with %d pods: %d MiB", n, rssMiB(s.PID()))
	start = time.Now()
	if err := client.CoreV1().Pods("default").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "app=bench"}); err != nil {
		t.Fatal(err)
	}
	for {
		l, _ := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=bench"})
		if len(l.Items) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("deleting %d pods until none is left: %v; leftovers: %s", n, time.Since(start).Round(time.Millisecond), leftovers(prefix, s.DataDir))
}

func benchPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "bench"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "web", Image: "wharf/netexec",
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1},
		}}},
	}
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func rssMiB(pid int) int {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return kb / 1024
		}
	}
	return 0
}

func leftovers(prefix, dataDir string) string {
	var left []string
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			left = append(left, e.Name())
		}
	}
	ips, _ := filepath.Glob(filepath.Join(dataDir, "cni", "ipam", "*", "10.*"))
	left = append(left, ips...)
	states, _ := os.ReadDir(filepath.Join(dataDir, "containers"))
	for _, s := range states {
		left = append(left, s.Name())
	}
	if len(left) == 0 {
		return "none"
	}
	return strings.Join(left, ", ")
}
