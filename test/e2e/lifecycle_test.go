package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/wharf-io/wharf/test/e2e/framework"
)

// TestNamespaceLifecycle: a namespace is created with the "kubernetes"
// finalizer; deleting it marks it Terminating, refuses new content with
// upstream's message, removes its 50 objects, and then the namespace
// itself, whose last state carries upstream's deletion conditions.
func TestNamespaceLifecycle(t *testing.T) {
	s := framework.Start(t, framework.Options{})
	client := s.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	s.MustKubectl("create", "namespace", "test")
	ns, err := client.CoreV1().Namespaces().Get(ctx, "test", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ns.Spec.Finalizers) != "[kubernetes]" || ns.Status.Phase != corev1.NamespaceActive {
		t.Fatalf("new namespace: finalizers %v, phase %q", ns.Spec.Finalizers, ns.Status.Phase)
	}
	// spec.finalizers change only through namespaces/finalize.
	ns.Spec.Finalizers = nil
	ns, err = client.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{})
	if err != nil || fmt.Sprint(ns.Spec.Finalizers) != "[kubernetes]" {
		t.Fatalf("update dropping spec.finalizers: %v, finalizers now %v", err, ns.Spec.Finalizers)
	}
	// System namespaces cannot be deleted.
	if out, err := s.Kubectl("delete", "namespace", "kube-system", "--wait=false"); err == nil || !strings.Contains(out, "this namespace may not be deleted") {
		t.Errorf("delete kube-system: %v\n%s", err, out)
	}

	// 50 objects: 15 configmaps, 10 services, 12 pods, 12 secrets, one RC.
	created := createContent(ctx, t, client, "test")
	if created != 50 {
		t.Fatalf("created %d objects, want 50", created)
	}

	w, err := client.CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", "test").String(), ResourceVersion: ns.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	out := s.MustKubectl("delete", "namespace", "test", "--wait=false")
	if !strings.Contains(out, `namespace "test" deleted`) {
		t.Fatalf("delete namespace: %s", out)
	}
	ns, err = client.CoreV1().Namespaces().Get(ctx, "test", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("namespace gone at once: %v", err)
	}
	if ns.Status.Phase != corev1.NamespaceTerminating || ns.DeletionTimestamp == nil {
		t.Fatalf("after delete: phase %q, deletionTimestamp %v", ns.Status.Phase, ns.DeletionTimestamp)
	}
	if out := s.MustKubectl("get", "namespace", "test"); !strings.Contains(out, "Terminating") {
		t.Errorf("get namespace while deleting:\n%s", out)
	}

	// New content is refused while it terminates (NamespaceLifecycle's
	// informer may lag the delete by a moment).
	const refused = "unable to create new content in namespace test because it is being terminated"
	waitFor(t, 5*time.Second, func() (bool, string) {
		_, err := client.CoreV1().ConfigMaps("test").Create(ctx, configMap(fmt.Sprintf("late-%d", time.Now().UnixNano()), nil), metav1.CreateOptions{})
		if err == nil {
			return false, "create in a terminating namespace succeeded"
		}
		return apierrors.IsForbidden(err) && strings.Contains(err.Error(), refused), err.Error()
	})
	out, err = s.Kubectl("create", "configmap", "late", "--namespace=test")
	if err == nil || !strings.Contains(out, `configmaps "late" is forbidden: `+refused) {
		t.Errorf("kubectl create in a terminating namespace: %v\n%s", err, out)
	}

	// The namespace goes once everything in it has gone. The DELETED event
	// carries its last stored state: Terminating, with the conditions.
	start := time.Now()
	var last *corev1.Namespace
	deadline := time.After(90 * time.Second)
	for last == nil {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatal("namespace watch closed")
			}
			if ev.Type == watch.Deleted {
				last = ev.Object.(*corev1.Namespace)
			}
		case <-deadline:
			ns, _ := client.CoreV1().Namespaces().Get(ctx, "test", metav1.GetOptions{})
			t.Fatalf("namespace not deleted in 90s; now: %+v", ns.Status)
		}
	}
	t.Logf("namespace deleted %s after the refusal", time.Since(start).Round(time.Millisecond))
	if _, err := client.CoreV1().Namespaces().Get(ctx, "test", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get deleted namespace: %v", err)
	}
	if last.Status.Phase != corev1.NamespaceTerminating {
		t.Errorf("deleted namespace's last phase %q", last.Status.Phase)
	}
	want := map[corev1.NamespaceConditionType]string{
		corev1.NamespaceDeletionDiscoveryFailure: "ResourcesDiscovered",
		corev1.NamespaceDeletionContentFailure:   "ContentDeleted",
		corev1.NamespaceContentRemaining:         "ContentRemoved",
		corev1.NamespaceFinalizersRemaining:      "ContentHasNoFinalizers",
	}
	for _, c := range last.Status.Conditions {
		if reason, ok := want[c.Type]; ok {
			if c.Status != corev1.ConditionFalse || c.Reason != reason {
				t.Errorf("condition %s = %s %s, want False %s", c.Type, c.Status, c.Reason, reason)
			}
			delete(want, c.Type)
		}
	}
	if len(want) != 0 {
		t.Errorf("conditions missing from the deleted namespace: %v (have %+v)", want, last.Status.Conditions)
	}
	if n := countContent(ctx, t, client, "test"); n != 0 {
		t.Errorf("%d objects left in the deleted namespace", n)
	}

	// The name can be used again.
	s.MustKubectl("create", "namespace", "test")
	s.MustKubectl("create", "configmap", "again", "--namespace=test")
}

