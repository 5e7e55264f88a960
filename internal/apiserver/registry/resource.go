// Package registry defines the resources Wharf's API server serves and builds
// their REST storage on k8s.io/apiserver's generic registry: one table row per
// resource (resources.go) says its names, scope, subresources and the few
// rules that are its own; the generic strategy (strategy.go) gives every kind
// upstream's common behaviour.
package registry

import (
	"k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/api/validation/path"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
)

// NameRule is how a kind's metadata.name is validated.
type NameRule int

const (
	// NameSubdomain is a DNS-1123 subdomain (most kinds).
	NameSubdomain NameRule = iota
	// NameLabel is a DNS-1123 label (namespaces).
	NameLabel
	// Name1035 is a DNS-1035 label (services: the name becomes a DNS label
	// and an environment variable prefix).
	Name1035
	// NamePathSegment is any string usable as one URL path segment (RBAC).
	NamePathSegment
)

// ScaleAccess reads and writes the replica count behind a /scale subresource.
type ScaleAccess struct {
	// Get returns spec.replicas, status.replicas and the label selector in
	// its string form.
	Get func(obj runtime.Object) (spec, status int32, selector string)
	// Set writes spec.replicas.
	Set func(obj runtime.Object, replicas int32)
}

// Resource describes one served resource. Its New and NewList return the
// internal (storage) Go type, which is the external type itself except where
// StorageResource says the objects are another group's (extensions/v1beta1
// Ingress is stored as networking.k8s.io/v1).
type Resource struct {
	GroupVersion schema.GroupVersion
	// Name is the plural resource name, Singular its singular form.
	Name, Singular, Kind string
	Namespaced           bool
	ShortNames           []string
	Categories           []string
	Names                NameRule

	New, NewList func() runtime.Object

	// HasStatus adds a /status subresource; the main resource then keeps
	// status on update and clears it on create unless KeepStatusOnCreate.
	HasStatus, KeepStatusOnCreate bool
	// Generation sets metadata.generation to 1 on create and raises it on
	// every spec change.
	Generation bool
	// Scale adds a /scale subresource (autoscaling/v1 Scale).
	Scale *ScaleAccess
	// CreateOnUpdate lets a PUT create the object, as upstream allows for
	// Endpoints, Leases and Events.
	CreateOnUpdate bool
	// TTLSeconds makes stored objects expire (events: one hour).
	TTLSeconds uint64

	// StorageResource and StorageVersion name where the objects live when
	// not under this resource's own group (cohabiting resources).
	StorageResource *schema.GroupResource
	StorageVersion  *schema.GroupVersion

	// Fields adds the kind's selectable fields (scheme.FieldLabels).
	Fields func(obj runtime.Object) fields.Set
	// PrepareForCreate sets fields upstream sets on create (a pod's phase).
	PrepareForCreate func(obj runtime.Object)
	// Validate adds the kind's own checks to the metadata checks.
	Validate func(obj runtime.Object) field.ErrorList
	// Table renders kubectl's columns; nil gives NAME and CREATED AT.
	Table rest.TableConvertor
	// Hooks run around the main resource's writes (service IP and port
	// allocation); /status writes do not run them.
	Hooks Hooks
}

// Hooks are the generic store's create, update and delete hooks.
type Hooks struct {
	BeginCreate genericregistry.BeginCreateFunc
	BeginUpdate genericregistry.BeginUpdateFunc
	AfterUpdate genericregistry.AfterUpdateFunc
	AfterDelete genericregistry.AfterDeleteFunc
}

// GroupResource is the resource's group and plural name.
func (r *Resource) GroupResource() schema.GroupResource {
	return schema.GroupResource{Group: r.GroupVersion.Group, Resource: r.Name}
}

// StorageGroupResource is where the resource's objects are stored.
func (r *Resource) StorageGroupResource() schema.GroupResource {
	if r.StorageResource != nil {
		return *r.StorageResource
	}
	return r.GroupResource()
}

// StorageGroupVersion is the version the objects are encoded in.
func (r *Resource) StorageGroupVersion() schema.GroupVersion {
	if r.StorageVersion != nil {
		return *r.StorageVersion
	}
	return r.GroupVersion
}

func (r *Resource) nameValidator() validation.ValidateNameFunc {
	switch r.Names {
	case NameLabel:
		return validation.NameIsDNSLabel
	case Name1035:
		return validation.NameIsDNS1035Label
	case NamePathSegment:
		return path.ValidatePathSegmentName
	default:
		return validation.NameIsDNSSubdomain
	}
}
