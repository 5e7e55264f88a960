// Package gc is the garbage collector, as upstream's
// (pkg/controller/garbagecollector): it keeps a graph of every object of
// every listable, watchable and deletable resource (metadata informers,
// resources rediscovered every 30 s) linked by ownerReferences, and
//
//   - deletes dependents whose owners are all gone (background deletion);
//   - for an owner deleted in the foreground (deletionTimestamp and the
//     foregroundDeletion finalizer) deletes its dependents, waits for those
//     whose reference has blockOwnerDeletion, then removes the finalizer so
//     that the owner goes;
//   - for an owner deleted with the orphan finalizer removes the owner's
//     reference from its dependents, then the finalizer.
package gc

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/wharf-io/wharf/internal/controller/manager"
)

// Timing.
var (
	// DiscoveryPeriod is how often the collected resources are rediscovered.
	DiscoveryPeriod = 30 * time.Second
	// SyncTimeout bounds the wait for new monitors to list their resource.
	SyncTimeout = 30 * time.Second
)

// ignoredResources are never collected, as upstream: events (they expire),
// plus extensions/v1beta1 Ingress, which is networking.k8s.io/v1 Ingress
// under another name (the same objects would be watched twice).
var ignoredResources = map[schema.GroupResource]bool{
	{Group: "", Resource: "events"}:              true,
	{Group: "events.k8s.io", Resource: "events"}: true,
	{Group: "extensions", Resource: "ingresses"}: true,
}

// GarbageCollector collects objects by their ownerReferences.
type GarbageCollector struct {
	metadata  metadata.Interface
	discovery discovery.DiscoveryInterface
	mapper    meta.RESTMapper

	graph *graph
	// changes are the graph events in arrival order.
	changes workqueue.TypedInterface[*event]

	// workerLock stops the workers while monitors are (re)built, so that
	// they never act on a graph that misses a resource.
	workerLock sync.RWMutex

	monitorsMu sync.Mutex
	monitors   map[schema.GroupVersionResource]*monitor
	// running: monitors start as soon as they are made.
	running bool
	stop    <-chan struct{}

	absent *absentCache
}

type monitor struct {
	gvk      schema.GroupVersionKind
	informer cache.SharedIndexInformer
	stop     chan struct{}
	started  bool
}

// New builds the garbage collector; its metadata client talks to the same
// server as the manager's clientset.
func New(c *manager.Context) (manager.Controller, error) {
	md, err := c.MetadataClient("generic-garbage-collector")
	if err != nil {
		return nil, err
	}
	dc := c.Client.Discovery()
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	return NewGarbageCollector(md, dc, mapper), nil
}

// NewGarbageCollector returns a collector over md, discovering resources
// through dc and mapping owner kinds to resources through mapper (reset on
// every discovery change when it is resettable).
func NewGarbageCollector(md metadata.Interface, dc discovery.DiscoveryInterface, mapper meta.RESTMapper) *GarbageCollector {
	return &GarbageCollector{
		metadata:  md,
		discovery: dc,
		mapper:    mapper,
		graph:     newGraph(),
		changes:   workqueue.NewTypedWithConfig[*event](workqueue.TypedQueueConfig[*event]{Name: "garbage_collector_graph_changes"}),
		monitors:  map[schema.GroupVersionResource]*monitor{},
		absent:    newAbsentCache(1000),
	}
}

var _ manager.Controller = &GarbageCollector{}

