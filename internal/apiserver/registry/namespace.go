package registry

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/watch"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage"
	storeerr "k8s.io/apiserver/pkg/storage/errors"
	"k8s.io/apiserver/pkg/util/dryrun"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
)

// Namespaces follow upstream's lifecycle (pkg/registry/core/namespace):
//
//   - create sets status.phase Active and adds the "kubernetes" finalizer to
//     spec.finalizers (the resource table's PrepareForCreate);
//   - the first DELETE only sets deletionTimestamp and status.phase
//     Terminating (plus the orphan / foregroundDeletion finalizers the
//     propagation policy asks for); the namespace controller then empties
//     the namespace and removes its finalizer through namespaces/finalize;
//   - an update that leaves a deleting namespace with neither spec.finalizers
//     nor metadata.finalizers deletes it (ShouldDeleteNamespaceDuringUpdate);
//   - spec.finalizers change only through namespaces/finalize.

// addNamespaceREST replaces the generic endpoints of namespaces with
// upstream's: the main resource with the lifecycle Delete (and no
// deletecollection, as upstream), /status, and /finalize.
func addNamespaceREST(m map[string]rest.Storage, store *genericregistry.Store, def *Resource) {
	store.ShouldDeleteDuringUpdate = shouldDeleteNamespaceDuringUpdate
	m[def.Name] = &namespaceREST{store: store, def: def}
	m[def.Name+"/status"] = newStatusREST(store, def)
	m[def.Name+"/finalize"] = newNamespaceFinalizeREST(store, def)
}

// shouldDeleteNamespaceDuringUpdate adds the spec.finalizers check to the
// generic store's rule (no metadata.finalizers left on a deleting object).
func shouldDeleteNamespaceDuringUpdate(ctx context.Context, key string, obj, existing runtime.Object) bool {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		utilruntime.HandleError(fmt.Errorf("unexpected type %T", obj))
		return false
	}
	return len(ns.Spec.Finalizers) == 0 && genericregistry.ShouldDeleteDuringUpdate(ctx, key, obj, existing)
}

// prepareNamespaceForCreate is upstream's namespace PrepareForCreate: the
// status is Active whatever the request said, and spec.finalizers holds
// "kubernetes".
func prepareNamespaceForCreate(obj runtime.Object) {
	ns := obj.(*corev1.Namespace)
	ns.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
	for _, f := range ns.Spec.Finalizers {
		if f == corev1.FinalizerKubernetes {
			return
		}
	}
	ns.Spec.Finalizers = append(ns.Spec.Finalizers, corev1.FinalizerKubernetes)
}

// validateNamespace checks spec.finalizers as upstream: each is a qualified
// name, and a name without a domain must be a standard one ("kubernetes").
func validateNamespace(obj runtime.Object) field.ErrorList {
	ns := obj.(*corev1.Namespace)
	var errs field.ErrorList
	path := field.NewPath("spec", "finalizers")
	for i, f := range ns.Spec.Finalizers {
		p := path.Index(i)
		for _, msg := range utilvalidation.IsQualifiedName(string(f)) {
			errs = append(errs, field.Invalid(p, f, msg))
		}
		if !strings.Contains(string(f), "/") && f != corev1.FinalizerKubernetes {
			errs = append(errs, field.Invalid(p, f, "name is neither a standard finalizer name nor is it fully qualified"))
		}
	}
	return errs
}

// namespaceREST is the namespaces endpoint. It wraps the store rather than
// embedding it so that deletecollection is not served, as upstream.
type namespaceREST struct {
	store *genericregistry.Store
	def   *Resource
}

var (
	_ rest.Creater                    = &namespaceREST{}
	_ rest.Updater                    = &namespaceREST{}
	_ rest.GracefulDeleter            = &namespaceREST{}
	_ rest.Lister                     = &namespaceREST{}
	_ rest.Watcher                    = &namespaceREST{}
	_ rest.ShortNamesProvider         = &namespaceREST{}
	_ rest.SingularNameProvider       = &namespaceREST{}
	_ rest.StorageVersionProvider     = &namespaceREST{}
	_ rest.ResetFieldsStrategy        = &namespaceREST{}
	_ rest.MayReturnFullObjectDeleter = &namespaceREST{}
)

// NamespaceScoped is false: namespaces are cluster-scoped.
func (r *namespaceREST) NamespaceScoped() bool { return r.store.NamespaceScoped() }

// GetSingularName returns "namespace".
func (r *namespaceREST) GetSingularName() string { return r.store.GetSingularName() }

// New returns an empty Namespace.
func (r *namespaceREST) New() runtime.Object { return r.store.New() }

// Destroy releases the storage.
func (r *namespaceREST) Destroy() { r.store.Destroy() }

