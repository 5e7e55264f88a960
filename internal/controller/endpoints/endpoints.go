// Package endpoints is the Endpoints controller (upstream's
// pkg/controller/endpoint): every Service with a selector (not
// ExternalName) gets an Endpoints object of the same name listing its
// selected pods, ready ones in addresses and the others in
// notReadyAddresses (all in addresses with publishNotReadyAddresses),
// packed into subsets by port set with upstream's RepackSubsets. Services
// without a selector are never touched: their Endpoints are the user's.
//
// The controller is event driven: a pod's readiness, address, label or
// deletion change queues the services selecting it at once (no batching
// delay), and a sync that would write what is stored writes nothing.
// Failed syncs are retried with the workqueue's rate limiter.
package endpoints

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/wharf-io/wharf/internal/controller/manager"
)

const (
	// LabelManagedBy marks the Endpoints this controller writes (upstream
	// 1.33+); only those are deleted with their service.
	LabelManagedBy = "endpoints.kubernetes.io/managed-by"
	// ControllerName is the label's value and the event source.
	ControllerName = "endpoint-controller"

	// maxRetries bounds the retries of one service (5 ms doubling: the
	// last waits about 80 s), as upstream.
	maxRetries = 15
	// maxCapacity is the most addresses an Endpoints object holds; beyond
	// it the controller truncates and sets the over-capacity annotation.
	maxCapacity = 1000
	truncated   = "truncated"
	// staleWindow is how long a write of ours is expected to show up in
	// the informer before the cache is trusted again anyway.
	staleWindow = 10 * time.Second
)

var labelsEverything = labels.Everything()

// New is the manager's constructor.
func New(c *manager.Context) (manager.Controller, error) {
	var rec record.EventRecorder
	if c.Recorder != nil {
		rec = c.Recorder(ControllerName)
	}
	return NewController(c.Client, c.Informers, rec)
}

// Controller keeps the Endpoints of selector services.
type Controller struct {
	client    kubernetes.Interface
	services  corelisters.ServiceLister
	pods      corelisters.PodLister
	endpoints corelisters.EndpointsLister
	synced    []cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]
	recorder  record.EventRecorder
	triggers  *TriggerTimeTracker
	written   *writeTracker
	// now is the clock (tests).
	now func() time.Time
}

// NewController wires the controller to the factory's informers; call
// before the factory starts. recorder may be nil.
func NewController(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder) (*Controller, error) {
	svcInf := factory.Core().V1().Services()
	podInf := factory.Core().V1().Pods()
	epInf := factory.Core().V1().Endpoints()
	c := &Controller{
		client:    client,
		services:  svcInf.Lister(),
		pods:      podInf.Lister(),
		endpoints: epInf.Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "endpoint"}),
		recorder: recorder,
		triggers: NewTriggerTimeTracker(),
		written:  newWriteTracker(),
		now:      time.Now,
	}
	if _, err := svcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, cur interface{}) { c.enqueue(cur) },
		DeleteFunc: c.enqueue,
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
	if _, err := epInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: c.deleteEndpoints,
	}); err != nil {
		return nil, err
	}
	c.synced = []cache.InformerSynced{svcInf.Informer().HasSynced, podInf.Informer().HasSynced, epInf.Informer().HasSynced}
	return c, nil
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
	ServicesForPod(c.services, pod, keys)
	for k := range keys {
		c.queue.Add(k)
	}
}

func (c *Controller) updatePod(old, cur interface{}) {
	o, ok1 := old.(*corev1.Pod)
	n, ok2 := cur.(*corev1.Pod)
	if !ok1 || !ok2 {
		return
	}
	for k := range ServicesToUpdateOnPodChange(c.services, o, n) {
		c.queue.Add(k)
	}
}

func (c *Controller) deletePod(obj interface{}) {
	if pod := PodFromDeleteAction(obj); pod != nil {
		c.addPod(pod)
	}
}

func (c *Controller) deleteEndpoints(obj interface{}) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		return
	}
	c.written.forget(key)
	c.queue.Add(key)
}

