// Package quota computes ResourceQuota usage: the evaluators that say what
// an object costs (pods count and their compute requests and limits,
// services count and their node ports and load balancers, claims count and
// their storage, everything else by object count), used both by the
// ResourceQuota admission plugin (k8s.io/apiserver's, which charges the
// quota before an object is stored) and by the quota controller here, which
// keeps status.hard and status.used true.
package quota

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	quota "k8s.io/apiserver/pkg/quota/v1"
	"k8s.io/apiserver/pkg/quota/v1/generic"
)

var (
	podsGR     = schema.GroupResource{Resource: "pods"}
	servicesGR = schema.GroupResource{Resource: "services"}
	claimsGR   = schema.GroupResource{Resource: "persistentvolumeclaims"}
)

// counted are the resources quota counts by object alone, with the legacy
// short names the chapter's quota uses (replicationcontrollers: 1).
var counted = []struct {
	gr    schema.GroupResource
	alias corev1.ResourceName
}{
	{schema.GroupResource{Resource: "replicationcontrollers"}, corev1.ResourceReplicationControllers},
	{schema.GroupResource{Resource: "resourcequotas"}, corev1.ResourceQuotas},
	{schema.GroupResource{Resource: "secrets"}, corev1.ResourceSecrets},
	{schema.GroupResource{Resource: "configmaps"}, corev1.ResourceConfigMaps},
	{schema.GroupResource{Group: "apps", Resource: "replicasets"}, ""},
	{schema.GroupResource{Group: "apps", Resource: "deployments"}, ""},
	{schema.GroupResource{Group: "networking.k8s.io", Resource: "ingresses"}, ""},
	{schema.GroupResource{Resource: "endpoints"}, ""},
	{schema.GroupResource{Group: "discovery.k8s.io", Resource: "endpointslices"}, ""},
	{schema.GroupResource{Resource: "events"}, ""},
}

// Evaluators returns every evaluator, listing objects through lister.
func Evaluators(lister quota.ListerForResourceFunc) []quota.Evaluator {
	list := func(gr schema.GroupResource, version string) generic.ListFuncByNamespace {
		return generic.ListResourceUsingListerFunc(lister, gr.WithVersion(version))
	}
	out := []quota.Evaluator{
		&podEvaluator{&base{gr: podsGR, names: podResources, list: list(podsGR, "v1"), usage: podUsage}},
		&base{gr: servicesGR, names: serviceResources, list: list(servicesGR, "v1"), usage: serviceUsage},
		&base{gr: claimsGR, names: claimResources, list: list(claimsGR, "v1"), usage: claimUsage},
	}
	for _, c := range counted {
		out = append(out, generic.NewObjectCountEvaluator(c.gr, list(c.gr, "v1"), c.alias))
	}
	return out
}

// base holds what every evaluator here does the same way.
type base struct {
	gr    schema.GroupResource
	names []corev1.ResourceName
	list  generic.ListFuncByNamespace
	usage func(runtime.Object) (corev1.ResourceList, error)
}

// GroupResource implements quota.Evaluator.
func (b *base) GroupResource() schema.GroupResource { return b.gr }

// Handles implements quota.Evaluator: quota is charged on create.
func (b *base) Handles(a admission.Attributes) bool { return a.GetOperation() == admission.Create }

// Constraints implements quota.Evaluator: nothing is required.
func (b *base) Constraints([]corev1.ResourceName, runtime.Object) error { return nil }

// Usage implements quota.Evaluator.
func (b *base) Usage(item runtime.Object) (corev1.ResourceList, error) { return b.usage(item) }

// Matches implements quota.Evaluator.
func (b *base) Matches(q *corev1.ResourceQuota, item runtime.Object) (bool, error) {
	return generic.Matches(q, item, b.MatchingResources, generic.MatchesNoScopeFunc)
}

// MatchingResources implements quota.Evaluator.
func (b *base) MatchingResources(input []corev1.ResourceName) []corev1.ResourceName {
	var out []corev1.ResourceName
	for _, in := range input {
		for _, n := range b.names {
			if in == n {
				out = append(out, in)
			}
		}
	}
	return out
}

// MatchingScopes implements quota.Evaluator; quota scopes are not supported yet.
func (b *base) MatchingScopes(runtime.Object, []corev1.ScopedResourceSelectorRequirement) ([]corev1.ScopedResourceSelectorRequirement, error) {
	return nil, nil
}

// UncoveredQuotaScopes implements quota.Evaluator.
func (b *base) UncoveredQuotaScopes(_, _ []corev1.ScopedResourceSelectorRequirement) ([]corev1.ScopedResourceSelectorRequirement, error) {
	return nil, nil
}

// UsageStats implements quota.Evaluator.
func (b *base) UsageStats(o quota.UsageStatsOptions) (quota.UsageStats, error) {
	return generic.CalculateUsageStats(o, b.list, generic.MatchesNoScopeFunc, b.usage)
}

func one() resource.Quantity { return *resource.NewQuantity(1, resource.DecimalSI) }

