// Package deployment is the Deployment controller, as kube-controller-
// manager's: a Deployment owns ReplicaSets named
// <deployment>-<pod-template-hash> (the hash label is added to their
// selector and template), rolls from the old ones to the new one with the
// RollingUpdate (maxSurge/maxUnavailable) or Recreate strategy, numbers
// them with the deployment.kubernetes.io/revision annotation (a rollback is
// a template that matches an old ReplicaSet again, which then gets the next
// revision), deletes old ReplicaSets beyond revisionHistoryLimit, scales
// proportionally, stops while paused, and reports replicas,
// updatedReplicas, readyReplicas, availableReplicas, unavailableReplicas,
// observedGeneration and the Available and Progressing conditions with
// upstream's reasons, so that `kubectl rollout status|undo|history` work.
package deployment

import (
	"context"
	"fmt"
	"reflect"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/wharf-io/wharf/internal/controller/manager"
	"github.com/wharf-io/wharf/internal/controller/replication"
)

var controllerKind = appsv1.SchemeGroupVersion.WithKind("Deployment")

// New is the manager's constructor for the deployment controller.
func New(c *manager.Context) (manager.Controller, error) {
	ctl, err := NewController(c.Client, c.Informers, c.Recorder("deployment-controller"))
	if err != nil {
		return nil, err
	}
	return ctl, nil
}

// Controller rolls Deployments out.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	dLister  appslisters.DeploymentLister
	rsLister appslisters.ReplicaSetLister
	pLister  corelisters.PodLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	now      func() time.Time
}

// NewController wires the controller to the informers; call before the
// factory starts.
func NewController(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder) (*Controller, error) {
	di := factory.Apps().V1().Deployments()
	ri := factory.Apps().V1().ReplicaSets()
	pi := factory.Core().V1().Pods()
	c := &Controller{
		client: client, recorder: recorder,
		dLister: di.Lister(), rsLister: ri.Lister(), pLister: pi.Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "deployment"}),
		now: time.Now,
	}
	if _, err := di.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj interface{}) { c.enqueueObj(obj) },
		UpdateFunc: func(_, cur interface{}) { c.enqueueObj(cur) },
		DeleteFunc: c.deleteDeployment,
	}); err != nil {
		return nil, err
	}
	if _, err := ri.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addReplicaSet,
		UpdateFunc: c.updateReplicaSet,
		DeleteFunc: c.deleteReplicaSet,
	}); err != nil {
		return nil, err
	}
	if _, err := pi.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: c.deletePod}); err != nil {
		return nil, err
	}
	c.synced = []cache.InformerSynced{di.Informer().HasSynced, ri.Informer().HasSynced, pi.Informer().HasSynced}
	return c, nil
}

// maxRetries is how often a failing Deployment is retried before it waits
// for its next event (upstream: 15).
const maxRetries = 15

// ---- event handlers ----

func (c *Controller) enqueue(d *appsv1.Deployment) { c.queue.Add(d.Namespace + "/" + d.Name) }

func (c *Controller) enqueueObj(obj interface{}) {
	if d, ok := obj.(*appsv1.Deployment); ok {
		c.enqueue(d)
	}
}

func (c *Controller) enqueueAfter(d *appsv1.Deployment, after time.Duration) {
	c.queue.AddAfter(d.Namespace+"/"+d.Name, after)
}

func (c *Controller) deleteDeployment(obj interface{}) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	c.enqueueObj(obj)
}

func (c *Controller) resolveControllerRef(namespace string, ref *metav1.OwnerReference) *appsv1.Deployment {
	if ref.Kind != controllerKind.Kind || ref.APIVersion != controllerKind.GroupVersion().String() {
		return nil
	}
	d, err := c.dLister.Deployments(namespace).Get(ref.Name)
	if err != nil || d.UID != ref.UID {
		return nil
	}
	return d
}

// deploymentsForReplicaSet are the Deployments whose selector matches an
// orphan ReplicaSet.
func (c *Controller) deploymentsForReplicaSet(rs *appsv1.ReplicaSet) []*appsv1.Deployment {
	if len(rs.Labels) == 0 {
		return nil
	}
	ds, err := c.dLister.Deployments(rs.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []*appsv1.Deployment
	for _, d := range ds {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(rs.Labels)) {
			continue
		}
		out = append(out, d)
	}
	return out
}

