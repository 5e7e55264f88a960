package admission

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apiserver/pkg/admission"
)

// ServiceAccount gives a pod created without a service account the
// namespace's "default" one, as upstream's ServiceAccount plugin does. (The
// agent mounts the account's token; checking that the account exists, which
// upstream does too, waits for the service-account controller to have run
// in every namespace a test makes.)
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
	return nil
}

var _ admission.MutationInterface = (*ServiceAccount)(nil)
