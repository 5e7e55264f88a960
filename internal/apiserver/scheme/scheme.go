// Package scheme builds the runtime.Scheme that Wharf's API server serves.
//
// Wharf stores and handles the published k8s.io/api types directly: there is
// no separate "internal" Go type as in kube-apiserver. Each served kind's Go
// type is registered twice, once under its external version (v1, ...) and once
// under the group's internal version (runtime.APIVersionInternal), so the
// generic API server's conversions between the two are a copy that only
// changes the TypeMeta (runtime.Scheme does no conversion when the target GVK
// is among the type's own kinds). Kinds that really differ between versions
// (extensions/v1beta1 Ingress) get conversion functions of their own.
package scheme

import (
	"fmt"
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	extensionsv1beta1 "k8s.io/api/extensions/v1beta1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
)

// Scheme is the scheme of every type the API server serves, external and
// internal versions. It is filled in once at package init and then only read.
var Scheme = runtime.NewScheme()

// Codecs serializes the Scheme's types (JSON, YAML, protobuf).
var Codecs = serializer.NewCodecFactory(Scheme)

// ParameterCodec decodes query parameters into the Scheme's option types.
var ParameterCodec = runtime.NewParameterCodec(Scheme)

// External holds the external versions only; OpenAPI names definitions after
// it so that no "__internal" kind appears in the published documents.
var External = runtime.NewScheme()

// externalAdders register the served group versions.
var externalAdders = []func(*runtime.Scheme) error{
	corev1.AddToScheme,
	appsv1.AddToScheme,
	autoscalingv1.AddToScheme,
	discoveryv1.AddToScheme,
	networkingv1.AddToScheme,
	extensionsv1beta1.AddToScheme,
	coordinationv1.AddToScheme,
	rbacv1.AddToScheme,
	eventsv1.AddToScheme,
	authorizationv1.AddToScheme,
	authenticationv1.AddToScheme,
	policyv1.AddToScheme,
}

// ServedGroupVersions lists the group versions in the preference order that
// discovery publishes (networking.k8s.io before extensions, as upstream).
var ServedGroupVersions = []schema.GroupVersion{
	corev1.SchemeGroupVersion,
	appsv1.SchemeGroupVersion,
	autoscalingv1.SchemeGroupVersion,
	discoveryv1.SchemeGroupVersion,
	networkingv1.SchemeGroupVersion,
	extensionsv1beta1.SchemeGroupVersion,
	coordinationv1.SchemeGroupVersion,
	rbacv1.SchemeGroupVersion,
	eventsv1.SchemeGroupVersion,
	authorizationv1.SchemeGroupVersion,
	authenticationv1.SchemeGroupVersion,
	policyv1.SchemeGroupVersion,
}

func init() {
	for _, add := range externalAdders {
		utilruntime.Must(add(Scheme))
		utilruntime.Must(add(External))
	}
	for _, gv := range ServedGroupVersions {
		utilruntime.Must(registerInternal(Scheme, gv))
	}
	utilruntime.Must(registerIngressConversions(Scheme))
	utilruntime.Must(registerEventConversions(Scheme))
	utilruntime.Must(registerPodOptionConversions(Scheme))
	utilruntime.Must(registerFieldLabels(Scheme))
	registerDefaults(Scheme)

	metav1.AddToGroupVersion(Scheme, schema.GroupVersion{Version: "v1"})
	unversioned := schema.GroupVersion{Group: "", Version: "v1"}
	Scheme.AddUnversionedTypes(unversioned,
		&metav1.Status{}, &metav1.APIVersions{}, &metav1.APIGroupList{},
		&metav1.APIGroup{}, &metav1.APIResourceList{})
}

var metaPkg = reflect.TypeOf(metav1.ObjectMeta{}).PkgPath()

// registerInternal registers every API kind of gv (not the metav1 option
// types) under gv's internal version with the same Go type. For groups whose
// kinds are converted rather than copied (extensions Ingress, events.k8s.io
// Event) the internal type is the storage group's type instead.
func registerInternal(s *runtime.Scheme, gv schema.GroupVersion) error {
	internal := schema.GroupVersion{Group: gv.Group, Version: runtime.APIVersionInternal}
	for kind, t := range s.KnownTypes(gv) {
		if t.PkgPath() == metaPkg || kind == "WatchEvent" {
			continue
		}
		if hub, ok := hubTypes[gv.WithKind(kind)]; ok {
			t = reflect.TypeOf(hub).Elem()
		}
		obj, ok := reflect.New(t).Interface().(runtime.Object)
		if !ok {
			return fmt.Errorf("%s %s is not a runtime.Object", gv, kind)
		}
		s.AddKnownTypeWithName(internal.WithKind(kind), obj)
	}
	return nil
}

// hubTypes names the kinds whose internal form is another group's type: they
// are stored in that group's version and converted on the way in and out.
var hubTypes = map[schema.GroupVersionKind]runtime.Object{
	extensionsv1beta1.SchemeGroupVersion.WithKind("Ingress"):     &networkingv1.Ingress{},
	extensionsv1beta1.SchemeGroupVersion.WithKind("IngressList"): &networkingv1.IngressList{},
	eventsv1.SchemeGroupVersion.WithKind("Event"):                &corev1.Event{},
	eventsv1.SchemeGroupVersion.WithKind("EventList"):            &corev1.EventList{},
}
