package scheduler

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
)

// The reasons a node does not fit, in upstream's words (FailedScheduling
// events count nodes per reason).
const (
	reasonNotReady     = "node(s) were not ready"
	reasonUnschedule   = "node(s) were unschedulable"
	reasonSelector     = "node(s) didn't match Pod's node affinity/selector"
	reasonHostPort     = "node(s) didn't have free ports for the requested pod ports"
	reasonTooManyPods  = "Too many pods"
	reasonInsufficient = "Insufficient %s"
)

// nodeInfo is a node and what the pods bound to it use.
type nodeInfo struct {
	node      *corev1.Node
	requested corev1.ResourceList
	pods      int
	hostPorts map[string]bool
	// scored adds up requests with upstream's non-zero defaults, for
	// scoring: pods that request nothing still spread over the nodes.
	scored corev1.ResourceList
}

// podRequests sums a pod's container requests (init containers as upstream:
// the larger of their maximum and the sum of the app containers).
func podRequests(p *corev1.Pod) corev1.ResourceList {
	sum := corev1.ResourceList{}
	for _, c := range p.Spec.Containers {
		for r, q := range c.Resources.Requests {
			cur := sum[r]
			cur.Add(q)
			sum[r] = cur
		}
	}
	for _, c := range p.Spec.InitContainers {
		for r, q := range c.Resources.Requests {
			if cur, ok := sum[r]; !ok || q.Cmp(cur) > 0 {
				sum[r] = q.DeepCopy()
			}
		}
	}
	return sum
}

func hostPortKeys(p *corev1.Pod) []string {
	var out []string
	for _, c := range p.Spec.Containers {
		for _, port := range c.Ports {
			if port.HostPort > 0 {
				proto := port.Protocol
				if proto == "" {
					proto = corev1.ProtocolTCP
				}
				out = append(out, fmt.Sprintf("%s/%d", proto, port.HostPort))
			}
		}
	}
	return out
}

// newNodeInfos adds up the pods bound to each node.
func newNodeInfos(nodes []*corev1.Node, pods []*corev1.Pod) map[string]*nodeInfo {
	infos := make(map[string]*nodeInfo, len(nodes))
	for _, n := range nodes {
		infos[n.Name] = &nodeInfo{node: n, requested: corev1.ResourceList{}, scored: corev1.ResourceList{}, hostPorts: map[string]bool{}}
	}
	for _, p := range pods {
		ni, ok := infos[p.Spec.NodeName]
		if !ok || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		ni.add(p)
	}
	return infos
}

func (ni *nodeInfo) add(p *corev1.Pod) {
	ni.pods++
	for r, q := range podRequests(p) {
		cur := ni.requested[r]
		cur.Add(q)
		ni.requested[r] = cur
	}
	for r, q := range nonzeroRequests(p) {
		cur := ni.scored[r]
		cur.Add(q)
		ni.scored[r] = cur
	}
	for _, k := range hostPortKeys(p) {
		ni.hostPorts[k] = true
	}
}

// Upstream's defaults for scoring a container that requests nothing
// (schedutil.DefaultMilliCPURequest, DefaultMemoryRequest).
var (
	defaultCPURequest    = resource.MustParse("100m")
	defaultMemoryRequest = resource.MustParse("200Mi")
)

// nonzeroRequests is podRequests with the defaults for cpu and memory a
// pod leaves unset, as upstream scores.
func nonzeroRequests(p *corev1.Pod) corev1.ResourceList {
	req := podRequests(p)
	out := corev1.ResourceList{corev1.ResourceCPU: req[corev1.ResourceCPU], corev1.ResourceMemory: req[corev1.ResourceMemory]}
	if q := out[corev1.ResourceCPU]; q.IsZero() {
		out[corev1.ResourceCPU] = defaultCPURequest
	}
	if q := out[corev1.ResourceMemory]; q.IsZero() {
		out[corev1.ResourceMemory] = defaultMemoryRequest
	}
	return out
}

