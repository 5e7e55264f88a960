package servicelb

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func lb(name string, age int, ports ...int32) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name,
		CreationTimestamp: metav1.NewTime(time.Unix(1000+int64(age), 0))},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}}
	for _, p := range ports {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Port: p, Protocol: corev1.ProtocolTCP})
	}
	return s
}

func TestNodeAddressModeFirstComeFirstServed(t *testing.T) {
	in := Input{
		Services:      []*corev1.Service{lb("node-js-multi", 2, 80, 8888), lb("node-js", 1, 80), lb("node-js-90", 3, 90), lb("web", 4, 443)},
		NodeIPs:       []string{"10.1.0.2", "10.1.0.3"},
		ReservedPorts: []string{"TCP/443"},
	}
	got := Assign(in)
	if d := got["default/node-js"]; len(d.IPs) != 2 {
		t.Errorf("oldest on port 80: %+v", d)
	}
	if d := got["default/node-js-multi"]; len(d.IPs) != 0 || !strings.Contains(d.Pending, "port 80/TCP is already held on the node addresses by service default/node-js") {
		t.Errorf("second on port 80: %+v", d)
	}
	if d := got["default/node-js-90"]; len(d.IPs) != 2 {
		t.Errorf("port 90: %+v", d)
	}
	if d := got["default/web"]; !strings.Contains(d.Pending, "by the ingress controller") {
		t.Errorf("ingress port: %+v", d)
	}
}

func TestPoolMode(t *testing.T) {
	pool, err := ParsePool([]string{"192.0.2.10-192.0.2.11"})
	if err != nil {
		t.Fatal(err)
	}
	asks := lb("asks", 3, 80)
	asks.Spec.LoadBalancerIP = "192.0.2.11"
	kept := lb("kept", 5, 80)
	kept.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.10"}}
	in := Input{Services: []*corev1.Service{lb("first", 1, 80), asks, kept, lb("late", 9, 80)}, Pool: pool}
	got := Assign(in)
	if ip := got["default/kept"].IPs; len(ip) != 1 || ip[0] != "192.0.2.10" {
		t.Errorf("kept: %+v", got["default/kept"])
	}
	if ip := got["default/asks"].IPs; len(ip) != 1 || ip[0] != "192.0.2.11" {
		t.Errorf("asks: %+v", got["default/asks"])
	}
	if d := got["default/first"]; d.Pending != "no available IPs in the LoadBalancer pool" {
		t.Errorf("first (pool taken by kept and asks): %+v", d)
	}
	if _, err := ParsePool([]string{"nonsense"}); err == nil {
		t.Error("bad range accepted")
	}
}
