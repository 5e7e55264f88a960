package validation

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func svc(mut func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeClusterIP, SessionAffinity: corev1.ServiceAffinityNone,
		Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(80)}}}}
	mut(s)
	return s
}

// want checks that errs is exactly the listed messages (empty: valid).
func want(t *testing.T, name string, errs field.ErrorList, msgs ...string) {
	t.Helper()
	if len(errs) != len(msgs) {
		t.Errorf("%s: got %d errors %v, want %q", name, len(errs), errs, msgs)
		return
	}
	for i, m := range msgs {
		if !strings.Contains(errs[i].Error(), m) {
			t.Errorf("%s: error %q lacks %q", name, errs[i].Error(), m)
		}
	}
}

func TestServiceValidationMatchesUpstream(t *testing.T) {
	cases := []struct {
		name string
		svc  *corev1.Service
		msgs []string
	}{
		{"chapter listing 3-1", svc(func(*corev1.Service) {}), nil},
		{"port 0", svc(func(s *corev1.Service) { s.Spec.Ports[0].Port = 0 }),
			[]string{"spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"}},
		{"two unnamed ports", svc(func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Port: 8888, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8888)})
		}), []string{"spec.ports[0].name: Required value", "spec.ports[1].name: Required value"}},
		{"duplicate names", svc(func(s *corev1.Service) {
			s.Spec.Ports[0].Name = "http"
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "http", Port: 8888, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8888)})
		}), []string{`spec.ports[1].name: Duplicate value: "http"`}},
		{"bad protocol", svc(func(s *corev1.Service) { s.Spec.Ports[0].Protocol = "HTTP" }),
			[]string{`spec.ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"`}},
		{"nodePort on ClusterIP", svc(func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30001 }),
			[]string{"spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"}},
		{"ExternalName without name", svc(func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeExternalName }),
			[]string{"spec.externalName: Required value"}},
		{"ExternalName with clusterIP", svc(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName, s.Spec.ClusterIP = corev1.ServiceTypeExternalName, "example.com", "10.96.0.5"
		}), []string{"spec.clusterIPs: Forbidden: may not be set for ExternalName services"}},
		{"headless NodePort", svc(func(s *corev1.Service) { s.Spec.Type, s.Spec.ClusterIP = corev1.ServiceTypeNodePort, "None" }),
			[]string{`spec.clusterIPs[0]: Invalid value: "None": may not be set to 'None' for NodePort services`}},
		{"headless without ports", svc(func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.Ports = "None", nil }), nil},
		{"no ports", svc(func(s *corev1.Service) { s.Spec.Ports = nil }), []string{"spec.ports: Required value"}},
		{"unknown type", svc(func(s *corev1.Service) { s.Spec.Type = "Magic" }),
			[]string{`spec.type: Unsupported value: "Magic"`}},
	}
	for _, c := range cases {
		want(t, c.name, Service(c.svc), c.msgs...)
	}
}

func TestEndpointsAddresses(t *testing.T) {
	ep := func(ip string) *corev1.Endpoints {
		return &corev1.Endpoints{Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: ip}},
			Ports: []corev1.EndpointPort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}}}}
	}
	want(t, "listing 3-11", Endpoints(ep("192.0.2.10")))
	want(t, "placeholder left in", Endpoints(ep("<X.X.X.X>")), `subsets[0].addresses[0].ip: Invalid value: "<X.X.X.X>": must be a valid IP address`)
	want(t, "loopback", Endpoints(ep("127.0.0.1")), "may not be in the loopback range")
}

func TestIngressRules(t *testing.T) {
	prefix := networkingv1.PathTypePrefix
	ing := func(host, path string, pt *networkingv1.PathType) *networkingv1.Ingress {
		return &networkingv1.Ingress{Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: host,
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: path, PathType: pt, Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
					Name: "whale-svc-a", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}}}}}}}
	}
	want(t, "chapter host", Ingress(ing("a.whale.hey", "/", &prefix)))
	want(t, "wildcard", Ingress(ing("*.whale.hey", "/", &prefix)))
	want(t, "IP host", Ingress(ing("10.0.0.1", "/", &prefix)), "must be a DNS name, not an IP address")
	want(t, "no pathType", Ingress(ing("a.whale.hey", "/", nil)), "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified")
	want(t, "relative path", Ingress(ing("a.whale.hey", "foo", &prefix)), `spec.rules[0].http.paths[0].path: Invalid value: "foo": must be an absolute path`)
	want(t, "empty", Ingress(&networkingv1.Ingress{}), "either `defaultBackend` or `rules` must be specified")
}

func TestQuotaAndLimits(t *testing.T) {
	q := &corev1.ResourceQuota{Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"pods": resource.MustParse("3")}}}
	want(t, "listing 3-16", ResourceQuota(q))
	q.Spec.Hard["services"] = resource.MustParse("-1")
	want(t, "negative", ResourceQuota(q), "must be greater than or equal to 0")
	lr := &corev1.LimitRange{Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer,
		Min: corev1.ResourceList{"cpu": resource.MustParse("2")}, Max: corev1.ResourceList{"cpu": resource.MustParse("1")}}}}}
	want(t, "min over max", LimitRange(lr), "min value 2 is greater than max value 1")
}
