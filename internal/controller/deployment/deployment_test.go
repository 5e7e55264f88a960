package deployment

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	core "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	t        *testing.T
	client   *fake.Clientset
	factory  informers.SharedInformerFactory
	ctl      *Controller
	recorder *record.FakeRecorder
	clock    time.Time
	seq      int
}

func newFixture(t *testing.T, objs ...runtime.Object) *fixture {
	t.Helper()
	f := &fixture{t: t, client: fake.NewSimpleClientset(objs...), recorder: record.NewFakeRecorder(1000), clock: t0}
	// What the server would fill in.
	f.client.PrependReactor("create", "replicasets", func(a core.Action) (bool, runtime.Object, error) {
		rs := a.(core.CreateAction).GetObject().(*appsv1.ReplicaSet)
		f.seq++
		rs.UID = types.UID(fmt.Sprintf("uid-%s", rs.Name))
		rs.CreationTimestamp = metav1.NewTime(t0.Add(time.Duration(f.seq) * time.Minute))
		return false, nil, nil
	})
	f.factory = informers.NewSharedInformerFactory(f.client, 0)
	ctl, err := NewController(f.client, f.factory, f.recorder)
	if err != nil {
		t.Fatal(err)
	}
	ctl.now = func() time.Time { return f.clock }
	f.ctl = ctl
	f.resync()
	return f
}

// resync makes the informer caches equal to the fake's objects.
func (f *fixture) resync() {
	f.t.Helper()
	ctx := context.Background()
	ds, _ := f.client.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
	rss, _ := f.client.AppsV1().ReplicaSets("").List(ctx, metav1.ListOptions{})
	pods, _ := f.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	var dl, rl, pl []interface{}
	for i := range ds.Items {
		dl = append(dl, &ds.Items[i])
	}
	for i := range rss.Items {
		rl = append(rl, &rss.Items[i])
	}
	for i := range pods.Items {
		pl = append(pl, &pods.Items[i])
	}
	must(f.t, f.factory.Apps().V1().Deployments().Informer().GetIndexer().Replace(dl, ""))
	must(f.t, f.factory.Apps().V1().ReplicaSets().Informer().GetIndexer().Replace(rl, ""))
	must(f.t, f.factory.Core().V1().Pods().Informer().GetIndexer().Replace(pl, ""))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) sync() {
	f.t.Helper()
	f.resync()
	if err := f.ctl.Sync(context.Background(), "ns/web"); err != nil {
		f.t.Fatalf("sync: %v", err)
	}
	f.resync()
}

// rsController plays the replica set controller: every ReplicaSet has
// exactly spec.replicas pods, all ready and available when avail says so.
func (f *fixture) rsController(avail bool) {
	f.t.Helper()
	ctx := context.Background()
	rss, _ := f.client.AppsV1().ReplicaSets("ns").List(ctx, metav1.ListOptions{})
	for i := range rss.Items {
		rs := &rss.Items[i]
		n := *rs.Spec.Replicas
		rs.Status.Replicas = n
		rs.Status.ObservedGeneration = rs.Generation
		if avail {
			rs.Status.ReadyReplicas, rs.Status.AvailableReplicas = n, n
		} else if rs.Status.AvailableReplicas > n {
			rs.Status.ReadyReplicas, rs.Status.AvailableReplicas = n, n
		}
		if _, err := f.client.AppsV1().ReplicaSets("ns").UpdateStatus(ctx, rs, metav1.UpdateOptions{}); err != nil {
			f.t.Fatal(err)
		}
	}
	f.resync()
}

func (f *fixture) deployment() *appsv1.Deployment {
	d, err := f.client.AppsV1().Deployments("ns").Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

func (f *fixture) replicaSets() []*appsv1.ReplicaSet {
	rss, _ := f.client.AppsV1().ReplicaSets("ns").List(context.Background(), metav1.ListOptions{})
	var out []*appsv1.ReplicaSet
	for i := range rss.Items {
		out = append(out, &rss.Items[i])
	}
	sort.Sort(byCreationTimestamp(out))
	return out
}

// sizes returns the spec sizes of the ReplicaSet with the Deployment's
// image and of the others.
func (f *fixture) sizes(image string) (newSize, oldSize int32) {
	for _, rs := range f.replicaSets() {
		if rs.Spec.Template.Spec.Containers[0].Image == image {
			newSize += *rs.Spec.Replicas
		} else {
			oldSize += *rs.Spec.Replicas
		}
	}
	return
}

func (f *fixture) setImage(image string) {
	f.t.Helper()
	d := f.deployment()
	d.Spec.Template.Spec.Containers[0].Image = image
	d.Generation++
	if _, err := f.client.AppsV1().Deployments("ns").Update(context.Background(), d, metav1.UpdateOptions{}); err != nil {
		f.t.Fatal(err)
	}
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

func newDeployment(replicas int32, surge, unavailable string) *appsv1.Deployment {
	s, u := intstr.Parse(surge), intstr.Parse(unavailable)
	ten, six := int32(10), int32(600)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "uid-web", Generation: 1},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "v1"}}},
			},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &s, MaxUnavailable: &u}},
			RevisionHistoryLimit:    &ten,
			ProgressDeadlineSeconds: &six,
		},
	}
}

