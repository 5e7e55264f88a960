package endpointslice

import (
	"context"
	"fmt"
	"net"
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/wharf-io/wharf/internal/controller/endpoints"
	"github.com/wharf-io/wharf/internal/controller/manager"
)

const (
	// MirroringControllerName is the managed-by label value of mirrored
	// slices.
	MirroringControllerName = "endpointslicemirroring-controller.k8s.io"
	// MaxEndpointsPerSubset is upstream's --mirroring-max-endpoints-per-subset:
	// one slice per subset (port set and address type) holds at most this
	// many addresses; the rest are skipped with an event.
	MaxEndpointsPerSubset = 1000
)

// NewMirroring is the manager's constructor for the mirroring controller.
func NewMirroring(c *manager.Context) (manager.Controller, error) {
	var rec record.EventRecorder
	if c.Recorder != nil {
		rec = c.Recorder("endpoint-slice-mirroring-controller")
	}
	return NewMirroringController(c.Client, c.Informers, rec)
}

// MirroringController mirrors the Endpoints of selectorless services into
// EndpointSlices.
type MirroringController struct {
	client    kubernetes.Interface
	endpoints corelisters.EndpointsLister
	services  corelisters.ServiceLister
	slices    discoverylisters.EndpointSliceLister
	synced    []cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]
	recorder  record.EventRecorder
	tracker   *sliceTracker
	r         *reconciler // for its writes
	maxPerSub int
}

// NewMirroringController wires the controller to the factory's informers;
// call before the factory starts. recorder may be nil.
func NewMirroringController(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder) (*MirroringController, error) {
	epInf := factory.Core().V1().Endpoints()
	svcInf := factory.Core().V1().Services()
	sliceInf := factory.Discovery().V1().EndpointSlices()
	c := &MirroringController{
		client:    client,
		endpoints: epInf.Lister(),
		services:  svcInf.Lister(),
		slices:    sliceInf.Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "endpoint_slice_mirroring"}),
		recorder:  recorder,
		tracker:   newSliceTracker(),
		maxPerSub: MaxEndpointsPerSubset,
	}
	c.r = &reconciler{client: client, tracker: c.tracker, controllerName: MirroringControllerName}

	if _, err := epInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj interface{}) {
			if ep, ok := obj.(*corev1.Endpoints); ok && shouldMirror(ep) {
				c.enqueue(obj)
			}
		},
		UpdateFunc: func(old, cur interface{}) {
			o, ok1 := old.(*corev1.Endpoints)
			n, ok2 := cur.(*corev1.Endpoints)
			if ok1 && ok2 && (shouldMirror(o) || shouldMirror(n)) {
				c.enqueue(cur)
			}
		},
		DeleteFunc: func(obj interface{}) {
			ep := obj
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				ep = d.Obj
			}
			if e, ok := ep.(*corev1.Endpoints); ok && shouldMirror(e) {
				c.enqueue(obj)
			}
		},
	}); err != nil {
		return nil, err
	}
	if _, err := svcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj interface{}) {
			if s, ok := obj.(*corev1.Service); ok && len(s.Spec.Selector) == 0 {
				c.enqueue(obj)
			}
		},
		UpdateFunc: func(old, cur interface{}) {
			o, ok1 := old.(*corev1.Service)
			n, ok2 := cur.(*corev1.Service)
			if ok1 && ok2 && (len(o.Spec.Selector) == 0) != (len(n.Spec.Selector) == 0) {
				c.enqueue(cur)
			}
		},
		DeleteFunc: func(obj interface{}) {
			s := obj
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				s = d.Obj
			}
			if svc, ok := s.(*corev1.Service); ok && len(svc.Spec.Selector) == 0 {
				c.enqueue(obj)
			}
		},
	}); err != nil {
		return nil, err
	}
	if _, err := sliceInf.Informer().AddEventHandler(sliceHandler(MirroringControllerName, c.tracker, c.queueForSlice)); err != nil {
		return nil, err
	}
	c.synced = []cache.InformerSynced{epInf.Informer().HasSynced, svcInf.Informer().HasSynced, sliceInf.Informer().HasSynced}
	return c, nil
}

// shouldMirror is false for Endpoints labelled skip-mirror=true (the API
// server's kubernetes endpoints) and for leader-election records.
func shouldMirror(ep *corev1.Endpoints) bool {
	if ep == nil || ep.Labels[discoveryv1.LabelSkipMirror] == "true" {
		return false
	}
	_, le := ep.Annotations[resourcelock.LeaderElectionRecordAnnotationKey]
	return !le
}

func (c *MirroringController) enqueue(obj interface{}) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err == nil {
		c.queue.Add(key)
	}
}

func (c *MirroringController) queueForSlice(s *discoveryv1.EndpointSlice) {
	if name := s.Labels[discoveryv1.LabelServiceName]; name != "" {
		c.queue.AddAfter(s.Namespace+"/"+name, sliceChangeDelay)
	}
}

