package pods

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func podWith(policy corev1.RestartPolicy) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"},
		Spec: corev1.PodSpec{RestartPolicy: policy, Containers: []corev1.Container{{Name: "c"}}}}
}

func TestPhase(t *testing.T) {
	running := ctrView{Name: "c", Running: true}
	ok := ctrView{Name: "c", Exited: true, ExitCode: 0}
	bad := ctrView{Name: "c", Exited: true, ExitCode: 3}
	waiting := ctrView{Name: "c", WaitingReason: "ContainerCreating"}
	cases := []struct {
		policy  corev1.RestartPolicy
		sandbox bool
		c       ctrView
		want    corev1.PodPhase
	}{
		{corev1.RestartPolicyAlways, false, waiting, corev1.PodPending},
		{corev1.RestartPolicyAlways, true, waiting, corev1.PodPending},
		{corev1.RestartPolicyAlways, true, running, corev1.PodRunning},
		{corev1.RestartPolicyAlways, true, bad, corev1.PodRunning},
		{corev1.RestartPolicyAlways, true, ok, corev1.PodRunning},
		{corev1.RestartPolicyOnFailure, true, ok, corev1.PodSucceeded},
		{corev1.RestartPolicyOnFailure, true, bad, corev1.PodRunning},
		{corev1.RestartPolicyNever, true, ok, corev1.PodSucceeded},
		{corev1.RestartPolicyNever, true, bad, corev1.PodFailed},
	}
	for _, c := range cases {
		v := podView{SandboxReady: c.sandbox, InitDone: true, Containers: []ctrView{c.c}}
		if got := phase(podWith(c.policy), v); got != c.want {
			t.Errorf("%s, sandbox %v, %+v: %s, want %s", c.policy, c.sandbox, c.c, got, c.want)
		}
	}
}

func TestStatusConditionsAndStates(t *testing.T) {
	pod := podWith(corev1.RestartPolicyAlways)
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "d"})
	now := time.Now()
	v := podView{HostIP: "192.0.2.1", PodIPs: []string{"10.244.0.5"}, SandboxReady: true, InitDone: true, StartTime: now,
		Containers: []ctrView{
			{Name: "c", ID: "x", Running: true, Ready: true, Started: true, StartedAt: now},
			{Name: "d", ID: "y", Exited: true, ExitCode: 1, Reason: "Error", WaitingReason: "CrashLoopBackOff",
				RestartCount: 2, Last: &ctrView{Exited: true, ExitCode: 1, Reason: "Error"}},
		}}
	st := computeStatus(pod, v, now)
	if st.PodIP != "10.244.0.5" || st.HostIP != "192.0.2.1" || st.Phase != corev1.PodRunning {
		t.Fatalf("status %+v", st)
	}
	ready := map[corev1.PodConditionType]corev1.PodCondition{}
	for _, c := range st.Conditions {
		ready[c.Type] = c
	}
	if r := ready[corev1.PodReady]; r.Status != corev1.ConditionFalse || r.Message != "containers with unready status: [d]" {
		t.Errorf("Ready %+v", r)
	}
	d := st.ContainerStatuses[1]
	if d.State.Waiting == nil || d.State.Waiting.Reason != "CrashLoopBackOff" || d.RestartCount != 2 ||
		d.LastTerminationState.Terminated == nil || d.LastTerminationState.Terminated.ExitCode != 1 {
		t.Errorf("container d %+v", d)
	}
	// A readiness gate that is not met keeps the pod unready.
	v.Containers[1] = ctrView{Name: "d", ID: "y", Running: true, Ready: true}
	pod.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "example.com/lb"}}
	st = computeStatus(pod, v, now)
	for _, c := range st.Conditions {
		if c.Type == corev1.PodReady && (c.Status != corev1.ConditionFalse || c.Reason != "ReadinessGatesNotReady") {
			t.Errorf("gated Ready %+v", c)
		}
		if c.Type == corev1.ContainersReady && c.Status != corev1.ConditionTrue {
			t.Errorf("ContainersReady %+v", c)
		}
	}
}

