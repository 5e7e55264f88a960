// Package endpointslice holds the EndpointSlice controller and the
// EndpointSlice mirroring controller (upstream's pkg/controller/endpointslice
// and pkg/controller/endpointslicemirroring).
//
// The EndpointSlice controller gives every Service with a selector (not
// ExternalName) EndpointSlices named <service>-<random>, labelled
// kubernetes.io/service-name and endpointslice.kubernetes.io/managed-by=
// endpointslice-controller.k8s.io and owned by the Service: one address
// type per IP family of the service, endpoints with ready/serving/
// terminating conditions, nodeName, targetRef and (pod hostname with a
// subdomain naming the service) hostname, grouped by resolved port set, at
// most 100 per slice. Syncs update slices in place, write nothing when
// nothing changed, and react to pod changes at once.
//
// The mirroring controller copies the Endpoints users write for services
// without a selector into EndpointSlices managed by
// endpointslicemirroring-controller.k8s.io, so that slice readers (kube-proxy,
// kubectl describe) see them; Endpoints labelled
// endpointslice.kubernetes.io/skip-mirror=true are not mirrored.
package endpointslice

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/wharf-io/wharf/internal/controller/endpoints"
	"github.com/wharf-io/wharf/internal/controller/manager"
)

const (
	// ControllerName is the managed-by label value of the slices the
	// EndpointSlice controller writes.
	ControllerName = "endpointslice-controller.k8s.io"
	// MaxEndpointsPerSlice is upstream's default --max-endpoints-per-slice.
	MaxEndpointsPerSlice = 100
	// maxRetries bounds the retries of one service, as upstream.
	maxRetries = 15
	// sliceChangeDelay batches syncs caused by somebody else changing a
	// managed slice (upstream's endpointSliceChangeMinSyncDelay); pod and
	// service changes are not delayed.
	sliceChangeDelay = time.Second
)

// errStale says the informer has not shown this controller's last write.
type errStale struct{ what string }

func (e errStale) Error() string { return e.what + " informer cache is out of date" }

// New is the manager's constructor for the EndpointSlice controller.
func New(c *manager.Context) (manager.Controller, error) {
	var rec record.EventRecorder
	if c.Recorder != nil {
		rec = c.Recorder("endpoint-slice-controller")
	}
	return NewController(c.Client, c.Informers, rec, MaxEndpointsPerSlice)
}

// Controller keeps the EndpointSlices of selector services.
type Controller struct {
	client   kubernetes.Interface
	services corelisters.ServiceLister
	pods     corelisters.PodLister
	slices   discoverylisters.EndpointSliceLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	tracker  *sliceTracker
	triggers *endpoints.TriggerTimeTracker
	r        *reconciler
}

// NewController wires the controller to the factory's informers; call
// before the factory starts. recorder may be nil; maxPerSlice 0 means 100.
func NewController(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, maxPerSlice int) (*Controller, error) {
	if maxPerSlice <= 0 {
		maxPerSlice = MaxEndpointsPerSlice
	}
	svcInf := factory.Core().V1().Services()
	podInf := factory.Core().V1().Pods()
	nodeInf := factory.Core().V1().Nodes()
	sliceInf := factory.Discovery().V1().EndpointSlices()
	c := &Controller{
		client:   client,
		services: svcInf.Lister(),
		pods:     podInf.Lister(),
		slices:   sliceInf.Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "endpoint_slice"}),
		recorder: recorder,
		tracker:  newSliceTracker(),
		triggers: endpoints.NewTriggerTimeTracker(),
	}
	c.r = &reconciler{client: client, tracker: c.tracker, nodes: nodeInf.Lister(), maxEndpointsPerSlice: maxPerSlice, controllerName: ControllerName}

	if _, err := svcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, cur interface{}) { c.enqueue(cur) },
		DeleteFunc: c.enqueue,
	}); err != nil {
		return nil, err
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.addPod,
		UpdateFunc: func(old, cur interface{}) {
			o, ok1 := old.(*corev1.Pod)
			n, ok2 := cur.(*corev1.Pod)
			if ok1 && ok2 {
				for k := range endpoints.ServicesToUpdateOnPodChange(c.services, o, n) {
					c.queue.Add(k)
				}
			}
		},
		DeleteFunc: func(obj interface{}) {
			if pod := endpoints.PodFromDeleteAction(obj); pod != nil {
				c.addPod(pod)
			}
		},
	}); err != nil {
		return nil, err
	}
	if _, err := sliceInf.Informer().AddEventHandler(sliceHandler(ControllerName, c.tracker, c.queueForSlice)); err != nil {
		return nil, err
	}
	c.synced = []cache.InformerSynced{svcInf.Informer().HasSynced, podInf.Informer().HasSynced,
		nodeInf.Informer().HasSynced, sliceInf.Informer().HasSynced}
	return c, nil
}

