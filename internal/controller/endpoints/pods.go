package endpoints

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	utilnet "k8s.io/utils/net"
)

// The helpers below are upstream's pod and service rules
// (k8s.io/endpointslice/util, pkg/api/v1/pod), shared by the Endpoints and
// EndpointSlice controllers.

// IsPodReady reports whether the pod's Ready condition is True.
func IsPodReady(pod *corev1.Pod) bool {
	c := podReadyCondition(pod)
	return c != nil && c.Status == corev1.ConditionTrue
}

func podReadyCondition(pod *corev1.Pod) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodReady {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// IsPodTerminal reports whether the pod finished (Succeeded or Failed).
func IsPodTerminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// ShouldPodBeInEndpoints is upstream's filter: terminal pods and pods
// without an IP never appear; terminating pods (deletionTimestamp set) only
// when includeTerminating.
func ShouldPodBeInEndpoints(pod *corev1.Pod, includeTerminating bool) bool {
	if IsPodTerminal(pod) {
		return false
	}
	if pod.Status.PodIP == "" && len(pod.Status.PodIPs) == 0 {
		return false
	}
	if !includeTerminating && pod.DeletionTimestamp != nil {
		return false
	}
	return true
}

// PodIPs returns the pod's addresses: status.podIPs, or status.podIP when
// the list is empty.
func PodIPs(pod *corev1.Pod) []string {
	if len(pod.Status.PodIPs) == 0 {
		if pod.Status.PodIP == "" {
			return nil
		}
		return []string{pod.Status.PodIP}
	}
	ips := make([]string, 0, len(pod.Status.PodIPs))
	for _, ip := range pod.Status.PodIPs {
		ips = append(ips, ip.IP)
	}
	return ips
}

// ShouldSetHostname is upstream's rule: the pod's spec.hostname becomes the
// address's hostname when its spec.subdomain names the service (the
// headless-service DNS records <hostname>.<service>.<ns>.svc).
func ShouldSetHostname(pod *corev1.Pod, svc *corev1.Service) bool {
	return pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name && svc.Namespace == pod.Namespace
}

// IsServiceIPSet reports whether the service has a cluster IP (is not
// headless).
func IsServiceIPSet(svc *corev1.Service) bool {
	return svc.Spec.ClusterIP != corev1.ClusterIPNone && svc.Spec.ClusterIP != ""
}

// HasSelector reports whether the service selects pods. Services without
// one get their endpoints from their users, as do ExternalName services
// none at all.
func HasSelector(svc *corev1.Service) bool {
	return len(svc.Spec.Selector) > 0 && svc.Spec.Type != corev1.ServiceTypeExternalName
}

func protocolOrTCP(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

// FindPort resolves a service port's targetPort on one pod: a number is
// used as is; a name is looked up among the ports of the pod's containers
// (and of restartable init containers, the sidecars) with the service
// port's protocol. A pod lacking the named port gets an error.
func FindPort(pod *corev1.Pod, sp *corev1.ServicePort) (int32, error) {
	tp := sp.TargetPort
	switch {
	case tp.Type == intstr.String && tp.StrVal != "":
		proto := protocolOrTCP(sp.Protocol)
		for _, c := range pod.Spec.Containers {
			for _, p := range c.Ports {
				if p.Name == tp.StrVal && protocolOrTCP(p.Protocol) == proto {
					return p.ContainerPort, nil
				}
			}
		}
		for _, c := range pod.Spec.InitContainers {
			if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
				continue
			}
			for _, p := range c.Ports {
				if p.Name == tp.StrVal && protocolOrTCP(p.Protocol) == proto {
					return p.ContainerPort, nil
				}
			}
		}
		return 0, fmt.Errorf("pod %s/%s has no port %q (%s)", pod.Namespace, pod.Name, tp.StrVal, proto)
	case tp.Type == intstr.Int && tp.IntVal != 0:
		return tp.IntVal, nil
	default:
		// An unset targetPort means the service port (the API server
		// defaults it so; objects built in code may not have it).
		return sp.Port, nil
	}
}

// SelectsPod reports whether the service's selector matches the pod.
func SelectsPod(svc *corev1.Service, pod *corev1.Pod) bool {
	if svc.Namespace != pod.Namespace || len(svc.Spec.Selector) == 0 {
		return false
	}
	for k, v := range svc.Spec.Selector {
		if got, ok := pod.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// ServicesForPod returns the keys of the services with a selector that
// select the pod.
func ServicesForPod(services corelisters.ServiceLister, pod *corev1.Pod, into map[string]struct{}) {
	list, err := services.Services(pod.Namespace).List(labelsEverything)
	if err != nil {
		return
	}
	for _, svc := range list {
		if SelectsPod(svc, pod) {
			into[pod.Namespace+"/"+svc.Name] = struct{}{}
		}
	}
}

// PodFromDeleteAction unwraps a DeletedFinalStateUnknown.
func PodFromDeleteAction(obj interface{}) *corev1.Pod {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	pod, _ := obj.(*corev1.Pod)
	return pod
}

// ServicesToUpdateOnPodChange returns the services whose endpoints a pod
// update may change: none when nothing endpoints show changed, the current
// memberships when the pod's readiness, addresses, phase or deletion
// changed, and both old and new memberships when labels, hostname or
// subdomain changed.
func ServicesToUpdateOnPodChange(services corelisters.ServiceLister, oldPod, newPod *corev1.Pod) map[string]struct{} {
	keys := map[string]struct{}{}
	if oldPod.ResourceVersion == newPod.ResourceVersion && oldPod.ResourceVersion != "" {
		return keys
	}
	podChanged, labelsChanged := podEndpointsChanged(oldPod, newPod)
	if !podChanged && !labelsChanged {
		return keys
	}
	ServicesForPod(services, newPod, keys)
	if labelsChanged {
		ServicesForPod(services, oldPod, keys)
	}
	return keys
}

func podEndpointsChanged(o, n *corev1.Pod) (podChanged, labelsChanged bool) {
	if !stringMapsEqual(o.Labels, n.Labels) || o.Spec.Hostname != n.Spec.Hostname || o.Spec.Subdomain != n.Spec.Subdomain {
		labelsChanged = true
	}
	switch {
	case (o.DeletionTimestamp == nil) != (n.DeletionTimestamp == nil):
		podChanged = true
	case IsPodReady(o) != IsPodReady(n):
		podChanged = true
	case IsPodTerminal(o) != IsPodTerminal(n):
		podChanged = true
	case o.Spec.NodeName != n.Spec.NodeName:
		podChanged = true
	case !stringSlicesEqual(PodIPs(o), PodIPs(n)):
		podChanged = true
	}
	// Ready's lastTransitionTime feeds the trigger-time annotation, but a
	// change of it alone changes no address.
	return podChanged, labelsChanged
}

func stringMapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func stringSlicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// IPFamilyOf returns IPv6 for an IPv6 address and IPv4 otherwise.
func IPFamilyOf(ip string) corev1.IPFamily {
	if utilnet.IsIPv6String(ip) {
		return corev1.IPv6Protocol
	}
	return corev1.IPv4Protocol
}

// TriggerTimeTracker computes the endpoints.kubernetes.io/last-change-trigger-time
// annotation as upstream's TriggerTimeTracker: on the first sync of a
// service its creation time, later the earliest Ready-condition transition
// (or service creation) that changed since the previous sync, or zero when
// none did.
type TriggerTimeTracker struct {
	mu     sync.Mutex
	states map[types.NamespacedName]triggerState
}

type triggerState struct {
	pods    map[string]time.Time
	service time.Time
}

// NewTriggerTimeTracker returns an empty tracker.
func NewTriggerTimeTracker() *TriggerTimeTracker {
	return &TriggerTimeTracker{states: map[types.NamespacedName]triggerState{}}
}

// Compute returns the trigger time for this sync of svc with pods and
// remembers the state for the next one.
func (t *TriggerTimeTracker) Compute(svc *corev1.Service, pods []*corev1.Pod) time.Time {
	key := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
	t.mu.Lock()
	state, known := t.states[key]
	t.mu.Unlock()
	var earliest time.Time
	min := func(v time.Time) {
		if earliest.IsZero() || v.Before(earliest) {
			earliest = v
		}
	}
	podTimes := make(map[string]time.Time, len(pods))
	for _, pod := range pods {
		c := podReadyCondition(pod)
		if c == nil || c.LastTransitionTime.IsZero() {
			continue
		}
		tt := c.LastTransitionTime.Time
		podTimes[pod.Name] = tt
		if tt.After(state.pods[pod.Name]) {
			min(tt)
		}
	}
	svcTime := svc.CreationTimestamp.Time
	if svcTime.After(state.service) {
		min(svcTime)
	}
	t.mu.Lock()
	t.states[key] = triggerState{pods: podTimes, service: svcTime}
	t.mu.Unlock()
	if !known {
		return svc.CreationTimestamp.Time
	}
	return earliest
}

// Delete forgets a service.
func (t *TriggerTimeTracker) Delete(namespace, name string) {
	t.mu.Lock()
	delete(t.states, types.NamespacedName{Namespace: namespace, Name: name})
	t.mu.Unlock()
}

// ParseResourceVersion reads a resourceVersion as a number (Wharf's are
// etcd revisions); ok is false for anything else.
func ParseResourceVersion(rv string) (uint64, bool) {
	n, err := strconv.ParseUint(rv, 10, 64)
	return n, err == nil
}
