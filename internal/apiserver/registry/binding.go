package registry

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage"
)

// bindingREST serves pods/binding: the scheduler's way to assign a pod to a
// node, as upstream's BindingREST.
type bindingREST struct {
	store *genericregistry.Store
}

// New returns an empty Binding.
func (r *bindingREST) New() runtime.Object { return &corev1.Binding{} }

// Destroy does nothing: the pods store owns the storage.
func (r *bindingREST) Destroy() {}

// NamespaceScoped is true: bindings are per pod.
func (r *bindingREST) NamespaceScoped() bool { return true }

// Create assigns the pod to binding.Target, refusing a pod that already has
// a node or is being deleted, with upstream's messages.
func (r *bindingREST) Create(ctx context.Context, name string, obj runtime.Object,
	createValidation rest.ValidateObjectFunc, options *metav1.CreateOptions) (runtime.Object, error) {
	b, ok := obj.(*corev1.Binding)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not a Binding: %T", obj))
	}
	if b.Name != "" && b.Name != name {
		return nil, apierrors.NewBadRequest("name in URL does not match name in Binding object")
	}
	if createValidation != nil {
		if err := createValidation(ctx, obj.DeepCopyObject()); err != nil {
			return nil, err
		}
	}
	if b.Target.Kind != "" && b.Target.Kind != "Node" {
		return nil, apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Binding").GroupKind(), name, nil)
	}
	if len(options.DryRun) > 0 {
		return &metav1.Status{Status: metav1.StatusSuccess}, nil
	}
	key, err := r.store.KeyFunc(ctx, name)
	if err != nil {
		return nil, err
	}
	var pre *storage.Preconditions
	if b.UID != "" {
		pre = &storage.Preconditions{UID: &b.UID}
	}
	pod := &corev1.Pod{}
	err = r.store.Storage.GuaranteedUpdate(ctx, key, pod, false, pre, storage.SimpleUpdate(func(o runtime.Object) (runtime.Object, error) {
		p := o.(*corev1.Pod)
		if p.DeletionTimestamp != nil {
			return nil, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", p.Name)
		}
		if p.Spec.NodeName != "" {
			return nil, fmt.Errorf("pod %v is already assigned to node %q", p.Name, p.Spec.NodeName)
		}
		p.Spec.NodeName = b.Target.Name
		for k, v := range b.Annotations {
			if p.Annotations == nil {
				p.Annotations = map[string]string{}
			}
			p.Annotations[k] = v
		}
		setScheduled(p)
		return p, nil
	}), false, nil)
	if err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil, err
		}
		if _, ok := err.(apierrors.APIStatus); ok {
			return nil, err
		}
		return nil, apierrors.NewConflict(corev1.Resource("pods/binding"), name, err)
	}
	return &metav1.Status{Status: metav1.StatusSuccess, Code: 201}, nil
}

func setScheduled(p *corev1.Pod) {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodScheduled {
			p.Status.Conditions[i].Status = corev1.ConditionTrue
			p.Status.Conditions[i].Reason = ""
			p.Status.Conditions[i].Message = ""
			p.Status.Conditions[i].LastTransitionTime = metav1.Now()
			return
		}
	}
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{
		Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()})
}
