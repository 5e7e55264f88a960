package gc

import (
	"fmt"
	"reflect"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// objectReference names an object in the graph: its owner-reference
// coordinates (apiVersion, kind, name, uid) and its namespace.
type objectReference struct {
	metav1.OwnerReference
	Namespace string
}

func (r objectReference) String() string {
	return fmt.Sprintf("[%s/%s, namespace: %s, name: %s, uid: %s]", r.APIVersion, r.Kind, r.Namespace, r.Name, r.UID)
}

// coordinates keeps what identifies an owner, dropping controller and
// blockOwnerDeletion.
func coordinates(ref metav1.OwnerReference) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: ref.APIVersion, Kind: ref.Kind, Name: ref.Name, UID: ref.UID}
}

// node is one object of the dependency graph. A virtual node stands for an
// owner that dependents name but no informer has shown yet; the workers
// check it exists and remove it (which releases its dependents) when not.
type node struct {
	identity   objectReference
	dependents map[*node]struct{}
	owners     []metav1.OwnerReference
	// beingDeleted: the object has a deletionTimestamp.
	beingDeleted bool
	// deletingDependents: being deleted with the foregroundDeletion
	// finalizer, so it waits for its blocking dependents.
	deletingDependents bool
	virtual            bool
}

// blocks reports whether dep's owner reference to n blocks n's deletion.
func (n *node) blockedBy(dep *node) bool {
	for _, ref := range dep.owners {
		if ref.UID == n.identity.UID {
			return ref.BlockOwnerDeletion != nil && *ref.BlockOwnerDeletion
		}
	}
	return false
}

type eventType int

const (
	addEvent eventType = iota
	updateEvent
	deleteEvent
)

// event is one change the graph builder applies: from an informer, or a
// virtual delete from a worker that found an owner absent.
type event struct {
	virtual   bool
	eventType eventType
	obj       metav1.Object
	oldObj    metav1.Object
	gvk       schema.GroupVersionKind
}

// graph is the dependency graph: every object of the monitored resources
// by UID, with its owners and dependents. One goroutine applies events;
// workers read under the lock.
type graph struct {
	mu    sync.Mutex
	nodes map[types.UID]*node

	attemptToDelete workqueue.TypedRateLimitingInterface[types.UID]
	attemptToOrphan workqueue.TypedRateLimitingInterface[types.UID]
}

func newGraph() *graph {
	return &graph{
		nodes: map[types.UID]*node{},
		attemptToDelete: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[types.UID](),
			workqueue.TypedRateLimitingQueueConfig[types.UID]{Name: "garbage_collector_attempt_to_delete"}),
		attemptToOrphan: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[types.UID](),
			workqueue.TypedRateLimitingQueueConfig[types.UID]{Name: "garbage_collector_attempt_to_orphan"}),
	}
}

func identityFromEvent(e *event) objectReference {
	return objectReference{
		OwnerReference: metav1.OwnerReference{
			APIVersion: e.gvk.GroupVersion().String(),
			Kind:       e.gvk.Kind,
			UID:        e.obj.GetUID(),
			Name:       e.obj.GetName(),
		},
		Namespace: e.obj.GetNamespace(),
	}
}

func beingDeleted(o metav1.Object) bool { return o.GetDeletionTimestamp() != nil }

func hasFinalizer(o metav1.Object, f string) bool {
	for _, x := range o.GetFinalizers() {
		if x == f {
			return true
		}
	}
	return false
}

func hasOrphanFinalizer(o metav1.Object) bool {
	return hasFinalizer(o, metav1.FinalizerOrphanDependents)
}

func hasDeleteDependentsFinalizer(o metav1.Object) bool {
	return hasFinalizer(o, metav1.FinalizerDeleteDependents)
}