// Run discovers the resources, builds the graph, and collects until ctx
// ends.
func (gc *GarbageCollector) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrash()
	defer gc.graph.attemptToDelete.ShutDown()
	defer gc.graph.attemptToOrphan.ShutDown()
	defer gc.changes.ShutDown()
	defer gc.stopMonitors()

	gc.monitorsMu.Lock()
	gc.stop = ctx.Done()
	gc.running = true
	gc.monitorsMu.Unlock()

	go wait.Until(gc.runProcessGraphChanges, time.Second, ctx.Done())

	// First discovery: retry until the server answers.
	_ = wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		if err := gc.resync(ctx); err != nil {
			utilruntime.HandleError(fmt.Errorf("garbage collector: %w", err))
			return false, nil
		}
		return true, nil
	})
	if ctx.Err() != nil {
		return
	}
	// As upstream, a monitor that cannot list does not hold the collector
	// back for ever: after SyncTimeout it works with the graph it has.
	syncCtx, cancelSync := context.WithTimeout(ctx, SyncTimeout)
	synced := cache.WaitForNamedCacheSync("garbage collector", syncCtx.Done(), gc.synced)
	cancelSync()
	if ctx.Err() != nil {
		return
	}
	if synced {
		klog.V(2).InfoS("Garbage collector: all resource monitors have synced")
	} else {
		klog.InfoS("Garbage collector: timed out waiting for resource monitors to sync; proceeding")
	}

	if workers < 4 {
		workers = 4
	}
	for i := 0; i < workers; i++ {
		go wait.UntilWithContext(ctx, gc.runAttemptToDeleteWorker, time.Second)
		go wait.UntilWithContext(ctx, gc.runAttemptToOrphanWorker, time.Second)
	}
	go wait.UntilWithContext(ctx, func(ctx context.Context) {
		if err := gc.resync(ctx); err != nil {
			utilruntime.HandleError(fmt.Errorf("garbage collector: %w", err))
		}
	}, DiscoveryPeriod)
	<-ctx.Done()
}