// checkLeftoverEndpoints queues every Endpoints this controller manages so
// that one whose service went while no controller ran is deleted.
func (c *Controller) checkLeftoverEndpoints() {
	list, err := c.endpoints.List(labelsEverything)
	if err != nil {
		utilruntime.HandleError(fmt.Errorf("list endpoints: %w", err))
		return
	}
	for _, ep := range list {
		if ep.Labels[LabelManagedBy] != ControllerName {
			continue
		}
		if _, ok := ep.Annotations[resourcelock.LeaderElectionRecordAnnotationKey]; ok {
			continue
		}
		c.enqueue(ep)
	}
}

// desired is what the Endpoints of a service should hold.
type desired struct {
	subsets []corev1.EndpointSubset
	ready   int
	unready int
}

// Compute returns the subsets of svc's Endpoints for pods (already selected
// by the service): upstream's syncService loop without the writing.
func Compute(svc *corev1.Service, pods []*corev1.Pod) []corev1.EndpointSubset {
	return compute(svc, pods).subsets
}

func compute(svc *corev1.Service, pods []*corev1.Pod) desired {
	var d desired
	subsets := []corev1.EndpointSubset{}
	publish := svc.Spec.PublishNotReadyAddresses
	for _, pod := range pods {
		if !ShouldPodBeInEndpoints(pod, publish) {
			continue
		}
		addr, ok := podAddress(svc, pod)
		if !ok {
			continue
		}
		if ShouldSetHostname(pod, svc) {
			addr.Hostname = pod.Spec.Hostname
		}
		ready := publish || IsPodReady(pod)
		add := func(ports []corev1.EndpointPort) {
			ss := corev1.EndpointSubset{Ports: ports}
			if ready {
				ss.Addresses = []corev1.EndpointAddress{addr}
				d.ready++
			} else {
				ss.NotReadyAddresses = []corev1.EndpointAddress{addr}
				d.unready++
			}
			subsets = append(subsets, ss)
		}
		if len(svc.Spec.Ports) == 0 {
			// Headless services may have no ports.
			if svc.Spec.ClusterIP == corev1.ClusterIPNone {
				add(nil)
			}
			continue
		}
		for i := range svc.Spec.Ports {
			sp := &svc.Spec.Ports[i]
			num, err := FindPort(pod, sp)
			if err != nil {
				// The pod lacks the named port: it is left out of this
				// port's subset only.
				continue
			}
			add([]corev1.EndpointPort{{Name: sp.Name, Port: num, Protocol: protocolOrTCP(sp.Protocol), AppProtocol: sp.AppProtocol}})
		}
	}
	d.subsets = RepackSubsets(subsets)
	return d
}

// podAddress picks the pod IP of the service's (first) IP family, as
// upstream's podToEndpointAddressForService.
func podAddress(svc *corev1.Service, pod *corev1.Pod) (corev1.EndpointAddress, bool) {
	family := corev1.IPv4Protocol
	switch {
	case len(svc.Spec.IPFamilies) > 0:
		family = svc.Spec.IPFamilies[0]
	case IsServiceIPSet(svc):
		family = IPFamilyOf(svc.Spec.ClusterIP)
	default:
		if ips := PodIPs(pod); len(ips) > 0 {
			family = IPFamilyOf(ips[0])
		}
	}
	for _, ip := range PodIPs(pod) {
		if IPFamilyOf(ip) == family {
			node := pod.Spec.NodeName
			return corev1.EndpointAddress{
				IP:        ip,
				NodeName:  &node,
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
			}, true
		}
	}
	return corev1.EndpointAddress{}, false
}

// DesiredLabels are the service's labels plus the managed-by label and, for
// a headless service, service.kubernetes.io/headless.
func DesiredLabels(svc *corev1.Service) map[string]string {
	l := make(map[string]string, len(svc.Labels)+2)
	for k, v := range svc.Labels {
		l[k] = v
	}
	l[LabelManagedBy] = ControllerName
	if IsServiceIPSet(svc) {
		delete(l, corev1.IsHeadlessService)
	} else {
		l[corev1.IsHeadlessService] = ""
	}
	return l
}