// createContent makes 50 objects in ns and returns how many it made.
func createContent(ctx context.Context, t *testing.T, client kubernetes.Interface, ns string) int {
	t.Helper()
	n := 0
	for i := 0; i < 15; i++ {
		if _, err := client.CoreV1().ConfigMaps(ns).Create(ctx, configMap(fmt.Sprintf("cm-%d", i), map[string]string{"k": "v"}), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		n++
	}
	for i := 0; i < 10; i++ {
		if _, err := client.CoreV1().Services(ns).Create(ctx, service(fmt.Sprintf("svc-%d", i)), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		n++
	}
	zero := int64(0)
	for i := 0; i < 12; i++ {
		p := pod(fmt.Sprintf("pod-%d", i))
		p.Labels = map[string]string{"app": "web"}
		p.Spec.TerminationGracePeriodSeconds = &zero
		if _, err := client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		n++
	}
	for i := 0; i < 12; i++ {
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("secret-%d", i)}, StringData: map[string]string{"k": "v"}}
		if _, err := client.CoreV1().Secrets(ns).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		n++
	}
	// Zero replicas and a selector none of the pods match: a replication
	// controller, if one runs, leaves everything as it is.
	if _, err := client.CoreV1().ReplicationControllers(ns).Create(ctx, rcObject("rc", "rc-test", 0), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return n + 1
}

// countContent counts the objects createContent makes that are left in ns.
func countContent(ctx context.Context, t *testing.T, client kubernetes.Interface, ns string) int {
	t.Helper()
	n := 0
	cms, err := client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n += len(cms.Items)
	svcs, err := client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n += len(svcs.Items)
	pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n += len(pods.Items)
	secrets, err := client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n += len(secrets.Items)
	rcs, err := client.CoreV1().ReplicationControllers(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n + len(rcs.Items)
}

func rcObject(name, app string, replicas int32) *corev1.ReplicationController {
	labels := map[string]string{"app": app}
	tmpl := pod("")
	tmpl.Labels = labels
	return &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ReplicationControllerSpec{
			Replicas: &replicas,
			Selector: labels,
			Template: &corev1.PodTemplateSpec{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec},
		},
	}
}

// ownedPods makes an RC and two pods whose controller it is. The pods are
// the RC's own if a replication controller runs and makes them; otherwise
// the test makes them, with the ownerReference a controller would set.
func ownedPods(ctx context.Context, t *testing.T, client kubernetes.Interface, name string) (*corev1.ReplicationController, []string) {
	t.Helper()
	rc, err := client.CoreV1().ReplicationControllers("default").Create(ctx, rcObject(name, name, 2), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	owned := func() []string {
		pods, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range pods.Items {
			for _, r := range p.OwnerReferences {
				if r.UID == rc.UID {
					names = append(names, p.Name)
				}
			}
		}
		return names
	}
	deadline := time.Now().Add(3 * time.Second)
	for len(owned()) < 2 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	yes := true
	for i := len(owned()); i < 2; i++ {
		p := pod(fmt.Sprintf("%s-%d", name, i))
		p.Labels = map[string]string{"app": name}
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ReplicationController",
			Name: rc.Name, UID: rc.UID, Controller: &yes, BlockOwnerDeletion: &yes}}
		if _, err := client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	names := owned()
	if len(names) != 2 {
		t.Fatalf("%s owns pods %v, want 2", name, names)
	}
	return rc, names
}

// TestGarbageCollectorCascades: deleting an RC with --cascade=orphan keeps
// its pods without the reference; a background delete removes the pods
// after the RC; a foreground delete removes them before it.
func TestGarbageCollectorCascades(t *testing.T) {
	s := framework.Start(t, framework.Options{})
	client := s.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	_, orphans := ownedPods(ctx, t, client, "orphan-rc")
	_, background := ownedPods(ctx, t, client, "bg-rc")
	_, foreground := ownedPods(ctx, t, client, "fg-rc")
	// Let the collector's informers see the pods before their owners go.
	time.Sleep(2 * time.Second)

	out := s.MustKubectl("delete", "rc", "orphan-rc", "--cascade=orphan")
	if !strings.Contains(out, `replicationcontroller "orphan-rc" deleted`) {
		t.Fatalf("delete --cascade=orphan: %s", out)
	}
	if _, err := client.CoreV1().ReplicationControllers("default").Get(ctx, "orphan-rc", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("orphan-rc after delete: %v", err)
	}
	for _, name := range orphans {
		p, err := client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("orphaned pod %s: %v", name, err)
			continue
		}
		if len(p.OwnerReferences) != 0 || p.DeletionTimestamp != nil {
			t.Errorf("orphaned pod %s: ownerReferences %v, deletionTimestamp %v", name, p.OwnerReferences, p.DeletionTimestamp)
		}
	}

	out = s.MustKubectl("delete", "rc", "fg-rc", "--cascade=foreground")
	if !strings.Contains(out, `replicationcontroller "fg-rc" deleted`) {
		t.Fatalf("delete --cascade=foreground: %s", out)
	}
	// kubectl waited for the RC to go, and it went after its pods.
	for _, name := range foreground {
		if _, err := client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("pod %s of the foreground-deleted RC: %v", name, err)
		}
	}

	out = s.MustKubectl("delete", "rc", "bg-rc")
	if !strings.Contains(out, `replicationcontroller "bg-rc" deleted`) {
		t.Fatalf("delete: %s", out)
	}
	waitFor(t, 30*time.Second, func() (bool, string) {
		var left []string
		for _, name := range background {
			if _, err := client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				left = append(left, name)
			}
		}
		return len(left) == 0, fmt.Sprintf("pods of the deleted RC left: %v", left)
	})

	// The orphans stay: nothing owns them and nothing collects them.
	time.Sleep(2 * time.Second)
	for _, name := range orphans {
		if _, err := client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("orphaned pod %s later: %v", name, err)
		}
	}
}

