package namespace

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	clienttesting "k8s.io/client-go/testing"
)

var (
	cmGVR     = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	podGVR    = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	secretGVR = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	widgetGVR = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}
	listKind  = schema.GroupVersionKind{Group: "fake-metadata-client-group", Version: "v1"}
)

// coreResources is what discovery says: configmaps, secrets and pods with
// every verb, widgets without deletecollection, and a namespaced resource
// that cannot be deleted (it must be left alone).
func coreResources() []*metav1.APIResourceList {
	all := metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
	return []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{
			{Name: "configmaps", Namespaced: true, Kind: "ConfigMap", Verbs: all},
			{Name: "secrets", Namespaced: true, Kind: "Secret", Verbs: all},
			{Name: "pods", Namespaced: true, Kind: "Pod", Verbs: all},
			{Name: "pods/status", Namespaced: true, Kind: "Pod", Verbs: metav1.Verbs{"get", "update"}},
			{Name: "bindings", Namespaced: true, Kind: "Binding", Verbs: metav1.Verbs{"create"}},
		}},
		{GroupVersion: "example.com/v1", APIResources: []metav1.APIResource{
			{Name: "widgets", Namespaced: true, Kind: "Widget", Verbs: metav1.Verbs{"delete", "get", "list"}},
		}},
	}
}

func obj(apiVersion, kind, ns, name string, finalizers ...string) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: apiVersion, Kind: kind},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Finalizers: finalizers},
	}
}

func terminating(name string, phase corev1.NamespacePhase, finalizers ...corev1.FinalizerName) *corev1.Namespace {
	now := metav1.NewTime(time.Now())
	return &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), DeletionTimestamp: &now},
		Spec:       corev1.NamespaceSpec{Finalizers: finalizers},
		Status:     corev1.NamespaceStatus{Phase: phase},
	}
}

type env struct {
	client *fake.Clientset
	md     *metadatafake.FakeMetadataClient
	d      *Deleter
}

// newEnv builds a deleter over fakes. The metadata fake's deletecollection
// behaves like the server: objects with finalizers (and, for resources in
// graceful, every object) get a deletionTimestamp and stay; the others go.
func newEnv(t *testing.T, ns *corev1.Namespace, typed []runtime.Object, content []runtime.Object,
	discover func() ([]*metav1.APIResourceList, error), graceful map[string]bool) *env {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	md := metadatafake.NewSimpleMetadataClient(scheme, content...)
	md.PrependReactor("delete-collection", "*", func(a clienttesting.Action) (bool, runtime.Object, error) {
		gvr, namespace := a.GetResource(), a.GetNamespace()
		l, err := md.Tracker().List(gvr, listKind, namespace)
		if err != nil {
			return true, nil, err
		}
		for _, item := range l.(*metav1.List).Items {
			o := item.Object.(*metav1.PartialObjectMetadata)
			if len(o.Finalizers) > 0 || graceful[gvr.Resource] {
				now := metav1.Now()
				o.DeletionTimestamp = &now
				if err := md.Tracker().Update(gvr, o, namespace); err != nil {
					return true, nil, err
				}
				continue
			}
			if err := md.Tracker().Delete(gvr, namespace, o.Name); err != nil {
				return true, nil, err
			}
		}
		return true, nil, nil
	})
	client := fake.NewClientset(append([]runtime.Object{ns}, typed...)...)
	// namespaces/finalize writes spec.finalizers only, as the server does.
	client.PrependReactor("create", "namespaces", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "finalize" {
			return false, nil, nil
		}
		in := a.(clienttesting.CreateAction).GetObject().(*corev1.Namespace)
		cur, err := client.Tracker().Get(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, "", in.Name)
		if err != nil {
			return true, nil, err
		}
		out := cur.(*corev1.Namespace).DeepCopy()
		out.Spec.Finalizers = in.Spec.Finalizers
		return true, out, client.Tracker().Update(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, out, "")
	})
	return &env{client: client, md: md, d: NewDeleter(client, md, discover)}
}

