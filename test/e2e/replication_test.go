package e2e

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/wharf-io/wharf/test/e2e/framework"
)

// replRC is a ReplicationController of busybox pods labelled app=name.
func replRC(name string, replicas int32) *corev1.ReplicationController {
	return &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ReplicationControllerSpec{
			Replicas: &replicas,
			Selector: map[string]string{"app": name},
			Template: &corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox",
					Command: []string{"sleep", "3600"}}}},
			},
		},
	}
}

// replPods lists the active (not terminating) pods matching selector.
func replPods(t *testing.T, client kubernetes.Interface, ns, selector string) []corev1.Pod {
	t.Helper()
	list, err := client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func replNames(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

func replIsReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// replMarkReady sets the status an agent would report for a running,
// ready pod (there is no node agent yet): phase Running, Ready and
// ContainersReady True, a pod IP.
func replMarkReady(client kubernetes.Interface, p *corev1.Pod, ip string) error {
	if replIsReady(p) {
		return nil
	}
	now := metav1.Now()
	p = p.DeepCopy()
	p.Status.Phase = corev1.PodRunning
	p.Status.PodIP = ip
	p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	p.Status.StartTime = &now
	p.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	_, err := client.CoreV1().Pods(p.Namespace).UpdateStatus(context.Background(), p, metav1.UpdateOptions{})
	return err
}

var replIPs struct {
	sync.Mutex
	n int
}

func replNextIP() string {
	replIPs.Lock()
	defer replIPs.Unlock()
	replIPs.n++
	return fmt.Sprintf("10.244.%d.%d", replIPs.n/250, replIPs.n%250+1)
}

// replMarkAllReady marks every active pod labelled app=app ready.
func replMarkAllReady(t *testing.T, client kubernetes.Interface, ns, app string) {
	t.Helper()
	waitFor(t, 30*time.Second, func() (bool, string) {
		var errs []string
		for _, p := range replPods(t, client, ns, "app="+app) {
			if err := replMarkReady(client, &p, replNextIP()); err != nil {
				errs = append(errs, err.Error())
			}
		}
		return len(errs) == 0, strings.Join(errs, "; ")
	})
}

// replReadyInBackground keeps marking the pods labelled app=app ready, as
// agents would, until the test ends.
func replReadyInBackground(t *testing.T, client kubernetes.Interface, ns, app string) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
			if err == nil {
				for i := range list.Items {
					if p := &list.Items[i]; p.DeletionTimestamp == nil {
						_ = replMarkReady(client, p, replNextIP())
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(150 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
}

func replControllerOf(p *corev1.Pod) *metav1.OwnerReference { return metav1.GetControllerOf(p) }

// TestReplicationControllerScalesAndPodsFollow: an RC goes 3 -> 5 -> 1; pods
// are created from the template with generated names and controller
// references, status follows readiness, scale-down takes the not-ready
// pods first, a pod that stops matching is released and replaced, and a
// matching orphan is adopted.
func TestReplicationControllerScalesAndPodsFollow(t *testing.T) {
	s := framework.Start(t, framework.Options{})
	client := s.Client()
	ctx := context.Background()
	rc, err := client.CoreV1().ReplicationControllers("default").Create(ctx, replRC("web", 3), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, func() (bool, string) {
		pods := replPods(t, client, "default", "app=web")
		return len(pods) == 3, fmt.Sprint(replNames(pods))
	})
	first := replPods(t, client, "default", "app=web")
	for _, p := range first {
		ref := replControllerOf(&p)
		if !regexp.MustCompile(`^web-[a-z0-9]{5}$`).MatchString(p.Name) || p.GenerateName != "web-" || ref == nil ||
			ref.Kind != "ReplicationController" || ref.Name != "web" || ref.UID != rc.UID ||
			ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
			t.Fatalf("pod %s (generateName %q) owners %+v", p.Name, p.GenerateName, p.OwnerReferences)
		}
	}
	replMarkAllReady(t, client, "default", "web")
	waitFor(t, 30*time.Second, func() (bool, string) {
		rc, err := client.CoreV1().ReplicationControllers("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		st := rc.Status
		return st.Replicas == 3 && st.FullyLabeledReplicas == 3 && st.ReadyReplicas == 3 && st.AvailableReplicas == 3 &&
			st.ObservedGeneration == rc.Generation, fmt.Sprintf("%+v", st)
	})

	// 3 -> 5: two more, not ready.
	s.MustKubectl("scale", "rc/web", "--replicas=5")
	waitFor(t, 30*time.Second, func() (bool, string) {
		pods := replPods(t, client, "default", "app=web")
		return len(pods) == 5, fmt.Sprint(replNames(pods))
	})
	waitFor(t, 30*time.Second, func() (bool, string) {
		rc, _ := client.CoreV1().ReplicationControllers("default").Get(ctx, "web", metav1.GetOptions{})
		return rc.Status.Replicas == 5 && rc.Status.ReadyReplicas == 3, fmt.Sprintf("%+v", rc.Status)
	})
	out := s.MustKubectl("get", "rc", "web")
	if !regexp.MustCompile(`web\s+5\s+5\s+3\s`).MatchString(out) {
		t.Errorf("get rc web:\n%s", out)
	}

	// 5 -> 1: the two not-ready pods go first, then two of the ready ones.
	s.MustKubectl("scale", "rc/web", "--replicas=1")
	waitFor(t, 30*time.Second, func() (bool, string) {
		pods := replPods(t, client, "default", "app=web")
		return len(pods) == 1, fmt.Sprint(replNames(pods))
	})
	kept := replPods(t, client, "default", "app=web")[0]
	if !replIsReady(&kept) {
		t.Errorf("scale-down kept the not-ready pod %s", kept.Name)
	}
	waitFor(t, 30*time.Second, func() (bool, string) {
		rc, _ := client.CoreV1().ReplicationControllers("default").Get(ctx, "web", metav1.GetOptions{})
		return rc.Status.Replicas == 1 && rc.Status.ReadyReplicas == 1, fmt.Sprintf("%+v", rc.Status)
	})
	out = s.MustKubectl("describe", "rc/web")
	for _, want := range []string{`Replicas:\s+1 current / 1 desired`, `Normal\s+SuccessfulCreate\s+.*replication-controller\s+Created pod: web-[a-z0-9]{5}`,
		`Normal\s+SuccessfulDelete\s+.*replication-controller\s+Deleted pod: web-[a-z0-9]{5}`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("describe rc/web lacks %q:\n%s", want, out)
		}
	}

	// A pod that stops matching is released and replaced.
	patch := []byte(`{"metadata":{"labels":{"app":"elsewhere"}}}`)
	if _, err := client.CoreV1().Pods("default").Patch(ctx, kept.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() (bool, string) {
		p, err := client.CoreV1().Pods("default").Get(ctx, kept.Name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		pods := replPods(t, client, "default", "app=web")
		return len(p.OwnerReferences) == 0 && len(pods) == 1 && pods[0].Name != kept.Name,
			fmt.Sprintf("owners %+v, pods %v", p.OwnerReferences, replNames(pods))
	})
	// Back: adopted, and the RC now has one too many; the replacement
	// (not ready) goes.
	patch = []byte(`{"metadata":{"labels":{"app":"web"}}}`)
	if _, err := client.CoreV1().Pods("default").Patch(ctx, kept.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() (bool, string) {
		pods := replPods(t, client, "default", "app=web")
		if len(pods) != 1 || pods[0].Name != kept.Name {
			return false, fmt.Sprint(replNames(pods))
		}
		ref := replControllerOf(&pods[0])
		return ref != nil && ref.UID == rc.UID, fmt.Sprintf("owners %+v", pods[0].OwnerReferences)
	})
}

// TestReplicationChapterQuota is the chapter's quota scenario: listing
// 3-17's RC wants four pods in namespace test, listing 3-16's quota allows
// three; three pods exist and describe shows upstream's FailedCreate event.
func TestReplicationChapterQuota(t *testing.T) {
	s := framework.Start(t, framework.Options{})
	client := s.Client()
	ctx := context.Background()
	s.MustKubectl("create", "-f", chapter+"listing-3-14-test-ns.yaml")
	s.MustKubectl("create", "-f", chapter+"listing-3-16-quota.yaml")
	waitFor(t, 20*time.Second, func() (bool, string) {
		out := s.MustKubectl("describe", "namespace/test")
		return matches(`pods\s+0\s+3`, out), out
	})
	s.MustKubectl("create", "-f", chapter+"listing-3-17-busybox-ns.yaml")

	want := `exceeded quota: test-quotas, requested: pods=1, used: pods=3, limited: pods=3`
	waitFor(t, 60*time.Second, func() (bool, string) {
		out := s.MustKubectl("describe", "rc/busybox-ns", "--namespace=test")
		return strings.Contains(out, "FailedCreate") && strings.Contains(out, want), out
	})
	out := s.MustKubectl("describe", "rc/busybox-ns", "--namespace=test")
	re := `Warning\s+FailedCreate\s+.*replication-controller\s+Error creating: pods "busybox-ns-[a-z0-9]{5}" is forbidden: ` + regexp.QuoteMeta(want)
	if !regexp.MustCompile(re).MatchString(out) {
		t.Errorf("describe rc/busybox-ns: no line matching %s:\n%s", re, out)
	}
	if !regexp.MustCompile(`Replicas:\s+3 current / 4 desired`).MatchString(out) {
		t.Errorf("describe rc/busybox-ns replicas:\n%s", out)
	}
	// Exactly three pods, and it stays so while the RC keeps retrying.
	for i := 0; i < 10; i++ {
		if pods := replPods(t, client, "test", "name=busybox-ns"); len(pods) != 3 {
			t.Fatalf("%d pods in namespace test, want 3: %v", len(pods), replNames(pods))
		}
		time.Sleep(300 * time.Millisecond)
	}
	rc, err := client.CoreV1().ReplicationControllers("test").Get(ctx, "busybox-ns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rc.Status.Conditions) != 1 || rc.Status.Conditions[0].Type != corev1.ReplicationControllerReplicaFailure ||
		rc.Status.Conditions[0].Reason != "FailedCreate" || !strings.Contains(rc.Status.Conditions[0].Message, want) {
		t.Errorf("RC conditions %+v", rc.Status.Conditions)
	}

	// Once managing replicas succeeds again (here: the RC asks for what the
	// quota allows) the ReplicaFailure condition goes.
	s.MustKubectl("scale", "rc/busybox-ns", "--namespace=test", "--replicas=3")
	waitFor(t, 60*time.Second, func() (bool, string) {
		rc, _ := client.CoreV1().ReplicationControllers("test").Get(ctx, "busybox-ns", metav1.GetOptions{})
		return len(rc.Status.Conditions) == 0 && rc.Status.Replicas == 3, fmt.Sprintf("%+v", rc.Status)
	})
}

// TestReplicationKill9MidScale: the server dies by SIGKILL right after an
// RC is scaled to 30; after the restart the RC has exactly 30 pods, never
// more.
func TestReplicationKill9MidScale(t *testing.T) {
	s := framework.Start(t, framework.Options{})
	client := s.Client()
	ctx := context.Background()
	if _, err := client.CoreV1().ReplicationControllers("default").Create(ctx, replRC("big", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, func() (bool, string) {
		pods := replPods(t, client, "default", "app=big")
		return len(pods) == 1, fmt.Sprint(replNames(pods))
	})
	s.MustKubectl("scale", "rc/big", "--replicas=30")
	s.Kill9()
	s.Restart()
	client = s.Client()
	t.Logf("after the restart, before the controllers lead again: %d pods", len(replPods(t, client, "default", "app=big")))
	over := func() {
		if pods := replPods(t, client, "default", "app=big"); len(pods) > 30 {
			t.Fatalf("%d pods for replicas=30", len(pods))
		}
	}
	waitFor(t, 90*time.Second, func() (bool, string) {
		over()
		pods := replPods(t, client, "default", "app=big")
		return len(pods) == 30, fmt.Sprintf("%d pods", len(pods))
	})
	for i := 0; i < 15; i++ {
		over()
		time.Sleep(200 * time.Millisecond)
	}
	if n := len(replPods(t, client, "default", "app=big")); n != 30 {
		t.Fatalf("%d pods after settling, want 30", n)
	}
	names := map[string]bool{}
	for _, p := range replPods(t, client, "default", "app=big") {
		if names[p.Name] {
			t.Fatalf("duplicate pod %s", p.Name)
		}
		names[p.Name] = true
		if ref := replControllerOf(&p); ref == nil || ref.Name != "big" {
			t.Errorf("pod %s owners %+v", p.Name, p.OwnerReferences)
		}
	}
	waitFor(t, 30*time.Second, func() (bool, string) {
		rc, err := client.CoreV1().ReplicationControllers("default").Get(ctx, "big", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return rc.Status.Replicas == 30 && rc.Status.ObservedGeneration == rc.Generation, fmt.Sprintf("%+v", rc.Status)
	})
}

const replDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: whale
spec:
  replicas: 3
  selector:
    matchLabels:
      app: whale
  template:
    metadata:
      labels:
        app: whale
    spec:
      containers:
      - name: c
        image: busybox:1.36
        command: ["sleep", "3600"]
`

// TestReplicationDeploymentRolloutAndUndo: a Deployment rolls out, rolls
// to a new image and back with `kubectl rollout undo`, `kubectl rollout
// status` completing each time (pods are marked ready in the background,
// as agents would).
func TestReplicationDeploymentRolloutAndUndo(t *testing.T) {
	s := framework.Start(t, framework.Options{})
	client := s.Client()
	ctx := context.Background()
	replReadyInBackground(t, client, "default", "whale")
	out, err := s.KubectlIn(replDeployment, "apply", "-f", "-")
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	rollout := func() {
		t.Helper()
		out := s.MustKubectl("rollout", "status", "deployment/whale", "--timeout=120s")
		if !strings.Contains(out, `deployment "whale" successfully rolled out`) {
			t.Fatalf("rollout status:\n%s", out)
		}
	}
	rollout()
	rsList := func() []appsv1.ReplicaSet {
		t.Helper()
		list, err := client.AppsV1().ReplicaSets("default").List(ctx, metav1.ListOptions{LabelSelector: "app=whale"})
		if err != nil {
			t.Fatal(err)
		}
		sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].CreationTimestamp.Before(&list.Items[j].CreationTimestamp) })
		return list.Items
	}
	rss := rsList()
	if len(rss) != 1 {
		t.Fatalf("%d ReplicaSets after the first rollout", len(rss))
	}
	first := rss[0]
	hash := first.Labels["pod-template-hash"]
	if first.Name != "whale-"+hash || first.Spec.Selector.MatchLabels["pod-template-hash"] != hash ||
		first.Annotations["deployment.kubernetes.io/revision"] != "1" || *first.Spec.Replicas != 3 {
		t.Fatalf("first ReplicaSet %s labels %v annotations %v", first.Name, first.Labels, first.Annotations)
	}
	for _, p := range replPods(t, client, "default", "app=whale") {
		if p.Labels["pod-template-hash"] != hash || replControllerOf(&p) == nil || replControllerOf(&p).Name != first.Name {
			t.Errorf("pod %s labels %v owners %+v", p.Name, p.Labels, p.OwnerReferences)
		}
	}

	s.MustKubectl("set", "image", "deployment/whale", "c=busybox:1.37")
	rollout()
	// Creation times have one-second resolution: tell the two apart by name.
	byName := func() (firstRS, other *appsv1.ReplicaSet) {
		t.Helper()
		rss := rsList()
		if len(rss) != 2 {
			t.Fatalf("%d ReplicaSets, want 2", len(rss))
		}
		for i := range rss {
			if rss[i].Name == first.Name {
				firstRS = &rss[i]
			} else {
				other = &rss[i]
			}
		}
		if firstRS == nil {
			t.Fatalf("the first ReplicaSet %s is gone", first.Name)
		}
		return firstRS, other
	}
	old, second := byName()
	if *old.Spec.Replicas != 0 || *second.Spec.Replicas != 3 || second.Annotations["deployment.kubernetes.io/revision"] != "2" {
		t.Fatalf("after set image: %s=%d, %s=%d revision %s", old.Name, *old.Spec.Replicas, second.Name, *second.Spec.Replicas,
			second.Annotations["deployment.kubernetes.io/revision"])
	}
	out = s.MustKubectl("describe", "deployment/whale")
	for _, want := range []string{
		`Normal\s+ScalingReplicaSet\s+.*deployment-controller\s+Scaled up replica set ` + first.Name + ` from 0 to 3`,
		`Normal\s+ScalingReplicaSet\s+.*deployment-controller\s+Scaled up replica set ` + second.Name + ` from 0 to 1`,
		`Normal\s+ScalingReplicaSet\s+.*deployment-controller\s+Scaled down replica set ` + first.Name + ` from \d to \d`,
		`Available\s+True\s+MinimumReplicasAvailable`, `Progressing\s+True\s+NewReplicaSetAvailable`,
		`NewReplicaSet:\s+` + second.Name + ` \(3/3 replicas created\)`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("describe deployment lacks %q:\n%s", want, out)
		}
	}

	s.MustKubectl("rollout", "undo", "deployment/whale")
	rollout()
	d, err := client.AppsV1().Deployments("default").Get(ctx, "whale", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img := d.Spec.Template.Spec.Containers[0].Image; img != "busybox:1.36" || d.Annotations["deployment.kubernetes.io/revision"] != "3" {
		t.Fatalf("after undo: image %s, annotations %v", img, d.Annotations)
	}
	st := d.Status
	if st.Replicas != 3 || st.UpdatedReplicas != 3 || st.ReadyReplicas != 3 || st.AvailableReplicas != 3 || st.UnavailableReplicas != 0 || st.ObservedGeneration != d.Generation {
		t.Errorf("status after undo %+v", st)
	}
	back, second := byName()
	if *back.Spec.Replicas != 3 || *second.Spec.Replicas != 0 || back.Annotations["deployment.kubernetes.io/revision"] != "3" ||
		back.Annotations["deployment.kubernetes.io/revision-history"] != "1" {
		t.Fatalf("after undo: ReplicaSets %s=%d %s=%d, annotations %v", back.Name, *back.Spec.Replicas, second.Name, *second.Spec.Replicas,
			back.Annotations)
	}
	for _, p := range replPods(t, client, "default", "app=whale") {
		if p.Spec.Containers[0].Image != "busybox:1.36" {
			t.Errorf("pod %s runs %s after undo", p.Name, p.Spec.Containers[0].Image)
		}
	}
	out = s.MustKubectl("rollout", "history", "deployment/whale")
	if !regexp.MustCompile(`(?m)^2\s`).MatchString(out) || !regexp.MustCompile(`(?m)^3\s`).MatchString(out) || regexp.MustCompile(`(?m)^1\s`).MatchString(out) {
		t.Errorf("rollout history:\n%s", out)
	}
	out = s.MustKubectl("rollout", "history", "deployment/whale", "--revision=2")
	if !strings.Contains(out, "busybox:1.37") {
		t.Errorf("rollout history --revision=2:\n%s", out)
	}
}
