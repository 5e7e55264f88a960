// Package quota is the ResourceQuota controller: it keeps each quota's
// status.hard equal to its spec.hard and status.used equal to what the
// namespace's objects cost. Admission charges usage as objects are created;
// this controller gives it back when objects go (replenishment), recomputes
// a quota whenever its spec changes, and recomputes everything at start and
// every resync period, which also repairs a charge whose object was never
// stored (a crash between admission and the write).
package quota

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	quotav1 "k8s.io/apiserver/pkg/quota/v1"
	"k8s.io/apiserver/pkg/quota/v1/generic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/wharf-io/wharf/internal/controller/manager"
	"github.com/wharf-io/wharf/internal/quota"
)

// Config is the controller's configuration.
type Config struct {
	Client   kubernetes.Interface
	Informer informers.SharedInformerFactory
	// Resync recomputes every quota this often (upstream: 5 minutes).
	Resync time.Duration
}

// Controller keeps ResourceQuota status true.
type Controller struct {
	client     kubernetes.Interface
	lister     corelisters.ResourceQuotaLister
	synced     []cache.InformerSynced
	registry   quotav1.Registry
	queue      workqueue.TypedRateLimitingInterface[string]
	resync     time.Duration
	evaluators []quotav1.Evaluator
}

// New wires the controller to the informers; call before the factory starts.
func New(c Config) (*Controller, error) {
	if c.Resync == 0 {
		c.Resync = 5 * time.Minute
	}
	qi := c.Informer.Core().V1().ResourceQuotas()
	evaluators := quota.Evaluators(generic.ListerFuncForResourceFunc(c.Informer.ForResource))
	ctl := &Controller{
		client:     c.Client,
		lister:     qi.Lister(),
		registry:   generic.NewRegistry(evaluators),
		evaluators: evaluators,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "resourcequota"}),
		resync: c.Resync,
	}
	_, err := qi.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: ctl.enqueue,
		UpdateFunc: func(old, cur interface{}) {
			o, n := old.(*corev1.ResourceQuota), cur.(*corev1.ResourceQuota)
			if !apiequality.Semantic.DeepEqual(o.Spec, n.Spec) || !apiequality.Semantic.DeepEqual(n.Spec.Hard, n.Status.Hard) {
				ctl.enqueue(cur)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	ctl.synced = append(ctl.synced, qi.Informer().HasSynced)
	for _, e := range evaluators {
		inf, err := c.Informer.ForResource(gvr(e.GroupResource()))
		if err != nil {
			return nil, fmt.Errorf("informer for %s: %w", e.GroupResource(), err)
		}
		if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			DeleteFunc: ctl.replenish,
			UpdateFunc: func(old, cur interface{}) {
				if p, ok := cur.(*corev1.Pod); ok && (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed) {
					ctl.replenish(cur)
				}
			},
		}); err != nil {
			return nil, err
		}
		ctl.synced = append(ctl.synced, inf.Informer().HasSynced)
	}
	return ctl, nil
}

func gvr(gr schema.GroupResource) schema.GroupVersionResource {
	return gr.WithVersion("v1")
}

func (c *Controller) enqueue(obj interface{}) {
	key, err := cache.MetaNamespaceKeyFunc(obj)
	if err == nil {
		c.queue.Add(key)
	}
}

// replenish recomputes the quotas of a namespace something left.
func (c *Controller) replenish(obj interface{}) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	m, err := metaNamespace(obj)
	if err != nil {
		return
	}
	quotas, err := c.lister.ResourceQuotas(m).List(labels.Everything())
	if err != nil {
		return
	}
	for _, q := range quotas {
		c.enqueue(q)
	}
}

func metaNamespace(obj interface{}) (string, error) {
	o, ok := obj.(metav1.Object)
	if !ok {
		return "", fmt.Errorf("not an object: %T", obj)
	}
	return o.GetNamespace(), nil
}

func (c *Controller) resyncAll(ctx context.Context) {
	quotas, err := c.lister.List(labels.Everything())
	if err != nil {
		return
	}
	for _, q := range quotas {
		c.enqueue(q)
	}
}

// sync recomputes one quota's status.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return err
	}
	q, err := c.lister.ResourceQuotas(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	used, err := quotav1.CalculateUsage(ns, nil, q.Spec.Hard, c.registry, q.Spec.ScopeSelector)
	if err != nil {
		return err
	}
	status := corev1.ResourceQuotaStatus{Hard: q.Spec.Hard, Used: used}
	// Keep zero entries for every hard resource, as upstream shows them.
	for r := range q.Spec.Hard {
		if _, ok := status.Used[r]; !ok {
			status.Used[r] = *resourceZero()
		}
	}
	if apiequality.Semantic.DeepEqual(q.Status, status) {
		return nil
	}
	upd := q.DeepCopy()
	upd.Status = status
	_, err = c.client.CoreV1().ResourceQuotas(ns).UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	return err
}

func resourceZero() *resource.Quantity { return resource.NewQuantity(0, resource.DecimalSI) }

// NewFromContext is the manager's constructor for the quota controller.
func NewFromContext(c *manager.Context) (manager.Controller, error) {
	return New(Config{Client: c.Client, Informer: c.Informers})
}

// Run processes the queue until ctx ends, recomputing every quota each
// resync period.
func (c *Controller) Run(ctx context.Context, workers int) {
	manager.Loop{Name: "resourcequota", Queue: c.queue, Synced: c.synced, Sync: c.sync,
		Started: func(ctx context.Context) { wait.UntilWithContext(ctx, c.resyncAll, c.resync) }}.Run(ctx, workers)
}