func (c *Controller) sync(ctx context.Context, key string) error {
	start := c.now()
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return err
	}
	defer func() {
		klog.V(4).InfoS("Finished syncing service endpoints", "service", key, "duration", time.Since(start))
	}()
	if ns == metav1.NamespaceDefault && name == "kubernetes" {
		// The API servers keep this one.
		return nil
	}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.triggers.Delete(ns, name)
		return c.deleteManaged(ctx, ns, name)
	}
	if err != nil {
		return err
	}
	if !HasSelector(svc) {
		// The user writes these (or, for ExternalName, nobody).
		return nil
	}
	pods, err := c.pods.Pods(ns).List(labels.SelectorFromValidatedSet(svc.Spec.Selector))
	if err != nil {
		return err
	}
	cur, err := c.endpoints.Endpoints(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	var curMeta metav1.Object
	if err != nil {
		cur = nil
	} else {
		curMeta = cur
	}
	if c.written.stale(key, curMeta, c.now()) {
		return fmt.Errorf("endpoints informer cache is out of date for %s", key)
	}
	// Computed on every sync that gets this far so that the tracker
	// follows even syncs that write nothing.
	trigger := c.triggers.Compute(svc, pods)
	d := compute(svc, pods)
	wantLabels := DesiredLabels(svc)
	if cur != nil && subsetsEqualIgnoreResourceVersion(cur.Subsets, d.subsets) &&
		stringMapsEqual(cur.Labels, wantLabels) && capacityAnnotationSetCorrectly(cur.Annotations, cur.Subsets) {
		return nil
	}

	var next *corev1.Endpoints
	if cur == nil {
		next = &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	} else {
		next = cur.DeepCopy()
	}
	next.Subsets = d.subsets
	next.Labels = wantLabels
	if next.Annotations == nil {
		next.Annotations = map[string]string{}
	}
	if !trigger.IsZero() {
		next.Annotations[corev1.EndpointsLastChangeTriggerTime] = trigger.UTC().Format(time.RFC3339Nano)
	} else {
		delete(next.Annotations, corev1.EndpointsLastChangeTriggerTime)
	}
	if truncateEndpoints(next) {
		next.Annotations[corev1.EndpointsOverCapacity] = truncated
	} else {
		delete(next.Annotations, corev1.EndpointsOverCapacity)
	}
	klog.V(4).InfoS("Update endpoints", "service", key, "readyEndpoints", d.ready, "notreadyEndpoints", d.unready)

	var out *corev1.Endpoints
	if cur == nil {
		out, err = c.client.CoreV1().Endpoints(ns).Create(ctx, next, metav1.CreateOptions{})
	} else {
		out, err = c.client.CoreV1().Endpoints(ns).Update(ctx, next, metav1.UpdateOptions{})
	}
	if err != nil {
		if cur == nil && apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			return nil
		}
		if c.recorder != nil {
			if cur == nil {
				c.recorder.Eventf(next, corev1.EventTypeWarning, "FailedToCreateEndpoint", "Failed to create endpoint for service %v/%v: %v", ns, name, err)
			} else {
				c.recorder.Eventf(next, corev1.EventTypeWarning, "FailedToUpdateEndpoint", "Failed to update endpoint %v/%v: %v", ns, name, err)
			}
		}
		return err
	}
	c.written.record(key, out, c.now())
	return nil
}

// deleteManaged deletes the Endpoints of a deleted service if this
// controller wrote them; the cache may not have a fresh object yet, so a
// miss there is checked against the API server.
func (c *Controller) deleteManaged(ctx context.Context, ns, name string) error {
	key := ns + "/" + name
	ep, err := c.endpoints.Endpoints(ns).Get(name)
	if apierrors.IsNotFound(err) && c.written.has(key) {
		ep, err = c.client.CoreV1().Endpoints(ns).Get(ctx, name, metav1.GetOptions{})
	}
	if apierrors.IsNotFound(err) {
		c.written.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	if ep.Labels[LabelManagedBy] != ControllerName {
		return nil
	}
	uid := ep.UID
	err = c.client.CoreV1().Endpoints(ns).Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return err
	}
	c.written.forget(key)
	return nil
}

// capacityAnnotationSetCorrectly is false when the subsets are over
// capacity or the over-capacity annotation is set without need.
func capacityAnnotationSetCorrectly(annotations map[string]string, subsets []corev1.EndpointSubset) bool {
	n := 0
	for _, ss := range subsets {
		n += len(ss.Addresses) + len(ss.NotReadyAddresses)
	}
	if n > maxCapacity {
		return false
	}
	_, ok := annotations[corev1.EndpointsOverCapacity]
	return !ok
}

