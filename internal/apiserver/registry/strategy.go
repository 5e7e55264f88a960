package registry

import (
	"context"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/storage/names"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/wharf-io/wharf/internal/apiserver/scheme"
)

// strategy is the create, update and delete policy of one resource. It is
// generic over the k8s.io/api types: spec and status are found by field name,
// so every kind gets upstream's common rules (generation, status kept on
// main-resource writes, spec kept on status writes) without a file per kind.
type strategy struct {
	runtime.ObjectTyper
	names.NameGenerator
	def *Resource
	// status is true for the /status subresource's strategy.
	status bool
}

func newStrategy(def *Resource, status bool) *strategy {
	return &strategy{ObjectTyper: scheme.Scheme, NameGenerator: names.SimpleNameGenerator, def: def, status: status}
}

// NamespaceScoped reports whether objects live in a namespace.
func (s *strategy) NamespaceScoped() bool { return s.def.Namespaced }

// PrepareForCreate clears status where upstream does, sets generation 1 on
// kinds with a spec, and applies the kind's own create hook.
func (s *strategy) PrepareForCreate(ctx context.Context, obj runtime.Object) {
	if s.def.HasStatus && !s.def.KeepStatusOnCreate {
		resetField(obj, "Status")
	}
	if hasField(obj, "Spec") && s.def.Generation {
		m, _ := meta.Accessor(obj)
		m.SetGeneration(1)
	}
	if s.def.PrepareForCreate != nil {
		s.def.PrepareForCreate(obj)
	}
}

// PrepareForUpdate keeps the fields the request may not change: status on the
// main resource, spec on /status. Generation rises when the spec changed.
func (s *strategy) PrepareForUpdate(ctx context.Context, obj, old runtime.Object) {
	if s.status {
		copyField(obj, old, "Spec")
		return
	}
	if s.def.HasStatus {
		copyField(obj, old, "Status")
	}
	if s.def.Generation && hasField(obj, "Spec") {
		if !apiequality.Semantic.DeepEqual(fieldOf(obj, "Spec"), fieldOf(old, "Spec")) {
			m, _ := meta.Accessor(obj)
			om, _ := meta.Accessor(old)
			m.SetGeneration(om.GetGeneration() + 1)
		}
	}
}

// Validate checks object metadata (names, labels, annotations) as upstream,
// then the kind's own rules.
func (s *strategy) Validate(ctx context.Context, obj runtime.Object) field.ErrorList {
	m, err := meta.Accessor(obj)
	if err != nil {
		return field.ErrorList{field.InternalError(field.NewPath("metadata"), err)}
	}
	errs := validation.ValidateObjectMetaAccessor(m, s.def.Namespaced, s.def.nameValidator(), field.NewPath("metadata"))
	if s.def.Validate != nil {
		errs = append(errs, s.def.Validate(obj)...)
	}
	return errs
}

// ValidateUpdate checks metadata changes (immutable name, uid, namespace) and
// the kind's rules on the new object.
func (s *strategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	m, err := meta.Accessor(obj)
	if err != nil {
		return field.ErrorList{field.InternalError(field.NewPath("metadata"), err)}
	}
	om, _ := meta.Accessor(old)
	errs := validation.ValidateObjectMetaAccessorUpdate(m, om, field.NewPath("metadata"))
	if s.def.Validate != nil && !s.status {
		errs = append(errs, s.def.Validate(obj)...)
	}
	return errs
}

// WarningsOnCreate returns no warnings.
func (s *strategy) WarningsOnCreate(ctx context.Context, obj runtime.Object) []string { return nil }

// WarningsOnUpdate returns no warnings.
func (s *strategy) WarningsOnUpdate(ctx context.Context, obj, old runtime.Object) []string {
	return nil
}

// Canonicalize does nothing: the k8s.io/api types are already canonical.
func (s *strategy) Canonicalize(obj runtime.Object) {}

// AllowCreateOnUpdate is true only where upstream allows PUT to create
// (Endpoints, Leases, Events and the like; never for status).
func (s *strategy) AllowCreateOnUpdate(ctx context.Context) bool {
	return s.def.CreateOnUpdate && !s.status
}

// AllowUnconditionalUpdate lets a PUT without resourceVersion through, as
// upstream does for every built-in kind.
func (s *strategy) AllowUnconditionalUpdate(ctx context.Context) bool { return true }

// CheckGracefulDelete implements upstream's pod rule: the grace period comes
// from the request or the pod spec; unscheduled and finished pods go at once.
// Other kinds are deleted at once.
func (s *strategy) CheckGracefulDelete(ctx context.Context, obj runtime.Object, options *metav1.DeleteOptions) bool {
	pod, ok := obj.(*corev1.Pod)
	if !ok || options == nil {
		return false
	}
	period := int64(0)
	switch {
	case options.GracePeriodSeconds != nil:
		period = *options.GracePeriodSeconds
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		period = *pod.Spec.TerminationGracePeriodSeconds
	}
	if pod.Spec.NodeName == "" || pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded {
		period = 0
	}
	if period < 0 {
		period = 1
	}
	options.GracePeriodSeconds = &period
	return true
}

// GetResetFields names the fields a writer of this endpoint cannot set, for
// server-side apply: status on the main resource, spec on /status.
func (s *strategy) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	reset := fieldpath.NewSet(fieldpath.MakePathOrDie("status"))
	if s.status {
		reset = fieldpath.NewSet(fieldpath.MakePathOrDie("spec"))
	}
	return map[fieldpath.APIVersion]*fieldpath.Set{
		fieldpath.APIVersion(s.def.GroupVersion.String()): reset,
	}
}

func fieldOf(obj runtime.Object, name string) interface{} {
	v := reflect.ValueOf(obj).Elem().FieldByName(name)
	if !v.IsValid() {
		return nil
	}
	return v.Interface()
}

func hasField(obj runtime.Object, name string) bool {
	return reflect.ValueOf(obj).Elem().FieldByName(name).IsValid()
}

func resetField(obj runtime.Object, name string) {
	v := reflect.ValueOf(obj).Elem().FieldByName(name)
	if v.IsValid() && v.CanSet() {
		v.Set(reflect.Zero(v.Type()))
	}
}

func copyField(dst, src runtime.Object, name string) {
	d := reflect.ValueOf(dst).Elem().FieldByName(name)
	s := reflect.ValueOf(src.DeepCopyObject()).Elem().FieldByName(name)
	if d.IsValid() && s.IsValid() && d.CanSet() {
		d.Set(s)
	}
}