func (c *Controller) addReplicaSet(obj interface{}) {
	rs := obj.(*appsv1.ReplicaSet)
	if rs.DeletionTimestamp != nil {
		c.deleteReplicaSet(rs)
		return
	}
	if ref := metav1.GetControllerOf(rs); ref != nil {
		if d := c.resolveControllerRef(rs.Namespace, ref); d != nil {
			c.enqueue(d)
		}
		return
	}
	for _, d := range c.deploymentsForReplicaSet(rs) {
		c.enqueue(d)
	}
}

func (c *Controller) updateReplicaSet(old, cur interface{}) {
	o, n := old.(*appsv1.ReplicaSet), cur.(*appsv1.ReplicaSet)
	if o.ResourceVersion == n.ResourceVersion {
		return
	}
	curRef, oldRef := metav1.GetControllerOf(n), metav1.GetControllerOf(o)
	refChanged := !reflect.DeepEqual(curRef, oldRef)
	if refChanged && oldRef != nil {
		if d := c.resolveControllerRef(o.Namespace, oldRef); d != nil {
			c.enqueue(d)
		}
	}
	if curRef != nil {
		if d := c.resolveControllerRef(n.Namespace, curRef); d != nil {
			c.enqueue(d)
		}
		return
	}
	if refChanged || !reflect.DeepEqual(n.Labels, o.Labels) {
		for _, d := range c.deploymentsForReplicaSet(n) {
			c.enqueue(d)
		}
	}
}

func (c *Controller) deleteReplicaSet(obj interface{}) {
	rs, ok := manager.Deleted[*appsv1.ReplicaSet](obj)
	if !ok {
		return
	}
	if ref := metav1.GetControllerOf(rs); ref != nil {
		if d := c.resolveControllerRef(rs.Namespace, ref); d != nil {
			c.enqueue(d)
		}
	}
}

// deletePod wakes a Recreate Deployment once its last old pod is gone.
func (c *Controller) deletePod(obj interface{}) {
	pod, ok := manager.Deleted[*corev1.Pod](obj)
	if !ok {
		return
	}
	d := c.deploymentForPod(pod)
	if d == nil || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		return
	}
	rsList, err := c.listOwnedReplicaSets(d)
	if err != nil {
		return
	}
	podMap, err := c.getPodMapForDeployment(d, rsList)
	if err != nil {
		return
	}
	n := 0
	for _, pods := range podMap {
		n += len(pods)
	}
	if n == 0 {
		c.enqueue(d)
	}
}

func (c *Controller) deploymentForPod(pod *corev1.Pod) *appsv1.Deployment {
	ref := metav1.GetControllerOf(pod)
	if ref == nil || ref.Kind != "ReplicaSet" {
		return nil
	}
	rs, err := c.rsLister.ReplicaSets(pod.Namespace).Get(ref.Name)
	if err != nil || rs.UID != ref.UID {
		return nil
	}
	if r := metav1.GetControllerOf(rs); r != nil {
		return c.resolveControllerRef(rs.Namespace, r)
	}
	return nil
}

// listOwnedReplicaSets are the cached ReplicaSets the Deployment controls
// (no adoption).
func (c *Controller) listOwnedReplicaSets(d *appsv1.Deployment) ([]*appsv1.ReplicaSet, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, err
	}
	all, err := c.rsLister.ReplicaSets(d.Namespace).List(sel)
	if err != nil {
		return nil, err
	}
	var out []*appsv1.ReplicaSet
	for _, rs := range all {
		if metav1.IsControlledBy(rs, d) {
			out = append(out, rs)
		}
	}
	return out, nil
}

// ---- the sync ----