// deletableResources lists the resources the collector watches: preferred
// versions that support delete, list and watch.
func (gc *GarbageCollector) deletableResources() (map[schema.GroupVersionResource]schema.GroupVersionKind, error) {
	lists, err := discovery.ServerPreferredResources(gc.discovery)
	if err != nil && len(lists) == 0 {
		return nil, fmt.Errorf("discover resources: %w", err)
	}
	if err != nil {
		// Partial discovery: keep what was found, and report the rest.
		utilruntime.HandleError(fmt.Errorf("garbage collector: partial discovery: %w", err))
	}
	lists = discovery.FilteredBy(discovery.SupportsAllVerbs{Verbs: []string{"delete", "list", "watch"}}, lists)
	out := map[schema.GroupVersionResource]schema.GroupVersionKind{}
	for _, rl := range lists {
		gv, err := schema.ParseGroupVersion(rl.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range rl.APIResources {
			if r.Name == "" || strings.Contains(r.Name, "/") {
				continue
			}
			gvr := gv.WithResource(r.Name)
			if ignoredResources[gvr.GroupResource()] {
				continue
			}
			out[gvr] = gv.WithKind(r.Kind)
		}
	}
	return out, nil
}

// resync rediscovers the resources and, when they changed, rebuilds the
// monitors with the workers paused until the new ones have listed.
func (gc *GarbageCollector) resync(ctx context.Context) error {
	resources, err := gc.deletableResources()
	if err != nil {
		return err
	}
	gc.monitorsMu.Lock()
	same := len(resources) == len(gc.monitors)
	for gvr := range resources {
		if _, ok := gc.monitors[gvr]; !ok {
			same = false
		}
	}
	gc.monitorsMu.Unlock()
	if same {
		return nil
	}
	gc.workerLock.Lock()
	defer gc.workerLock.Unlock()
	if r, ok := gc.mapper.(meta.ResettableRESTMapper); ok {
		r.Reset()
	}
	gc.syncMonitors(resources)
	ctx, cancel := context.WithTimeout(ctx, SyncTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(ctx.Done(), gc.synced) {
		return fmt.Errorf("timed out waiting for resource monitors to sync")
	}
	return nil
}

// syncMonitors makes a monitor for every new resource and stops those of
// resources that went away.
func (gc *GarbageCollector) syncMonitors(resources map[schema.GroupVersionResource]schema.GroupVersionKind) {
	gc.monitorsMu.Lock()
	defer gc.monitorsMu.Unlock()
	var added, removed []string
	for gvr, gvk := range resources {
		if _, ok := gc.monitors[gvr]; ok {
			continue
		}
		inf := metadatainformer.NewFilteredMetadataInformer(gc.metadata, gvr, metav1.NamespaceAll, 0, cache.Indexers{}, nil).Informer()
		if _, err := inf.AddEventHandler(handler(gvk, gc.changes.Add)); err != nil {
			utilruntime.HandleError(fmt.Errorf("garbage collector: monitor %s: %w", gvr, err))
			continue
		}
		gc.monitors[gvr] = &monitor{gvk: gvk, informer: inf, stop: make(chan struct{})}
		added = append(added, gvr.String())
	}
	for gvr, m := range gc.monitors {
		if _, ok := resources[gvr]; !ok {
			if m.started {
				close(m.stop)
			}
			delete(gc.monitors, gvr)
			removed = append(removed, gvr.String())
		}
	}
	if gc.running {
		for _, m := range gc.monitors {
			if !m.started {
				m.started = true
				go m.informer.Run(mergeStop(m.stop, gc.stop))
			}
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	klog.V(2).InfoS("Garbage collector: monitors synced", "added", added, "removed", removed)
}

func mergeStop(a, b <-chan struct{}) <-chan struct{} {
	out := make(chan struct{})
	go func() {
		defer close(out)
		select {
		case <-a:
		case <-b:
		}
	}()
	return out
}

func (gc *GarbageCollector) stopMonitors() {
	gc.monitorsMu.Lock()
	defer gc.monitorsMu.Unlock()
	for gvr, m := range gc.monitors {
		if m.started {
			close(m.stop)
		}
		delete(gc.monitors, gvr)
	}
	gc.running = false
}

// synced reports whether every monitor has listed its resource.
func (gc *GarbageCollector) synced() bool {
	gc.monitorsMu.Lock()
	defer gc.monitorsMu.Unlock()
	for _, m := range gc.monitors {
		if !m.informer.HasSynced() {
			return false
		}
	}
	return true
}

func (gc *GarbageCollector) runProcessGraphChanges() {
	for {
		e, quit := gc.changes.Get()
		if quit {
			return
		}
		gc.graph.process(e)
		gc.changes.Done(e)
	}
}

// enqueueVirtualDelete removes an owner found absent from the graph, which
// queues its dependents.
func (gc *GarbageCollector) enqueueVirtualDelete(ref objectReference) {
	gv, _ := schema.ParseGroupVersion(ref.APIVersion)
	obj := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: ref.Namespace, Name: ref.Name, UID: ref.UID}}
	gc.changes.Add(&event{virtual: true, eventType: deleteEvent, obj: obj, gvk: gv.WithKind(ref.Kind)})
}

var (
	errEnqueuedVirtualDelete     = errors.New("enqueued virtual delete event")
	errNamespacedOwnerOfClusterd = errors.New("cluster-scoped objects cannot refer to namespaced owners")
)

func (gc *GarbageCollector) runAttemptToDeleteWorker(ctx context.Context) {
	for gc.processAttemptToDelete(ctx) {
	}
}

func (gc *GarbageCollector) processAttemptToDelete(ctx context.Context) bool {
	uid, quit := gc.graph.attemptToDelete.Get()
	if quit {
		return false
	}
	defer gc.graph.attemptToDelete.Done(uid)
	gc.workerLock.RLock()
	defer gc.workerLock.RUnlock()

	n, ok := gc.graph.snapshot(uid)
	if !ok {
		gc.graph.attemptToDelete.Forget(uid)
		return true
	}
	err := gc.attemptToDeleteItem(ctx, n)
	switch {
	case errors.Is(err, errEnqueuedVirtualDelete), errors.Is(err, errNamespacedOwnerOfClusterd):
		gc.graph.attemptToDelete.Forget(uid)
	case err != nil:
		utilruntime.HandleError(fmt.Errorf("garbage collector: attemptToDelete %s: %w", n.identity, err))
		gc.graph.attemptToDelete.AddRateLimited(uid)
	default:
		// A virtual node that exists is checked again until an informer
		// shows it, or it would linger if it went during a relist.
		if present, virtual := gc.graph.state(uid); present && virtual {
			gc.graph.attemptToDelete.AddRateLimited(uid)
			return true
		}
		gc.graph.attemptToDelete.Forget(uid)
	}
	return true
}

func (gc *GarbageCollector) runAttemptToOrphanWorker(ctx context.Context) {
	for gc.processAttemptToOrphan(ctx) {
	}
}

func (gc *GarbageCollector) processAttemptToOrphan(ctx context.Context) bool {
	uid, quit := gc.graph.attemptToOrphan.Get()
	if quit {
		return false
	}
	defer gc.graph.attemptToOrphan.Done(uid)
	gc.workerLock.RLock()
	defer gc.workerLock.RUnlock()

	n, ok := gc.graph.snapshot(uid)
	if !ok {
		gc.graph.attemptToOrphan.Forget(uid)
		return true
	}
	if err := gc.attemptToOrphanItem(ctx, n); err != nil {
		utilruntime.HandleError(fmt.Errorf("garbage collector: attemptToOrphan %s: %w", n.identity, err))
		gc.graph.attemptToOrphan.AddRateLimited(uid)
		return true
	}
	gc.graph.attemptToOrphan.Forget(uid)
	return true
}

// attemptToOrphanItem removes the owner's reference from its dependents,
// then the owner's orphan finalizer.
func (gc *GarbageCollector) attemptToOrphanItem(ctx context.Context, owner snapshot) error {
	if err := gc.orphanDependents(ctx, owner.identity, owner.dependents); err != nil {
		return err
	}
	return gc.removeFinalizer(ctx, owner.identity, metav1.FinalizerOrphanDependents)
}

// attemptToDeleteItem decides what happens to one object: upstream's
// attemptToDeleteItem.
func (gc *GarbageCollector) attemptToDeleteItem(ctx context.Context, item snapshot) error {
	// Being deleted (and not waiting for its dependents): its deletion
	// event will release its dependents.
	if item.beingDeleted && !item.deletingDependents {
		return nil
	}
	latest, err := gc.getObject(ctx, item.identity)
	if isNotFound(err) {
		gc.enqueueVirtualDelete(item.identity)
		return errEnqueuedVirtualDelete
	}
	if err != nil {
		return err
	}
	if latest.GetUID() != item.identity.UID {
		gc.enqueueVirtualDelete(item.identity)
		return errEnqueuedVirtualDelete
	}
	if item.deletingDependents {
		return gc.processDeletingDependentsItem(ctx, item)
	}
	ownerRefs := latest.GetOwnerReferences()
	if len(ownerRefs) == 0 {
		return nil
	}
	solid, dangling, waiting, err := gc.classifyReferences(ctx, item, ownerRefs)
	if err != nil {
		return err
	}
	klog.V(5).InfoS("Garbage collector: classified references", "item", item.identity,
		"solid", len(solid), "dangling", len(dangling), "waitingForDependentsDeletion", len(waiting))

	switch {
	case len(solid) != 0:
		// Some owner lives: keep the object, drop the references to the
		// owners that are gone or that wait for their dependents to go.
		if len(dangling) == 0 && len(waiting) == 0 {
			return nil
		}
		var uids []types.UID
		for _, r := range append(dangling, waiting...) {
			uids = append(uids, r.UID)
		}
		return gc.removeOwnerReferences(ctx, item.identity, uids)

	case len(waiting) != 0 && len(item.dependents) != 0:
		// An owner deletes in the foreground and this object has dependents
		// of its own: delete it in the foreground too. If one of them is
		// waiting as well, unblock our references first to break a cycle.
		if item.dependentDeletingDependents {
			if err := gc.unblockOwnerReferences(ctx, item.identity); err != nil {
				return err
			}
		}
		policy := metav1.DeletePropagationForeground
		return gc.deleteObject(ctx, item.identity, latest.GetResourceVersion(), ownerRefs, &policy)

	default:
		// No owner lives: collect it, honouring a finalizer it already has.
		policy := metav1.DeletePropagationBackground
		switch {
		case hasOrphanFinalizer(latest):
			policy = metav1.DeletePropagationOrphan
		case hasDeleteDependentsFinalizer(latest):
			policy = metav1.DeletePropagationForeground
		}
		klog.V(2).InfoS("Garbage collector: deleting object", "item", item.identity, "propagationPolicy", policy)
		return gc.deleteObject(ctx, item.identity, latest.GetResourceVersion(), ownerRefs, &policy)
	}
}

// processDeletingDependentsItem releases a foreground-deleting owner once
// none of its blocking dependents is left, and meanwhile makes sure they
// are being deleted.
func (gc *GarbageCollector) processDeletingDependentsItem(ctx context.Context, item snapshot) error {
	if len(item.blocking) == 0 {
		klog.V(2).InfoS("Garbage collector: removing foregroundDeletion finalizer", "item", item.identity)
		return gc.removeFinalizer(ctx, item.identity, metav1.FinalizerDeleteDependents)
	}
	for _, dep := range item.blocking {
		if !dep.deletingDependents {
			gc.graph.attemptToDelete.Add(dep.identity.UID)
		}
	}
	return nil
}

// classifyReferences sorts the owners into solid (exist, not waiting),
// dangling (gone, or another object under that name) and waiting (being
// deleted in the foreground).
func (gc *GarbageCollector) classifyReferences(ctx context.Context, item snapshot, refs []metav1.OwnerReference) (solid, dangling, waiting []metav1.OwnerReference, err error) {
	for _, ref := range refs {
		isDangling, owner, err := gc.isDangling(ctx, ref, item)
		if err != nil {
			return nil, nil, nil, err
		}
		if isDangling {
			dangling = append(dangling, ref)
			continue
		}
		if owner.GetDeletionTimestamp() != nil && hasDeleteDependentsFinalizer(owner) {
			waiting = append(waiting, ref)
		} else {
			solid = append(solid, ref)
		}
	}
	return solid, dangling, waiting, nil
}

// isDangling looks the owner up on the server (not in the graph, which may
// lag): absent or with another UID means dangling.
func (gc *GarbageCollector) isDangling(ctx context.Context, ref metav1.OwnerReference, item snapshot) (bool, metav1.Object, error) {
	gvr, namespaced, err := gc.apiResource(ref.APIVersion, ref.Kind)
	if err != nil {
		return false, nil, err
	}
	ns := ""
	if namespaced {
		if item.identity.Namespace == "" {
			klog.V(2).InfoS("Garbage collector: cluster-scoped object refers to a namespaced owner; the reference is ignored",
				"item", item.identity, "owner", ref)
			return false, nil, errNamespacedOwnerOfClusterd
		}
		ns = item.identity.Namespace
	}
	key := objectReference{OwnerReference: coordinates(ref), Namespace: ns}
	if gc.absent.has(key) {
		return true, nil, nil
	}
	owner, err := gc.metadata.Resource(gvr).Namespace(ns).Get(ctx, ref.Name, metav1.GetOptions{})
	switch {
	case isNotFound(err):
		gc.absent.add(key)
		return true, nil, nil
	case err != nil:
		return false, nil, err
	}
	if owner.GetUID() != ref.UID {
		gc.absent.add(key)
		return true, nil, nil
	}
	return false, owner, nil
}

// absentCache remembers owners found absent (UIDs are never reused), up to
// a bound.
type absentCache struct {
	mu    sync.Mutex
	max   int
	items map[objectReference]struct{}
	order []objectReference
}

func newAbsentCache(max int) *absentCache {
	return &absentCache{max: max, items: map[objectReference]struct{}{}}
}

func (c *absentCache) has(r objectReference) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.items[r]
	return ok
}

func (c *absentCache) add(r objectReference) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[r]; ok {
		return
	}
	if len(c.order) >= c.max {
		delete(c.items, c.order[0])
		c.order = c.order[1:]
	}
	c.items[r] = struct{}{}
	c.order = append(c.order, r)
}

// knownResources is for tests and debugging: the monitored resources.
func (gc *GarbageCollector) knownResources() sets.Set[string] {
	gc.monitorsMu.Lock()
	defer gc.monitorsMu.Unlock()
	out := sets.New[string]()
	for gvr := range gc.monitors {
		out.Insert(gvr.String())
	}
	return out
}