func (e *env) names(t *testing.T, gvr schema.GroupVersionResource, ns string) []string {
	t.Helper()
	l, err := e.md.Tracker().List(gvr, listKind, ns)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, item := range l.(*metav1.List).Items {
		out = append(out, item.Object.(*metav1.PartialObjectMetadata).Name)
	}
	return out
}

func (e *env) finalized(t *testing.T) bool {
	for _, a := range e.client.Actions() {
		if a.GetVerb() == "create" && a.GetSubresource() == "finalize" {
			return true
		}
	}
	return false
}

func condition(ns *corev1.Namespace, t corev1.NamespaceConditionType) *corev1.NamespaceCondition {
	return getCondition(ns.Status.Conditions, t)
}

func TestDelete(t *testing.T) {
	kube := corev1.FinalizerKubernetes
	thirty := int64(30)
	runningPod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "test", Name: "p"},
		Spec:       corev1.PodSpec{NodeName: "n1", TerminationGracePeriodSeconds: &thirty},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	partialErr := &discovery.ErrGroupDiscoveryFailed{Groups: map[schema.GroupVersion]error{
		{Group: "broken.example.com", Version: "v1"}: errors.New("the server is currently unable to handle the request"),
	}}
	tests := []struct {
		name      string
		ns        *corev1.Namespace
		typed     []runtime.Object
		content   []runtime.Object
		discover  func() ([]*metav1.APIResourceList, error)
		graceful  map[string]bool
		reactor   func(*metadatafake.FakeMetadataClient)
		wantErr   string
		remaining int64 // a *ResourcesRemainingError with this estimate
		finalized bool
		// left are the objects that must still exist, by resource.
		left map[schema.GroupVersionResource][]string
		// conditions are the True conditions with their message prefix.
		conditions map[corev1.NamespaceConditionType]string
		wantPhase  corev1.NamespacePhase
	}{{
		name: "everything deleted, then finalized",
		ns:   terminating("test", corev1.NamespaceTerminating, kube),
		content: []runtime.Object{
			obj("v1", "ConfigMap", "test", "a"), obj("v1", "ConfigMap", "test", "b"),
			obj("v1", "Secret", "test", "s"), obj("v1", "Pod", "test", "p"),
			obj("example.com/v1", "Widget", "test", "w1"), obj("example.com/v1", "Widget", "test", "w2"),
			obj("v1", "ConfigMap", "other", "keep"),
		},
		discover:  func() ([]*metav1.APIResourceList, error) { return coreResources(), nil },
		finalized: true,
		left:      map[schema.GroupVersionResource][]string{cmGVR: nil, secretGVR: nil, podGVR: nil, widgetGVR: nil},
		wantPhase: corev1.NamespaceTerminating,
	}, {
		name:      "phase set to Terminating first",
		ns:        terminating("test", corev1.NamespaceActive, kube),
		discover:  func() ([]*metav1.APIResourceList, error) { return coreResources(), nil },
		finalized: true,
		wantPhase: corev1.NamespaceTerminating,
	}, {
		name:      "content with finalizers remains: wait, do not finalize",
		ns:        terminating("test", corev1.NamespaceTerminating, kube),
		content:   []runtime.Object{obj("v1", "ConfigMap", "test", "held", "example.com/hold"), obj("v1", "ConfigMap", "test", "free")},
		discover:  func() ([]*metav1.APIResourceList, error) { return coreResources(), nil },
		remaining: finalizerEstimateSeconds,
		left:      map[schema.GroupVersionResource][]string{cmGVR: {"held"}},
		conditions: map[corev1.NamespaceConditionType]string{
			corev1.NamespaceContentRemaining:    "Some resources are remaining: configmaps. has 1 resource instances",
			corev1.NamespaceFinalizersRemaining: "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances",
		},
		wantPhase: corev1.NamespaceTerminating,
	}, {
		name:      "pods in their grace period: wait for the estimate",
		ns:        terminating("test", corev1.NamespaceTerminating, kube),
		typed:     []runtime.Object{runningPod},
		content:   []runtime.Object{obj("v1", "Pod", "test", "p")},
		discover:  func() ([]*metav1.APIResourceList, error) { return coreResources(), nil },
		graceful:  map[string]bool{"pods": true},
		remaining: 30,
		left:      map[schema.GroupVersionResource][]string{podGVR: {"p"}},
		conditions: map[corev1.NamespaceConditionType]string{
			corev1.NamespaceContentRemaining: "Some resources are remaining: pods. has 1 resource instances",
		},
		wantPhase: corev1.NamespaceTerminating,
	}, {
		name:    "partial discovery: delete what is known, report, do not finalize",
		ns:      terminating("test", corev1.NamespaceTerminating, kube),
		content: []runtime.Object{obj("v1", "ConfigMap", "test", "a")},
		discover: func() ([]*metav1.APIResourceList, error) {
			return coreResources(), partialErr
		},
		wantErr: "unable to retrieve the complete list of server APIs",
		left:    map[schema.GroupVersionResource][]string{cmGVR: nil},
		conditions: map[corev1.NamespaceConditionType]string{
			corev1.NamespaceDeletionDiscoveryFailure: "Discovery failed for some groups, 1 failing: ",
		},
		wantPhase: corev1.NamespaceTerminating,
	}, {
		name:     "a resource fails to delete: report it, go on with the others",
		ns:       terminating("test", corev1.NamespaceTerminating, kube),
		content:  []runtime.Object{obj("v1", "ConfigMap", "test", "a"), obj("v1", "Secret", "test", "s")},
		discover: func() ([]*metav1.APIResourceList, error) { return coreResources(), nil },
		reactor: func(md *metadatafake.FakeMetadataClient) {
			md.PrependReactor("delete-collection", "secrets", func(clienttesting.Action) (bool, runtime.Object, error) {
				return true, nil, errors.New("etcd is sad")
			})
		},
		wantErr: "etcd is sad",
		left:    map[schema.GroupVersionResource][]string{cmGVR: nil, secretGVR: {"s"}},
		conditions: map[corev1.NamespaceConditionType]string{
			corev1.NamespaceDeletionContentFailure: "Failed to delete all resource types, 1 remaining: etcd is sad",
		},
		wantPhase: corev1.NamespaceTerminating,
	}, {
		name: "not being deleted: nothing happens",
		ns: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "test"},
			Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{kube}}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}},
		content:   []runtime.Object{obj("v1", "ConfigMap", "test", "a")},
		discover:  func() ([]*metav1.APIResourceList, error) { return coreResources(), nil },
		left:      map[schema.GroupVersionResource][]string{cmGVR: {"a"}},
		wantPhase: corev1.NamespaceActive,
	}, {
		name:      "already finalized: nothing happens",
		ns:        terminating("test", corev1.NamespaceTerminating),
		content:   []runtime.Object{obj("v1", "ConfigMap", "test", "a")},
		discover:  func() ([]*metav1.APIResourceList, error) { return coreResources(), nil },
		left:      map[schema.GroupVersionResource][]string{cmGVR: {"a"}},
		wantPhase: corev1.NamespaceTerminating,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.ns, tc.typed, tc.content, tc.discover, tc.graceful)
			if tc.reactor != nil {
				tc.reactor(e.md)
			}
			err := e.d.Delete(context.Background(), "test")
			var rem *ResourcesRemainingError
			switch {
			case tc.remaining != 0:
				if !errors.As(err, &rem) || rem.Estimate != tc.remaining {
					t.Fatalf("want ResourcesRemainingError{%d}, got %v", tc.remaining, err)
				}
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want error containing %q, got %v", tc.wantErr, err)
				}
			case err != nil:
				t.Fatalf("Delete: %v", err)
			}
			if got := e.finalized(t); got != tc.finalized {
				t.Errorf("finalized = %v, want %v", got, tc.finalized)
			}
			for gvr, want := range tc.left {
				got := e.names(t, gvr, "test")
				if strings.Join(got, ",") != strings.Join(want, ",") {
					t.Errorf("%s left: %v, want %v", gvr.Resource, got, want)
				}
			}
			if got := e.names(t, cmGVR, "other"); tc.name == "everything deleted, then finalized" && len(got) != 1 {
				t.Errorf("another namespace's content was touched: %v", got)
			}
			ns, err := e.client.CoreV1().Namespaces().Get(context.Background(), "test", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if ns.Status.Phase != tc.wantPhase {
				t.Errorf("phase = %q, want %q", ns.Status.Phase, tc.wantPhase)
			}
			if tc.finalized && len(ns.Spec.Finalizers) != 0 {
				t.Errorf("spec.finalizers = %v after finalize", ns.Spec.Finalizers)
			}
			if ns.DeletionTimestamp == nil || len(tc.ns.Spec.Finalizers) == 0 {
				if len(ns.Status.Conditions) != 0 {
					t.Errorf("conditions written on a namespace not to be emptied: %v", ns.Status.Conditions)
				}
				return
			}
			// Every deletion condition is present: True with the expected
			// message where something failed, False otherwise.
			for _, ct := range conditionTypes {
				c := condition(ns, ct)
				if c == nil {
					t.Errorf("condition %s missing", ct)
					continue
				}
				if want, bad := tc.conditions[ct]; bad {
					if c.Status != corev1.ConditionTrue || !strings.HasPrefix(c.Message, want) {
						t.Errorf("condition %s = %s %q, want True %q", ct, c.Status, c.Message, want)
					}
				} else if c.Status != corev1.ConditionFalse || c.Reason != okReasons[ct] {
					t.Errorf("condition %s = %s %s, want False %s", ct, c.Status, c.Reason, okReasons[ct])
				}
			}
		})
	}
}

