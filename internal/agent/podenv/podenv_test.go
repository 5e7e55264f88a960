package podenv

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func svc(ns, name, ip string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{ClusterIP: ip, Ports: ports}}
}

type lookup struct{}

func (lookup) ConfigMap(ns, name string) (*corev1.ConfigMap, error) {
	if name == "cfg" {
		return &corev1.ConfigMap{Data: map[string]string{"MODE": "fast", "bad-key!": "x"}}, nil
	}
	return nil, errors.New("not found")
}

func (lookup) Secret(ns, name string) (*corev1.Secret, error) {
	if name == "s" {
		return &corev1.Secret{Data: map[string][]byte{"password": []byte("hunter2")}}, nil
	}
	return nil, errors.New("not found")
}

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// TestListing3_13 checks the chapter's service variables, and listing 3-6's
// named port, for services that exist when the container starts.
func TestListing3_13(t *testing.T) {
	services := []*corev1.Service{
		svc("default", "node-js", "10.0.103.215", corev1.ServicePort{Port: 80, Protocol: corev1.ProtocolTCP}),
		svc("default", "node-js-multi", "10.0.50.1", corev1.ServicePort{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP},
			corev1.ServicePort{Name: "fake-admin-http", Port: 8888, Protocol: corev1.ProtocolTCP}),
		svc("default", "node-js-none", "None", corev1.ServicePort{Port: 80}),
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p"}}
	env, _, _, err := Container(pod, &corev1.Container{}, services, lookup{})
	if err != nil {
		t.Fatal(err)
	}
	got := envMap(env)
	want := map[string]string{
		"NODE_JS_PORT_80_TCP":                        "tcp://10.0.103.215:80",
		"NODE_JS_PORT":                               "tcp://10.0.103.215:80",
		"NODE_JS_PORT_80_TCP_PROTO":                  "tcp",
		"NODE_JS_PORT_80_TCP_PORT":                   "80",
		"NODE_JS_SERVICE_HOST":                       "10.0.103.215",
		"NODE_JS_PORT_80_TCP_ADDR":                   "10.0.103.215",
		"NODE_JS_SERVICE_PORT":                       "80",
		"NODE_JS_MULTI_SERVICE_PORT_FAKE_ADMIN_HTTP": "8888",
		"NODE_JS_MULTI_SERVICE_PORT_HTTP":            "80",
		"NODE_JS_MULTI_PORT_8888_TCP_ADDR":           "10.0.50.1",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for k := range got {
		if strings.HasPrefix(k, "NODE_JS_NONE") {
			t.Errorf("headless service got a variable: %s", k)
		}
	}
}

func TestExpansion(t *testing.T) {
	m := func(k string) (string, bool) {
		v, ok := map[string]string{"A": "x", "B": "y"}[k]
		return v, ok
	}
	cases := map[string]string{
		"$(A)":         "x",
		"$(A)-$(B)":    "x-y",
		"$$(A)":        "$(A)",
		"$(MISSING)":   "$(MISSING)",
		"cost $5":      "cost $5",
		"$(unclosed":   "$(unclosed",
		"end$":         "end$",
		"$$$(A)":       "$x",
		"plain":        "plain",
		"$(A)$(A)$$$$": "xx$$",
	}
	for in, want := range cases {
		if got := Expand(in, m); got != want {
			t.Errorf("Expand(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEnvSourcesAndDownwardAPI(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "test", Name: "utility", Labels: map[string]string{"app": "u"}},
		Spec:   corev1.PodSpec{NodeName: "n1"},
		Status: corev1.PodStatus{PodIP: "10.244.0.7"}}
	c := &corev1.Container{
		Command: []string{"echo", "$(GREETING) from $(POD_NAME)"},
		Args:    []string{"$$(POD_NAME)"},
		EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}, Prefix: "CFG_"}},
		Env: []corev1.EnvVar{
			{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			{Name: "APP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
			{Name: "PASS", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "password"}}},
			{Name: "MEM", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
			{Name: "GREETING", Value: "hi $(APP)"},
		},
		Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}},
	}
	env, cmd, args, err := Container(pod, c, nil, lookup{})
	if err != nil {
		t.Fatal(err)
	}
	got := envMap(env)
	for k, v := range map[string]string{"POD_NAME": "utility", "POD_IP": "10.244.0.7", "APP": "u", "PASS": "hunter2",
		"MEM": "64", "GREETING": "hi u", "CFG_MODE": "fast"} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if _, ok := got["CFG_bad-key!"]; ok {
		t.Error("an invalid envFrom key became a variable")
	}
	if strings.Join(cmd, " ") != "echo hi u from utility" || args[0] != "$(POD_NAME)" {
		t.Errorf("command %q args %q", cmd, args)
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "missing"}, Key: "k"}}})
	if _, _, _, err := Container(pod, c, nil, lookup{}); err == nil {
		t.Error("a missing, non-optional configmap did not fail")
	}
}
