// Package namespace is the namespace lifecycle controller, as upstream's
// (pkg/controller/namespace): when a namespace is deleted the API server only
// marks it Terminating (deletionTimestamp, status.phase); this controller
// deletes every namespaced object in it, over every resource discovery lists
// as deletable, waits until they are gone, keeps the namespace's deletion
// conditions up to date, and finally removes the "kubernetes" finalizer
// through namespaces/finalize, after which the API server removes the
// namespace.
package namespace

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/wharf-io/wharf/internal/controller/manager"
)

// deletionGracePeriod is how long a deleted namespace waits before the
// controller empties it (upstream: 5 s), so that every API server's
// NamespaceLifecycle admission sees it Terminating first and objects created
// at the last moment are visible to the controller's lists.
const deletionGracePeriod = 5 * time.Second

// Controller deletes the content of Terminating namespaces.
type Controller struct {
	lister  corelisters.NamespaceLister
	synced  cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]
	deleter *Deleter
	// delay is how long a namespace event waits in the queue.
	delay time.Duration
}

// New builds the namespace controller on the manager's informers; its
// metadata client talks to the same server as the manager's clientset.
func New(c *manager.Context) (manager.Controller, error) {
	md, err := c.MetadataClient("namespace-controller")
	if err != nil {
		return nil, err
	}
	d := NewDeleter(c.Client, md, c.Client.Discovery().ServerPreferredNamespacedResources)
	return NewController(c.Informers.Core().V1().Namespaces().Informer(),
		c.Informers.Core().V1().Namespaces().Lister(), d)
}

// NewController wires the controller to a namespace informer; call before
// the informer starts.
func NewController(inf cache.SharedIndexInformer, lister corelisters.NamespaceLister, d *Deleter) (*Controller, error) {
	ctl := &Controller{
		lister:  lister,
		synced:  inf.HasSynced,
		deleter: d,
		delay:   deletionGracePeriod,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](5*time.Millisecond, 60*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "namespace"}),
	}
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    ctl.enqueue,
		UpdateFunc: func(_, cur interface{}) { ctl.enqueue(cur) },
	})
	if err != nil {
		return nil, err
	}
	return ctl, nil
}

// enqueue queues a namespace that is being deleted.
func (c *Controller) enqueue(obj interface{}) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok || ns.DeletionTimestamp.IsZero() {
		return
	}
	key, err := cache.MetaNamespaceKeyFunc(ns)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	c.queue.AddAfter(key, c.delay)
}

// Run processes the queue until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrash()
	defer c.queue.ShutDown()
	if !cache.WaitForNamedCacheSync("namespace", ctx.Done(), c.synced) {
		return
	}
	for i := 0; i < workers; i++ {
		go wait.UntilWithContext(ctx, c.worker, time.Second)
	}
	<-ctx.Done()
}

func (c *Controller) worker(ctx context.Context) {
	for c.processNext(ctx) {
	}
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	err := c.sync(ctx, key)
	if err == nil {
		c.queue.Forget(key)
		return true
	}
	if remaining, ok := err.(*ResourcesRemainingError); ok {
		t := remaining.Estimate/2 + 1
		klog.V(4).InfoS("Content remaining in namespace", "namespace", key, "waitSeconds", t)
		c.queue.AddAfter(key, time.Duration(t)*time.Second)
		return true
	}
	c.queue.AddRateLimited(key)
	utilruntime.HandleError(fmt.Errorf("deletion of namespace %v failed: %w", key, err))
	return true
}

func (c *Controller) sync(ctx context.Context, key string) error {
	start := time.Now()
	defer func() {
		klog.V(4).InfoS("Finished syncing namespace", "namespace", key, "duration", time.Since(start))
	}()
	ns, err := c.lister.Get(key)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return c.deleter.Delete(ctx, ns.Name)
}

var _ manager.Controller = &Controller{}
