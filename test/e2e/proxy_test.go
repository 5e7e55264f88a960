package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestServiceProxyOneNode: the chapter's services through the nftables
// proxy on one node: listing 3-4's port 90 to container port 80 (C10),
// listing 3-6's two named ports (C11), a LoadBalancer on the node's
// address from the outside host, ClientIP affinity (C8) against random
// choice, and hairpin (a pod reaching itself through its service).
func TestServiceProxyOneNode(t *testing.T) {
	c := startPodCluster(t)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := c.sb.Exec(c.node, "nft", "list", "table", "ip", "wharf")
			t.Logf("nft ruleset:\n%s", out)
			out, _ = c.Kubectl("get", "endpointslices", "-o", "wide")
			t.Logf("slices:\n%s", out)
		}
	})
	dir := chapterDir(t)
	for _, f := range []string{"listing-3-03-nodejs-customPort-controller.yaml", "listing-3-04-nodejs-customPort-service.yaml",
		"listing-3-05-nodejs-multi-controller.yaml", "listing-3-06-nodejs-multi-service.yaml"} {
		c.MustKubectl("apply", "-f", filepath.Join(dir, f))
	}
	c.MustKubectlIn(`apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  containers:
  - name: c
    image: busybox
    command: ["sleep", "3600"]
`, "apply", "-f", "-")
	c.runningPod(t, "client")
	curl := func(url string) (string, error) {
		return c.Kubectl("exec", "client", "--", "curl", "-s", "--max-time", "3", url)
	}

	t.Run("listing 3-6's service variables in a later pod (C20)", func(t *testing.T) {
		out := c.MustKubectl("exec", "client", "--", "env")
		for _, want := range []string{"NODE_JS_MULTI_SERVICE_PORT_FAKE_ADMIN_HTTP=8888", "NODE_JS_MULTI_SERVICE_PORT_HTTP=80",
			"NODE_JS_90_SERVICE_PORT=90", "NODE_JS_90_PORT_90_TCP_PORT=90"} {
			if !strings.Contains(out, want) {
				t.Errorf("env lacks %s", want)
			}
		}
	})
	t.Run("port 90 to targetPort 80 (listing 3-4)", func(t *testing.T) {
		waitFor(t, 60*time.Second, func() (bool, string) {
			out, _ := curl("http://node-js-90:90/")
			return strings.Contains(out, "Pod Information"), out
		})
	})
	t.Run("two named ports (listing 3-6)", func(t *testing.T) {
		for _, port := range []string{"80", "8888"} {
			waitFor(t, 60*time.Second, func() (bool, string) {
				out, _ := curl("http://node-js-multi:" + port + "/")
				return strings.Contains(out, "Port</th><td>"+port), out
			})
		}
	})
	t.Run("LoadBalancer on the node's address from outside", func(t *testing.T) {
		waitFor(t, 30*time.Second, func() (bool, string) {
			svc, err := c.client.CoreV1().Services("default").Get(context.Background(), "node-js-90", metav1.GetOptions{})
			return err == nil && len(svc.Status.LoadBalancer.Ingress) > 0 && svc.Status.LoadBalancer.Ingress[0].IP == c.node.IP,
				fmt.Sprint(svc.Status.LoadBalancer, err)
		})
		waitFor(t, 30*time.Second, func() (bool, string) {
			out, err := c.sb.Exec(c.sb.Outside, "curl", "-s", "--max-time", "2", "http://"+c.node.IP+":90/")
			return err == nil && strings.Contains(out, "Pod Information"), out
		})
	})
	t.Run("ClientIP affinity keeps one client on one pod (C8)", func(t *testing.T) {
		c.MustKubectlIn(`apiVersion: v1
kind: ReplicationController
metadata:
  name: echo
spec:
  replicas: 3
  selector:
    app: echo
  template:
    metadata:
      labels:
        app: echo
    spec:
      containers:
      - name: web
        image: wharf/netexec
        readinessProbe:
          tcpSocket:
            port: 8080
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: sticky
spec:
  selector:
    app: echo
  sessionAffinity: ClientIP
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: spread
spec:
  selector:
    app: echo
  ports:
  - port: 80
    targetPort: 8080
`, "apply", "-f", "-")
		waitFor(t, 60*time.Second, func() (bool, string) {
			ep, err := c.client.CoreV1().Endpoints("default").Get(context.Background(), "spread", metav1.GetOptions{})
			return err == nil && len(ep.Subsets) == 1 && len(ep.Subsets[0].Addresses) == 3, fmt.Sprint(ep, err)
		})
		hosts := func(svc string) map[string]int {
			script := fmt.Sprintf("for i in $(seq 1 30); do curl -s --max-time 2 http://%s/hostname; echo; done", svc)
			out, _ := c.Kubectl("exec", "client", "--", "sh", "-c", script)
			seen := map[string]int{}
			for _, h := range strings.Fields(out) {
				if strings.HasPrefix(h, "echo-") {
					seen[h]++
				}
			}
			return seen
		}
		if seen := hosts("sticky"); len(seen) != 1 {
			t.Errorf("affinity: 30 connections reached %v", seen)
		}
		if seen := hosts("spread"); len(seen) < 2 {
			t.Errorf("no affinity: 30 connections reached only %v", seen)
		}
	})
	t.Run("hairpin: a pod reaches itself through its service", func(t *testing.T) {
		// (Not a service named like the pod: the pod's /etc/hosts maps its
		// own name to its own IP.)
		c.MustKubectlIn(fmt.Sprintf(netexecPod, "self", "self")+`---
apiVersion: v1
kind: Service
metadata:
  name: hairpin
spec:
  selector:
    app: self
  ports:
  - port: 80
    targetPort: 8080
`, "apply", "-f", "-")
		c.runningPod(t, "self")
		waitFor(t, 30*time.Second, func() (bool, string) {
			out, _ := c.Kubectl("exec", "self", "--", "curl", "-s", "--max-time", "2", "http://hairpin/hostname")
			return strings.TrimSpace(out) == "self", out
		})
	})
}