// TestGarbageCollectorDanglingOwner: a dependent created with an owner that
// never existed is collected; one with a live owner stays.
func TestGarbageCollectorDanglingOwner(t *testing.T) {
	s := framework.Start(t, framework.Options{})
	client := s.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	owner, err := client.CoreV1().ConfigMaps("default").Create(ctx, configMap("owner", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dependent := func(name string, ref metav1.OwnerReference) {
		cm := configMap(name, nil)
		cm.OwnerReferences = []metav1.OwnerReference{ref}
		if _, err := client.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	dependent("owned", metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "owner", UID: owner.UID})
	dependent("dangling", metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "never", UID: "0b7e1f5c-0000-4000-8000-000000000000"})
	waitFor(t, 30*time.Second, func() (bool, string) {
		_, err := client.CoreV1().ConfigMaps("default").Get(ctx, "dangling", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprintf("dangling dependent: %v", err)
	})
	if _, err := client.CoreV1().ConfigMaps("default").Get(ctx, "owned", metav1.GetOptions{}); err != nil {
		t.Errorf("dependent of a live owner: %v", err)
	}
	// Its owner goes: it follows.
	if err := client.CoreV1().ConfigMaps("default").Delete(ctx, "owner", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() (bool, string) {
		_, err := client.CoreV1().ConfigMaps("default").Get(ctx, "owned", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprintf("dependent of a deleted owner: %v", err)
	})
}
