// Package replication is the ReplicationController (core/v1) and ReplicaSet
// (apps/v1) controller, one reconcile behind a small per-kind adapter, as
// kube-controller-manager's replicaset and replication controllers: each
// owner gets spec.replicas active pods, created from its template with
// generateName "<owner>-" and a controller reference, in slow-start batches
// (1, 2, 4, ...); surplus pods are deleted unscheduled first, then not
// ready, then newest. Orphans matching the selector are adopted and owned
// pods that stopped matching are released. Expectations keep a slow pod
// informer from causing double creates or deletes. Status carries replicas,
// fullyLabeledReplicas, readyReplicas, availableReplicas (minReadySeconds),
// observedGeneration and the ReplicaFailure condition; events are
// upstream's (SuccessfulCreate, FailedCreate "Error creating: ...",
// SuccessfulDelete).
package replication

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/time/rate"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/wharf-io/wharf/internal/controller/manager"
)

// BurstReplicas caps the creations or deletions of one sync (upstream's
// default).
const BurstReplicas = 500

// Kind selects the owner kind a Controller manages.
type Kind string

// Owner kinds.
const (
	KindReplicationController Kind = "ReplicationController"
	KindReplicaSet            Kind = "ReplicaSet"
)

// NewReplicationControllers is the manager's constructor for the
// replication controller.
func NewReplicationControllers(c *manager.Context) (manager.Controller, error) {
	ctl, err := New(c.Client, c.Informers, c.Recorder("replication-controller"), KindReplicationController)
	if err != nil {
		return nil, err
	}
	return ctl, nil
}

// NewReplicaSets is the manager's constructor for the replicaset controller.
func NewReplicaSets(c *manager.Context) (manager.Controller, error) {
	ctl, err := New(c.Client, c.Informers, c.Recorder("replicaset-controller"), KindReplicaSet)
	if err != nil {
		return nil, err
	}
	return ctl, nil
}

// Controller keeps the pods of one owner kind.
type Controller struct {
	client    kubernetes.Interface
	kind      adapter
	name      string
	podLister corelisters.PodLister
	synced    []cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]
	exp       *Expectations
	pods      *podControl
	burst     int
	now       func() time.Time
}

// New wires a controller for kind to the informers; call before the
// factory starts.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, kind Kind) (*Controller, error) {
	c := &Controller{
		client: client,
		exp:    NewExpectations(),
		pods:   &podControl{client: client, recorder: recorder},
		burst:  BurstReplicas,
		now:    time.Now,
	}
	switch kind {
	case KindReplicationController:
		c.kind, c.name = newRCAdapter(client, factory), "replicationmanager"
	case KindReplicaSet:
		c.kind, c.name = newRSAdapter(client, factory), "replicaset"
	default:
		return nil, fmt.Errorf("unknown owner kind %q", kind)
	}
	// Upstream's controller limiter, with the per-item backoff capped at a
	// minute so that an owner refused by quota tries again soon after the
	// quota frees up.
	limiter := workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](5*time.Millisecond, time.Minute),
		&workqueue.TypedBucketRateLimiter[string]{Limiter: rate.NewLimiter(rate.Limit(10), 100)},
	)
	c.queue = workqueue.NewTypedRateLimitingQueueWithConfig(limiter, workqueue.TypedRateLimitingQueueConfig[string]{Name: c.name})

	podInf := factory.Core().V1().Pods()
	c.podLister = podInf.Lister()
	if _, err := c.kind.informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addOwner,
		UpdateFunc: c.updateOwner,
		DeleteFunc: c.deleteOwner,
	}); err != nil {
		return nil, err
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addPod,
		UpdateFunc: c.updatePod,
		DeleteFunc: c.deletePod,
	}); err != nil {
		return nil, err
	}
	c.synced = []cache.InformerSynced{c.kind.informer().HasSynced, podInf.Informer().HasSynced}
	return c, nil
}

// ---- event handlers ----

func (c *Controller) enqueue(rs *appsv1.ReplicaSet) {
	c.queue.Add(rs.Namespace + "/" + rs.Name)
}

func (c *Controller) enqueueAfter(rs *appsv1.ReplicaSet, d time.Duration) {
	c.queue.AddAfter(rs.Namespace+"/"+rs.Name, d)
}

func (c *Controller) addOwner(obj interface{}) {
	if rs, ok := c.kind.toRS(obj); ok {
		c.enqueue(rs)
	}
}

