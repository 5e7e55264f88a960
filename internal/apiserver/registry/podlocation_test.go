package registry

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func podWith(containers ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"}}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c})
	}
	return p
}

func TestPodContainerDefaultingAndMessages(t *testing.T) {
	withInit := podWith("a", "b")
	withInit.Spec.InitContainers = []corev1.Container{{Name: "setup"}}
	for _, tc := range []struct {
		name      string
		pod       *corev1.Pod
		container string
		want      string
		wantErr   string
	}{
		{"the only container is the default", podWith("app"), "", "app", ""},
		{"a named container", podWith("a", "b"), "b", "b", ""},
		{"an init container may be named", withInit, "setup", "setup", ""},
		{"several and none named", withInit, "", "", "a container name must be specified for pod web, choose one of: [setup a b]"},
		{"no containers", podWith(), "", "", "a container name must be specified for pod web"},
		{"an unknown container", podWith("a"), "z", "", "container z is not valid for pod web"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := podContainer(tc.pod, tc.container)
			if tc.wantErr != "" {
				if !apierrors.IsBadRequest(err) || err.Error() != tc.wantErr {
					t.Fatalf("got %q, %v; want BadRequest %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestKubeletHost(t *testing.T) {
	node := func(port int32, addrs ...corev1.NodeAddress) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
		n.Status.Addresses = addrs
		n.Status.DaemonEndpoints.KubeletEndpoint.Port = port
		return n
	}
	internal := corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.0.5"}
	external := corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "203.0.113.9"}
	hostname := corev1.NodeAddress{Type: corev1.NodeHostName, Address: "n1"}
	for _, tc := range []struct {
		node *corev1.Node
		want string
	}{
		{node(0, hostname, internal), "10.0.0.5:10250"},
		{node(11250, external, internal), "10.0.0.5:11250"},
		{node(0, external), "203.0.113.9:10250"},
		{node(0, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "fd00::5"}), "[fd00::5]:10250"},
	} {
		got, err := kubeletHost(tc.node)
		if err != nil || got != tc.want {
			t.Errorf("kubeletHost(%v, port %d) = %q, %v; want %q", tc.node.Status.Addresses,
				tc.node.Status.DaemonEndpoints.KubeletEndpoint.Port, got, err, tc.want)
		}
	}
	if _, err := kubeletHost(node(0, hostname)); err == nil {
		t.Error("a node with only a hostname: no error")
	}
}

func TestAgentURLs(t *testing.T) {
	pod := podWith("app")
	i64 := func(v int64) *int64 { return &v }
	stderr := corev1.LogStreamStderr
	since := metav1.NewTime(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC))
	for _, tc := range []struct {
		name string
		got  string
		want string
	}{
		{"logs, no options", logURL("10.0.0.5:10250", pod, "app", &corev1.PodLogOptions{}).String(),
			"https://10.0.0.5:10250/containerLogs/ns/web/app"},
		{"logs, every option", logURL("10.0.0.5:10250", pod, "app", &corev1.PodLogOptions{Follow: true, Previous: true,
			Timestamps: true, TailLines: i64(5), LimitBytes: i64(100), SinceTime: &since, Stream: &stderr}).String(),
			"https://10.0.0.5:10250/containerLogs/ns/web/app?follow=true&limitBytes=100&previous=true" +
				"&sinceTime=2024-01-02T03%3A04%3A05Z&stream=Stderr&tailLines=5&timestamps=true"},
		{"logs since seconds", logURL("h:1", pod, "app", &corev1.PodLogOptions{SinceSeconds: i64(60)}).String(),
			"https://h:1/containerLogs/ns/web/app?sinceSeconds=60"},
		{"exec", agentURL("h:1", remoteCommandParams(true, true, false, true, []string{"sh", "-c", "echo a&b"}),
			"exec", "ns", "web", "app").String(),
			"https://h:1/exec/ns/web/app?command=sh&command=-c&command=echo+a%26b&input=1&output=1&tty=1"},
		{"attach", agentURL("h:1", remoteCommandParams(false, true, true, false, nil), "attach", "ns", "web", "app").String(),
			"https://h:1/attach/ns/web/app?error=1&output=1"},
		{"port-forward over WebSocket", agentURL("h:1", portForwardParams([]int32{80, 443}), "portForward", "ns", "web").String(),
			"https://h:1/portForward/ns/web?port=80%2C443"},
		{"port-forward over SPDY", agentURL("h:1", portForwardParams(nil), "portForward", "ns", "web").String(),
			"https://h:1/portForward/ns/web"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, tc.got, tc.want)
		}
	}
}

func TestValidatePodLogOptionsMatchesUpstream(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	stdout, bogus := corev1.LogStreamStdout, "stdin"
	now := metav1.Now()
	for _, tc := range []struct {
		opts corev1.PodLogOptions
		want string
	}{
		{corev1.PodLogOptions{TailLines: i64(-1)}, "tailLines: Invalid value: -1: must be greater than or equal to 0"},
		{corev1.PodLogOptions{LimitBytes: i64(0)}, "limitBytes: Invalid value: 0: must be greater than 0"},
		{corev1.PodLogOptions{SinceSeconds: i64(0)}, "sinceSeconds: Invalid value: 0: must be greater than 0"},
		{corev1.PodLogOptions{SinceSeconds: i64(1), SinceTime: &now}, "at most one of `sinceTime` or `sinceSeconds` may be specified"},
		{corev1.PodLogOptions{Stream: &bogus}, `stream: Unsupported value: "stdin"`},
		{corev1.PodLogOptions{Stream: &stdout, TailLines: i64(1)}, "`tailLines` and specific `stream` are mutually exclusive for now"},
		{corev1.PodLogOptions{TailLines: i64(0), LimitBytes: i64(1), SinceSeconds: i64(1)}, ""},
	} {
		errs := validatePodLogOptions(&tc.opts)
		got := errs.ToAggregate()
		switch {
		case tc.want == "" && got != nil:
			t.Errorf("%+v: unexpected %v", tc.opts, got)
		case tc.want != "" && (got == nil || !strings.Contains(got.Error(), tc.want)):
			t.Errorf("%+v: got %v, want %q", tc.opts, got, tc.want)
		}
	}
}
