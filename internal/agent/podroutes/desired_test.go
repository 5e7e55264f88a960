package podroutes

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func node(name, podCIDR, ip string, ready corev1.ConditionStatus, since time.Time) nodeState {
	n := nodeState{Name: name, Ready: ready, ReadySince: since}
	if podCIDR != "" {
		n.PodCIDR = netip.MustParsePrefix(podCIDR)
	}
	if ip != "" {
		n.InternalIP = netip.MustParseAddr(ip)
	}
	return n
}

func route(nodeName, dst, via string) Route {
	return Route{Node: nodeName, Dst: netip.MustParsePrefix(dst), Via: netip.MustParseAddr(via)}
}

func TestDesiredRoutes(t *testing.T) {
	const T, F, U = corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown
	self := node("n1", "10.244.1.0/24", "192.168.1.11", T, t0)
	connected := []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")}
	tests := []struct {
		name    string
		nodes   []nodeState
		want    []Route
		skipped []string // node names
	}{
		{"own node gets no route", []nodeState{self}, nil, nil},
		{"ready node routed", []nodeState{self, node("n2", "10.244.2.0/24", "192.168.1.12", T, t0.Add(-time.Hour))},
			[]Route{route("n2", "10.244.2.0/24", "192.168.1.12")}, nil},
		{"sorted by destination", []nodeState{
			node("n3", "10.244.3.0/24", "192.168.1.13", T, t0), self, node("n2", "10.244.2.0/24", "192.168.1.12", T, t0)},
			[]Route{route("n2", "10.244.2.0/24", "192.168.1.12"), route("n3", "10.244.3.0/24", "192.168.1.13")}, nil},
		{"no podCIDR yet", []nodeState{self, node("n2", "", "192.168.1.12", T, t0)}, nil, nil},
		{"no InternalIP", []nodeState{self, node("n2", "10.244.2.0/24", "", T, t0)}, nil, nil},
		{"no Ready condition", []nodeState{self, node("n2", "10.244.2.0/24", "192.168.1.12", "", time.Time{})}, nil, nil},
		{"NotReady within grace keeps route", []nodeState{self, node("n2", "10.244.2.0/24", "192.168.1.12", F, t0.Add(-39*time.Second))},
			[]Route{route("n2", "10.244.2.0/24", "192.168.1.12")}, nil},
		{"NotReady at grace loses route", []nodeState{self, node("n2", "10.244.2.0/24", "192.168.1.12", F, t0.Add(-40*time.Second))}, nil, nil},
		{"Unknown within grace keeps route", []nodeState{self, node("n2", "10.244.2.0/24", "192.168.1.12", U, t0.Add(-10*time.Second))},
			[]Route{route("n2", "10.244.2.0/24", "192.168.1.12")}, nil},
		{"Unknown past grace loses route", []nodeState{self, node("n2", "10.244.2.0/24", "192.168.1.12", U, t0.Add(-time.Minute))}, nil, nil},
		{"NotReady with no transition time loses route", []nodeState{self, node("n2", "10.244.2.0/24", "192.168.1.12", F, time.Time{})}, nil, nil},
		{"gateway not directly reachable skipped", []nodeState{self, node("n2", "10.244.2.0/24", "10.9.0.2", T, t0)}, nil, []string{"n2"}},
		{"pod CIDR overlapping ours skipped", []nodeState{self, node("n2", "10.244.1.0/24", "192.168.1.12", T, t0)}, nil, []string{"n2"}},
		{"two nodes claiming one range both skipped", []nodeState{self,
			node("n2", "10.244.2.0/24", "192.168.1.12", T, t0), node("n3", "10.244.2.0/25", "192.168.1.13", T, t0),
			node("n4", "10.244.4.0/24", "192.168.1.14", T, t0)},
			[]Route{route("n4", "10.244.4.0/24", "192.168.1.14")}, []string{"n2", "n3"}},
		{"unmasked pod CIDR is masked", []nodeState{self, node("n2", "10.244.2.7/24", "192.168.1.12", T, t0)},
			[]Route{route("n2", "10.244.2.0/24", "192.168.1.12")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, skipped := desiredRoutes(tt.nodes, routeInput{Self: "n1", Now: t0, Grace: 40 * time.Second, Connected: connected})
			if !slices.Equal(got, tt.want) {
				t.Errorf("routes = %v, want %v", got, tt.want)
			}
			var names []string
			for _, s := range skipped {
				names = append(names, s.Node)
				if !strings.Contains(s.Reason, "pod CIDR") && !strings.Contains(s.Reason, "InternalIP") {
					t.Errorf("skip reason %q names neither the pod CIDR nor the InternalIP", s.Reason)
				}
			}
			slices.Sort(names)
			if !slices.Equal(names, tt.skipped) {
				t.Errorf("skipped = %v, want %v", skipped, tt.skipped)
			}
		})
	}
}

func TestNodeFromAPI(t *testing.T) {
	since := metav1.NewTime(t0)
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n2"},
		Spec:       corev1.NodeSpec{PodCIDR: "fd00::/64", PodCIDRs: []string{"fd00::/64", "10.244.2.0/24"}},
		Status: corev1.NodeStatus{
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeHostName, Address: "n2"},
				{Type: corev1.NodeInternalIP, Address: "fd00::2"},
				{Type: corev1.NodeInternalIP, Address: "192.168.1.12"},
			},
			Conditions: []corev1.NodeCondition{
				{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse},
				{Type: corev1.NodeReady, Status: corev1.ConditionFalse, LastTransitionTime: since},
			},
		},
	}
	got := nodeFromAPI(n)
	want := node("n2", "10.244.2.0/24", "192.168.1.12", corev1.ConditionFalse, t0)
	if got != want {
		t.Errorf("nodeFromAPI = %+v, want %+v", got, want)
	}
	n.Spec.PodCIDRs = nil
	n.Spec.PodCIDR = "10.244.3.0/24"
	if got := nodeFromAPI(n).PodCIDR; got != netip.MustParsePrefix("10.244.3.0/24") {
		t.Errorf("podCIDR from spec.podCIDR alone = %v", got)
	}
}