// truncateEndpoints keeps at most maxCapacity addresses, spread over the
// subsets in proportion, ready ones first (upstream's rule).
func truncateEndpoints(ep *corev1.Endpoints) bool {
	totalReady, totalNotReady := 0, 0
	for _, ss := range ep.Subsets {
		totalReady += len(ss.Addresses)
		totalNotReady += len(ss.NotReadyAddresses)
	}
	if totalReady+totalNotReady <= maxCapacity {
		return false
	}
	truncateReady := false
	limit := maxCapacity - totalReady
	numTotal := totalNotReady
	if totalReady > maxCapacity {
		truncateReady = true
		limit = maxCapacity
		numTotal = totalReady
	}
	canBeAdded := limit
	for i := range ep.Subsets {
		ss := ep.Subsets[i]
		inSubset := len(ss.Addresses)
		if !truncateReady {
			inSubset = len(ss.NotReadyAddresses)
		}
		toBeAdded := int(math.Ceil(float64(inSubset) / float64(numTotal) * float64(limit)))
		if toBeAdded > canBeAdded {
			toBeAdded = canBeAdded
		}
		if truncateReady {
			if len(ss.Addresses) > toBeAdded {
				ss.Addresses = ss.Addresses[:toBeAdded]
			}
			ss.NotReadyAddresses = []corev1.EndpointAddress{}
			canBeAdded -= len(ss.Addresses)
		} else {
			if len(ss.NotReadyAddresses) > toBeAdded {
				ss.NotReadyAddresses = ss.NotReadyAddresses[:toBeAdded]
			}
			canBeAdded -= len(ss.NotReadyAddresses)
		}
		ep.Subsets[i] = ss
	}
	return true
}

// semanticIgnoreResourceVersion compares subsets ignoring the pods'
// resourceVersions in targetRefs.
var semanticIgnoreResourceVersion = conversion.EqualitiesOrDie(
	func(a, b corev1.ObjectReference) bool {
		a.ResourceVersion = ""
		b.ResourceVersion = ""
		return a == b
	},
)

func subsetsEqualIgnoreResourceVersion(a, b []corev1.EndpointSubset) bool {
	return semanticIgnoreResourceVersion.DeepEqual(a, b)
}

// writeTracker remembers the resourceVersion of each object this controller
// wrote, so that a sync working from an informer cache that has not seen
// the write yet retries instead of writing again from old state (upstream's
// staleEndpointsTracker; Wharf's resourceVersions are etcd revisions and
// compare as numbers). An entry is trusted for staleWindow at most.
type writeTracker struct {
	mu sync.Mutex
	m  map[string]written
}

type written struct {
	rv uint64
	at time.Time
}

func newWriteTracker() *writeTracker { return &writeTracker{m: map[string]written{}} }

func (t *writeTracker) record(key string, obj metav1.Object, now time.Time) {
	if obj == nil {
		return
	}
	rv, ok := ParseResourceVersion(obj.GetResourceVersion())
	if !ok {
		return
	}
	t.mu.Lock()
	t.m[key] = written{rv: rv, at: now}
	t.mu.Unlock()
}

func (t *writeTracker) forget(key string) {
	t.mu.Lock()
	delete(t.m, key)
	t.mu.Unlock()
}

func (t *writeTracker) has(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.m[key]
	return ok
}

// stale reports whether cur (nil: absent from the cache) is older than the
// last write of ours.
func (t *writeTracker) stale(key string, cur metav1.Object, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	w, ok := t.m[key]
	if !ok {
		return false
	}
	if now.Sub(w.at) > staleWindow {
		delete(t.m, key)
		return false
	}
	if cur == nil {
		return true
	}
	rv, ok := ParseResourceVersion(cur.GetResourceVersion())
	if !ok {
		return false
	}
	if rv >= w.rv {
		// The cache caught up; nothing to remember any more.
		delete(t.m, key)
		return false
	}
	return true
}

// Run reconciles Endpoints with workers until ctx ends; once the caches are
// synced it also looks for Endpoints whose service is gone.
func (c *Controller) Run(ctx context.Context, workers int) {
	manager.Loop{Name: ControllerName, Queue: c.queue, Synced: c.synced, Sync: c.sync, MaxRetries: maxRetries,
		Started: func(context.Context) { c.checkLeftoverEndpoints() }}.Run(ctx, workers)
}
