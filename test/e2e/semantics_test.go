package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/wharf-io/wharf/test/e2e/framework"
)

// TestSemanticsClientsDependOn checks, one by one, the behaviours the API
// server issue lists: graceful pod deletion, no-op updates, generation,
// status/spec separation, selector transitions in watches, protobuf, dry-run
// and server-side apply.
func TestSemanticsClientsDependOn(t *testing.T) {
	s := framework.Start(t, framework.Options{})
	client := s.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Run("GracefulPodDeletion", func(t *testing.T) {
		pods := client.CoreV1().Pods("default")
		p := pod("graceful")
		p.Spec.NodeName = "node-a"
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := pods.Delete(ctx, "graceful", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		got, err := pods.Get(ctx, "graceful", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("a scheduled pod must stay until its node confirms: %v", err)
		}
		if got.DeletionTimestamp == nil || got.DeletionGracePeriodSeconds == nil || *got.DeletionGracePeriodSeconds != 30 {
			t.Fatalf("deletionTimestamp %v, grace %v; want set and 30", got.DeletionTimestamp, got.DeletionGracePeriodSeconds)
		}
		zero := int64(0)
		if err := pods.Delete(ctx, "graceful", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			t.Fatal(err)
		}
		if _, err := pods.Get(ctx, "graceful", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("after the grace-0 delete: %v", err)
		}
	})

	t.Run("NoOpUpdateWritesNothing", func(t *testing.T) {
		cms := client.CoreV1().ConfigMaps("default")
		cm, err := cms.Create(ctx, configMap("noop", map[string]string{"a": "1"}), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: cm.ResourceVersion, FieldSelector: "metadata.name=noop"})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		again, err := cms.Update(ctx, cm, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if again.ResourceVersion != cm.ResourceVersion {
			t.Errorf("no-op update changed resourceVersion %s -> %s", cm.ResourceVersion, again.ResourceVersion)
		}
		if ev, ok := tryNext(w, 2*time.Second); ok {
			t.Errorf("no-op update emitted %s", ev.Type)
		}
	})

	t.Run("GenerationFollowsSpecOnly", func(t *testing.T) {
		rcs := client.CoreV1().ReplicationControllers("default")
		rc := &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "gen"},
			Spec: corev1.ReplicationControllerSpec{Template: &corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "gen"}}, Spec: pod("x").Spec}}}
		rc, err := rcs.Create(ctx, rc, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if rc.Generation != 1 {
			t.Fatalf("generation on create %d, want 1", rc.Generation)
		}
		rc, err = rcs.Patch(ctx, "gen", types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`), metav1.PatchOptions{})
		if err != nil || rc.Generation != 1 {
			t.Fatalf("label change: generation %d, err %v; want 1", rc.Generation, err)
		}
		rc, err = rcs.Patch(ctx, "gen", types.MergePatchType, []byte(`{"status":{"replicas":3}}`), metav1.PatchOptions{}, "status")
		if err != nil || rc.Generation != 1 {
			t.Fatalf("status change: generation %d, err %v; want 1", rc.Generation, err)
		}
		rc, err = rcs.Patch(ctx, "gen", types.MergePatchType, []byte(`{"spec":{"replicas":5}}`), metav1.PatchOptions{})
		if err != nil || rc.Generation != 2 {
			t.Fatalf("spec change: generation %d, err %v; want 2", rc.Generation, err)
		}
		out := s.MustKubectl("scale", "rc", "gen", "--replicas=2")
		rc, err = rcs.Get(ctx, "gen", metav1.GetOptions{})
		if err != nil || *rc.Spec.Replicas != 2 || rc.Generation != 3 {
			t.Fatalf("kubectl scale (%s): replicas %v generation %d err %v", out, rc.Spec.Replicas, rc.Generation, err)
		}
	})

	t.Run("StatusAndSpecKeptApart", func(t *testing.T) {
		svcs := client.CoreV1().Services("default")
		svc := service("lb")
		svc.Spec.Type = corev1.ServiceTypeLoadBalancer
		// Another implementation's class, so Wharf's ServiceLB leaves its
		// status to this test.
		class := "example.com/other-lb"
		svc.Spec.LoadBalancerClass = &class
		svc, err := svcs.Create(ctx, svc, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.1"}}
		svc.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		svc, err = svcs.UpdateStatus(ctx, svc, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if svc.Spec.SessionAffinity != corev1.ServiceAffinityNone || len(svc.Status.LoadBalancer.Ingress) != 1 {
			t.Fatalf("PUT /status: affinity %s (spec must be kept), ingress %v", svc.Spec.SessionAffinity, svc.Status.LoadBalancer.Ingress)
		}
		svc.Status.LoadBalancer.Ingress = nil
		svc.Labels = map[string]string{"changed": "yes"}
		svc, err = svcs.Update(ctx, svc, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(svc.Status.LoadBalancer.Ingress) != 1 || svc.Labels["changed"] != "yes" {
			t.Fatalf("PUT main resource: status must be kept, got %v", svc.Status)
		}
	})

	t.Run("LabelWatchSeesObjectsEnterAndLeave", func(t *testing.T) {
		cms := client.CoreV1().ConfigMaps("default")
		cm, err := cms.Create(ctx, configMap("moving", nil), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: cm.ResourceVersion, LabelSelector: "tier=web"})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		label := func(v string) {
			patch := `{"metadata":{"labels":{"tier":` + v + `}}}`
			if _, err := cms.Patch(ctx, "moving", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		label(`"web"`)
		if ev := next(t, w); ev.Type != watch.Added {
			t.Fatalf("entering the selector: %s, want ADDED", ev.Type)
		}
		label(`"db"`)
		if ev := next(t, w); ev.Type != watch.Deleted {
			t.Fatalf("leaving the selector: %s, want DELETED", ev.Type)
		}
	})

	t.Run("Protobuf", func(t *testing.T) {
		cfg := s.RestConfig()
		cfg.ContentType = "application/vnd.kubernetes.protobuf"
		cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
		pc, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pc.CoreV1().ConfigMaps("default").Create(ctx, configMap("proto", map[string]string{"k": "v"}), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		got, err := pc.CoreV1().ConfigMaps("default").Get(ctx, "proto", metav1.GetOptions{})
		if err != nil || got.Data["k"] != "v" {
			t.Fatalf("protobuf round trip: %v %v", got, err)
		}
	})

	t.Run("DryRunStoresNothing", func(t *testing.T) {
		out := s.MustKubectl("create", "configmap", "dry", "--from-literal=a=b", "--dry-run=server")
		if !strings.Contains(out, "server dry run") {
			t.Errorf("dry run output: %s", out)
		}
		if _, err := client.CoreV1().ConfigMaps("default").Get(ctx, "dry", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("dry-run object stored: %v", err)
		}
	})

	t.Run("ServerSideApply", func(t *testing.T) {
		manifest := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: \"1\"\n"
		out, err := s.KubectlIn(manifest, "apply", "--server-side", "-f", "-")
		if err != nil || !strings.Contains(out, "serverside-applied") {
			t.Fatalf("apply --server-side: %v %s", err, out)
		}
		cm, err := client.CoreV1().ConfigMaps("default").Get(ctx, "ssa", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(cm.ManagedFields) == 0 || cm.ManagedFields[0].Manager != "kubectl" {
			t.Errorf("managedFields %v", cm.ManagedFields)
		}
	})
}