// process applies one event to the graph and queues the work it implies.
func (g *graph) process(e *event) {
	g.mu.Lock()
	defer g.mu.Unlock()
	uid := e.obj.GetUID()
	existing, found := g.nodes[uid]
	if found && !e.virtual && existing.virtual {
		// An informer shows the object a dependent named: the node is real
		// now, with the identity the server reports.
		observed := identityFromEvent(e)
		if observed != existing.identity {
			// Dependents that named it by other coordinates (another
			// namespace, say) must be checked again.
			for dep := range existing.dependents {
				if dep.identity.Namespace != observed.Namespace {
					g.attemptToDelete.Add(dep.identity.UID)
				}
			}
			existing.identity = observed
		}
		existing.virtual = false
	}

	switch {
	case (e.eventType == addEvent || e.eventType == updateEvent) && !found:
		n := &node{
			identity:           identityFromEvent(e),
			dependents:         map[*node]struct{}{},
			owners:             e.obj.GetOwnerReferences(),
			beingDeleted:       beingDeleted(e.obj),
			deletingDependents: beingDeleted(e.obj) && hasDeleteDependentsFinalizer(e.obj),
		}
		g.nodes[uid] = n
		g.addDependentToOwners(n, n.owners)
		g.processTransitions(e.obj, n)

	case e.eventType == addEvent || e.eventType == updateEvent:
		added, removed, changed := referencesDiffs(existing.owners, e.obj.GetOwnerReferences())
		if len(added) != 0 || len(removed) != 0 || len(changed) != 0 {
			g.addUnblockedOwnersToDeleteQueue(removed, changed)
			existing.owners = e.obj.GetOwnerReferences()
			g.addDependentToOwners(existing, added)
			g.removeDependentFromOwners(existing, removed)
		}
		if beingDeleted(e.obj) {
			existing.beingDeleted = true
		}
		g.processTransitions(e.obj, existing)

	case e.eventType == deleteEvent:
		if !found {
			return
		}
		if e.virtual && !existing.virtual {
			// A worker found the object absent under the coordinates it
			// was named by, but an informer has shown it since: keep it.
			return
		}
		g.removeNode(existing)
		for dep := range existing.dependents {
			g.attemptToDelete.Add(dep.identity.UID)
		}
		for _, owner := range existing.owners {
			if on, ok := g.nodes[owner.UID]; ok && on.deletingDependents {
				// It may have been the last dependent its owner waited for.
				g.attemptToDelete.Add(on.identity.UID)
			}
		}
	}
}

// processTransitions queues owners whose deletion waits for the collector:
// orphaning (the orphan finalizer) or foreground (foregroundDeletion).
func (g *graph) processTransitions(obj metav1.Object, n *node) {
	if !beingDeleted(obj) {
		return
	}
	if hasOrphanFinalizer(obj) {
		g.attemptToOrphan.Add(n.identity.UID)
		return
	}
	if hasDeleteDependentsFinalizer(obj) {
		n.deletingDependents = true
		for dep := range n.dependents {
			g.attemptToDelete.Add(dep.identity.UID)
		}
		g.attemptToDelete.Add(n.identity.UID)
	}
}

// addDependentToOwners links n under each owner, making virtual nodes for
// owners not seen yet and queueing them to be checked.
func (g *graph) addDependentToOwners(n *node, owners []metav1.OwnerReference) {
	for _, owner := range owners {
		on, ok := g.nodes[owner.UID]
		if !ok {
			on = &node{
				identity:   objectReference{OwnerReference: coordinates(owner), Namespace: n.identity.Namespace},
				dependents: map[*node]struct{}{},
				virtual:    true,
			}
			g.nodes[owner.UID] = on
			g.attemptToDelete.Add(owner.UID)
		}
		on.dependents[n] = struct{}{}
	}
}

func (g *graph) removeDependentFromOwners(n *node, owners []metav1.OwnerReference) {
	for _, owner := range owners {
		if on, ok := g.nodes[owner.UID]; ok {
			delete(on.dependents, n)
		}
	}
}

func (g *graph) removeNode(n *node) {
	delete(g.nodes, n.identity.UID)
	g.removeDependentFromOwners(n, n.owners)
}

