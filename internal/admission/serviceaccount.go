package admission

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apiserver/pkg/admission"
)

// ServiceAccount gives a pod created without a service account the
// namespace's "default" one and, unless automountServiceAccountToken is
// false, the projected kube-api-access volume (a bound token, the cluster
// CA from kube-root-ca.crt and the namespace) mounted in every container at
// /var/run/secrets/kubernetes.io/serviceaccount, as upstream's plugin does.
// (Checking that the account exists, which upstream does too, waits for
// the service-account controller to have run in every namespace a test
// makes.)
type ServiceAccount struct{ *admission.Handler }

// NewServiceAccount returns the plugin.
func NewServiceAccount() *ServiceAccount {
	return &ServiceAccount{Handler: admission.NewHandler(admission.Create)}
}

// Admit implements admission.MutationInterface.
func (p *ServiceAccount) Admit(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	if a.GetResource().Resource != "pods" || a.GetSubresource() != "" {
		return nil
	}
	pod, ok := a.GetObject().(*corev1.Pod)
	if !ok {
		return nil
	}
	if pod.Spec.ServiceAccountName == "" {
		pod.Spec.ServiceAccountName = "default"
	}
	if pod.Spec.DeprecatedServiceAccount == "" {
		pod.Spec.DeprecatedServiceAccount = pod.Spec.ServiceAccountName
	}
	if a := pod.Spec.AutomountServiceAccountToken; a != nil && !*a {
		return nil
	}
	mountToken(pod)
	return nil
}

// TokenMountPath is where containers find their service account.
const TokenMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"

// mountToken adds the kube-api-access volume and its mounts, leaving
// containers that already mount something there alone.
func mountToken(pod *corev1.Pod) {
	for _, v := range pod.Spec.Volumes {
		if strings.HasPrefix(v.Name, "kube-api-access-") {
			return
		}
	}
	name := "kube-api-access-" + utilrand.String(5)
	expiry := int64(3607)
	mode := int32(0o644)
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
		Projected: &corev1.ProjectedVolumeSource{DefaultMode: &mode, Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{ExpirationSeconds: &expiry, Path: "token"}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
				Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace",
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
		}},
	}})
	mount := corev1.VolumeMount{Name: name, ReadOnly: true, MountPath: TokenMountPath}
	add := func(cs []corev1.Container) {
		for i := range cs {
			if !mountsAt(cs[i].VolumeMounts, TokenMountPath) {
				cs[i].VolumeMounts = append(cs[i].VolumeMounts, mount)
			}
		}
	}
	add(pod.Spec.InitContainers)
	add(pod.Spec.Containers)
}

func mountsAt(ms []corev1.VolumeMount, path string) bool {
	for _, m := range ms {
		if m.MountPath == path {
			return true
		}
	}
	return false
}

var _ admission.MutationInterface = (*ServiceAccount)(nil)
