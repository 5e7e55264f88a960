package registry

import (
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	extv1beta1 "k8s.io/api/extensions/v1beta1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/wharf-io/wharf/internal/apiserver/tables"
	"github.com/wharf-io/wharf/internal/apiserver/validation"
)

var (
	core       = corev1.SchemeGroupVersion
	apps       = appsv1.SchemeGroupVersion
	discovery  = discoveryv1.SchemeGroupVersion
	networking = networkingv1.SchemeGroupVersion
	extensions = extv1beta1.SchemeGroupVersion
	rbac       = rbacv1.SchemeGroupVersion
	all        = []string{"all"}
)

// Resources returns the table of served resources, in discovery order.
func Resources() []*Resource {
	return []*Resource{
		{GroupVersion: core, Name: "namespaces", Singular: "namespace", Kind: "Namespace", ShortNames: []string{"ns"},
			Names: NameLabel, HasStatus: true, KeepStatusOnCreate: true,
			New: func() runtime.Object { return &corev1.Namespace{} }, NewList: func() runtime.Object { return &corev1.NamespaceList{} },
			PrepareForCreate: prepareNamespaceForCreate, Validate: validateNamespace,
			Fields: namespaceFields, Table: tables.Namespaces},
		{GroupVersion: core, Name: "pods", Singular: "pod", Kind: "Pod", Namespaced: true, ShortNames: []string{"po"}, Categories: all,
			HasStatus: true, Generation: true,
			New: func() runtime.Object { return &corev1.Pod{} }, NewList: func() runtime.Object { return &corev1.PodList{} },
			PrepareForCreate: func(o runtime.Object) {
				p := o.(*corev1.Pod)
				p.Status = corev1.PodStatus{Phase: corev1.PodPending}
			},
			Fields: podFields, Table: tables.Pods,
			Validate: func(o runtime.Object) field.ErrorList { return validation.Pod(o.(*corev1.Pod)) }},
		{GroupVersion: core, Name: "services", Singular: "service", Kind: "Service", Namespaced: true, ShortNames: []string{"svc"}, Categories: all,
			Names: Name1035, HasStatus: true,
			New: func() runtime.Object { return &corev1.Service{} }, NewList: func() runtime.Object { return &corev1.ServiceList{} },
			Fields: serviceFields, Table: tables.Services,
			Validate: func(o runtime.Object) field.ErrorList { return validation.Service(o.(*corev1.Service)) }},
		{GroupVersion: core, Name: "endpoints", Singular: "endpoints", Kind: "Endpoints", Namespaced: true, ShortNames: []string{"ep"},
			CreateOnUpdate: true,
			New:            func() runtime.Object { return &corev1.Endpoints{} }, NewList: func() runtime.Object { return &corev1.EndpointsList{} },
			Table:    tables.Endpoints,
			Validate: func(o runtime.Object) field.ErrorList { return validation.Endpoints(o.(*corev1.Endpoints)) }},
		{GroupVersion: core, Name: "replicationcontrollers", Singular: "replicationcontroller", Kind: "ReplicationController", Namespaced: true,
			ShortNames: []string{"rc"}, Categories: all, HasStatus: true, Generation: true, Scale: rcScale,
			New:     func() runtime.Object { return &corev1.ReplicationController{} },
			NewList: func() runtime.Object { return &corev1.ReplicationControllerList{} },
			Fields:  rcFields, Table: tables.ReplicationControllers,
			Validate: func(o runtime.Object) field.ErrorList {
				return validation.ReplicationController(o.(*corev1.ReplicationController))
			}},
		{GroupVersion: core, Name: "resourcequotas", Singular: "resourcequota", Kind: "ResourceQuota", Namespaced: true,
			ShortNames: []string{"quota"}, HasStatus: true,
			New:     func() runtime.Object { return &corev1.ResourceQuota{} },
			NewList: func() runtime.Object { return &corev1.ResourceQuotaList{} }, Table: tables.ResourceQuotas,
			Validate: func(o runtime.Object) field.ErrorList { return validation.ResourceQuota(o.(*corev1.ResourceQuota)) }},
		{GroupVersion: core, Name: "limitranges", Singular: "limitrange", Kind: "LimitRange", Namespaced: true, ShortNames: []string{"limits"},
			New: func() runtime.Object { return &corev1.LimitRange{} }, NewList: func() runtime.Object { return &corev1.LimitRangeList{} },
			Validate: func(o runtime.Object) field.ErrorList { return validation.LimitRange(o.(*corev1.LimitRange)) }},
		{GroupVersion: core, Name: "nodes", Singular: "node", Kind: "Node", ShortNames: []string{"no"},
			HasStatus: true, KeepStatusOnCreate: true,
			New: func() runtime.Object { return &corev1.Node{} }, NewList: func() runtime.Object { return &corev1.NodeList{} },
			Fields: nodeFields, Table: tables.Nodes},
		{GroupVersion: core, Name: "events", Singular: "event", Kind: "Event", Namespaced: true, ShortNames: []string{"ev"},
			CreateOnUpdate: true, TTLSeconds: 3600,
			New: func() runtime.Object { return &corev1.Event{} }, NewList: func() runtime.Object { return &corev1.EventList{} },
			Fields: eventFields, Table: tables.Events},
		{GroupVersion: core, Name: "configmaps", Singular: "configmap", Kind: "ConfigMap", Namespaced: true, ShortNames: []string{"cm"},
			New: func() runtime.Object { return &corev1.ConfigMap{} }, NewList: func() runtime.Object { return &corev1.ConfigMapList{} },
			Table: tables.ConfigMaps},
		{GroupVersion: core, Name: "secrets", Singular: "secret", Kind: "Secret", Namespaced: true,
			New: func() runtime.Object { return &corev1.Secret{} }, NewList: func() runtime.Object { return &corev1.SecretList{} },
			Fields: secretFields, Table: tables.Secrets},
		{GroupVersion: core, Name: "serviceaccounts", Singular: "serviceaccount", Kind: "ServiceAccount", Namespaced: true,
			ShortNames: []string{"sa"},
			New:        func() runtime.Object { return &corev1.ServiceAccount{} },
			NewList:    func() runtime.Object { return &corev1.ServiceAccountList{} }, Table: tables.ServiceAccounts},
		{GroupVersion: core, Name: "persistentvolumeclaims", Singular: "persistentvolumeclaim", Kind: "PersistentVolumeClaim",
			Namespaced: true, ShortNames: []string{"pvc"}, HasStatus: true,
			New:              func() runtime.Object { return &corev1.PersistentVolumeClaim{} },
			NewList:          func() runtime.Object { return &corev1.PersistentVolumeClaimList{} },
			PrepareForCreate: func(o runtime.Object) { o.(*corev1.PersistentVolumeClaim).Status.Phase = corev1.ClaimPending },
			Table:            tables.PersistentVolumeClaims},

		{GroupVersion: apps, Name: "replicasets", Singular: "replicaset", Kind: "ReplicaSet", Namespaced: true,
			ShortNames: []string{"rs"}, Categories: all, HasStatus: true, Generation: true, Scale: rsScale,
			New: func() runtime.Object { return &appsv1.ReplicaSet{} }, NewList: func() runtime.Object { return &appsv1.ReplicaSetList{} },
			Fields: rsFields, Table: tables.ReplicaSets},
		{GroupVersion: apps, Name: "deployments", Singular: "deployment", Kind: "Deployment", Namespaced: true,
			ShortNames: []string{"deploy"}, Categories: all, HasStatus: true, Generation: true, Scale: deploymentScale,
			New: func() runtime.Object { return &appsv1.Deployment{} }, NewList: func() runtime.Object { return &appsv1.DeploymentList{} },
			Table: tables.Deployments},

		{GroupVersion: discovery, Name: "endpointslices", Singular: "endpointslice", Kind: "EndpointSlice", Namespaced: true,
			New:     func() runtime.Object { return &discoveryv1.EndpointSlice{} },
			NewList: func() runtime.Object { return &discoveryv1.EndpointSliceList{} }, Table: tables.EndpointSlices},

		{GroupVersion: networking, Name: "ingresses", Singular: "ingress", Kind: "Ingress", Namespaced: true,
			ShortNames: []string{"ing"}, HasStatus: true, Generation: true,
			New: func() runtime.Object { return &networkingv1.Ingress{} }, NewList: func() runtime.Object { return &networkingv1.IngressList{} },
			Table: tables.Ingresses, Validate: validateIngress},
		{GroupVersion: networking, Name: "ingressclasses", Singular: "ingressclass", Kind: "IngressClass", Generation: true,
			New:     func() runtime.Object { return &networkingv1.IngressClass{} },
			NewList: func() runtime.Object { return &networkingv1.IngressClassList{} }, Table: tables.IngressClasses},
		{GroupVersion: extensions, Name: "ingresses", Singular: "ingress", Kind: "Ingress", Namespaced: true,
			ShortNames: []string{"ing"}, HasStatus: true, Generation: true,
			StorageResource: &schema.GroupResource{Group: networking.Group, Resource: "ingresses"}, StorageVersion: &networking,
			New: func() runtime.Object { return &networkingv1.Ingress{} }, NewList: func() runtime.Object { return &networkingv1.IngressList{} },
			Table: tables.Ingresses, Validate: validateIngress},

		{GroupVersion: coordinationv1.SchemeGroupVersion, Name: "leases", Singular: "lease", Kind: "Lease", Namespaced: true,
			CreateOnUpdate: true,
			New:            func() runtime.Object { return &coordinationv1.Lease{} },
			NewList:        func() runtime.Object { return &coordinationv1.LeaseList{} }, Table: tables.Leases},

		{GroupVersion: rbac, Name: "roles", Singular: "role", Kind: "Role", Namespaced: true, Names: NamePathSegment,
			New: func() runtime.Object { return &rbacv1.Role{} }, NewList: func() runtime.Object { return &rbacv1.RoleList{} }},
		{GroupVersion: rbac, Name: "rolebindings", Singular: "rolebinding", Kind: "RoleBinding", Namespaced: true, Names: NamePathSegment,
			New:     func() runtime.Object { return &rbacv1.RoleBinding{} },
			NewList: func() runtime.Object { return &rbacv1.RoleBindingList{} }, Table: tables.RoleBindings},
		{GroupVersion: rbac, Name: "clusterroles", Singular: "clusterrole", Kind: "ClusterRole", Names: NamePathSegment,
			New:     func() runtime.Object { return &rbacv1.ClusterRole{} },
			NewList: func() runtime.Object { return &rbacv1.ClusterRoleList{} }},
		{GroupVersion: rbac, Name: "clusterrolebindings", Singular: "clusterrolebinding", Kind: "ClusterRoleBinding", Names: NamePathSegment,
			New:     func() runtime.Object { return &rbacv1.ClusterRoleBinding{} },
			NewList: func() runtime.Object { return &rbacv1.ClusterRoleBindingList{} }, Table: tables.ClusterRoleBindings},

		{GroupVersion: eventsv1.SchemeGroupVersion, Name: "events", Singular: "event", Kind: "Event", Namespaced: true,
			ShortNames: []string{"ev"}, CreateOnUpdate: true, TTLSeconds: 3600,
			StorageResource: &schema.GroupResource{Resource: "events"}, StorageVersion: &core,
			New: func() runtime.Object { return &corev1.Event{} }, NewList: func() runtime.Object { return &corev1.EventList{} },
			Fields: eventFields, Table: tables.Events},
	}
}

