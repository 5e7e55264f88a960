package scheduler

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func node(name string, ready bool, cpu string, mut ...func(*corev1.Node)) *corev1.Node {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Status: corev1.NodeStatus{
			Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status}},
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourcePods: resource.MustParse("110")},
		}}
	for _, m := range mut {
		m(n)
	}
	return n
}

func pendingPod(cpu string, mut ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}
	if cpu != "" {
		p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}
	}
	for _, m := range mut {
		m(p)
	}
	return p
}

func TestDecide(t *testing.T) {
	taint := func(n *corev1.Node) {
		n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}}
	}
	busy := &corev1.Pod{Spec: corev1.PodSpec{NodeName: "a", Containers: []corev1.Container{{Name: "c",
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m")}},
		Ports:     []corev1.ContainerPort{{HostPort: 8080, Protocol: corev1.ProtocolTCP}}}}}}
	cases := []struct {
		name     string
		nodes    []*corev1.Node
		pod      *corev1.Pod
		want     string
		wantWhy  string
		existing []*corev1.Pod
	}{
		{"no nodes", nil, pendingPod(""), "", "no nodes available to schedule pods", nil},
		{"least allocated wins", []*corev1.Node{node("a", true, "2"), node("b", true, "2")}, pendingPod("100m"), "b", "", []*corev1.Pod{busy}},
		{"not ready skipped", []*corev1.Node{node("a", false, "2"), node("b", true, "2")}, pendingPod(""), "b", "", nil},
		{"insufficient cpu", []*corev1.Node{node("a", true, "1")}, pendingPod("2"), "",
			"0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.", nil},
		{"selector", []*corev1.Node{node("a", true, "2"), node("b", true, "2")},
			pendingPod("", func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"kubernetes.io/hostname": "a"} }), "a", "", nil},
		{"taint not tolerated", []*corev1.Node{node("a", true, "2", taint)}, pendingPod(""), "", "1 node(s) had untolerated taint {dedicated: db}", nil},
		{"taint tolerated", []*corev1.Node{node("a", true, "2", taint)}, pendingPod("", func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "db", Effect: corev1.TaintEffectNoSchedule}}
		}), "a", "", nil},
		{"host port taken", []*corev1.Node{node("a", true, "4")}, pendingPod("", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{HostPort: 8080, Protocol: corev1.ProtocolTCP}}
		}), "", "1 node(s) didn't have free ports for the requested pod ports", []*corev1.Pod{busy}},
		{"mixed reasons", []*corev1.Node{node("a", false, "2"), node("b", true, "1")}, pendingPod("2"), "",
			"0/2 nodes are available: 1 Insufficient cpu, 1 node(s) were not ready.", nil},
	}
	for _, c := range cases {
		got, why := decide(c.pod, newNodeInfos(c.nodes, c.existing))
		if got != c.want || !strings.Contains(why, c.wantWhy) {
			t.Errorf("%s: got %q %q, want %q %q", c.name, got, why, c.want, c.wantWhy)
		}
	}
}

// Pods that request nothing still spread: scoring counts upstream's
// non-zero defaults (100m CPU, 200Mi memory).
func TestPodsWithoutRequestsSpread(t *testing.T) {
	nodes := []*corev1.Node{node("a", true, "2"), node("b", true, "2"), node("c", true, "2")}
	infos := newNodeInfos(nodes, nil)
	perNode := map[string]int{}
	for i := 0; i < 6; i++ {
		p := pendingPod("")
		name, why := decide(p, infos)
		if name == "" {
			t.Fatalf("pod %d not scheduled: %s", i, why)
		}
		p.Spec.NodeName = name
		infos[name].add(p)
		perNode[name]++
	}
	if perNode["a"] != 2 || perNode["b"] != 2 || perNode["c"] != 2 {
		t.Errorf("6 pods over 3 equal nodes: %v", perNode)
	}
}
