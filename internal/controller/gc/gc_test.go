package gc

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	fakediscovery "k8s.io/client-go/discovery/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	clienttesting "k8s.io/client-go/testing"
)

var (
	podGVR  = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	rcGVR   = schema.GroupVersionResource{Version: "v1", Resource: "replicationcontrollers"}
	pvGVR   = schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumes"}
	listGVK = schema.GroupVersionKind{Group: "fake-metadata-client-group", Version: "v1"}
)

func resources() []*metav1.APIResourceList {
	verbs := metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
	return []*metav1.APIResourceList{{GroupVersion: "v1", APIResources: []metav1.APIResource{
		{Name: "pods", Namespaced: true, Kind: "Pod", Verbs: verbs},
		{Name: "replicationcontrollers", Namespaced: true, Kind: "ReplicationController", Verbs: verbs},
		{Name: "persistentvolumes", Namespaced: false, Kind: "PersistentVolume", Verbs: verbs},
		{Name: "events", Namespaced: true, Kind: "Event", Verbs: verbs},
		{Name: "bindings", Namespaced: true, Kind: "Binding", Verbs: metav1.Verbs{"create"}},
	}}}
}

func mapper() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper([]schema.GroupVersion{{Version: "v1"}})
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "ReplicationController"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "PersistentVolume"}, meta.RESTScopeRoot)
	return m
}

func rc(name string, finalizers ...string) *metav1.PartialObjectMetadata {
	o := &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ReplicationController"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name), Finalizers: finalizers},
	}
	if len(finalizers) > 0 {
		now := metav1.Now()
		o.DeletionTimestamp = &now
		zero := int64(0)
		o.DeletionGracePeriodSeconds = &zero
	}
	return o
}

func ref(name string, block bool) metav1.OwnerReference {
	t := true
	r := metav1.OwnerReference{APIVersion: "v1", Kind: "ReplicationController", Name: name, UID: types.UID("uid-" + name), Controller: &t}
	if block {
		r.BlockOwnerDeletion = &t
	}
	return r
}

func pod(name string, owners ...metav1.OwnerReference) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name), OwnerReferences: owners},
	}
}

// newFakeServer is a metadata fake that deletes as the API server does:
// a delete asking for foreground or orphan propagation, or of an object
// with finalizers, only sets deletionTimestamp (and the finalizer); an
// update that removes the last finalizer of a deleting object deletes it.
func newFakeServer(t *testing.T, objs ...runtime.Object) *metadatafake.FakeMetadataClient {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	md := metadatafake.NewSimpleMetadataClient(scheme, objs...)
	tracker := md.Tracker()
	react := clienttesting.ObjectReaction(tracker)
	md.PrependReactor("delete", "*", func(a clienttesting.Action) (bool, runtime.Object, error) {
		d := a.(clienttesting.DeleteActionImpl)
		cur, err := tracker.Get(d.Resource, d.Namespace, d.Name)
		if err != nil {
			return true, nil, err
		}
		o := cur.(*metav1.PartialObjectMetadata)
		if p := d.DeleteOptions.Preconditions; p != nil && p.UID != nil && *p.UID != o.UID {
			return true, nil, fmt.Errorf("precondition failed: uid")
		}
		policy := d.DeleteOptions.PropagationPolicy
		switch {
		case policy != nil && *policy == metav1.DeletePropagationForeground:
			o.Finalizers = append(o.Finalizers, metav1.FinalizerDeleteDependents)
		case policy != nil && *policy == metav1.DeletePropagationOrphan:
			o.Finalizers = append(o.Finalizers, metav1.FinalizerOrphanDependents)
		}
		if len(o.Finalizers) == 0 {
			return true, nil, tracker.Delete(d.Resource, d.Namespace, d.Name)
		}
		if o.DeletionTimestamp == nil {
			now := metav1.Now()
			o.DeletionTimestamp = &now
		}
		return true, nil, tracker.Update(d.Resource, o, d.Namespace)
	})
	md.PrependReactor("patch", "*", func(a clienttesting.Action) (bool, runtime.Object, error) {
		handled, out, err := react(a)
		if err != nil {
			return handled, out, err
		}
		o := out.(*metav1.PartialObjectMetadata)
		if o.DeletionTimestamp != nil && len(o.Finalizers) == 0 {
			return true, o, tracker.Delete(a.GetResource(), a.GetNamespace(), o.Name)
		}
		return handled, out, err
	})
	return md
}

// state is every object left: "kind/name" → its owners' names, sorted.
func state(t *testing.T, md *metadatafake.FakeMetadataClient) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, gvr := range []schema.GroupVersionResource{podGVR, rcGVR, pvGVR} {
		l, err := md.Tracker().List(gvr, listGVK, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range l.(*metav1.List).Items {
			o := item.Object.(*metav1.PartialObjectMetadata)
			var owners []string
			for _, r := range o.OwnerReferences {
				owners = append(owners, r.Name)
			}
			sort.Strings(owners)
			out[gvr.Resource+"/"+o.Name] = strings.Join(owners, ",")
		}
	}
	return out
}

