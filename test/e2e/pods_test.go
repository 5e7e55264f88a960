package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/wharf-io/wharf/test/e2e/framework"
	"github.com/wharf-io/wharf/test/e2e/sandbox"
)

// podCluster is `wharf up` with its agent in a one-node sandbox.
type podCluster struct {
	*framework.Server
	sb     *sandbox.Sandbox
	node   *sandbox.Host
	prefix string
	client kubernetes.Interface
}

func startPodCluster(t *testing.T) *podCluster {
	t.Helper()
	sb := sandbox.New(t, sandbox.Options{Nodes: 1})
	node := sb.Nodes[0]
	prefix := "wharf-" + sb.ID + "-pod-"
	s := framework.Start(t, framework.Options{Agent: true, Netns: node.NetnsPath(), Extra: []string{
		"--node-name=node-1", "--netns-prefix=" + prefix, "--bind-address=0.0.0.0",
		"--dns-upstream=" + sb.Resolver.IP + ":53", // nothing leaves the sandbox
	}})
	c := &podCluster{Server: s, sb: sb, node: node, prefix: prefix, client: s.Client()}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("wharf log:\n%s", tail(s.Log(), 80))
		}
	})
	waitFor(t, 60*time.Second, func() (bool, string) {
		out, _ := s.Kubectl("get", "sa", "default")
		return strings.Contains(out, "default"), out
	})
	return c
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// runningPod waits until a pod runs and is ready, and returns it.
func (c *podCluster) runningPod(t *testing.T, name string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	waitFor(t, 60*time.Second, func() (bool, string) {
		p, err := c.client.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		pod = p
		return p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" && podReady(p), fmt.Sprintf("%+v", p.Status)
	})
	return pod
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

const netexecPod = `apiVersion: v1
kind: Pod
metadata:
  name: %s
  labels:
    app: %s
spec:
  containers:
  - name: web
    image: wharf/netexec
    args: ["--http-port=8080"]
    ports:
    - containerPort: 8080
    readinessProbe:
      tcpSocket:
        port: 8080
      periodSeconds: 1
`

// TestPodsRunWithTheirOwnIPs is the node agent's walk: pods get their own
// IPs in their own namespaces (C1, C2), see the service variables (C20),
// their own name and the cluster's resolv.conf; probes feed Endpoints;
// exits restart; logs, exec and port-forward work through the API server;
// deleting pods leaves nothing behind; an agent kill -9 loses no pod.
func TestPodsRunWithTheirOwnIPs(t *testing.T) {
	c := startPodCluster(t)
	ctx := context.Background()
	c.MustKubectl("create", "service", "clusterip", "early", "--tcp=8080:8080")
	for _, name := range []string{"a", "b"} {
		c.MustKubectlIn(fmt.Sprintf(netexecPod, name, name), "apply", "-f", "-")
	}
	a, b := c.runningPod(t, "a"), c.runningPod(t, "b")
	node, _ := c.client.CoreV1().Nodes().Get(ctx, "node-1", metav1.GetOptions{})
	_, podCIDR, _ := net.ParseCIDR(node.Spec.PodCIDR)
	if a.Status.PodIP == b.Status.PodIP || !podCIDR.Contains(net.ParseIP(a.Status.PodIP)) || !podCIDR.Contains(net.ParseIP(b.Status.PodIP)) {
		t.Fatalf("pod IPs %s %s, node podCIDR %s", a.Status.PodIP, b.Status.PodIP, node.Spec.PodCIDR)
	}
	if a.Status.HostIP != c.node.IP {
		t.Errorf("hostIP %s, want %s", a.Status.HostIP, c.node.IP)
	}

	t.Run("no NAT between pods (C1)", func(t *testing.T) {
		out := c.MustKubectl("exec", "a", "--", "curl", "-s", "http://"+b.Status.PodIP+":8080/clientip")
		if host, _, _ := net.SplitHostPort(strings.TrimSpace(out)); host != a.Status.PodIP {
			t.Errorf("b saw the client as %q, want a's IP %s", out, a.Status.PodIP)
		}
	})
	t.Run("hostname -i is the pod IP", func(t *testing.T) {
		out := c.MustKubectl("exec", "a", "--", "hostname", "-i")
		if strings.TrimSpace(out) != a.Status.PodIP {
			t.Errorf("hostname -i: %q, want %s", out, a.Status.PodIP)
		}
		if out := c.MustKubectl("exec", "a", "--", "hostname"); strings.TrimSpace(out) != "a" {
			t.Errorf("hostname: %q", out)
		}
	})
	t.Run("resolv.conf has the cluster settings", func(t *testing.T) {
		out := c.MustKubectl("exec", "a", "--", "cat", "/etc/resolv.conf")
		for _, want := range []string{"search default.svc.cluster.local svc.cluster.local cluster.local", "nameserver 10.96.0.10", "options ndots:5"} {
			if !strings.Contains(out, want) {
				t.Errorf("resolv.conf lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("service variables for services that existed first (C20)", func(t *testing.T) {
		c.MustKubectl("create", "service", "clusterip", "late", "--tcp=8080:8080")
		out := c.MustKubectl("exec", "a", "--", "env")
		early, _ := c.client.CoreV1().Services("default").Get(ctx, "early", metav1.GetOptions{})
		for _, want := range []string{"EARLY_SERVICE_HOST=" + early.Spec.ClusterIP, "EARLY_SERVICE_PORT=8080",
			"EARLY_PORT=tcp://" + early.Spec.ClusterIP + ":8080", "EARLY_PORT_8080_TCP_PROTO=tcp", "KUBERNETES_SERVICE_HOST="} {
			if !strings.Contains(out, want) {
				t.Errorf("env lacks %s:\n%s", want, out)
			}
		}
		if strings.Contains(out, "LATE_SERVICE_HOST") {
			t.Errorf("a service created after the pod is in its env:\n%s", out)
		}
		if strings.Contains(out, "KUBE_DNS_SERVICE_HOST") {
			t.Errorf("a kube-system service is in a default-namespace pod's env:\n%s", out)
		}
	})
	t.Run("two containers share localhost (C2) and the downward API", func(t *testing.T) {
		c.MustKubectlIn(`apiVersion: v1
kind: Pod
metadata:
  name: duo
spec:
  containers:
  - name: web
    image: wharf/netexec
    args: ["--http-port=8081"]
    readinessProbe:
      httpGet:
        path: /healthz
        port: 8081
      periodSeconds: 1
  - name: side
    image: busybox
    command: ["sleep", "3600"]
    env:
    - name: MY_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    - name: MY_IP
      valueFrom:
        fieldRef:
          fieldPath: status.podIP
`, "apply", "-f", "-")
		duo := c.runningPod(t, "duo")
		out := c.MustKubectl("exec", "duo", "-c", "side", "--", "curl", "-s", "http://localhost:8081/hostname")
		if strings.TrimSpace(out) != "duo" {
			t.Errorf("side -> localhost:8081: %q", out)
		}
		out = c.MustKubectl("exec", "duo", "-c", "side", "--", "sh", "-c", "echo $MY_NAME $MY_IP")
		if strings.TrimSpace(out) != "duo "+duo.Status.PodIP {
			t.Errorf("downward API: %q", out)
		}
	})
	t.Run("exec exit codes, over WebSocket and SPDY", func(t *testing.T) {
		for _, ws := range []string{"true", "false"} {
			cmd := exec.Command(c.Bin, "kubectl", "--kubeconfig", c.Kubeconfig, "-v=7", "exec", "a", "--", "sh", "-c", "echo hi; exit 7")
			cmd = c.wrap(cmd, "KUBECTL_REMOTE_COMMAND_WEBSOCKETS="+ws)
			out, err := cmd.CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 7 || !strings.Contains(string(out), "hi") {
				t.Errorf("websockets=%s: exit %v, out:\n%s", ws, err, tail(string(out), 20))
			}
			proto := "v5.channel.k8s.io"
			if ws == "false" {
				proto = "v4.channel.k8s.io"
			}
			if !strings.Contains(string(out), proto) {
				t.Errorf("websockets=%s: protocol %s not negotiated:\n%s", ws, proto, tail(string(out), 30))
			}
		}
	})
	t.Run("logs and restarts", func(t *testing.T) {
		c.MustKubectlIn(`apiVersion: v1
kind: Pod
metadata:
  name: crash
spec:
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "echo run at $(date +%s%N); sleep 1; exit 3"]
`, "apply", "-f", "-")
		waitFor(t, 60*time.Second, func() (bool, string) {
			p, err := c.client.CoreV1().Pods("default").Get(ctx, "crash", metav1.GetOptions{})
			if err != nil || len(p.Status.ContainerStatuses) == 0 {
				return false, fmt.Sprint(err)
			}
			cs := p.Status.ContainerStatuses[0]
			return cs.RestartCount >= 1 && cs.LastTerminationState.Terminated != nil &&
				cs.LastTerminationState.Terminated.ExitCode == 3, fmt.Sprintf("%+v", cs)
		})
		if out := c.MustKubectl("logs", "crash", "--previous"); !strings.Contains(out, "run at") {
			t.Errorf("logs --previous: %q", out)
		}
		if out := c.MustKubectl("logs", "a", "--tail=5"); !strings.Contains(out, "netexec: serving HTTP on port 8080") {
			t.Errorf("logs a: %q", out)
		}
	})
	t.Run("port-forward", func(t *testing.T) {
		port := framework.FreePort(t)
		cmd := c.wrap(exec.Command(c.Bin, "kubectl", "--kubeconfig", c.Kubeconfig, "port-forward", "pod/a", fmt.Sprintf("%d:8080", port)))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		waitFor(t, 20*time.Second, func() (bool, string) {
			out, err := c.sb.Exec(c.node, "curl", "-s", "--max-time", "2", fmt.Sprintf("http://127.0.0.1:%d/hostname", port))
			return err == nil && strings.TrimSpace(out) == "a", out
		})
	})
	t.Run("readiness probe moves the pod in and out of Endpoints", func(t *testing.T) {
		c.MustKubectlIn(`apiVersion: v1
kind: Pod
metadata:
  name: gated
  labels:
    app: gated
spec:
  containers:
  - name: web
    image: wharf/netexec
    readinessProbe:
      exec:
        command: ["cat", "/tmp/ready"]
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Service
metadata:
  name: gated
spec:
  selector:
    app: gated
  ports:
  - port: 80
    targetPort: 8080
`, "apply", "-f", "-")
		endpoints := func() string {
			ep, err := c.client.CoreV1().Endpoints("default").Get(ctx, "gated", metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			var ips []string
			for _, s := range ep.Subsets {
				for _, a := range s.Addresses {
					ips = append(ips, a.IP)
				}
			}
			return strings.Join(ips, " ")
		}
		waitFor(t, 60*time.Second, func() (bool, string) {
			out, _ := c.Kubectl("get", "pod", "gated", "-o", "jsonpath={.status.phase}")
			return out == "Running", out
		})
		if ep := endpoints(); ep != "" {
			t.Fatalf("not-ready pod in endpoints: %q", ep)
		}
		c.MustKubectl("exec", "gated", "--", "touch", "/tmp/ready")
		waitFor(t, 20*time.Second, func() (bool, string) { ep := endpoints(); return ep != "", ep })
		c.MustKubectl("exec", "gated", "--", "rm", "/tmp/ready")
		waitFor(t, 20*time.Second, func() (bool, string) { ep := endpoints(); return ep == "", ep })
	})
	t.Run("in-cluster client-go with the pod's service-account token", func(t *testing.T) {
		c.MustKubectl("create", "rolebinding", "default-view", "--clusterrole=view", "--serviceaccount=default:default")
		// kubectl in the pod finds the API server as client-go does: the
		// kubernetes service's address (through the proxy) and the mounted
		// service-account token and CA.
		c.MustKubectlIn(`apiVersion: v1
kind: Pod
metadata:
  name: incluster
spec:
  restartPolicy: Never
  containers:
  - name: kubectl
    image: wharf/agnhost
    args: ["kubectl", "get", "services", "-o", "name"]
`, "apply", "-f", "-")
		waitFor(t, 60*time.Second, func() (bool, string) {
			out, _ := c.Kubectl("get", "pod", "incluster", "-o", "jsonpath={.status.phase}")
			return out == "Succeeded" || out == "Failed", out
		})
		out := c.MustKubectl("logs", "incluster")
		if !strings.Contains(out, "service/early") || !strings.Contains(out, "service/kubernetes") {
			t.Errorf("in-cluster kubectl listed:\n%s", out)
		}
		if out := c.MustKubectl("exec", "a", "--", "ls", "/var/run/secrets/kubernetes.io/serviceaccount"); !strings.Contains(out, "token") ||
			!strings.Contains(out, "ca.crt") || !strings.Contains(out, "namespace") {
			t.Errorf("service account mount: %q", out)
		}
	})
	t.Run("an image not in the table fails the pod clearly", func(t *testing.T) {
		c.MustKubectlIn(`apiVersion: v1
kind: Pod
metadata:
  name: noimage
spec:
  containers:
  - name: c
    image: example.com/nosuch/image:1.0
`, "apply", "-f", "-")
		waitFor(t, 30*time.Second, func() (bool, string) {
			out, _ := c.Kubectl("get", "pod", "noimage", "-o", "jsonpath={.status.containerStatuses[0].state.waiting.reason}")
			return out == "ErrImagePull" || out == "ImagePullBackOff", out
		})
		out := c.MustKubectl("describe", "pod", "noimage")
		if !strings.Contains(out, `Failed to pull image "example.com/nosuch/image:1.0"`) {
			t.Errorf("describe shows no pull failure:\n%s", out)
		}
	})
	t.Run("exec and attach with stdin", func(t *testing.T) {
		if out := c.MustKubectlIn("hello stdin\n", "exec", "-i", "a", "--", "cat"); strings.TrimSpace(out) != "hello stdin" {
			t.Errorf("exec -i cat: %q", out)
		}
		c.MustKubectlIn(`apiVersion: v1
kind: Pod
metadata:
  name: reader
spec:
  containers:
  - name: r
    image: busybox
    command: ["sh", "-c", "echo ready; while read line; do echo got $line; done"]
    stdin: true
    stdinOnce: true
`, "apply", "-f", "-")
		waitFor(t, 60*time.Second, func() (bool, string) {
			out, _ := c.Kubectl("logs", "reader")
			return strings.Contains(out, "ready"), out
		})
		// stdinOnce: the container's stdin closes when the client's does,
		// the loop ends, the container exits and so does the attach.
		out, err := c.KubectlIn("ping\n", "attach", "-i", "reader")
		if err != nil {
			t.Errorf("attach: %v\n%s", err, out)
		}
		if !strings.Contains(out, "got ping") {
			t.Errorf("attach output: %q", out)
		}
		// The attempt that read stdin ended; the restarted one's log is new.
		waitFor(t, 20*time.Second, func() (bool, string) {
			logs, _ := c.Kubectl("logs", "reader", "--previous")
			return strings.Contains(logs, "got ping"), logs
		})
	})
	t.Run("host network, hostPort and dnsPolicy", func(t *testing.T) {
		c.MustKubectlIn(`apiVersion: v1
kind: Pod
metadata:
  name: onhost
spec:
  hostNetwork: true
  dnsPolicy: ClusterFirstWithHostNet
  containers:
  - name: web
    image: wharf/netexec
    args: ["--http-port=18080"]
---
apiVersion: v1
kind: Pod
metadata:
  name: ported
spec:
  dnsPolicy: None
  dnsConfig:
    nameservers: ["192.0.2.53"]
    searches: ["example.test"]
    options:
    - name: ndots
      value: "2"
  containers:
  - name: web
    image: wharf/netexec
    ports:
    - containerPort: 8080
      hostPort: 18081
`, "apply", "-f", "-")
		onhost := c.runningPod(t, "onhost")
		c.runningPod(t, "ported")
		if onhost.Status.PodIP != c.node.IP {
			t.Errorf("hostNetwork pod IP %s, want the node's %s", onhost.Status.PodIP, c.node.IP)
		}
		if out := c.MustKubectl("exec", "onhost", "--", "cat", "/etc/resolv.conf"); !strings.Contains(out, "nameserver 10.96.0.10") {
			t.Errorf("ClusterFirstWithHostNet resolv.conf:\n%s", out)
		}
		out := c.MustKubectl("exec", "ported", "--", "cat", "/etc/resolv.conf")
		if !strings.Contains(out, "nameserver 192.0.2.53") || !strings.Contains(out, "search example.test") ||
			!strings.Contains(out, "options ndots:2") || strings.Contains(out, "10.96.0.10") {
			t.Errorf("dnsPolicy None resolv.conf:\n%s", out)
		}
		// From the outside host, through the router, to the node's ports:
		// the host-network pod answers with the machine's hostname.
		for _, tc := range []struct {
			port int
			want string
		}{{18080, ""}, {18081, "ported"}} {
			url := fmt.Sprintf("http://%s:%d/hostname", c.node.IP, tc.port)
			waitFor(t, 20*time.Second, func() (bool, string) {
				out, err := c.sb.Exec(c.sb.Outside, "curl", "-s", "--max-time", "2", url)
				got := strings.TrimSpace(out)
				return err == nil && got != "" && (tc.want == "" || got == tc.want), url + ": " + out
			})
		}
	})
	t.Run("agent kill -9 keeps pods running with their IPs and logs", func(t *testing.T) {
		before := c.runningPod(t, "a")
		c.Kill9()
		// The container outlived the agent.
		if out, err := c.sb.Exec(c.node, "curl", "-s", "--max-time", "2", "http://"+before.Status.PodIP+":8080/hostname"); err != nil || out != "a" {
			t.Errorf("pod a while the agent is down: %q %v", out, err)
		}
		c.Restart()
		c.client = c.Client()
		time.Sleep(3 * time.Second)
		after := c.runningPod(t, "a")
		if after.Status.PodIP != before.Status.PodIP || after.Status.ContainerStatuses[0].RestartCount != before.Status.ContainerStatuses[0].RestartCount {
			t.Errorf("after restart: ip %s restarts %d, before %s %d", after.Status.PodIP, after.Status.ContainerStatuses[0].RestartCount,
				before.Status.PodIP, before.Status.ContainerStatuses[0].RestartCount)
		}
		if out := c.MustKubectl("exec", "a", "--", "hostname", "-i"); strings.TrimSpace(out) != before.Status.PodIP {
			t.Errorf("exec after restart: %q", out)
		}
	})
	t.Run("deleting 20 pods leaves nothing behind", func(t *testing.T) {
		var b strings.Builder
		for i := 0; i < 20; i++ {
			fmt.Fprintf(&b, netexecPod+"---\n", fmt.Sprintf("many-%d", i), "many")
		}
		c.MustKubectlIn(b.String(), "apply", "-f", "-")
		waitFor(t, 120*time.Second, func() (bool, string) {
			out, _ := c.Kubectl("get", "pods", "-l", "app=many", "--no-headers")
			return strings.Count(out, "Running") == 20, out
		})
		list, _ := c.client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		c.MustKubectl("delete", "pods", "--all", "--wait=true", "--timeout=90s")
		for _, p := range list.Items {
			if dirs, _ := filepath.Glob("/sys/fs/cgroup/*/wharf/pod" + string(p.UID)); len(dirs) > 0 {
				t.Errorf("cgroups left for pod %s: %v", p.Name, dirs)
			}
		}
		if left := c.leftovers(t); left != "" {
			t.Error(left)
		}
	})
}

// wrap runs cmd in the node's network namespace with extra env.
func (c *podCluster) wrap(cmd *exec.Cmd, env ...string) *exec.Cmd {
	w := exec.Command("nsenter", append([]string{"--net=" + c.node.NetnsPath(), "--"}, cmd.Args...)...)
	w.Env = append(append(os.Environ(), "HOME="+c.DataDir), env...)
	return w
}

// leftovers lists pod network namespaces, host-local IPs, veths and
// container processes that outlived their pods.
func (c *podCluster) leftovers(t *testing.T) string {
	var left []string
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), c.prefix) {
			left = append(left, "netns "+e.Name())
		}
	}
	ips, _ := filepath.Glob(filepath.Join(c.DataDir, "cni", "ipam", "*", "10.*"))
	for _, ip := range ips {
		left = append(left, "host-local IP "+filepath.Base(ip))
	}
	out, _ := c.sb.Exec(c.node, "ip", "-o", "link", "show", "type", "veth")
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l != "" && !strings.Contains(l, " "+c.node.Iface+"@") {
			left = append(left, "veth "+l)
		}
	}
	states, _ := os.ReadDir(filepath.Join(c.DataDir, "containers"))
	for _, s := range states {
		left = append(left, "container state "+s.Name())
	}
	if len(left) == 0 {
		return ""
	}
	return "left behind: " + strings.Join(left, "; ")
}