// fits returns nil when pod fits on the node, or why it does not, checked
// in upstream's filter order (unschedulable, taints, node selector, ports,
// resources).
func (ni *nodeInfo) fits(p *corev1.Pod) []string {
	n := ni.node
	if n.Spec.Unschedulable && !tolerates(p, corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}) {
		return []string{reasonUnschedule}
	}
	for _, t := range n.Spec.Taints {
		if (t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute) && !tolerates(p, t) {
			return []string{fmt.Sprintf("node(s) had untolerated taint {%s: %s}", t.Key, t.Value)}
		}
	}
	if !labels.SelectorFromSet(p.Spec.NodeSelector).Matches(labels.Set(n.Labels)) {
		return []string{reasonSelector}
	}
	// Upstream relies on the not-ready and unreachable taints alone; a node
	// whose taint the lifecycle controller has not written yet is still
	// not a place for pods.
	if !nodeReady(n) {
		return []string{reasonNotReady}
	}
	for _, k := range hostPortKeys(p) {
		if ni.hostPorts[k] {
			return []string{reasonHostPort}
		}
	}
	var reasons []string
	if max, ok := n.Status.Allocatable[corev1.ResourcePods]; ok && int64(ni.pods+1) > max.Value() {
		reasons = append(reasons, reasonTooManyPods)
	}
	for r, q := range podRequests(p) {
		alloc, ok := n.Status.Allocatable[r]
		if !ok {
			if q.IsZero() {
				continue
			}
			alloc = resource.Quantity{}
		}
		used := ni.requested[r]
		used.Add(q)
		if used.Cmp(alloc) > 0 {
			reasons = append(reasons, fmt.Sprintf(reasonInsufficient, r))
		}
	}
	sort.Strings(reasons)
	return reasons
}

// score prefers the least allocated node (upstream's default
// LeastAllocated strategy on cpu and memory, with its non-zero request
// defaults), 0..10000; equal scores go to the node with fewer pods.
func (ni *nodeInfo) score(p *corev1.Pod) int64 {
	req := nonzeroRequests(p)
	var total, count int64
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		alloc := ni.node.Status.Allocatable[r]
		if alloc.IsZero() {
			continue
		}
		used := ni.scored[r]
		used.Add(req[r])
		free := alloc.MilliValue() - used.MilliValue()
		if free < 0 {
			free = 0
		}
		total += free * 10000 / alloc.MilliValue()
		count++
	}
	if count == 0 {
		return 10000 - int64(ni.pods)
	}
	return total / count
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// tolerates is upstream's toleration matching.
func tolerates(p *corev1.Pod, t corev1.Taint) bool {
	for _, tol := range p.Spec.Tolerations {
		if tol.Effect != "" && tol.Effect != t.Effect {
			continue
		}
		switch tol.Operator {
		case corev1.TolerationOpExists:
			if tol.Key == "" || tol.Key == t.Key {
				return true
			}
		default:
			if tol.Key == t.Key && tol.Value == t.Value {
				return true
			}
		}
	}
	return false
}

// Decide picks the node for pod among infos, or returns upstream's
// FailedScheduling message.
func decide(p *corev1.Pod, infos map[string]*nodeInfo) (string, string) {
	if len(infos) == 0 {
		return "", "no nodes available to schedule pods"
	}
	if p.Spec.NodeName != "" {
		return p.Spec.NodeName, ""
	}
	best, bestScore := "", int64(-1)
	counts := map[string]int{}
	names := make([]string, 0, len(infos))
	for name := range infos {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ni := infos[name]
		reasons := ni.fits(p)
		if len(reasons) > 0 {
			for _, r := range reasons {
				counts[r]++
			}
			continue
		}
		if s := ni.score(p); s > bestScore || s == bestScore && ni.pods < infos[best].pods {
			best, bestScore = name, s
		}
	}
	if best != "" {
		return best, ""
	}
	return "", unschedulableMessage(len(infos), counts)
}

// unschedulableMessage formats upstream's "0/3 nodes are available: ..."
// message, reasons sorted by text.
func unschedulableMessage(nodes int, counts map[string]int) string {
	var parts []string
	for r, n := range counts {
		parts = append(parts, fmt.Sprintf("%d %s", n, r))
	}
	sort.Slice(parts, func(i, j int) bool {
		return strings.SplitN(parts[i], " ", 2)[1] < strings.SplitN(parts[j], " ", 2)[1]
	})
	return fmt.Sprintf("0/%d nodes are available: %s. preemption: 0/%d nodes are available: %d Preemption is not helpful for scheduling.",
		nodes, strings.Join(parts, ", "), nodes, nodes)
}
