package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wharf-io/wharf/test/e2e/framework"
	"github.com/wharf-io/wharf/test/e2e/sandbox"
)

// TestChapterWalkingSkeleton is the chapter's narrowest path end to end on
// one sandbox node: chapter 2's pod and RC, listing 3-1's service, and
// `kubectl exec node-js-pod -- curl node-js-internal` through the nftables
// proxy and cluster DNS; outside names resolve through the upstream.
func TestChapterWalkingSkeleton(t *testing.T) {
	sb := sandbox.New(t, sandbox.Options{Nodes: 1})
	node := sb.Nodes[0]
	sb.ServeDNS(sb.Resolver, map[string]string{"outside.example.": sb.Outside.IP})
	s := framework.Start(t, framework.Options{Agent: true, Netns: node.NetnsPath(), Extra: []string{
		"--node-name=node-1", "--netns-prefix=wharf-" + sb.ID + "-pod-", "--dns-upstream=" + sb.Resolver.IP + ":53",
	}})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("wharf log:\n%s", tail(s.Log(), 60))
		}
	})
	waitFor(t, 60*time.Second, func() (bool, string) {
		out, _ := s.Kubectl("get", "sa", "default")
		return strings.Contains(out, "default"), out
	})
	dir := chapterDir(t)
	for _, f := range []string{"00-prereqs/nodejs-pod.yaml", "00-prereqs/nodejs-health-controller-2.yaml",
		"listing-3-01-nodejs-service-internal.yaml"} {
		s.MustKubectl("apply", "-f", filepath.Join(dir, f))
	}
	client := s.Client()
	ctx := context.Background()
	waitFor(t, 90*time.Second, func() (bool, string) {
		ep, err := client.CoreV1().Endpoints("default").Get(ctx, "node-js-internal", metav1.GetOptions{})
		if err != nil || len(ep.Subsets) == 0 {
			return false, "no endpoints yet"
		}
		out, _ := s.Kubectl("get", "pods", "-o", "wide")
		return len(ep.Subsets[0].Addresses) == 3 && strings.Contains(out, "node-js-pod"), out
	})
	waitFor(t, 60*time.Second, func() (bool, string) {
		out, _ := s.Kubectl("get", "pod", "node-js-pod", "-o", "jsonpath={.status.phase}")
		return out == "Running", out
	})
	svc, _ := client.CoreV1().Services("default").Get(ctx, "node-js-internal", metav1.GetOptions{})

	t.Run("exec node-js-pod -- curl node-js-internal", func(t *testing.T) {
		waitFor(t, 30*time.Second, func() (bool, string) {
			out, _ := s.Kubectl("exec", "node-js-pod", "--", "curl", "-s", "--max-time", "3", "node-js-internal")
			return strings.Contains(out, "Pod Information"), out
		})
	})
	t.Run("by cluster IP from a pod and from the node", func(t *testing.T) {
		out := s.MustKubectl("exec", "node-js-pod", "--", "curl", "-s", "--max-time", "3", "http://"+svc.Spec.ClusterIP)
		if !strings.Contains(out, "Pod Information") {
			t.Errorf("pod -> cluster IP: %q", out)
		}
		out, err := sb.Exec(node, "curl", "-s", "--max-time", "3", "http://"+svc.Spec.ClusterIP)
		if err != nil || !strings.Contains(out, "Pod Information") {
			t.Errorf("node -> cluster IP: %v %q", err, out)
		}
	})
	t.Run("cluster DNS names and outside names", func(t *testing.T) {
		for _, name := range []string{"node-js-internal", "node-js-internal.default", "node-js-internal.default.svc.cluster.local",
			"node-js-internal.default.cluster.local"} {
			out, err := s.Kubectl("exec", "node-js-pod", "--", "getent", "hosts", name)
			if err != nil || !strings.HasPrefix(out, svc.Spec.ClusterIP+" ") {
				t.Errorf("getent hosts %s: %v %q", name, err, out)
			}
		}
		out, err := s.Kubectl("exec", "node-js-pod", "--", "getent", "hosts", "outside.example")
		if err != nil || !strings.HasPrefix(out, sb.Outside.IP+" ") {
			t.Errorf("outside.example: %v %q", err, out)
		}
	})
	t.Run("headless service: one A record per ready pod, following the RC (C17)", func(t *testing.T) {
		s.MustKubectl("apply", "-f", filepath.Join(dir, "listing-3-12-nodejs-headless-service.yaml"))
		count := func() (int, string) {
			out, _ := s.Kubectl("exec", "node-js-pod", "--", "dig", "+short", "node-js-none.default.svc.cluster.local")
			return len(strings.Fields(out)), out
		}
		waitFor(t, 20*time.Second, func() (bool, string) { n, out := count(); return n == 3, out })
		s.MustKubectl("scale", "rc", "node-js", "--replicas=2")
		waitFor(t, 20*time.Second, func() (bool, string) { n, out := count(); return n == 2, out })
		out := s.MustKubectl("exec", "node-js-pod", "--", "curl", "-s", "--max-time", "3", "node-js-none")
		if !strings.Contains(out, "Pod Information") {
			t.Errorf("curl node-js-none: %q", out)
		}
	})
	t.Run("SRV for named ports, ExternalName, other namespaces", func(t *testing.T) {
		s.MustKubectl("apply", "-f", filepath.Join(dir, "listing-3-06-nodejs-multi-service.yaml"))
		waitFor(t, 20*time.Second, func() (bool, string) {
			out, _ := s.Kubectl("exec", "node-js-pod", "--", "dig", "+short", "SRV", "_fake-admin-http._tcp.node-js-multi.default.svc.cluster.local")
			return strings.Contains(out, " 8888 node-js-multi.default.svc.cluster.local."), out
		})
		s.MustKubectl("create", "service", "externalname", "elsewhere", "--external-name=outside.example")
		waitFor(t, 20*time.Second, func() (bool, string) {
			out, _ := s.Kubectl("exec", "node-js-pod", "--", "dig", "+short", "elsewhere.default.svc.cluster.local")
			return strings.Contains(out, "outside.example.") && strings.Contains(out, sb.Outside.IP), out
		})
		s.MustKubectl("create", "namespace", "test")
		s.MustKubectlIn(`apiVersion: v1
kind: Pod
metadata:
  name: probe
  namespace: test
spec:
  containers:
  - name: c
    image: busybox
    command: ["sleep", "3600"]
`, "apply", "-f", "-")
		waitFor(t, 60*time.Second, func() (bool, string) {
			out, _ := s.Kubectl("-n", "test", "get", "pod", "probe", "-o", "jsonpath={.status.phase}")
			return out == "Running", out
		})
		if out, err := s.Kubectl("-n", "test", "exec", "probe", "--", "getent", "hosts", "node-js-internal"); err == nil {
			t.Errorf("the short name resolved from namespace test: %q", out)
		}
		for _, name := range []string{"node-js-internal.default", "node-js-internal.default.svc.cluster.local"} {
			if out, err := s.Kubectl("-n", "test", "exec", "probe", "--", "getent", "hosts", name); err != nil || !strings.HasPrefix(out, svc.Spec.ClusterIP+" ") {
				t.Errorf("%s from namespace test: %v %q", name, err, out)
			}
		}
	})
	t.Run("a service with no endpoints refuses at once", func(t *testing.T) {
		s.MustKubectl("create", "service", "clusterip", "empty", "--tcp=80:80")
		empty, _ := client.CoreV1().Services("default").Get(ctx, "empty", metav1.GetOptions{})
		waitFor(t, 10*time.Second, func() (bool, string) {
			start := time.Now()
			out, err := s.Kubectl("exec", "node-js-pod", "--", "curl", "-s", "--max-time", "3", "http://"+empty.Spec.ClusterIP)
			return err != nil && strings.Contains(out, "exit code 7") && time.Since(start) < 2*time.Second, out
		})
	})
}

// chapterDir is examples/chapter3.
func chapterDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "examples", "chapter3"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