// addUnblockedOwnersToDeleteQueue queues foreground-deleting owners a
// dependent stopped blocking (reference removed, or no longer blocking).
func (g *graph) addUnblockedOwnersToDeleteQueue(removed []metav1.OwnerReference, changed []ownerRefPair) {
	for _, ref := range removed {
		if ref.BlockOwnerDeletion != nil && *ref.BlockOwnerDeletion {
			if on, ok := g.nodes[ref.UID]; ok && on.deletingDependents {
				g.attemptToDelete.Add(ref.UID)
			}
		}
	}
	for _, c := range changed {
		wasBlocked := c.oldRef.BlockOwnerDeletion != nil && *c.oldRef.BlockOwnerDeletion
		isBlocked := c.newRef.BlockOwnerDeletion != nil && *c.newRef.BlockOwnerDeletion
		if wasBlocked && !isBlocked {
			if on, ok := g.nodes[c.newRef.UID]; ok && on.deletingDependents {
				g.attemptToDelete.Add(c.newRef.UID)
			}
		}
	}
}

type ownerRefPair struct {
	oldRef, newRef metav1.OwnerReference
}

// referencesDiffs compares owner references by UID.
func referencesDiffs(old, new []metav1.OwnerReference) (added, removed []metav1.OwnerReference, changed []ownerRefPair) {
	oldByUID := map[types.UID]metav1.OwnerReference{}
	for _, r := range old {
		oldByUID[r.UID] = r
	}
	for _, r := range new {
		o, ok := oldByUID[r.UID]
		if !ok {
			added = append(added, r)
			continue
		}
		if !reflect.DeepEqual(o, r) {
			changed = append(changed, ownerRefPair{oldRef: o, newRef: r})
		}
		delete(oldByUID, r.UID)
	}
	for _, r := range old {
		if _, ok := oldByUID[r.UID]; ok {
			removed = append(removed, r)
		}
	}
	return added, removed, changed
}

// snapshot is a worker's copy of a node and its dependents, taken under the
// graph's lock.
type snapshot struct {
	identity           objectReference
	beingDeleted       bool
	deletingDependents bool
	virtual            bool
	dependents         []objectReference
	// blocking are the dependents whose reference blocks the deletion.
	blocking []dependentInfo
	// dependentDeletingDependents: some dependent is itself waiting for
	// its own dependents (a cycle in foreground deletion).
	dependentDeletingDependents bool
}

type dependentInfo struct {
	identity           objectReference
	deletingDependents bool
}

func (g *graph) snapshot(uid types.UID) (snapshot, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, ok := g.nodes[uid]
	if !ok {
		return snapshot{}, false
	}
	s := snapshot{identity: n.identity, beingDeleted: n.beingDeleted, deletingDependents: n.deletingDependents, virtual: n.virtual}
	for dep := range n.dependents {
		s.dependents = append(s.dependents, dep.identity)
		if dep.deletingDependents {
			s.dependentDeletingDependents = true
		}
		if n.blockedBy(dep) {
			s.blocking = append(s.blocking, dependentInfo{identity: dep.identity, deletingDependents: dep.deletingDependents})
		}
	}
	return s, true
}

// isVirtual reports whether uid is in the graph and still unobserved.
func (g *graph) state(uid types.UID) (present, virtual bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, ok := g.nodes[uid]
	if !ok {
		return false, false
	}
	return true, n.virtual
}

// handler turns informer notifications of one resource into graph events.
func handler(gvk schema.GroupVersionKind, push func(*event)) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj interface{}) {
			if o, ok := obj.(metav1.Object); ok {
				push(&event{eventType: addEvent, obj: o, gvk: gvk})
			}
		},
		UpdateFunc: func(oldObj, newObj interface{}) {
			o, ok := newObj.(metav1.Object)
			if !ok {
				return
			}
			old, _ := oldObj.(metav1.Object)
			push(&event{eventType: updateEvent, obj: o, oldObj: old, gvk: gvk})
		},
		DeleteFunc: func(obj interface{}) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if o, ok := obj.(metav1.Object); ok {
				push(&event{eventType: deleteEvent, obj: o, gvk: gvk})
			}
		},
	}
}