// Sync reconciles the Deployment with key namespace/name once.
func (c *Controller) Sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return err
	}
	cached, err := c.dLister.Deployments(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	d := cached.DeepCopy()
	if d.Spec.Replicas == nil {
		// Defaulting sets it; never trust the cache to have it.
		one := int32(1)
		d.Spec.Replicas = &one
	}

	if d.Spec.Selector == nil || (len(d.Spec.Selector.MatchLabels) == 0 && len(d.Spec.Selector.MatchExpressions) == 0) {
		c.recorder.Eventf(eventObject(d), corev1.EventTypeWarning, "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.")
		if d.Status.ObservedGeneration < d.Generation {
			d.Status.ObservedGeneration = d.Generation
			_, _ = c.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{})
		}
		return nil
	}

	rsList, err := c.getReplicaSetsForDeployment(ctx, d)
	if err != nil {
		return err
	}
	podMap, err := c.getPodMapForDeployment(d, rsList)
	if err != nil {
		return err
	}

	if d.DeletionTimestamp != nil {
		return c.syncStatusOnly(ctx, d, rsList)
	}

	// Mark pausing and resuming, so that a resumed Deployment does not
	// time out for the time it was paused.
	if err := c.checkPausedConditions(ctx, d); err != nil {
		return err
	}
	if d.Spec.Paused {
		return c.sync(ctx, d, rsList)
	}

	scaling, err := c.isScalingEvent(ctx, d, rsList)
	if err != nil {
		return err
	}
	if scaling {
		return c.sync(ctx, d, rsList)
	}

	switch d.Spec.Strategy.Type {
	case appsv1.RecreateDeploymentStrategyType:
		return c.rolloutRecreate(ctx, d, rsList, podMap)
	case appsv1.RollingUpdateDeploymentStrategyType:
		return c.rolloutRolling(ctx, d, rsList)
	}
	return fmt.Errorf("unexpected deployment strategy type: %s", d.Spec.Strategy.Type)
}

// getReplicaSetsForDeployment claims the namespace's ReplicaSets: adopts
// orphans matching the selector, releases owned ones that stopped
// matching, and returns the Deployment's.
func (c *Controller) getReplicaSetsForDeployment(ctx context.Context, d *appsv1.Deployment) ([]*appsv1.ReplicaSet, error) {
	all, err := c.rsLister.ReplicaSets(d.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("deployment %s/%s has invalid label selector: %v", d.Namespace, d.Name, err)
	}
	m := &replication.RefManager{
		Controller: d,
		CanAdopt: replication.RecheckDeletion(d.UID, func(ctx context.Context) (metav1.Object, error) {
			return c.client.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
		}),
	}
	ref := metav1.NewControllerRef(d, controllerKind)
	match := func(o metav1.Object) bool { return sel.Matches(labels.Set(o.GetLabels())) }
	// Adopted ReplicaSets continue as the server returned them, so that a
	// later update in this pass does not start from the stale copy.
	adopted := map[types.UID]*appsv1.ReplicaSet{}
	adopt := func(ctx context.Context, o metav1.Object) error {
		rs, err := c.client.AppsV1().ReplicaSets(o.GetNamespace()).Patch(ctx, o.GetName(), types.StrategicMergePatchType,
			replication.AdoptPatch(*ref, o.GetUID()), metav1.PatchOptions{})
		if err == nil {
			adopted[rs.UID] = rs
		}
		return err
	}
	release := func(ctx context.Context, o metav1.Object) error {
		_, err := c.client.AppsV1().ReplicaSets(o.GetNamespace()).Patch(ctx, o.GetName(), types.StrategicMergePatchType,
			replication.ReleasePatch(d.UID, o.GetUID()), metav1.PatchOptions{})
		return replication.IgnoreReleaseError(err)
	}
	var claimed []*appsv1.ReplicaSet
	var errs []error
	for _, rs := range all {
		ok, err := m.Claim(ctx, rs, match, adopt, release)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			if a, ok := adopted[rs.UID]; ok {
				rs = a
			}
			claimed = append(claimed, rs)
		}
	}
	if len(errs) > 0 {
		return claimed, errs[0]
	}
	return claimed, nil
}

// getPodMapForDeployment groups the Deployment's pods by the UID of the
// ReplicaSet that controls them.
func (c *Controller) getPodMapForDeployment(d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) (map[types.UID][]*corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, err
	}
	pods, err := c.pLister.Pods(d.Namespace).List(sel)
	if err != nil {
		return nil, err
	}
	m := make(map[types.UID][]*corev1.Pod, len(rsList))
	for _, rs := range rsList {
		m[rs.UID] = []*corev1.Pod{}
	}
	for _, p := range pods {
		ref := metav1.GetControllerOf(p)
		if ref == nil {
			continue
		}
		if _, ok := m[ref.UID]; ok {
			m[ref.UID] = append(m[ref.UID], p)
		}
	}
	return m, nil
}

// eventObject is the Deployment with its kind set, for the recorder.
func eventObject(d *appsv1.Deployment) *appsv1.Deployment {
	return &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: d.ObjectMeta}
}

// Run reconciles Deployments with workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	manager.Loop{Name: "deployment", Queue: c.queue, Synced: c.synced, Sync: c.Sync, MaxRetries: maxRetries,
		Ignore: func(err error) bool { return apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) }}.Run(ctx, workers)
}