// NewList returns an empty NamespaceList.
func (r *namespaceREST) NewList() runtime.Object { return r.store.NewList() }

// List lists namespaces.
func (r *namespaceREST) List(ctx context.Context, options *metainternalversion.ListOptions) (runtime.Object, error) {
	return r.store.List(ctx, options)
}

// Create creates a namespace.
func (r *namespaceREST) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, options *metav1.CreateOptions) (runtime.Object, error) {
	return r.store.Create(ctx, obj, createValidation, options)
}

// Update writes a namespace; spec.finalizers keep their stored value (only
// namespaces/finalize changes them), as upstream's PrepareForUpdate.
func (r *namespaceREST) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, forceAllowCreate bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	return r.store.Update(ctx, name, keepFinalizers{objInfo}, createValidation, updateValidation, forceAllowCreate, options)
}

// keepFinalizers copies spec.finalizers from the stored namespace into the
// updated one.
type keepFinalizers struct{ rest.UpdatedObjectInfo }

func (k keepFinalizers) UpdatedObject(ctx context.Context, oldObj runtime.Object) (runtime.Object, error) {
	obj, err := k.UpdatedObjectInfo.UpdatedObject(ctx, oldObj)
	if err != nil {
		return nil, err
	}
	if ns, ok := obj.(*corev1.Namespace); ok {
		if old, ok := oldObj.(*corev1.Namespace); ok && old != nil {
			ns.Spec.Finalizers = append([]corev1.FinalizerName(nil), old.Spec.Finalizers...)
		}
	}
	return obj, nil
}

// Get returns a namespace.
func (r *namespaceREST) Get(ctx context.Context, name string, options *metav1.GetOptions) (runtime.Object, error) {
	return r.store.Get(ctx, name, options)
}

// Watch watches namespaces.
func (r *namespaceREST) Watch(ctx context.Context, options *metainternalversion.ListOptions) (watch.Interface, error) {
	return r.store.Watch(ctx, options)
}

// ConvertToTable renders kubectl's columns.
func (r *namespaceREST) ConvertToTable(ctx context.Context, obj runtime.Object, opts runtime.Object) (*metav1.Table, error) {
	return r.store.ConvertToTable(ctx, obj, opts)
}

// ShortNames returns "ns".
func (r *namespaceREST) ShortNames() []string { return r.def.ShortNames }

// Categories returns the resource's categories (none).
func (r *namespaceREST) Categories() []string { return r.def.Categories }

// StorageVersion is the version namespaces are stored in.
func (r *namespaceREST) StorageVersion() runtime.GroupVersioner { return r.store.StorageVersion() }

// GetResetFields names what server-side apply on the main resource cannot set.
func (r *namespaceREST) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	return r.store.GetResetFields()
}

// DeleteReturnsDeletedObject makes DELETE answer with the namespace.
func (r *namespaceREST) DeleteReturnsDeletedObject() bool {
	return r.store.DeleteReturnsDeletedObject()
}

// Delete is upstream's namespace Delete: the first request marks the
// namespace Terminating (deletionTimestamp, status.phase, the orphan or
// foregroundDeletion finalizer the options ask for) and leaves it in place;
// once spec.finalizers are empty a delete goes to the store.
func (r *namespaceREST) Delete(ctx context.Context, name string, deleteValidation rest.ValidateObjectFunc, options *metav1.DeleteOptions) (runtime.Object, bool, error) {
	obj, err := r.store.Get(ctx, name, &metav1.GetOptions{})
	if err != nil {
		return nil, false, err
	}
	namespace := obj.(*corev1.Namespace)
	gr := r.def.GroupResource()

	if options == nil {
		options = metav1.NewDeleteOptions(0)
	}
	if options.Preconditions == nil {
		options.Preconditions = &metav1.Preconditions{}
	}
	if options.Preconditions.UID == nil {
		options.Preconditions.UID = &namespace.UID
	} else if *options.Preconditions.UID != namespace.UID {
		return nil, false, apierrors.NewConflict(gr, name,
			fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *options.Preconditions.UID, namespace.UID))
	}
	if options.Preconditions.ResourceVersion != nil && *options.Preconditions.ResourceVersion != namespace.ResourceVersion {
		return nil, false, apierrors.NewConflict(gr, name,
			fmt.Errorf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v",
				*options.Preconditions.ResourceVersion, namespace.ResourceVersion))
	}

	if namespace.DeletionTimestamp.IsZero() {
		key, err := r.store.KeyFunc(ctx, name)
		if err != nil {
			return nil, false, err
		}
		preconditions := storage.Preconditions{UID: options.Preconditions.UID, ResourceVersion: options.Preconditions.ResourceVersion}
		out := r.store.NewFunc()
		err = r.store.Storage.GuaranteedUpdate(ctx, key, out, false, &preconditions,
			storage.SimpleUpdate(func(existing runtime.Object) (runtime.Object, error) {
				ns, ok := existing.(*corev1.Namespace)
				if !ok {
					return nil, fmt.Errorf("expected *v1.Namespace, got %T", existing)
				}
				if deleteValidation != nil {
					if err := deleteValidation(ctx, ns); err != nil {
						return nil, err
					}
				}
				if ns.DeletionTimestamp.IsZero() {
					now := metav1.Now()
					ns.DeletionTimestamp = &now
				}
				ns.Status.Phase = corev1.NamespaceTerminating
				ns.Finalizers = namespaceDeleteFinalizers(ns.Finalizers, options)
				return ns, nil
			}),
			dryrun.IsDryRun(options.DryRun), nil)
		if err != nil {
			err = storeerr.InterpretGetError(err, gr, name)
			err = storeerr.InterpretUpdateError(err, gr, name)
			if _, ok := err.(*apierrors.StatusError); !ok {
				err = apierrors.NewInternalError(err)
			}
			return nil, false, err
		}
		return out, false, nil
	}

	// Deleting already: the namespace goes once its finalizers are done.
	if len(namespace.Spec.Finalizers) != 0 {
		return namespace, false, nil
	}
	return r.store.Delete(ctx, name, deleteValidation, options)
}

