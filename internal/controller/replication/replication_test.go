package replication

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	core "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
)

var now = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	t        *testing.T
	client   *fake.Clientset
	factory  informers.SharedInformerFactory
	ctl      *Controller
	recorder *record.FakeRecorder
	mu       sync.Mutex
	creates  int
}

// newFixture builds a controller on a fake clientset whose informer caches
// hold objs; the caches are not fed by the fake afterwards (a slow
// informer), see observe.
func newFixture(t *testing.T, kind Kind, objs ...runtime.Object) *fixture {
	t.Helper()
	f := &fixture{t: t, client: fake.NewSimpleClientset(objs...), recorder: record.NewFakeRecorder(1000)}
	// The fake does not generate names.
	f.client.PrependReactor("create", "pods", func(a core.Action) (bool, runtime.Object, error) {
		pod := a.(core.CreateAction).GetObject().(*corev1.Pod)
		f.mu.Lock()
		f.creates++
		f.mu.Unlock()
		if pod.Name == "" && pod.GenerateName != "" {
			pod.Name = pod.GenerateName + utilrand.String(5)
			pod.UID = types.UID("uid-" + pod.Name)
		}
		return false, nil, nil
	})
	f.factory = informers.NewSharedInformerFactory(f.client, 0)
	ctl, err := New(f.client, f.factory, f.recorder, kind)
	if err != nil {
		t.Fatal(err)
	}
	ctl.now = func() time.Time { return now }
	f.ctl = ctl
	for _, o := range objs {
		f.cache(o)
	}
	return f
}

func (f *fixture) cache(o runtime.Object) {
	var err error
	switch o.(type) {
	case *corev1.Pod:
		err = f.factory.Core().V1().Pods().Informer().GetIndexer().Add(o)
	case *corev1.ReplicationController:
		err = f.factory.Core().V1().ReplicationControllers().Informer().GetIndexer().Add(o)
	case *appsv1.ReplicaSet:
		err = f.factory.Apps().V1().ReplicaSets().Informer().GetIndexer().Add(o)
	}
	if err != nil {
		f.t.Fatal(err)
	}
}

// observe delivers the fake's current pods to the informer cache and the
// controller's handlers, as the watch would.
func (f *fixture) observe() {
	f.t.Helper()
	idx := f.factory.Core().V1().Pods().Informer().GetIndexer()
	live := f.pods()
	seen := map[string]bool{}
	for _, p := range live {
		seen[p.Name] = true
		old, exists, _ := idx.Get(p)
		_ = idx.Update(p)
		if !exists {
			f.ctl.addPod(p)
		} else {
			f.ctl.updatePod(old, p)
		}
	}
	for _, o := range idx.List() {
		p := o.(*corev1.Pod)
		if !seen[p.Name] {
			_ = idx.Delete(p)
			f.ctl.deletePod(p)
		}
	}
}

func (f *fixture) sync(key string) error {
	f.t.Helper()
	return f.ctl.Sync(context.Background(), key)
}

func (f *fixture) pods() []*corev1.Pod {
	f.t.Helper()
	list, err := f.client.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []*corev1.Pod
	for i := range list.Items {
		out = append(out, &list.Items[i])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func (f *fixture) rc(name string) *corev1.ReplicationController {
	rc, err := f.client.CoreV1().ReplicationControllers("ns").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return rc
}

func (f *fixture) actions(verb, resource string) []core.Action {
	var out []core.Action
	for _, a := range f.client.Actions() {
		if a.GetVerb() == verb && a.GetResource().Resource == resource {
			out = append(out, a)
		}
	}
	return out
}

func newRC(name string, replicas int32) *corev1.ReplicationController {
	return &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("rc-" + name), Generation: 1},
		Spec: corev1.ReplicationControllerSpec{
			Replicas: &replicas,
			Selector: map[string]string{"app": name},
			Template: &corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name, "tier": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
			},
		},
	}
}

func newRS(name string, replicas int32) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("rs-" + name), Generation: 1},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
			},
		},
	}
}

type podOpt func(*corev1.Pod)

func ownedBy(kind, name string, uid types.UID) podOpt {
	return func(p *corev1.Pod) {
		yes := true
		api := "v1"
		if kind == "ReplicaSet" {
			api = "apps/v1"
		}
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: api, Kind: kind, Name: name, UID: uid, Controller: &yes, BlockOwnerDeletion: &yes}}
	}
}

func ofRC(name string) podOpt { return ownedBy("ReplicationController", name, types.UID("rc-"+name)) }

func ready(since time.Duration) podOpt {
	return func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{
			Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Add(-since)),
		})
	}
}

