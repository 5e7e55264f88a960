package registry

import (
	"context"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
)

// scaleREST serves /scale as an autoscaling/v1 Scale over the object's
// spec.replicas, as upstream does for replication controllers, replica sets
// and deployments (kubectl scale uses it).
type scaleREST struct {
	store *genericregistry.Store
	def   *Resource
}

// New returns an empty Scale.
func (r *scaleREST) New() runtime.Object { return &autoscalingv1.Scale{} }

// Destroy does nothing: the main store owns the storage.
func (r *scaleREST) Destroy() {}

// GroupVersionKind says the subresource speaks autoscaling/v1 Scale in every
// group, as upstream's scale subresources do.
func (r *scaleREST) GroupVersionKind(schema.GroupVersion) schema.GroupVersionKind {
	return autoscalingv1.SchemeGroupVersion.WithKind("Scale")
}

// Get returns the object's Scale.
func (r *scaleREST) Get(ctx context.Context, name string, options *metav1.GetOptions) (runtime.Object, error) {
	obj, err := r.store.Get(ctx, name, options)
	if err != nil {
		return nil, err
	}
	return r.toScale(obj), nil
}

// Update sets spec.replicas from the Scale a client sends. A resourceVersion
// in the Scale is a precondition on the object, as upstream.
func (r *scaleREST) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo,
	createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc,
	forceAllowCreate bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	info := &scaleUpdate{name: name, inner: objInfo, rest: r}
	obj, _, err := r.store.Update(ctx, name, info,
		func(ctx context.Context, obj runtime.Object) error {
			return createValidation(ctx, r.toScale(obj))
		},
		func(ctx context.Context, obj, old runtime.Object) error {
			return updateValidation(ctx, r.toScale(obj), r.toScale(old))
		}, false, options)
	if err != nil {
		return nil, false, err
	}
	return r.toScale(obj), false, nil
}

// ConvertToTable renders a Scale with the default columns.
func (r *scaleREST) ConvertToTable(ctx context.Context, obj runtime.Object, opts runtime.Object) (*metav1.Table, error) {
	return rest.NewDefaultTableConvertor(r.def.GroupResource()).ConvertToTable(ctx, obj, opts)
}

func (r *scaleREST) toScale(obj runtime.Object) *autoscalingv1.Scale {
	m, _ := meta.Accessor(obj)
	spec, status, selector := r.def.Scale.Get(obj)
	return &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{
			Name: m.GetName(), Namespace: m.GetNamespace(), UID: m.GetUID(),
			ResourceVersion: m.GetResourceVersion(), CreationTimestamp: m.GetCreationTimestamp(),
		},
		Spec:   autoscalingv1.ScaleSpec{Replicas: spec},
		Status: autoscalingv1.ScaleStatus{Replicas: status, Selector: selector},
	}
}

// scaleUpdate turns a Scale update into an update of the scaled object.
type scaleUpdate struct {
	name  string
	inner rest.UpdatedObjectInfo
	rest  *scaleREST
}

func (u *scaleUpdate) Preconditions() *metav1.Preconditions { return u.inner.Preconditions() }

func (u *scaleUpdate) UpdatedObject(ctx context.Context, old runtime.Object) (runtime.Object, error) {
	newObj, err := u.inner.UpdatedObject(ctx, u.rest.toScale(old))
	if err != nil {
		return nil, err
	}
	scale, ok := newObj.(*autoscalingv1.Scale)
	if !ok {
		return nil, apierrors.NewBadRequest("expected an autoscaling/v1 Scale")
	}
	if scale.Spec.Replicas < 0 {
		return nil, apierrors.NewInvalid(autoscalingv1.SchemeGroupVersion.WithKind("Scale").GroupKind(), u.name,
			field.ErrorList{field.Invalid(field.NewPath("spec", "replicas"), scale.Spec.Replicas, "must be greater than or equal to 0")})
	}
	obj := old.DeepCopyObject()
	m, _ := meta.Accessor(obj)
	if scale.ResourceVersion != "" {
		m.SetResourceVersion(scale.ResourceVersion)
	}
	u.rest.def.Scale.Set(obj, scale.Spec.Replicas)
	return obj, nil
}