// namespaceDeleteFinalizers adds or removes the garbage collector's
// finalizers as the delete options ask, keeping the others in order.
func namespaceDeleteFinalizers(current []string, options *metav1.DeleteOptions) []string {
	has := map[string]bool{}
	for _, f := range current {
		has[f] = true
	}
	want := map[string]bool{
		metav1.FinalizerOrphanDependents: has[metav1.FinalizerOrphanDependents],
		metav1.FinalizerDeleteDependents: has[metav1.FinalizerDeleteDependents],
	}
	// OrphanDependents is deprecated but still honoured, as upstream.
	switch {
	case options.OrphanDependents != nil:
		want[metav1.FinalizerOrphanDependents] = *options.OrphanDependents
		want[metav1.FinalizerDeleteDependents] = !*options.OrphanDependents
	case options.PropagationPolicy != nil:
		want[metav1.FinalizerOrphanDependents] = *options.PropagationPolicy == metav1.DeletePropagationOrphan
		want[metav1.FinalizerDeleteDependents] = *options.PropagationPolicy == metav1.DeletePropagationForeground
	}
	changed := false
	for f, w := range want {
		if has[f] != w {
			changed = true
		}
	}
	if !changed {
		return current
	}
	out := []string{}
	for _, f := range current {
		if f != metav1.FinalizerOrphanDependents && f != metav1.FinalizerDeleteDependents {
			out = append(out, f)
		}
	}
	for _, f := range []string{metav1.FinalizerOrphanDependents, metav1.FinalizerDeleteDependents} {
		if want[f] {
			out = append(out, f)
		}
	}
	return out
}

// namespaceFinalizeREST serves namespaces/finalize: a PUT that writes
// spec.finalizers (and metadata) but never status.
type namespaceFinalizeREST struct {
	store *genericregistry.Store
}

func newNamespaceFinalizeREST(main *genericregistry.Store, def *Resource) *namespaceFinalizeREST {
	st := *main
	st.BeginCreate, st.BeginUpdate, st.AfterUpdate, st.AfterDelete = nil, nil, nil, nil
	s := namespaceFinalizeStrategy{newStrategy(def, false)}
	st.UpdateStrategy = s
	st.ResetFieldsStrategy = s
	return &namespaceFinalizeREST{store: &st}
}

// New returns an empty Namespace.
func (r *namespaceFinalizeREST) New() runtime.Object { return r.store.New() }

// Destroy does nothing: the main store owns the storage.
func (r *namespaceFinalizeREST) Destroy() {}

// Update writes spec.finalizers; the namespace is deleted when it is
// deleting and none are left.
func (r *namespaceFinalizeREST) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo,
	createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc,
	forceAllowCreate bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	return r.store.Update(ctx, name, objInfo, createValidation, updateValidation, false, options)
}

// GetResetFields names what the finalize endpoint cannot set (status).
func (r *namespaceFinalizeREST) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	return r.store.GetResetFields()
}

// namespaceFinalizeStrategy is the generic strategy with upstream's
// finalize PrepareForUpdate: the spec comes from the request, the status
// stays.
type namespaceFinalizeStrategy struct{ *strategy }

// PrepareForUpdate keeps the stored status.
func (s namespaceFinalizeStrategy) PrepareForUpdate(ctx context.Context, obj, old runtime.Object) {
	obj.(*corev1.Namespace).Status = *old.(*corev1.Namespace).Status.DeepCopy()
}
