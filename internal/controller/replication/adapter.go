package replication

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// adapter is what the shared reconcile needs from an owner kind. The
// reconcile works on apps/v1 ReplicaSets; the ReplicationController adapter
// converts core/v1 ReplicationControllers to and from them (as upstream's
// replication controller does), so ownerReferences, events and status
// updates still name the real kind.
type adapter interface {
	// gvk is the owner's kind, for ownerReferences and events.
	gvk() schema.GroupVersionKind
	// informer is the owner kind's shared informer.
	informer() cache.SharedIndexInformer
	// toRS converts an object from the informer; ok is false for anything else.
	toRS(obj interface{}) (*appsv1.ReplicaSet, bool)
	// get reads an owner from the informer's cache. The result is shared
	// with the cache (ReplicaSets) and must not be modified.
	get(namespace, name string) (*appsv1.ReplicaSet, error)
	// list returns the owners of a namespace from the cache.
	list(namespace string) ([]*appsv1.ReplicaSet, error)
	// getLive reads an owner from the API server.
	getLive(ctx context.Context, namespace, name string) (*appsv1.ReplicaSet, error)
	// updateStatus writes rs.Status through the /status subresource.
	updateStatus(ctx context.Context, rs *appsv1.ReplicaSet) (*appsv1.ReplicaSet, error)
	// eventObject is the object events are recorded on.
	eventObject(rs *appsv1.ReplicaSet) runtime.Object
}

// Owner kinds.
var (
	replicationControllerKind = corev1.SchemeGroupVersion.WithKind("ReplicationController")
	replicaSetKind            = appsv1.SchemeGroupVersion.WithKind("ReplicaSet")
)

// ---- ReplicaSet ----

type rsAdapter struct {
	client kubernetes.Interface
	inf    cache.SharedIndexInformer
	lister appslisters.ReplicaSetLister
}

func newRSAdapter(client kubernetes.Interface, factory informers.SharedInformerFactory) *rsAdapter {
	i := factory.Apps().V1().ReplicaSets()
	return &rsAdapter{client: client, inf: i.Informer(), lister: i.Lister()}
}

func (a *rsAdapter) gvk() schema.GroupVersionKind        { return replicaSetKind }
func (a *rsAdapter) informer() cache.SharedIndexInformer { return a.inf }

func (a *rsAdapter) toRS(obj interface{}) (*appsv1.ReplicaSet, bool) {
	rs, ok := obj.(*appsv1.ReplicaSet)
	return rs, ok
}

func (a *rsAdapter) get(namespace, name string) (*appsv1.ReplicaSet, error) {
	return a.lister.ReplicaSets(namespace).Get(name)
}

func (a *rsAdapter) list(namespace string) ([]*appsv1.ReplicaSet, error) {
	return a.lister.ReplicaSets(namespace).List(labels.Everything())
}