func startGC(t *testing.T, md *metadatafake.FakeMetadataClient) (*GarbageCollector, context.CancelFunc) {
	t.Helper()
	dc := &fakediscovery.FakeDiscovery{Fake: &clienttesting.Fake{Resources: resources()}}
	gc := NewGarbageCollector(md, dc, mapper())
	ctx, cancel := context.WithCancel(context.Background())
	go gc.Run(ctx, 2)
	deadline := time.Now().Add(10 * time.Second)
	for gc.knownResources().Len() == 0 || !gc.synced() {
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("monitors did not sync")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return gc, cancel
}

func waitState(t *testing.T, md *metadatafake.FakeMetadataClient, want map[string]string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var got map[string]string
	for time.Now().Before(deadline) {
		got = state(t, md)
		if fmt.Sprint(got) == fmt.Sprint(want) {
			// Stable for a moment: nothing more is collected.
			time.Sleep(200 * time.Millisecond)
			if got = state(t, md); fmt.Sprint(got) == fmt.Sprint(want) {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("objects = %v, want %v", got, want)
}

func TestGarbageCollector(t *testing.T) {
	other := func(name string) *metav1.PartialObjectMetadata {
		o := rc(name)
		o.UID = "another-uid"
		return o
	}
	pv := &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolume"},
		ObjectMeta: metav1.ObjectMeta{Name: "pv", UID: "uid-pv", OwnerReferences: []metav1.OwnerReference{ref("live", false)}},
	}
	tests := []struct {
		name string
		objs []runtime.Object
		// then runs once the collector has synced.
		then func(t *testing.T, md *metadatafake.FakeMetadataClient)
		want map[string]string
	}{{
		name: "owner gone: dependent deleted, dependents of live owners kept",
		objs: []runtime.Object{rc("live"), pod("orphaned", ref("gone", false)), pod("owned", ref("live", false)), pod("free")},
		want: map[string]string{"replicationcontrollers/live": "", "pods/owned": "live", "pods/free": ""},
	}, {
		name: "owner replaced by another object of the same name: dependent deleted",
		objs: []runtime.Object{other("x"), pod("p", ref("x", false))},
		want: map[string]string{"replicationcontrollers/x": ""},
	}, {
		name: "one owner gone, one alive: the dangling reference is removed",
		objs: []runtime.Object{rc("live"), pod("p", ref("live", false), ref("gone", false))},
		want: map[string]string{"replicationcontrollers/live": "", "pods/p": "live"},
	}, {
		name: "background: owner deleted, dependents follow",
		objs: []runtime.Object{rc("x"), pod("p1", ref("x", true)), pod("p2", ref("x", false)), pod("other")},
		then: func(t *testing.T, md *metadatafake.FakeMetadataClient) {
			bg := metav1.DeletePropagationBackground
			if err := md.Resource(rcGVR).Namespace("ns").Delete(context.Background(), "x", metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
				t.Fatal(err)
			}
		},
		want: map[string]string{"pods/other": ""},
	}, {
		name: "orphan: references removed from dependents, then the owner goes",
		objs: []runtime.Object{rc("x", metav1.FinalizerOrphanDependents), pod("p1", ref("x", true)),
			pod("p2", ref("x", true), ref("y", false)), rc("y")},
		want: map[string]string{"pods/p1": "", "pods/p2": "y", "replicationcontrollers/y": ""},
	}, {
		name: "orphan requested after the collector synced",
		objs: []runtime.Object{rc("x"), pod("p1", ref("x", true)), pod("p2", ref("x", true))},
		then: func(t *testing.T, md *metadatafake.FakeMetadataClient) {
			orphan := metav1.DeletePropagationOrphan
			if err := md.Resource(rcGVR).Namespace("ns").Delete(context.Background(), "x", metav1.DeleteOptions{PropagationPolicy: &orphan}); err != nil {
				t.Fatal(err)
			}
		},
		want: map[string]string{"pods/p1": "", "pods/p2": ""},
	}, {
		name: "foreground: dependents deleted first, then the owner",
		objs: []runtime.Object{rc("x", metav1.FinalizerDeleteDependents), pod("p1", ref("x", true)), pod("p2", ref("x", false))},
		want: map[string]string{},
	}, {
		name: "foreground requested after the collector synced",
		objs: []runtime.Object{rc("x"), pod("p1", ref("x", true)), pod("keep", ref("y", true)), rc("y")},
		then: func(t *testing.T, md *metadatafake.FakeMetadataClient) {
			fg := metav1.DeletePropagationForeground
			if err := md.Resource(rcGVR).Namespace("ns").Delete(context.Background(), "x", metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil {
				t.Fatal(err)
			}
		},
		want: map[string]string{"pods/keep": "y", "replicationcontrollers/y": ""},
	}, {
		name: "foreground owner of a dependent that has another live owner: only the reference goes",
		objs: []runtime.Object{rc("x", metav1.FinalizerDeleteDependents), rc("y"), pod("p", ref("x", true), ref("y", false))},
		want: map[string]string{"pods/p": "y", "replicationcontrollers/y": ""},
	}, {
		name: "cluster-scoped dependent of a namespaced owner is left alone",
		objs: []runtime.Object{pv},
		want: map[string]string{"persistentvolumes/pv": "live"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			md := newFakeServer(t, tc.objs...)
			_, cancel := startGC(t, md)
			defer cancel()
			if tc.then != nil {
				tc.then(t, md)
			}
			waitState(t, md, tc.want)
		})
	}
}

func TestResourcesIgnoredAndFiltered(t *testing.T) {
	dc := &fakediscovery.FakeDiscovery{Fake: &clienttesting.Fake{Resources: resources()}}
	gc := NewGarbageCollector(newFakeServer(t), dc, mapper())
	got, err := gc.deletableResources()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for gvr := range got {
		names = append(names, gvr.Resource)
	}
	sort.Strings(names)
	// events are ignored; bindings cannot be listed, watched or deleted.
	if want := "persistentvolumes,pods,replicationcontrollers"; strings.Join(names, ",") != want {
		t.Errorf("resources = %v, want %s", names, want)
	}
}

func TestReferencesDiffs(t *testing.T) {
	tru := true
	a, b, c := ref("a", false), ref("b", false), ref("c", false)
	b2 := b
	b2.BlockOwnerDeletion = &tru
	added, removed, changed := referencesDiffs([]metav1.OwnerReference{a, b}, []metav1.OwnerReference{b2, c})
	if len(added) != 1 || added[0].Name != "c" {
		t.Errorf("added = %v", added)
	}
	if len(removed) != 1 || removed[0].Name != "a" {
		t.Errorf("removed = %v", removed)
	}
	if len(changed) != 1 || changed[0].newRef.Name != "b" {
		t.Errorf("changed = %v", changed)
	}
}

// TestGraph checks the graph builder's bookkeeping: virtual owners,
// dependents, and what gets queued.
func TestGraph(t *testing.T) {
	g := newGraph()
	defer g.attemptToDelete.ShutDown()
	defer g.attemptToOrphan.ShutDown()
	podGVK := schema.GroupVersionKind{Version: "v1", Kind: "Pod"}
	rcGVK := schema.GroupVersionKind{Version: "v1", Kind: "ReplicationController"}

	g.process(&event{eventType: addEvent, obj: pod("p", ref("x", true)), gvk: podGVK})
	if n := g.nodes["uid-x"]; n == nil || !n.virtual || len(n.dependents) != 1 {
		t.Fatalf("virtual owner = %+v", n)
	}
	if g.attemptToDelete.Len() != 1 {
		t.Fatalf("virtual owner not queued for a check: %d queued", g.attemptToDelete.Len())
	}
	drain(g)

	// The owner shows up: the node is real now.
	g.process(&event{eventType: addEvent, obj: rc("x"), gvk: rcGVK})
	if n := g.nodes["uid-x"]; n.virtual || n.identity.Kind != "ReplicationController" {
		t.Fatalf("owner after it was observed = %+v", n)
	}

	// It is deleted in the foreground: it and its dependents are queued.
	g.process(&event{eventType: updateEvent, obj: rc("x", metav1.FinalizerDeleteDependents), gvk: rcGVK})
	if got := drain(g); got != "uid-p,uid-x" {
		t.Fatalf("queued after foreground deletion = %s", got)
	}
	s, _ := g.snapshot("uid-x")
	if !s.deletingDependents || len(s.blocking) != 1 {
		t.Fatalf("snapshot = %+v", s)
	}

	// The dependent goes: the waiting owner is queued again.
	g.process(&event{eventType: deleteEvent, obj: pod("p", ref("x", true)), gvk: podGVK})
	if got := drain(g); got != "uid-x" {
		t.Fatalf("queued after the dependent went = %s", got)
	}
	if s, _ := g.snapshot("uid-x"); len(s.blocking) != 0 {
		t.Fatalf("blocking after the dependent went = %v", s.blocking)
	}

	// Orphan finalizer: the owner goes to the orphan queue.
	g.process(&event{eventType: addEvent, obj: rc("o", metav1.FinalizerOrphanDependents), gvk: rcGVK})
	if g.attemptToOrphan.Len() != 1 {
		t.Fatal("orphaning owner not queued")
	}
}

func drain(g *graph) string {
	var out []string
	for g.attemptToDelete.Len() > 0 {
		uid, _ := g.attemptToDelete.Get()
		out = append(out, string(uid))
		g.attemptToDelete.Done(uid)
		g.attemptToDelete.Forget(uid)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}
