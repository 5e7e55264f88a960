package node

import (
	"context"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	coordinationlisters "k8s.io/client-go/listers/coordination/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/wharf-io/wharf/internal/controller/manager"
)

// monitorPeriod is how often node health is checked (upstream's
// --node-monitor-period).
const monitorPeriod = 2 * time.Second

// Lifecycle watches node heartbeats.
type Lifecycle struct {
	client   kubernetes.Interface
	nodes    corelisters.NodeLister
	leases   coordinationlisters.LeaseLister
	pods     corelisters.PodLister
	synced   []cache.InformerSynced
	grace    time.Duration
	now      func() time.Time
	recorder record.EventRecorder
}

// NewLifecycle is the manager's constructor.
func NewLifecycle(c *manager.Context) (manager.Controller, error) {
	ni := c.Informers.Core().V1().Nodes()
	li := c.Informers.Coordination().V1().Leases()
	pi := c.Informers.Core().V1().Pods()
	grace := c.Options.NodeMonitorGracePeriod
	if grace == 0 {
		grace = 40 * time.Second
	}
	return &Lifecycle{client: c.Client, nodes: ni.Lister(), leases: li.Lister(), pods: pi.Lister(),
		synced: []cache.InformerSynced{ni.Informer().HasSynced, li.Informer().HasSynced, pi.Informer().HasSynced},
		grace:  grace, now: time.Now, recorder: c.Recorder("node-controller")}, nil
}

// Run checks nodes every monitorPeriod until ctx ends.
func (l *Lifecycle) Run(ctx context.Context, _ int) {
	defer utilruntime.HandleCrash()
	if !cache.WaitForCacheSync(ctx.Done(), l.synced...) {
		return
	}
	wait.UntilWithContext(ctx, l.checkAll, monitorPeriod)
}

func (l *Lifecycle) checkAll(ctx context.Context) {
	nodes, err := l.nodes.List(labels.Everything())
	if err != nil {
		return
	}
	for _, n := range nodes {
		if err := l.check(ctx, n); err != nil && !apierrors.IsConflict(err) {
			utilruntime.HandleError(err)
		}
	}
}

// lastHeartbeat is the node's lease renew time, or its Ready condition's
// heartbeat, or its creation.
func lastHeartbeat(n *corev1.Node, lease *coordinationv1.Lease) time.Time {
	t := n.CreationTimestamp.Time
	if lease != nil && lease.Spec.RenewTime != nil && lease.Spec.RenewTime.After(t) {
		t = lease.Spec.RenewTime.Time
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.LastHeartbeatTime.After(t) {
			t = c.LastHeartbeatTime.Time
		}
	}
	return t
}

// Expired reports whether a heartbeat at last is older than grace at now.
func Expired(last, now time.Time, grace time.Duration) bool { return now.Sub(last) > grace }

var unreachable = []corev1.Taint{
	{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute},
}

func (l *Lifecycle) check(ctx context.Context, n *corev1.Node) error {
	lease, _ := l.leases.Leases(corev1.NamespaceNodeLease).Get(n.Name)
	expired := Expired(lastHeartbeat(n, lease), l.now(), l.grace)
	ready := readyCondition(n)
	switch {
	case expired && (ready == nil || ready.Status != corev1.ConditionUnknown):
		return l.markUnknown(ctx, n)
	case expired:
		return nil
	case ready != nil && ready.Status == corev1.ConditionTrue && (hasTaint(n, unreachable[0]) || hasTaint(n, notReady)):
		return l.setTaints(ctx, n, nil)
	case (ready == nil || ready.Status == corev1.ConditionFalse) && !hasTaint(n, notReady):
		return l.setTaints(ctx, n, []corev1.Taint{notReady})
	}
	return nil
}

// notReady is the taint of a node that says it is not ready (upstream's
// TaintNodesByCondition).
var notReady = corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule}

func readyCondition(n *corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

func hasTaint(n *corev1.Node, t corev1.Taint) bool {
	for _, x := range n.Spec.Taints {
		if x.Key == t.Key && x.Effect == t.Effect {
			return true
		}
	}
	return false
}

// markUnknown is upstream's reaction to a silent node: Ready Unknown, the
// unreachable taints, and its pods marked not ready.
func (l *Lifecycle) markUnknown(ctx context.Context, n *corev1.Node) error {
	upd := n.DeepCopy()
	now := metav1.NewTime(l.now())
	cond := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Reason: "NodeStatusUnknown",
		Message: "Kubelet stopped posting node status.", LastTransitionTime: now}
	if c := readyCondition(upd); c != nil {
		cond.LastHeartbeatTime = c.LastHeartbeatTime
		*c = cond
	} else {
		upd.Status.Conditions = append(upd.Status.Conditions, cond)
	}
	if _, err := l.client.CoreV1().Nodes().UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return err
	}
	l.recorder.Eventf(n, corev1.EventTypeNormal, "NodeNotReady", "Node %s status is now: NodeNotReady", n.Name)
	if err := l.setTaints(ctx, n, unreachable); err != nil {
		return err
	}
	return l.markPodsNotReady(ctx, n.Name)
}

// setTaints replaces the node's condition taints (unreachable, not-ready)
// with add, keeping every other taint.
func (l *Lifecycle) setTaints(ctx context.Context, n *corev1.Node, add []corev1.Taint) error {
	cur, err := l.client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	var taints []corev1.Taint
	for _, t := range cur.Spec.Taints {
		if t.Key != corev1.TaintNodeUnreachable && t.Key != corev1.TaintNodeNotReady {
			taints = append(taints, t)
		}
	}
	now := metav1.NewTime(l.now())
	for _, t := range add {
		t.TimeAdded = &now
		taints = append(taints, t)
	}
	cur.Spec.Taints = taints
	_, err = l.client.CoreV1().Nodes().Update(ctx, cur, metav1.UpdateOptions{})
	return err
}

// markPodsNotReady sets Ready=False on the node's pods, so endpoints move
// them to notReadyAddresses.
func (l *Lifecycle) markPodsNotReady(ctx context.Context, node string) error {
	pods, err := l.pods.List(labels.Everything())
	if err != nil {
		return err
	}
	sel := fields.OneTermEqualSelector("spec.nodeName", node)
	for _, p := range pods {
		if !sel.Matches(fields.Set{"spec.nodeName": p.Spec.NodeName}) {
			continue
		}
		upd := p.DeepCopy()
		changed := false
		for i := range upd.Status.Conditions {
			c := &upd.Status.Conditions[i]
			if c.Type == corev1.PodReady && c.Status != corev1.ConditionFalse {
				c.Status, c.Reason, c.LastTransitionTime, changed = corev1.ConditionFalse, "NodeNotReady", metav1.NewTime(l.now()), true
			}
		}
		if changed {
			if _, err := l.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		}
	}
	return nil
}