func onNode(n string) podOpt { return func(p *corev1.Pod) { p.Spec.NodeName = n } }

func created(ago time.Duration) podOpt {
	return func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(now.Add(-ago)) }
}

func withLabels(l map[string]string) podOpt { return func(p *corev1.Pod) { p.Labels = l } }

func newPod(name string, labels map[string]string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), Labels: labels,
			CreationTimestamp: metav1.NewTime(now.Add(-time.Hour))},
		Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func web(app string) map[string]string { return map[string]string{"app": app, "tier": "web"} }

func TestScaleUpCreatesPodsFromTheTemplate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		replicas int32
		existing int
		creates  int
	}{
		{"from zero", 3, 0, 3},
		{"from two", 5, 2, 3},
		{"already there", 2, 2, 0},
		{"burst cap", 600, 0, BurstReplicas},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := []runtime.Object{newRC("web", tc.replicas)}
			for i := 0; i < tc.existing; i++ {
				objs = append(objs, newPod(fmt.Sprintf("web-old%d", i), web("web"), ofRC("web")))
			}
			f := newFixture(t, KindReplicationController, objs...)
			if err := f.sync("ns/web"); err != nil {
				t.Fatal(err)
			}
			if f.creates != tc.creates {
				t.Fatalf("%d creates, want %d", f.creates, tc.creates)
			}
			if tc.creates == 0 || tc.creates > 10 {
				return
			}
			evs := f.events()
			n := 0
			for _, p := range f.pods() {
				if strings.HasPrefix(p.Name, "web-old") {
					continue
				}
				n++
				if p.GenerateName != "web-" || !strings.HasPrefix(p.Name, "web-") || len(p.Name) != len("web-")+5 {
					t.Errorf("pod name %q generateName %q", p.Name, p.GenerateName)
				}
				if p.Labels["app"] != "web" || p.Labels["tier"] != "web" {
					t.Errorf("pod labels %v", p.Labels)
				}
				ref := metav1.GetControllerOf(p)
				if ref == nil || ref.Kind != "ReplicationController" || ref.APIVersion != "v1" || ref.Name != "web" ||
					ref.UID != "rc-web" || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
					t.Errorf("pod owner %+v", p.OwnerReferences)
				}
				want := "Normal SuccessfulCreate Created pod: " + p.Name
				if !contains(evs, want) {
					t.Errorf("no event %q in %v", want, evs)
				}
			}
			if n != tc.creates {
				t.Errorf("%d new pods, want %d", n, tc.creates)
			}
			// Status follows the pods the informer shows.
			rc := f.rc("web")
			if rc.Status.Replicas != int32(tc.existing) || rc.Status.ObservedGeneration != 1 {
				t.Errorf("status %+v", rc.Status)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestScaleDownPicksVictims(t *testing.T) {
	for _, tc := range []struct {
		name     string
		replicas int32
		pods     []*corev1.Pod
		deleted  []string
	}{
		{
			name:     "unscheduled then not ready then newest",
			replicas: 2,
			pods: []*corev1.Pod{
				newPod("a-ready-old", web("web"), ofRC("web"), onNode("n1"), ready(3*time.Hour), created(4*time.Hour)),
				newPod("b-unscheduled", web("web"), ofRC("web"), created(5*time.Hour)),
				newPod("c-not-ready", web("web"), ofRC("web"), onNode("n1"), created(5*time.Hour)),
				newPod("d-ready-new", web("web"), ofRC("web"), onNode("n2"), ready(3*time.Hour), created(time.Minute)),
			},
			deleted: []string{"b-unscheduled", "c-not-ready"},
		},
		{
			name:     "newest first among equals",
			replicas: 1,
			pods: []*corev1.Pod{
				newPod("old", web("web"), ofRC("web"), onNode("n1"), ready(3*time.Hour), created(10*time.Hour)),
				newPod("mid", web("web"), ofRC("web"), onNode("n1"), ready(3*time.Hour), created(2*time.Hour)),
				newPod("new", web("web"), ofRC("web"), onNode("n1"), ready(3*time.Hour), created(time.Minute)),
			},
			deleted: []string{"mid", "new"},
		},
		{
			name:     "recently ready before long ready",
			replicas: 1,
			pods: []*corev1.Pod{
				newPod("long", web("web"), ofRC("web"), onNode("n1"), ready(10*time.Hour), created(time.Minute)),
				newPod("short", web("web"), ofRC("web"), onNode("n1"), ready(time.Minute), created(10*time.Hour)),
			},
			deleted: []string{"short"},
		},
		{
			name:     "to zero",
			replicas: 0,
			pods: []*corev1.Pod{
				newPod("x", web("web"), ofRC("web")),
				newPod("y", web("web"), ofRC("web"), onNode("n1"), ready(time.Hour)),
			},
			deleted: []string{"x", "y"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := []runtime.Object{newRC("web", tc.replicas)}
			for _, p := range tc.pods {
				objs = append(objs, p)
			}
			f := newFixture(t, KindReplicationController, objs...)
			if err := f.sync("ns/web"); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range f.actions("delete", "pods") {
				got = append(got, a.(core.DeleteAction).GetName())
			}
			sort.Strings(got)
			if strings.Join(got, ",") != strings.Join(tc.deleted, ",") {
				t.Fatalf("deleted %v, want %v", got, tc.deleted)
			}
			evs := f.events()
			for _, n := range tc.deleted {
				if !contains(evs, "Normal SuccessfulDelete Deleted pod: "+n) {
					t.Errorf("no delete event for %s in %v", n, evs)
				}
			}
		})
	}
}

func TestAdoptAndRelease(t *testing.T) {
	deleting := metav1.NewTime(now)
	f := newFixture(t, KindReplicationController,
		newRC("web", 3),
		newPod("orphan", web("web")),
		newPod("released", map[string]string{"app": "other"}, ofRC("web")),
		newPod("foreign", web("web"), ownedBy("ReplicationController", "other", "rc-other")),
		newPod("orphan-terminating", web("web"), func(p *corev1.Pod) { p.DeletionTimestamp = &deleting }),
		newPod("orphan-unmatched", map[string]string{"app": "nope"}),
	)
	if err := f.sync("ns/web"); err != nil {
		t.Fatal(err)
	}
	patched := map[string]string{}
	for _, a := range f.actions("patch", "pods") {
		pa := a.(core.PatchAction)
		if pa.GetPatchType() != types.StrategicMergePatchType {
			t.Errorf("patch type %s", pa.GetPatchType())
		}
		patched[pa.GetName()] = string(pa.GetPatch())
	}
	if len(patched) != 2 {
		t.Fatalf("patched %v, want orphan and released", patched)
	}
	byName := map[string]*corev1.Pod{}
	for _, p := range f.pods() {
		byName[p.Name] = p
	}
	if ref := metav1.GetControllerOf(byName["orphan"]); ref == nil || ref.UID != "rc-web" || ref.Kind != "ReplicationController" {
		t.Errorf("orphan not adopted: %+v (patch %s)", byName["orphan"].OwnerReferences, patched["orphan"])
	}
	if !strings.Contains(patched["orphan"], `"uid":"uid-orphan"`) {
		t.Errorf("adopt patch lacks the pod uid: %s", patched["orphan"])
	}
	if len(byName["released"].OwnerReferences) != 0 {
		t.Errorf("released still owned: %+v", byName["released"].OwnerReferences)
	}
	// Adopted pod counts: 1 owned, 2 to create.
	if f.creates != 2 {
		t.Errorf("%d creates, want 2", f.creates)
	}
}

func TestFailedCreateSetsConditionAndEvent(t *testing.T) {
	f := newFixture(t, KindReplicationController, newRC("busybox-ns", 4))
	// Quota: three pods, then forbidden with the server's message.
	count := 0
	var mu sync.Mutex
	f.client.PrependReactor("create", "pods", func(a core.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		pod := a.(core.CreateAction).GetObject().(*corev1.Pod)
		if count >= 3 {
			// As the server: the name is generated before admission.
			f.mu.Lock()
			f.creates++
			f.mu.Unlock()
			return true, nil, apierrors.NewForbidden(corev1.Resource("pods"), pod.GenerateName+utilrand.String(5),
				fmt.Errorf("exceeded quota: test-quotas, requested: pods=1, used: pods=3, limited: pods=3"))
		}
		count++
		return false, nil, nil
	})
	err := f.sync("ns/busybox-ns")
	if err == nil || !apierrors.IsForbidden(err) {
		t.Fatalf("sync: %v, want the forbidden error (for a retry with backoff)", err)
	}
	if got := len(f.pods()); got != 3 {
		t.Fatalf("%d pods, want 3", got)
	}
	// Slow start: 1, 2, then a batch of 1 that fails.
	if f.creates != 4 {
		t.Errorf("%d create attempts, want 4", f.creates)
	}
	var warning string
	for _, e := range f.events() {
		if strings.HasPrefix(e, "Warning FailedCreate ") {
			warning = e
		}
	}
	want := `Warning FailedCreate Error creating: pods "busybox-ns-`
	if !strings.HasPrefix(warning, want) || !strings.HasSuffix(warning, `" is forbidden: exceeded quota: test-quotas, requested: pods=1, used: pods=3, limited: pods=3`) {
		t.Errorf("warning event %q", warning)
	}
	rc := f.rc("busybox-ns")
	if len(rc.Status.Conditions) != 1 {
		t.Fatalf("conditions %+v", rc.Status.Conditions)
	}
	c := rc.Status.Conditions[0]
	if c.Type != corev1.ReplicationControllerReplicaFailure || c.Status != corev1.ConditionTrue || c.Reason != "FailedCreate" ||
		!strings.Contains(c.Message, "exceeded quota: test-quotas") || !strings.Contains(c.Message, "is forbidden") {
		t.Errorf("condition %+v", c)
	}
	// Expectations: three creations pending, nothing more until observed.
	if adds, _ := f.ctl.exp.Pending("ns/busybox-ns"); adds != 3 {
		t.Errorf("pending adds %d, want 3", adds)
	}

	// The quota frees up; once the informer shows the pods the next sync
	// creates the fourth and clears the condition.
	mu.Lock()
	count = -10
	mu.Unlock()
	f.cache(rc)
	f.observe()
	if err := f.sync("ns/busybox-ns"); err != nil {
		t.Fatal(err)
	}
	if got := len(f.pods()); got != 4 {
		t.Fatalf("%d pods, want 4", got)
	}
	f.cache(f.rc("busybox-ns"))
	f.observe()
	if err := f.sync("ns/busybox-ns"); err != nil {
		t.Fatal(err)
	}
	if rc := f.rc("busybox-ns"); len(rc.Status.Conditions) != 0 || rc.Status.Replicas != 4 {
		t.Errorf("after success: %+v", rc.Status)
	}
}

func TestExpectationsPreventDoubleCreates(t *testing.T) {
	f := newFixture(t, KindReplicationController, newRC("web", 3))
	for i := 0; i < 3; i++ {
		if err := f.sync("ns/web"); err != nil {
			t.Fatal(err)
		}
	}
	if f.creates != 3 {
		t.Fatalf("%d creates over three syncs with a slow informer, want 3", f.creates)
	}
	// The informer catches up: expectations are met, nothing more happens.
	f.observe()
	if !f.ctl.exp.Satisfied("ns/web") {
		t.Fatal("expectations not satisfied after observing the pods")
	}
	if err := f.sync("ns/web"); err != nil {
		t.Fatal(err)
	}
	if f.creates != 3 {
		t.Fatalf("%d creates, want 3", f.creates)
	}

	// Scale down to 1: two deletions expected; a slow informer still shows
	// three pods, and no third pod is deleted.
	rc := f.rc("web")
	one := int32(1)
	rc.Spec.Replicas = &one
	f.cache(rc)
	if err := f.sync("ns/web"); err != nil {
		t.Fatal(err)
	}
	if err := f.sync("ns/web"); err != nil {
		t.Fatal(err)
	}
	if n := len(f.actions("delete", "pods")); n != 2 {
		t.Fatalf("%d deletes, want 2", n)
	}
	f.observe()
	if !f.ctl.exp.Satisfied("ns/web") {
		t.Fatal("deletion expectations not satisfied")
	}
	if err := f.sync("ns/web"); err != nil {
		t.Fatal(err)
	}
	if n := len(f.pods()); n != 1 || len(f.actions("delete", "pods")) != 2 || f.creates != 3 {
		t.Fatalf("%d pods, %d deletes, %d creates", n, len(f.actions("delete", "pods")), f.creates)
	}
}

func TestExpectationsExpire(t *testing.T) {
	e := NewExpectations()
	clock := now
	e.now = func() time.Time { return clock }
	e.ExpectCreations("k", 2)
	if e.Satisfied("k") {
		t.Fatal("satisfied with two pending")
	}
	e.CreationObserved("k")
	e.CreationObserved("k")
	if !e.Satisfied("k") {
		t.Fatal("not satisfied after both observed")
	}
	e.ExpectDeletions("k", []string{"ns/a", "ns/b"})
	e.DeletionObserved("k", "ns/a")
	e.DeletionObserved("k", "ns/a") // counted once
	if e.Satisfied("k") {
		t.Fatal("satisfied with ns/b pending")
	}
	clock = clock.Add(ExpectationsTimeout + time.Second)
	if !e.Satisfied("k") {
		t.Fatal("not satisfied after the timeout")
	}
}

func TestTerminalAndDeletingPodsDoNotCount(t *testing.T) {
	deleting := metav1.NewTime(now)
	f := newFixture(t, KindReplicationController,
		newRC("web", 2),
		newPod("failed", web("web"), ofRC("web"), func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }),
		newPod("succeeded", web("web"), ofRC("web"), func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
		newPod("going", web("web"), ofRC("web"), func(p *corev1.Pod) { p.DeletionTimestamp = &deleting }),
		newPod("live", web("web"), ofRC("web")),
	)
	if err := f.sync("ns/web"); err != nil {
		t.Fatal(err)
	}
	if f.creates != 1 || len(f.actions("delete", "pods")) != 0 {
		t.Fatalf("%d creates, %d deletes; want 1 and 0", f.creates, len(f.actions("delete", "pods")))
	}
}

func TestStatusCounts(t *testing.T) {
	rc := newRC("web", 4)
	rc.Spec.MinReadySeconds = 60
	rc.Generation = 3
	f := newFixture(t, KindReplicationController, rc,
		newPod("a", web("web"), ofRC("web"), ready(2*time.Minute)),            // available
		newPod("b", web("web"), ofRC("web"), ready(10*time.Second)),           // ready, not yet available
		newPod("c", map[string]string{"app": "web"}, ofRC("web")),             // not fully labeled
		newPod("d", web("web"), ofRC("web"), onNode("n"), ready(time.Second)), // ready
	)
	if err := f.sync("ns/web"); err != nil {
		t.Fatal(err)
	}
	st := f.rc("web").Status
	if st.Replicas != 4 || st.FullyLabeledReplicas != 3 || st.ReadyReplicas != 3 || st.AvailableReplicas != 1 || st.ObservedGeneration != 3 {
		t.Fatalf("status %+v", st)
	}
}

func TestReplicaSetsShareTheReconcile(t *testing.T) {
	rs := newRS("front", 2)
	f := newFixture(t, KindReplicaSet, rs, newPod("front-orphan", map[string]string{"app": "front"}))
	if err := f.sync("ns/front"); err != nil {
		t.Fatal(err)
	}
	if f.creates != 1 {
		t.Fatalf("%d creates, want 1", f.creates)
	}
	for _, p := range f.pods() {
		ref := metav1.GetControllerOf(p)
		if ref == nil || ref.Kind != "ReplicaSet" || ref.APIVersion != "apps/v1" || ref.UID != "rs-front" {
			t.Errorf("%s owner %+v", p.Name, p.OwnerReferences)
		}
	}
	got, err := f.client.AppsV1().ReplicaSets("ns").Get(context.Background(), "front", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Replicas != 1 || got.Status.ObservedGeneration != 1 {
		t.Errorf("status %+v", got.Status)
	}
}

func TestSlowStartBatch(t *testing.T) {
	for _, tc := range []struct {
		count, failFrom int
		calls, ok       int
	}{
		{count: 10, failFrom: 100, calls: 10, ok: 10},
		{count: 10, failFrom: 0, calls: 1, ok: 0},
		{count: 10, failFrom: 1, calls: 3, ok: 1},
		{count: 10, failFrom: 3, calls: 7, ok: 3},
		{count: 0, failFrom: 0, calls: 0, ok: 0},
	} {
		var mu sync.Mutex
		calls := 0
		ok, err := slowStartBatch(tc.count, 1, func() error {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if calls > tc.failFrom {
				return fmt.Errorf("no")
			}
			return nil
		})
		if calls != tc.calls || ok != tc.ok || (err != nil) != (tc.ok < tc.count) {
			t.Errorf("%+v: %d calls, %d ok, err %v", tc, calls, ok, err)
		}
	}
}

func TestRCConversionRoundTrip(t *testing.T) {
	rc := newRC("web", 2)
	rc.Status = corev1.ReplicationControllerStatus{Replicas: 2, ReadyReplicas: 1, ObservedGeneration: 1,
		Conditions: []corev1.ReplicationControllerCondition{{Type: "ReplicaFailure", Status: "True", Reason: "FailedCreate", Message: "m"}}}
	back := rsToRC(rcToRS(rc))
	if back.Spec.Selector["app"] != "web" || *back.Spec.Replicas != 2 || back.Status.Conditions[0].Message != "m" || back.Status.ReadyReplicas != 1 {
		t.Fatalf("round trip: %+v", back)
	}
	empty := newRC("x", 1)
	empty.Spec.Selector = nil
	sel, _ := selectorOf(rcToRS(empty))
	if sel.Matches(labels.Set{"app": "x"}) {
		t.Error("empty selector matches pods")
	}
}