func TestResolveFenceposts(t *testing.T) {
	for _, tc := range []struct {
		surge, unavailable string
		desired            int32
		wantS, wantU       int32
	}{
		{"25%", "25%", 10, 3, 2},
		{"25%", "25%", 4, 1, 1},
		{"25%", "25%", 3, 1, 0},
		{"25%", "25%", 1, 1, 0},
		{"0", "0", 5, 0, 1},
		{"0%", "0%", 3, 0, 1},
		{"1", "1", 4, 1, 1},
		{"50%", "50%", 5, 3, 2},
		{"0", "30%", 10, 0, 3},
		{"2", "0", 0, 2, 0},
	} {
		s, u := intstr.Parse(tc.surge), intstr.Parse(tc.unavailable)
		gs, gu, err := ResolveFenceposts(&s, &u, tc.desired)
		if err != nil || gs != tc.wantS || gu != tc.wantU {
			t.Errorf("%s/%s of %d: %d/%d %v, want %d/%d", tc.surge, tc.unavailable, tc.desired, gs, gu, err, tc.wantS, tc.wantU)
		}
	}
}

// TestRollingUpdateSteps follows a rollout step by step, the replica set
// controller making every pod available between two syncs.
func TestRollingUpdateSteps(t *testing.T) {
	type step struct{ newSize, oldSize int32 }
	for _, tc := range []struct {
		name               string
		replicas           int32
		surge, unavailable string
		steps              []step
	}{
		{"surge 1 unavailable 1", 4, "1", "1", []step{{1, 3}, {2, 3}, {2, 1}, {4, 1}, {4, 0}}},
		{"25% of 4", 4, "25%", "25%", []step{{1, 3}, {2, 3}, {2, 1}, {4, 1}, {4, 0}}},
		{"no surge", 4, "0", "1", []step{{0, 3}, {1, 3}, {1, 2}, {2, 2}, {2, 1}, {3, 1}, {3, 0}, {4, 0}}},
		{"no unavailability", 3, "1", "0", []step{{1, 3}, {1, 2}, {2, 2}, {2, 1}, {3, 1}, {3, 0}}},
		{"surge 2 unavailable 0", 4, "2", "0", []step{{2, 4}, {2, 2}, {4, 2}, {4, 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDeployment(tc.replicas, tc.surge, tc.unavailable)
			f := newFixture(t, d)
			// First rollout: one ReplicaSet with every replica.
			f.sync()
			rss := f.replicaSets()
			if len(rss) != 1 || *rss[0].Spec.Replicas != tc.replicas {
				t.Fatalf("first rollout: %d ReplicaSets", len(rss))
			}
			first := rss[0]
			hash := first.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
			if hash == "" || first.Name != "web-"+hash || first.Spec.Selector.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] != hash ||
				first.Spec.Template.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash || first.Annotations[RevisionAnnotation] != "1" {
				t.Fatalf("first ReplicaSet %s: labels %v selector %v annotations %v", first.Name, first.Labels, first.Spec.Selector, first.Annotations)
			}
			want := fmt.Sprintf("Normal ScalingReplicaSet Scaled up replica set %s from 0 to %d", first.Name, tc.replicas)
			if evs := f.events(); len(evs) != 1 || evs[0] != want {
				t.Fatalf("events %v, want %q", evs, want)
			}
			f.rsController(true)
			f.sync()
			if got := f.deployment(); got.Annotations[RevisionAnnotation] != "1" || got.Status.AvailableReplicas != tc.replicas {
				t.Fatalf("after first rollout: annotations %v status %+v", got.Annotations, got.Status)
			}

			f.setImage("v2")
			maxTotal := tc.replicas + MaxSurge(d)
			minAvail := tc.replicas - MaxUnavailable(d)
			for i, want := range tc.steps {
				f.sync()
				n, o := f.sizes("v2")
				if n != want.newSize || o != want.oldSize {
					t.Fatalf("step %d: new %d old %d, want %d %d", i+1, n, o, want.newSize, want.oldSize)
				}
				if n+o > maxTotal {
					t.Fatalf("step %d: %d pods above %d", i+1, n+o, maxTotal)
				}
				// Old pods are available; new ones become so below.
				prevNewAvail := int32(0)
				for _, rs := range f.replicaSets() {
					if rs.Spec.Template.Spec.Containers[0].Image == "v2" {
						prevNewAvail = min(rs.Status.AvailableReplicas, n)
					}
				}
				if o+prevNewAvail < minAvail {
					t.Fatalf("step %d: %d available, minimum %d", i+1, o+prevNewAvail, minAvail)
				}
				f.rsController(true)
			}
			// Complete: status, conditions, revision.
			f.sync()
			got := f.deployment()
			st := got.Status
			if st.Replicas != tc.replicas || st.UpdatedReplicas != tc.replicas || st.AvailableReplicas != tc.replicas ||
				st.ReadyReplicas != tc.replicas || st.UnavailableReplicas != 0 || st.ObservedGeneration != got.Generation {
				t.Fatalf("final status %+v", st)
			}
			if c := GetCondition(st, appsv1.DeploymentAvailable); c == nil || c.Status != corev1.ConditionTrue || c.Reason != MinimumReplicasAvailable {
				t.Errorf("Available %+v", c)
			}
			if c := GetCondition(st, appsv1.DeploymentProgressing); c == nil || c.Status != corev1.ConditionTrue || c.Reason != NewRSAvailableReason ||
				!strings.HasPrefix(c.Message, `ReplicaSet "web-`) || !strings.HasSuffix(c.Message, `" has successfully progressed.`) {
				t.Errorf("Progressing %+v", c)
			}
			if got.Annotations[RevisionAnnotation] != "2" {
				t.Errorf("deployment revision %q", got.Annotations[RevisionAnnotation])
			}
			evs := f.events()
			sawDown := false
			for _, e := range evs {
				if strings.HasPrefix(e, "Normal ScalingReplicaSet Scaled down replica set "+first.Name+" from ") {
					sawDown = true
				}
			}
			if !sawDown {
				t.Errorf("no scale-down event in %v", evs)
			}
		})
	}
}

