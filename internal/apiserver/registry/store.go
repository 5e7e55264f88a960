package registry

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
)

// Storage maps each served group version to its REST storage by resource
// path ("pods", "pods/status", ...), the shape APIGroupInfo wants.
type Storage map[schema.GroupVersion]map[string]rest.Storage

// Build creates the REST storage of every resource in defs. Stores are backed
// by optsGetter (etcd with a watch cache in the server; tests may pass
// another getter).
func Build(defs []*Resource, optsGetter generic.RESTOptionsGetter) (Storage, error) {
	out := Storage{}
	for _, def := range defs {
		store, err := newStore(def, optsGetter)
		if err != nil {
			return nil, fmt.Errorf("storage for %s: %w", def.GroupResource(), err)
		}
		m := out[def.GroupVersion]
		if m == nil {
			m = map[string]rest.Storage{}
			out[def.GroupVersion] = m
		}
		m[def.Name] = &mainREST{Store: store, def: def}
		if def.HasStatus {
			m[def.Name+"/status"] = newStatusREST(store, def)
		}
		if def.Scale != nil {
			m[def.Name+"/scale"] = &scaleREST{store: store, def: def}
		}
		if def.GroupVersion.Group == "" && def.Name == "pods" {
			m["pods/binding"] = &bindingREST{store: store}
		}
		if def.GroupVersion.Group == "" && def.Name == "namespaces" {
			addNamespaceREST(m, store, def)
		}
	}
	return out, nil
}

func newStore(def *Resource, optsGetter generic.RESTOptionsGetter) (*genericregistry.Store, error) {
	s := newStrategy(def, false)
	table := def.Table
	if table == nil {
		table = rest.NewDefaultTableConvertor(def.GroupResource())
	}
	store := &genericregistry.Store{
		NewFunc:                   def.New,
		NewListFunc:               def.NewList,
		DefaultQualifiedResource:  def.GroupResource(),
		SingularQualifiedResource: schema.GroupResource{Group: def.GroupVersion.Group, Resource: def.Singular},
		CreateStrategy:            s,
		UpdateStrategy:            s,
		DeleteStrategy:            s,
		ResetFieldsStrategy:       s,
		ReturnDeletedObject:       true,
		TableConvertor:            table,
		BeginCreate:               def.Hooks.BeginCreate,
		BeginUpdate:               def.Hooks.BeginUpdate,
		AfterUpdate:               def.Hooks.AfterUpdate,
		AfterDelete:               def.Hooks.AfterDelete,
	}
	if def.TTLSeconds > 0 {
		ttl := def.TTLSeconds
		store.TTLFunc = func(runtime.Object, uint64, bool) (uint64, error) { return ttl, nil }
	}
	opts := &generic.StoreOptions{RESTOptions: optsGetter, AttrFunc: attrFunc(def)}
	if err := store.CompleteWithOptions(opts); err != nil {
		return nil, err
	}
	return store, nil
}

// attrFunc returns the labels and selectable fields of an object.
func attrFunc(def *Resource) storage.AttrFunc {
	return func(obj runtime.Object) (labels.Set, fields.Set, error) {
		m, err := meta.Accessor(obj)
		if err != nil {
			return nil, nil, err
		}
		fs := fields.Set{"metadata.name": m.GetName()}
		if def.Namespaced {
			fs["metadata.namespace"] = m.GetNamespace()
		}
		if def.Fields != nil {
			fs = generic.MergeFieldsSets(fs, def.Fields(obj))
		}
		return labels.Set(m.GetLabels()), fs, nil
	}
}

// mainREST is a resource's main endpoint: the generic store plus the names
// discovery publishes.
type mainREST struct {
	*genericregistry.Store
	def *Resource
}

// ShortNames returns the resource's short names (svc, ep, rc, ...).
func (r *mainREST) ShortNames() []string { return r.def.ShortNames }

// Categories returns the categories the resource belongs to ("all").
func (r *mainREST) Categories() []string { return r.def.Categories }

// statusREST serves /status: get, update and patch with the status strategy.
type statusREST struct {
	store *genericregistry.Store
}

func newStatusREST(main *genericregistry.Store, def *Resource) *statusREST {
	st := *main
	st.BeginCreate, st.BeginUpdate, st.AfterUpdate, st.AfterDelete = nil, nil, nil, nil
	s := newStrategy(def, true)
	st.UpdateStrategy = s
	st.ResetFieldsStrategy = s
	return &statusREST{store: &st}
}

// New returns an empty object of the resource's kind.
func (r *statusREST) New() runtime.Object { return r.store.New() }

// Destroy does nothing: the main store owns the storage.
func (r *statusREST) Destroy() {}

// Get returns the object.
func (r *statusREST) Get(ctx context.Context, name string, options *metav1.GetOptions) (runtime.Object, error) {
	return r.store.Get(ctx, name, options)
}

// Update writes the object's status; the spec is kept from the stored object.
func (r *statusREST) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo,
	createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc,
	forceAllowCreate bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	return r.store.Update(ctx, name, objInfo, createValidation, updateValidation, false, options)
}

// GetResetFields names what a status writer cannot change (the spec).
func (r *statusREST) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	return r.store.GetResetFields()
}

// ConvertToTable renders the object as the main resource does.
func (r *statusREST) ConvertToTable(ctx context.Context, obj runtime.Object, opts runtime.Object) (*metav1.Table, error) {
	return r.store.ConvertToTable(ctx, obj, opts)
}