func (c *MirroringController) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return err
	}
	ep, err := c.endpoints.Endpoints(ns).Get(name)
	if apierrors.IsNotFound(err) || (err == nil && !shouldMirror(ep)) {
		c.tracker.deleteService(ns, name)
		return c.deleteMirrored(ctx, ns, name)
	}
	if err != nil {
		return err
	}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) || (err == nil && len(svc.Spec.Selector) > 0) {
		// No service, or one whose slices the EndpointSlice controller
		// writes.
		c.tracker.deleteService(ns, name)
		return c.deleteMirrored(ctx, ns, name)
	}
	if err != nil {
		return err
	}
	slices, err := listSlices(c.slices, ns, name, MirroringControllerName)
	if err != nil {
		return err
	}
	if c.tracker.stale(ns, name, slices) {
		return errStale{"EndpointSlice"}
	}
	return c.reconcile(ctx, ep, svc, slices)
}

func (c *MirroringController) deleteMirrored(ctx context.Context, ns, name string) error {
	slices, err := listSlices(c.slices, ns, name, MirroringControllerName)
	if err != nil {
		return err
	}
	for _, s := range slices {
		if err := c.r.delete(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// mirrorGroup is the desired content of the slice of one subset.
type mirrorGroup struct {
	ports       []discoveryv1.EndpointPort
	addressType discoveryv1.AddressType
	set         *endpointSet
}

// desiredMirror computes the mirrored groups of ep, keyed by address type
// and port set, and how many addresses were skipped (invalid IPs or over
// the per-subset cap).
func desiredMirror(ep *corev1.Endpoints, maxPerSubset int) (map[string]*mirrorGroup, int) {
	groups := map[string]*mirrorGroup{}
	skipped := 0
	for _, ss := range endpoints.RepackSubsets(ep.Subsets) {
		if len(ss.Ports) == 0 {
			continue
		}
		ports := make([]discoveryv1.EndpointPort, 0, len(ss.Ports))
		for _, p := range ss.Ports {
			name, num, proto := p.Name, p.Port, p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			ports = append(ports, discoveryv1.EndpointPort{Name: &name, Port: &num, Protocol: &proto, AppProtocol: p.AppProtocol})
		}
		pk := portMapKey(ports)
		added := 0
		add := func(a corev1.EndpointAddress, ready bool) {
			if added >= maxPerSubset {
				skipped++
				return
			}
			ip := net.ParseIP(a.IP)
			if ip == nil {
				skipped++
				return
			}
			t := discoveryv1.AddressTypeIPv4
			if ip.To4() == nil {
				t = discoveryv1.AddressTypeIPv6
			}
			k := string(t) + "-" + pk
			g := groups[k]
			if g == nil {
				g = &mirrorGroup{ports: ports, addressType: t, set: newEndpointSet()}
				groups[k] = g
			}
			g.set.insert(addressToEndpoint(a, ready))
			added++
		}
		for _, a := range ss.Addresses {
			add(a, true)
		}
		for _, a := range ss.NotReadyAddresses {
			add(a, false)
		}
	}
	return groups, skipped
}

func addressToEndpoint(a corev1.EndpointAddress, ready bool) *discoveryv1.Endpoint {
	ep := &discoveryv1.Endpoint{
		Addresses:  []string{a.IP},
		Conditions: discoveryv1.EndpointConditions{Ready: &ready},
	}
	if a.TargetRef != nil {
		ref := *a.TargetRef
		ep.TargetRef = &ref
	}
	if a.NodeName != nil {
		n := *a.NodeName
		ep.NodeName = &n
	}
	if a.Hostname != "" {
		h := a.Hostname
		ep.Hostname = &h
	}
	return ep
}

// mirrorLabels are the Endpoints' labels with the service name and
// managed-by set; mirrorAnnotations its annotations without the trigger
// time and kubectl's last-applied configuration.
func mirrorLabels(ep *corev1.Endpoints) map[string]string {
	l := make(map[string]string, len(ep.Labels)+2)
	for k, v := range ep.Labels {
		l[k] = v
	}
	l[discoveryv1.LabelServiceName] = ep.Name
	l[discoveryv1.LabelManagedBy] = MirroringControllerName
	return l
}

func mirrorAnnotations(ep *corev1.Endpoints) map[string]string {
	a := map[string]string{}
	for k, v := range ep.Annotations {
		if k == corev1.EndpointsLastChangeTriggerTime || k == corev1.LastAppliedConfigAnnotation {
			continue
		}
		a[k] = v
	}
	return a
}

func (c *MirroringController) newSlice(ep *corev1.Endpoints, svc *corev1.Service, g *mirrorGroup) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    slicePrefix(ep.Name),
			Namespace:       ep.Namespace,
			Labels:          mirrorLabels(ep),
			Annotations:     mirrorAnnotations(ep),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(svc, serviceGVK)},
		},
		Ports:       g.ports,
		AddressType: g.addressType,
		Endpoints:   []discoveryv1.Endpoint{},
	}
	for g.set.len() > 0 && len(s.Endpoints) < c.maxPerSub {
		s.Endpoints = append(s.Endpoints, *g.set.pop())
	}
	return s
}