func TestResolvConf(t *testing.T) {
	host := "nameserver 192.0.2.53\nsearch corp.example\noptions edns0\n"
	dns := DNSConfig{ClusterDNS: []string{"10.96.0.10"}, ClusterDomain: "cluster.local", HostResolvConf: host}
	pod := podWith(corev1.RestartPolicyAlways)
	got, missing := resolvConf(pod, dns)
	want := "search ns.svc.cluster.local svc.cluster.local cluster.local corp.example\nnameserver 10.96.0.10\noptions ndots:5\n"
	if got != want || missing {
		t.Errorf("ClusterFirst:\n%s", got)
	}
	pod.Spec.DNSPolicy = corev1.DNSDefault
	if got, _ := resolvConf(pod, dns); got != "search corp.example\nnameserver 192.0.2.53\noptions edns0\n" {
		t.Errorf("Default:\n%s", got)
	}
	pod.Spec.DNSPolicy, pod.Spec.HostNetwork = corev1.DNSClusterFirst, true
	if got, _ := resolvConf(pod, dns); !strings.Contains(got, "192.0.2.53") {
		t.Errorf("ClusterFirst on the host network uses the host's:\n%s", got)
	}
	pod.Spec.DNSPolicy = corev1.DNSClusterFirstWithHostNet
	if got, _ := resolvConf(pod, dns); !strings.Contains(got, "nameserver 10.96.0.10") {
		t.Errorf("ClusterFirstWithHostNet:\n%s", got)
	}
	two := "2"
	pod.Spec.DNSPolicy, pod.Spec.HostNetwork = corev1.DNSNone, false
	pod.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"192.0.2.1"}, Searches: []string{"a.example"},
		Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &two}}}
	if got, _ := resolvConf(pod, dns); got != "search a.example\nnameserver 192.0.2.1\noptions ndots:2\n" {
		t.Errorf("None:\n%s", got)
	}
	pod.Spec.DNSPolicy, pod.Spec.DNSConfig = corev1.DNSClusterFirst, nil
	if _, missing := resolvConf(pod, DNSConfig{HostResolvConf: host}); !missing {
		t.Error("ClusterFirst without cluster DNS is not reported")
	}
}

func TestHostsFile(t *testing.T) {
	pod := podWith(corev1.RestartPolicyAlways)
	pod.Spec.Subdomain = "sub"
	pod.Spec.HostAliases = []corev1.HostAlias{{IP: "192.0.2.9", Hostnames: []string{"a", "b"}}}
	got := string(hostsFile(pod, []string{"10.244.0.7"}, nil, "cluster.local"))
	for _, want := range []string{"127.0.0.1\tlocalhost", "10.244.0.7\tp.sub.ns.svc.cluster.local\tp", "192.0.2.9\ta\tb"} {
		if !strings.Contains(got, want) {
			t.Errorf("hosts lacks %q:\n%s", want, got)
		}
	}
	pod.Spec.HostNetwork = true
	if got := hostsFile(pod, nil, []byte("node hosts"), "cluster.local"); string(got) != "node hosts" {
		t.Errorf("host network: %q", got)
	}
}

func TestProbes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ok" && r.Header.Get("User-Agent") == "kube-probe/1.37" {
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := net.LookupPort("tcp", port)
	target := probeTarget{Host: host, Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(p)}},
		Exec: func(ctx context.Context, cmd []string) (int, string, error) { return len(cmd), "out", nil }}
	ctx := context.Background()
	httpGet := func(path string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("http")}}}
	}
	if ok, msg := probeOnce(ctx, httpGet("/ok"), target); !ok {
		t.Errorf("httpGet /ok: %s", msg)
	}
	if ok, msg := probeOnce(ctx, httpGet("/status/"), target); ok || msg != "HTTP probe failed with statuscode: 404" {
		t.Errorf("httpGet /status/: %v %s", ok, msg)
	}
	tcp := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(p))}}}
	if ok, msg := probeOnce(ctx, tcp, target); !ok {
		t.Errorf("tcpSocket: %s", msg)
	}
	exec := func(cmd ...string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: cmd}}}
	}
	if ok, _ := probeOnce(ctx, exec(), target); !ok {
		t.Error("exec exiting 0 failed")
	}
	if ok, msg := probeOnce(ctx, exec("x", "y"), target); ok || !strings.Contains(msg, "exited with 2") {
		t.Errorf("exec exiting 2: %v %s", ok, msg)
	}
	if ok, msg := probeOnce(ctx, &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{
		Port: intstr.FromString("nosuch")}}}, target); ok || msg != "couldn't find port: nosuch" {
		t.Errorf("named port missing: %v %s", ok, msg)
	}
}