func TestUpdateConditions(t *testing.T) {
	status := &corev1.NamespaceStatus{}
	u := &conditionUpdater{}
	u.processContentTotals(contentTotals{gvrToNumRemaining: map[schema.GroupVersionResource]int{cmGVR: 2}})
	if !updateConditions(status, u.newConditions) {
		t.Fatal("first update reported no change")
	}
	if c := getCondition(status.Conditions, corev1.NamespaceContentRemaining); c.Status != corev1.ConditionTrue || c.Reason != "SomeResourcesRemain" {
		t.Fatalf("NamespaceContentRemaining = %+v", c)
	}
	if updateConditions(status, u.newConditions) {
		t.Error("the same conditions again reported a change")
	}
	// Content gone: the condition turns False with upstream's reason.
	if !updateConditions(status, nil) {
		t.Fatal("clearing reported no change")
	}
	c := getCondition(status.Conditions, corev1.NamespaceContentRemaining)
	if c.Status != corev1.ConditionFalse || c.Reason != "ContentRemoved" || c.Message != "All content successfully removed" {
		t.Errorf("NamespaceContentRemaining after clearing = %+v", c)
	}
	if len(status.Conditions) != len(conditionTypes) {
		t.Errorf("%d conditions, want %d", len(status.Conditions), len(conditionTypes))
	}
}

// TestController runs the controller over a fake clientset: a namespace that
// is deleted gets emptied and finalized.
func TestController(t *testing.T) {
	ns := terminating("test", corev1.NamespaceTerminating, corev1.FinalizerKubernetes)
	e := newEnv(t, ns, nil, []runtime.Object{obj("v1", "ConfigMap", "test", "a")},
		func() ([]*metav1.APIResourceList, error) { return coreResources(), nil }, nil)
	factory := informers.NewSharedInformerFactory(e.client, 0)
	ctl, err := NewController(factory.Core().V1().Namespaces().Informer(), factory.Core().V1().Namespaces().Lister(), e.d)
	if err != nil {
		t.Fatal(err)
	}
	ctl.delay = 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory.Start(ctx.Done())
	go ctl.Run(ctx, 1)
	deadline := time.Now().Add(10 * time.Second)
	for !e.finalized(t) {
		if time.Now().After(deadline) {
			t.Fatal("namespace not finalized")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := e.names(t, cmGVR, "test"); len(got) != 0 {
		t.Errorf("configmaps left: %v", got)
	}
}