func managedBy(s *discoveryv1.EndpointSlice, controller string) bool {
	return s.Labels[discoveryv1.LabelManagedBy] == controller
}

func sliceFromDeleteAction(obj interface{}) *discoveryv1.EndpointSlice {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	s, _ := obj.(*discoveryv1.EndpointSlice)
	return s
}

func (c *Controller) enqueue(obj interface{}) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err == nil {
		c.queue.Add(key)
	}
}

func (c *Controller) addPod(obj interface{}) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	keys := map[string]struct{}{}
	endpoints.ServicesForPod(c.services, pod, keys)
	for k := range keys {
		c.queue.Add(k)
	}
}

func (c *Controller) queueForSlice(s *discoveryv1.EndpointSlice) {
	if name := s.Labels[discoveryv1.LabelServiceName]; name != "" {
		c.queue.AddAfter(s.Namespace+"/"+name, sliceChangeDelay)
	}
}

// listSlices returns the service's slices managed by controller, without
// those being deleted.
func listSlices(l discoverylisters.EndpointSliceLister, ns, name, controller string) ([]*discoveryv1.EndpointSlice, error) {
	sel := labels.SelectorFromValidatedSet(labels.Set{discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: controller})
	all, err := l.EndpointSlices(ns).List(sel)
	if err != nil {
		return nil, err
	}
	out := all[:0:0]
	for _, s := range all {
		if s.DeletionTimestamp == nil {
			out = append(out, s)
		}
	}
	return out, nil
}

func (c *Controller) sync(ctx context.Context, key string) error {
	start := time.Now()
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return err
	}
	defer func() {
		klog.V(4).InfoS("Finished syncing service endpoint slices", "service", key, "duration", time.Since(start))
	}()
	if ns == metav1.NamespaceDefault && name == "kubernetes" {
		// The API servers write this service's slice themselves.
		return nil
	}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.triggers.Delete(ns, name)
		c.tracker.deleteService(ns, name)
		// The garbage collector deletes them through their owner
		// reference too; doing it here does not depend on it running.
		return c.deleteAll(ctx, ns, name)
	}
	if err != nil {
		return err
	}
	if !endpoints.HasSelector(svc) {
		// No slices from this controller for selectorless or ExternalName
		// services (the mirroring controller handles the former).
		return nil
	}
	pods, err := c.pods.Pods(ns).List(labels.SelectorFromValidatedSet(svc.Spec.Selector))
	if err != nil {
		return err
	}
	slices, err := listSlices(c.slices, ns, name, ControllerName)
	if err != nil {
		return err
	}
	if c.tracker.stale(ns, name, slices) {
		return errStale{"EndpointSlice"}
	}
	trigger := c.triggers.Compute(svc, pods)
	if err := c.r.reconcile(ctx, svc, pods, slices, trigger); err != nil {
		if c.recorder != nil {
			c.recorder.Eventf(svc, corev1.EventTypeWarning, "FailedToUpdateEndpointSlices",
				"Error updating Endpoint Slices for Service %s/%s: %v", ns, name, err)
		}
		return err
	}
	return nil
}

func (c *Controller) deleteAll(ctx context.Context, ns, name string) error {
	slices, err := listSlices(c.slices, ns, name, ControllerName)
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range slices {
		if err := c.r.delete(ctx, s); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("delete endpoint slices of %s/%s: %v", ns, name, errs)
	}
	return nil
}

// Run reconciles EndpointSlices with workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	manager.Loop{Name: "endpoint_slice", Queue: c.queue, Synced: c.synced, Sync: c.sync, MaxRetries: maxRetries}.Run(ctx, workers)
}