func TestRollbackToTheFirstTemplate(t *testing.T) {
	f := newFixture(t, newDeployment(2, "1", "0"))
	rollout := func(image string) {
		if image != "" {
			f.setImage(image)
		}
		for i := 0; i < 20; i++ {
			f.sync()
			f.rsController(true)
		}
	}
	rollout("")
	first := f.replicaSets()[0]
	rollout("v2")
	rollout("v1") // what kubectl rollout undo patches in
	rss := f.replicaSets()
	if len(rss) != 2 {
		t.Fatalf("%d ReplicaSets after the rollback, want 2 (the first one reused)", len(rss))
	}
	var back *appsv1.ReplicaSet
	for _, rs := range rss {
		if rs.UID == first.UID {
			back = rs
		}
	}
	if back == nil || *back.Spec.Replicas != 2 || back.Annotations[RevisionAnnotation] != "3" || back.Annotations[RevisionHistoryAnnotation] != "1" {
		t.Fatalf("rolled-back ReplicaSet %+v", back)
	}
	d := f.deployment()
	if d.Annotations[RevisionAnnotation] != "3" || d.Status.UpdatedReplicas != 2 || d.Status.Replicas != 2 {
		t.Fatalf("deployment after rollback: %v %+v", d.Annotations, d.Status)
	}
}