func (a *rsAdapter) getLive(ctx context.Context, namespace, name string) (*appsv1.ReplicaSet, error) {
	return a.client.AppsV1().ReplicaSets(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (a *rsAdapter) updateStatus(ctx context.Context, rs *appsv1.ReplicaSet) (*appsv1.ReplicaSet, error) {
	return a.client.AppsV1().ReplicaSets(rs.Namespace).UpdateStatus(ctx, rs, metav1.UpdateOptions{})
}

func (a *rsAdapter) eventObject(rs *appsv1.ReplicaSet) runtime.Object {
	return &appsv1.ReplicaSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"}, ObjectMeta: rs.ObjectMeta}
}

// ---- ReplicationController ----

type rcAdapter struct {
	client kubernetes.Interface
	inf    cache.SharedIndexInformer
	lister corelisters.ReplicationControllerLister
}

func newRCAdapter(client kubernetes.Interface, factory informers.SharedInformerFactory) *rcAdapter {
	i := factory.Core().V1().ReplicationControllers()
	return &rcAdapter{client: client, inf: i.Informer(), lister: i.Lister()}
}

func (a *rcAdapter) gvk() schema.GroupVersionKind        { return replicationControllerKind }
func (a *rcAdapter) informer() cache.SharedIndexInformer { return a.inf }

func (a *rcAdapter) toRS(obj interface{}) (*appsv1.ReplicaSet, bool) {
	rc, ok := obj.(*corev1.ReplicationController)
	if !ok {
		return nil, false
	}
	return rcToRS(rc), true
}

func (a *rcAdapter) get(namespace, name string) (*appsv1.ReplicaSet, error) {
	rc, err := a.lister.ReplicationControllers(namespace).Get(name)
	if err != nil {
		return nil, err
	}
	return rcToRS(rc), nil
}

func (a *rcAdapter) list(namespace string) ([]*appsv1.ReplicaSet, error) {
	rcs, err := a.lister.ReplicationControllers(namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	out := make([]*appsv1.ReplicaSet, 0, len(rcs))
	for _, rc := range rcs {
		out = append(out, rcToRS(rc))
	}
	return out, nil
}

func (a *rcAdapter) getLive(ctx context.Context, namespace, name string) (*appsv1.ReplicaSet, error) {
	rc, err := a.client.CoreV1().ReplicationControllers(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return rcToRS(rc), nil
}

func (a *rcAdapter) updateStatus(ctx context.Context, rs *appsv1.ReplicaSet) (*appsv1.ReplicaSet, error) {
	rc, err := a.client.CoreV1().ReplicationControllers(rs.Namespace).UpdateStatus(ctx, rsToRC(rs), metav1.UpdateOptions{})
	if err != nil {
		return nil, err
	}
	return rcToRS(rc), nil
}

func (a *rcAdapter) eventObject(rs *appsv1.ReplicaSet) runtime.Object {
	return &corev1.ReplicationController{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ReplicationController"}, ObjectMeta: rs.ObjectMeta}
}

// rcToRS converts a ReplicationController to the equivalent ReplicaSet:
// the same metadata, the map selector as matchLabels, the same template
// and status. An empty selector selects nothing (validation forbids it; a
// ReplicationController must never claim every pod of its namespace).
func rcToRS(rc *corev1.ReplicationController) *appsv1.ReplicaSet {
	rs := &appsv1.ReplicaSet{ObjectMeta: *rc.ObjectMeta.DeepCopy()}
	if rc.Spec.Replicas != nil {
		n := *rc.Spec.Replicas
		rs.Spec.Replicas = &n
	} else {
		one := int32(1)
		rs.Spec.Replicas = &one
	}
	rs.Spec.MinReadySeconds = rc.Spec.MinReadySeconds
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{}}
	for k, v := range rc.Spec.Selector {
		sel.MatchLabels[k] = v
	}
	rs.Spec.Selector = sel
	if rc.Spec.Template != nil {
		rs.Spec.Template = *rc.Spec.Template.DeepCopy()
	}
	rs.Status = appsv1.ReplicaSetStatus{
		Replicas:             rc.Status.Replicas,
		FullyLabeledReplicas: rc.Status.FullyLabeledReplicas,
		ReadyReplicas:        rc.Status.ReadyReplicas,
		AvailableReplicas:    rc.Status.AvailableReplicas,
		ObservedGeneration:   rc.Status.ObservedGeneration,
	}
	for _, c := range rc.Status.Conditions {
		rs.Status.Conditions = append(rs.Status.Conditions, appsv1.ReplicaSetCondition{
			Type: appsv1.ReplicaSetConditionType(c.Type), Status: c.Status,
			LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message,
		})
	}
	return rs
}

// rsToRC is rcToRS backwards.
func rsToRC(rs *appsv1.ReplicaSet) *corev1.ReplicationController {
	rc := &corev1.ReplicationController{ObjectMeta: *rs.ObjectMeta.DeepCopy()}
	if rs.Spec.Replicas != nil {
		n := *rs.Spec.Replicas
		rc.Spec.Replicas = &n
	}
	rc.Spec.MinReadySeconds = rs.Spec.MinReadySeconds
	if rs.Spec.Selector != nil && len(rs.Spec.Selector.MatchLabels) > 0 {
		rc.Spec.Selector = map[string]string{}
		for k, v := range rs.Spec.Selector.MatchLabels {
			rc.Spec.Selector[k] = v
		}
	}
	rc.Spec.Template = rs.Spec.Template.DeepCopy()
	rc.Status = corev1.ReplicationControllerStatus{
		Replicas:             rs.Status.Replicas,
		FullyLabeledReplicas: rs.Status.FullyLabeledReplicas,
		ReadyReplicas:        rs.Status.ReadyReplicas,
		AvailableReplicas:    rs.Status.AvailableReplicas,
		ObservedGeneration:   rs.Status.ObservedGeneration,
	}
	for _, c := range rs.Status.Conditions {
		rc.Status.Conditions = append(rc.Status.Conditions, corev1.ReplicationControllerCondition{
			Type: corev1.ReplicationControllerConditionType(c.Type), Status: c.Status,
			LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message,
		})
	}
	return rc
}

// selectorOf returns the owner's pod selector; an empty or invalid one
// selects nothing.
func selectorOf(rs *appsv1.ReplicaSet) (labels.Selector, error) {
	if rs.Spec.Selector == nil || (len(rs.Spec.Selector.MatchLabels) == 0 && len(rs.Spec.Selector.MatchExpressions) == 0) {
		return labels.Nothing(), nil
	}
	return metav1.LabelSelectorAsSelector(rs.Spec.Selector)
}
