package admission

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/admission"
)

func svcAttrs(svc, old *corev1.Service) admission.Attributes {
	if old != nil {
		return admission.NewAttributesRecord(svc, old, corev1.SchemeGroupVersion.WithKind("Service"), "default", svc.Name,
			corev1.SchemeGroupVersion.WithResource("services"), "", admission.Update, &metav1.UpdateOptions{}, false, nil)
	}
	return admission.NewAttributesRecord(svc, nil, corev1.SchemeGroupVersion.WithKind("Service"), "default", svc.Name,
		corev1.SchemeGroupVersion.WithResource("services"), "", admission.Create, &metav1.CreateOptions{}, false, nil)
}

func TestExternalIPs(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Spec: corev1.ServiceSpec{ExternalIPs: []string{"198.51.100.7"}}}
	deny, _ := NewExternalIPs(nil)
	err := deny.Validate(context.Background(), svcAttrs(svc, nil), nil)
	if err == nil || !strings.Contains(err.Error(), "spec.externalIPs[0]: Forbidden: use of external IPs is denied by admission control") {
		t.Errorf("default: %v", err)
	}
	if err := deny.Validate(context.Background(), svcAttrs(svc, svc.DeepCopy()), nil); err != nil {
		t.Errorf("an address the service already had: %v", err)
	}
	allow, err := NewExternalIPs([]string{"198.51.100.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	if err := allow.Validate(context.Background(), svcAttrs(svc, nil), nil); err != nil {
		t.Errorf("allowed range: %v", err)
	}
	svc.Spec.ExternalIPs = []string{"203.0.113.1"}
	if err := allow.Validate(context.Background(), svcAttrs(svc, nil), nil); err == nil || !strings.Contains(err.Error(), "not in the allowed external IP ranges 198.51.100.0/24") {
		t.Errorf("outside the range: %v", err)
	}
}

func TestServiceAccountMountsToken(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "init"}},
		Containers: []corev1.Container{{Name: "a"}, {Name: "b", VolumeMounts: []corev1.VolumeMount{
			{Name: "own", MountPath: TokenMountPath}}}},
	}}
	mountToken(pod)
	mountToken(pod) // idempotent
	if len(pod.Spec.Volumes) != 1 || !strings.HasPrefix(pod.Spec.Volumes[0].Name, "kube-api-access-") {
		t.Fatalf("volumes %+v", pod.Spec.Volumes)
	}
	src := pod.Spec.Volumes[0].Projected.Sources
	if len(src) != 3 || src[0].ServiceAccountToken.Path != "token" || src[1].ConfigMap.Name != "kube-root-ca.crt" ||
		src[2].DownwardAPI.Items[0].FieldRef.FieldPath != "metadata.namespace" {
		t.Errorf("sources %+v", src)
	}
	name := pod.Spec.Volumes[0].Name
	if m := pod.Spec.InitContainers[0].VolumeMounts; len(m) != 1 || m[0].Name != name || !m[0].ReadOnly {
		t.Errorf("init mounts %+v", m)
	}
	if m := pod.Spec.Containers[0].VolumeMounts; len(m) != 1 || m[0].MountPath != TokenMountPath {
		t.Errorf("a mounts %+v", m)
	}
	if m := pod.Spec.Containers[1].VolumeMounts; len(m) != 1 || m[0].Name != "own" {
		t.Errorf("b's own mount was replaced: %+v", m)
	}
}