func TestScalingEventAndPause(t *testing.T) {
	f := newFixture(t, newDeployment(3, "25%", "25%"))
	f.sync()
	f.rsController(true)
	f.sync()
	f.events()
	d := f.deployment()
	five := int32(5)
	d.Spec.Replicas = &five
	d.Generation++
	_, _ = f.client.AppsV1().Deployments("ns").Update(context.Background(), d, metav1.UpdateOptions{})
	f.sync()
	rs := f.replicaSets()[0]
	if *rs.Spec.Replicas != 5 || rs.Annotations[DesiredReplicasAnnotation] != "5" || rs.Annotations[MaxReplicasAnnotation] != "7" {
		t.Fatalf("scaled ReplicaSet %d %v", *rs.Spec.Replicas, rs.Annotations)
	}
	want := fmt.Sprintf("Normal ScalingReplicaSet Scaled up replica set %s from 3 to 5", rs.Name)
	if evs := f.events(); len(evs) != 1 || evs[0] != want {
		t.Fatalf("events %v, want %q", evs, want)
	}

	// Paused: a template change makes no new ReplicaSet.
	d = f.deployment()
	d.Spec.Paused = true
	_, _ = f.client.AppsV1().Deployments("ns").Update(context.Background(), d, metav1.UpdateOptions{})
	f.setImage("v2")
	f.sync()
	if n := len(f.replicaSets()); n != 1 {
		t.Fatalf("%d ReplicaSets while paused", n)
	}
	if c := GetCondition(f.deployment().Status, appsv1.DeploymentProgressing); c == nil || c.Reason != PausedDeployReason || c.Status != corev1.ConditionUnknown {
		t.Fatalf("Progressing while paused: %+v", c)
	}
	d = f.deployment()
	d.Spec.Paused = false
	_, _ = f.client.AppsV1().Deployments("ns").Update(context.Background(), d, metav1.UpdateOptions{})
	f.sync()
	if n := len(f.replicaSets()); n != 2 {
		t.Fatalf("%d ReplicaSets after resuming", n)
	}
}

func TestRecreateWaitsForOldPods(t *testing.T) {
	d := newDeployment(2, "1", "1")
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	f := newFixture(t, d)
	f.sync()
	f.sync()
	f.rsController(true)
	old := f.replicaSets()[0]
	// Pods of the first ReplicaSet.
	yes := true
	for i := 0; i < 2; i++ {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i), Namespace: "ns", Labels: old.Spec.Template.Labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: old.Name, UID: old.UID, Controller: &yes}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning}}
		_, _ = f.client.CoreV1().Pods("ns").Create(context.Background(), p, metav1.CreateOptions{})
	}
	f.setImage("v2")
	f.sync()
	if n, o := f.sizes("v2"); n != 0 || o != 0 || len(f.replicaSets()) != 1 {
		t.Fatalf("after the first step: new %d old %d, %d ReplicaSets", n, o, len(f.replicaSets()))
	}
	f.rsController(true) // old status now 0 replicas, but pods still exist
	f.sync()
	if len(f.replicaSets()) != 1 {
		t.Fatal("new ReplicaSet created while old pods run")
	}
	for i := 0; i < 2; i++ {
		_ = f.client.CoreV1().Pods("ns").Delete(context.Background(), fmt.Sprintf("p%d", i), metav1.DeleteOptions{})
	}
	f.sync()
	if n, o := f.sizes("v2"); n != 2 || o != 0 {
		t.Fatalf("after old pods went: new %d old %d", n, o)
	}
}

func TestRevisionHistoryLimit(t *testing.T) {
	d := newDeployment(1, "1", "0")
	one := int32(1)
	d.Spec.RevisionHistoryLimit = &one
	f := newFixture(t, d)
	for _, image := range []string{"", "v2", "v3", "v4"} {
		if image != "" {
			f.setImage(image)
		}
		for i := 0; i < 10; i++ {
			f.sync()
			f.rsController(true)
		}
	}
	rss := f.replicaSets()
	if len(rss) != 2 {
		t.Fatalf("%d ReplicaSets, want the current one and one old", len(rss))
	}
	if rss[0].Annotations[RevisionAnnotation] != "3" || rss[1].Annotations[RevisionAnnotation] != "4" {
		t.Fatalf("kept revisions %s and %s", rss[0].Annotations[RevisionAnnotation], rss[1].Annotations[RevisionAnnotation])
	}
}

func TestAdoptsOrphanReplicaSets(t *testing.T) {
	d := newDeployment(2, "1", "0")
	hash := ComputeHash(&d.Spec.Template, nil)
	two := int32(2)
	orphan := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-" + hash, Namespace: "ns", UID: "uid-orphan",
			Labels: map[string]string{"app": "web", appsv1.DefaultDeploymentUniqueLabelKey: hash}},
		Spec: appsv1.ReplicaSetSpec{Replicas: &two,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", appsv1.DefaultDeploymentUniqueLabelKey: hash}},
			Template: *d.Spec.Template.DeepCopy()},
	}
	orphan.Spec.Template.Labels = map[string]string{"app": "web", appsv1.DefaultDeploymentUniqueLabelKey: hash}
	f := newFixture(t, d, orphan)
	f.sync()
	rss := f.replicaSets()
	if len(rss) != 1 || !metav1.IsControlledBy(rss[0], f.deployment()) {
		t.Fatalf("orphan not adopted: %d ReplicaSets, owners %+v", len(rss), rss[0].OwnerReferences)
	}
}