func (c *Controller) updateOwner(old, cur interface{}) {
	o, ok1 := c.kind.toRS(old)
	n, ok2 := c.kind.toRS(cur)
	if !ok1 || !ok2 {
		return
	}
	if o.UID != n.UID {
		// Deleted and re-created under the same name between two events.
		c.deleteOwner(cache.DeletedFinalStateUnknown{Key: n.Namespace + "/" + n.Name, Obj: old})
	}
	c.enqueue(n)
}

func (c *Controller) deleteOwner(obj interface{}) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	rs, ok := c.kind.toRS(obj)
	if !ok {
		return
	}
	key := rs.Namespace + "/" + rs.Name
	c.exp.Delete(key)
	c.queue.Add(key)
}

// resolveControllerRef returns the owner a controller reference names, if
// it is of this kind and still the same object.
func (c *Controller) resolveControllerRef(namespace string, ref *metav1.OwnerReference) *appsv1.ReplicaSet {
	gvk := c.kind.gvk()
	if ref.Kind != gvk.Kind || ref.APIVersion != gvk.GroupVersion().String() {
		return nil
	}
	rs, err := c.kind.get(namespace, ref.Name)
	if err != nil || rs.UID != ref.UID {
		return nil
	}
	return rs
}

// ownersOfOrphan returns the owners whose selector matches an orphan pod.
func (c *Controller) ownersOfOrphan(pod *corev1.Pod) []*appsv1.ReplicaSet {
	all, err := c.kind.list(pod.Namespace)
	if err != nil {
		return nil
	}
	var out []*appsv1.ReplicaSet
	for _, rs := range all {
		sel, err := selectorOf(rs)
		if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		out = append(out, rs)
	}
	return out
}

func (c *Controller) addPod(obj interface{}) {
	pod := obj.(*corev1.Pod)
	if pod.DeletionTimestamp != nil {
		// Seen for the first time already terminating (a restart of the
		// informer): it is a deletion as far as expectations go.
		c.deletePod(pod)
		return
	}
	if ref := metav1.GetControllerOf(pod); ref != nil {
		rs := c.resolveControllerRef(pod.Namespace, ref)
		if rs == nil {
			return
		}
		key := rs.Namespace + "/" + rs.Name
		c.exp.CreationObserved(key)
		c.queue.Add(key)
		return
	}
	for _, rs := range c.ownersOfOrphan(pod) {
		c.enqueue(rs)
	}
}

func (c *Controller) updatePod(old, cur interface{}) {
	o, n := old.(*corev1.Pod), cur.(*corev1.Pod)
	if o.ResourceVersion == n.ResourceVersion {
		return
	}
	labelChanged := !labels.Equals(o.Labels, n.Labels)
	if n.DeletionTimestamp != nil {
		// Graceful deletion began: count it now, not when the pod goes.
		c.deletePod(n)
		if labelChanged {
			c.deletePod(o)
		}
		return
	}
	curRef, oldRef := metav1.GetControllerOf(n), metav1.GetControllerOf(o)
	refChanged := (curRef == nil) != (oldRef == nil) || (curRef != nil && oldRef != nil && curRef.UID != oldRef.UID)
	if refChanged && oldRef != nil {
		if rs := c.resolveControllerRef(o.Namespace, oldRef); rs != nil {
			c.enqueue(rs)
		}
	}
	if curRef != nil {
		rs := c.resolveControllerRef(n.Namespace, curRef)
		if rs == nil {
			return
		}
		c.enqueue(rs)
		if !IsPodReady(o) && IsPodReady(n) && rs.Spec.MinReadySeconds > 0 {
			c.enqueueAfter(rs, time.Duration(rs.Spec.MinReadySeconds)*time.Second+time.Second)
		}
		return
	}
	if labelChanged || refChanged {
		for _, rs := range c.ownersOfOrphan(n) {
			c.enqueue(rs)
		}
	}
}

func (c *Controller) deletePod(obj interface{}) {
	pod, ok := manager.Deleted[*corev1.Pod](obj)
	if !ok {
		return
	}
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return
	}
	rs := c.resolveControllerRef(pod.Namespace, ref)
	if rs == nil {
		return
	}
	key := rs.Namespace + "/" + rs.Name
	c.exp.DeletionObserved(key, podKey(pod))
	c.queue.Add(key)
}

// Run reconciles with workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	manager.Loop{Name: c.name, Queue: c.queue, Synced: c.synced, Sync: c.Sync}.Run(ctx, workers)
}