// sameEndpoints reports whether a slice holds exactly the group's
// endpoints.
func sameEndpoints(s *discoveryv1.EndpointSlice, set *endpointSet) bool {
	if len(s.Endpoints) != set.len() {
		return false
	}
	for i := range s.Endpoints {
		want := set.get(&s.Endpoints[i])
		if want == nil || !apiequality.Semantic.DeepEqual(*want, s.Endpoints[i]) {
			return false
		}
	}
	return true
}

// reconcile keeps one slice per group: the first existing slice of the
// group is rewritten if anything differs, the others are deleted.
func (c *MirroringController) reconcile(ctx context.Context, ep *corev1.Endpoints, svc *corev1.Service, existing []*discoveryv1.EndpointSlice) error {
	groups, skipped := desiredMirror(ep, c.maxPerSub)
	if skipped > 0 && c.recorder != nil {
		c.recorder.Eventf(ep, corev1.EventTypeWarning, "AddressesSkipped",
			"%d addresses in %s Endpoints were skipped due to exceeding MaxEndpointsPerSubset or being invalid", skipped, ep.Name)
	}
	existing = append([]*discoveryv1.EndpointSlice(nil), existing...)
	sort.Slice(existing, func(i, j int) bool { return existing[i].Name < existing[j].Name })
	byKey := map[string][]*discoveryv1.EndpointSlice{}
	for _, s := range existing {
		k := string(s.AddressType) + "-" + portMapKey(s.Ports)
		byKey[k] = append(byKey[k], s)
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)

	var w writes
	wantLabels, wantAnnotations := mirrorLabels(ep), mirrorAnnotations(ep)
	wantOwners := []metav1.OwnerReference{*metav1.NewControllerRef(svc, serviceGVK)}
	for _, k := range keys {
		g := groups[k]
		have := byKey[k]
		if len(have) == 0 {
			w.create = append(w.create, c.newSlice(ep, svc, g))
			continue
		}
		w.del = append(w.del, have[1:]...)
		first := have[0]
		if sameEndpoints(first, g.set) && labelsEqual(first.Labels, wantLabels) &&
			labelsEqual(first.Annotations, wantAnnotations) &&
			apiequality.Semantic.DeepEqual(first.OwnerReferences, wantOwners) {
			continue
		}
		s := c.newSlice(ep, svc, g)
		s.Name, s.GenerateName, s.ResourceVersion, s.UID = first.Name, first.GenerateName, first.ResourceVersion, first.UID
		w.update = append(w.update, s)
	}
	var gone []string
	for k := range byKey {
		if _, ok := groups[k]; !ok {
			gone = append(gone, k)
		}
	}
	sort.Strings(gone)
	for _, k := range gone {
		w.del = append(w.del, byKey[k]...)
	}
	// Recycle slices about to be deleted for slices about to be created.
	for i := 0; i < len(w.del) && len(w.create) > 0; {
		d, s := w.del[i], w.create[len(w.create)-1]
		if d.AddressType != s.AddressType {
			i++
			continue
		}
		s.Name, s.GenerateName, s.ResourceVersion, s.UID = d.Name, d.GenerateName, d.ResourceVersion, d.UID
		w.create = w.create[:len(w.create)-1]
		w.update = append(w.update, s)
		w.del = append(w.del[:i], w.del[i+1:]...)
	}
	return c.write(ctx, svc, w)
}

func (c *MirroringController) write(ctx context.Context, svc *corev1.Service, w writes) error {
	slices := c.client.DiscoveryV1().EndpointSlices(svc.Namespace)
	for _, s := range w.create {
		created, err := slices.Create(ctx, s, metav1.CreateOptions{})
		if err != nil {
			if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
				return nil
			}
			return fmt.Errorf("failed to create mirrored EndpointSlice for %s/%s: %w", svc.Namespace, svc.Name, err)
		}
		c.tracker.update(created)
	}
	for _, s := range w.update {
		updated, err := slices.Update(ctx, s, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("failed to update mirrored EndpointSlice %s for %s/%s: %w", s.Name, svc.Namespace, svc.Name, err)
		}
		c.tracker.update(updated)
	}
	for _, s := range w.del {
		if err := c.r.delete(ctx, s); err != nil {
			return fmt.Errorf("failed to delete mirrored EndpointSlice %s for %s/%s: %w", s.Name, svc.Namespace, svc.Name, err)
		}
	}
	return nil
}

// Run mirrors Endpoints with workers until ctx ends.
func (c *MirroringController) Run(ctx context.Context, workers int) {
	manager.Loop{Name: "endpoint_slice_mirroring", Queue: c.queue, Synced: c.synced, Sync: c.sync, MaxRetries: maxRetries}.Run(ctx, workers)
}
