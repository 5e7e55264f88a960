package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/wharf-io/wharf/test/e2e/framework"
)

func leaseHolder(t *testing.T, client kubernetes.Interface, name string) string {
	l, err := client.CoordinationV1().Leases(metav1.NamespaceSystem).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// TestControllersFailOverWithin15s: with two servers one holds each
// controller group's Lease; after a kill -9 of that server the other takes
// over within 15 s and its controllers act.
func TestControllersFailOverWithin15s(t *testing.T) {
	// The etcd lives in a server without controllers, so killing a
	// controller leader does not take the storage with it.
	store := framework.Start(t, framework.Options{Extra: []string{"--disable-controllers"}})
	a := framework.Start(t, framework.Options{Command: "server", EtcdServers: store.EtcdURL})
	ca := a.Client()
	var first string
	waitFor(t, 30*time.Second, func() (bool, string) {
		first = leaseHolder(t, ca, "wharf-controller-manager")
		return first != "", "no controller-manager lease holder yet"
	})
	b := framework.Start(t, framework.Options{Command: "server", EtcdServers: store.EtcdURL})
	cb := b.Client()
	time.Sleep(3 * time.Second)
	if got := leaseHolder(t, cb, "wharf-controller-manager"); got != first {
		t.Fatalf("the second server took the lease from a live leader: %q -> %q", first, got)
	}
	killed := time.Now()
	a.Kill9()
	var second string
	waitFor(t, 30*time.Second, func() (bool, string) {
		second = leaseHolder(t, cb, "wharf-controller-manager")
		return second != "" && second != first, fmt.Sprintf("holder %q", second)
	})
	took := time.Since(killed)
	t.Logf("take-over after kill -9: %s", took.Round(100*time.Millisecond))
	if took > 15*time.Second {
		t.Errorf("take-over took %s, want within 15 s", took)
	}
	// The new leader's controllers act: an RC gets its pods.
	rc := &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "after-failover"},
		Spec: corev1.ReplicationControllerSpec{Template: &corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "after-failover"}}, Spec: pod("x").Spec}}}
	two := int32(2)
	rc.Spec.Replicas = &two
	if _, err := cb.CoreV1().ReplicationControllers("default").Create(context.Background(), rc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() (bool, string) {
		pods, err := cb.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=after-failover"})
		return err == nil && len(pods.Items) == 2, fmt.Sprint(len(pods.Items), err)
	})
}