var rcScale = &ScaleAccess{
	Get: func(o runtime.Object) (int32, int32, string) {
		rc := o.(*corev1.ReplicationController)
		return deref(rc.Spec.Replicas), rc.Status.Replicas, labels.SelectorFromSet(rc.Spec.Selector).String()
	},
	Set: func(o runtime.Object, n int32) { o.(*corev1.ReplicationController).Spec.Replicas = &n },
}

var rsScale = &ScaleAccess{
	Get: func(o runtime.Object) (int32, int32, string) {
		rs := o.(*appsv1.ReplicaSet)
		return deref(rs.Spec.Replicas), rs.Status.Replicas, selectorString(rs.Spec.Selector)
	},
	Set: func(o runtime.Object, n int32) { o.(*appsv1.ReplicaSet).Spec.Replicas = &n },
}

var deploymentScale = &ScaleAccess{
	Get: func(o runtime.Object) (int32, int32, string) {
		d := o.(*appsv1.Deployment)
		return deref(d.Spec.Replicas), d.Status.Replicas, selectorString(d.Spec.Selector)
	},
	Set: func(o runtime.Object, n int32) { o.(*appsv1.Deployment).Spec.Replicas = &n },
}

func selectorString(s *metav1.LabelSelector) string {
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return ""
	}
	return sel.String()
}

func deref(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

func validateIngress(o runtime.Object) field.ErrorList {
	return validation.Ingress(o.(*networkingv1.Ingress))
}