func countName(gr schema.GroupResource) corev1.ResourceName {
	return generic.ObjectCountQuotaResourceNameFor(gr)
}

// podEvaluator charges pods=1 for a pod that has not finished, and its
// containers' requests and limits; it also requires the requests and limits
// a quota constrains.
type podEvaluator struct{ *base }

var podResources = []corev1.ResourceName{corev1.ResourcePods, countName(podsGR), corev1.ResourceCPU, corev1.ResourceMemory,
	corev1.ResourceRequestsCPU, corev1.ResourceRequestsMemory, corev1.ResourceLimitsCPU, corev1.ResourceLimitsMemory,
	corev1.ResourceEphemeralStorage, corev1.ResourceRequestsEphemeralStorage, corev1.ResourceLimitsEphemeralStorage}

// Constraints requires every container to state the requests and limits a
// quota constrains, with upstream's message ("must specify limits.cpu for:
// busybox-ns").
func (e *podEvaluator) Constraints(required []corev1.ResourceName, item runtime.Object) error {
	pod, ok := item.(*corev1.Pod)
	if !ok {
		return fmt.Errorf("unexpected input object %v", item)
	}
	missing := map[corev1.ResourceName][]string{}
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		for _, r := range required {
			var has bool
			switch r {
			case corev1.ResourceCPU, corev1.ResourceRequestsCPU:
				_, has = c.Resources.Requests[corev1.ResourceCPU]
			case corev1.ResourceMemory, corev1.ResourceRequestsMemory:
				_, has = c.Resources.Requests[corev1.ResourceMemory]
			case corev1.ResourceLimitsCPU:
				_, has = c.Resources.Limits[corev1.ResourceCPU]
			case corev1.ResourceLimitsMemory:
				_, has = c.Resources.Limits[corev1.ResourceMemory]
			default:
				has = true
			}
			if !has {
				missing[r] = append(missing[r], c.Name)
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	var parts []string
	for r, names := range missing {
		parts = append(parts, fmt.Sprintf("%s for: %s", r, strings.Join(names, ",")))
	}
	sort.Strings(parts)
	return fmt.Errorf("must specify %s", strings.Join(parts, "; "))
}

func podUsage(item runtime.Object) (corev1.ResourceList, error) {
	pod, ok := item.(*corev1.Pod)
	if !ok {
		return nil, fmt.Errorf("unexpected input object %v", item)
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return corev1.ResourceList{}, nil
	}
	out := corev1.ResourceList{corev1.ResourcePods: one(), countName(podsGR): one()}
	add := func(name corev1.ResourceName, q resource.Quantity) {
		cur := out[name]
		cur.Add(q)
		out[name] = cur
	}
	for _, c := range pod.Spec.Containers {
		for r, q := range c.Resources.Requests {
			switch r {
			case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
				add(r, q)
				add(corev1.ResourceName("requests."+string(r)), q)
			}
		}
		for r, q := range c.Resources.Limits {
			switch r {
			case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
				add(corev1.ResourceName("limits."+string(r)), q)
			}
		}
	}
	return out, nil
}

// A service costs services=1, its node ports, and one load balancer for
// type LoadBalancer.
var serviceResources = []corev1.ResourceName{corev1.ResourceServices, countName(servicesGR),
	corev1.ResourceServicesNodePorts, corev1.ResourceServicesLoadBalancers}

func serviceUsage(item runtime.Object) (corev1.ResourceList, error) {
	svc, ok := item.(*corev1.Service)
	if !ok {
		return nil, fmt.Errorf("unexpected input object %v", item)
	}
	out := corev1.ResourceList{corev1.ResourceServices: one(), countName(servicesGR): one()}
	ports := int64(0)
	switch svc.Spec.Type {
	case corev1.ServiceTypeNodePort:
		ports = int64(len(svc.Spec.Ports))
	case corev1.ServiceTypeLoadBalancer:
		out[corev1.ResourceServicesLoadBalancers] = one()
		if svc.Spec.AllocateLoadBalancerNodePorts == nil || *svc.Spec.AllocateLoadBalancerNodePorts {
			ports = int64(len(svc.Spec.Ports))
		}
	}
	if ports > 0 {
		out[corev1.ResourceServicesNodePorts] = *resource.NewQuantity(ports, resource.DecimalSI)
	}
	return out, nil
}

// A claim costs persistentvolumeclaims=1 and its requests.storage.
var claimResources = []corev1.ResourceName{corev1.ResourcePersistentVolumeClaims, countName(claimsGR), corev1.ResourceRequestsStorage}

func claimUsage(item runtime.Object) (corev1.ResourceList, error) {
	c, ok := item.(*corev1.PersistentVolumeClaim)
	if !ok {
		return nil, fmt.Errorf("unexpected input object %v", item)
	}
	out := corev1.ResourceList{corev1.ResourcePersistentVolumeClaims: one(), countName(claimsGR): one()}
	if q, ok := c.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
		out[corev1.ResourceRequestsStorage] = q
	}
	return out, nil
}
