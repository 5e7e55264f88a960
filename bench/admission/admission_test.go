package admission

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/wharf-io/wharf/test/e2e/framework"
)

const (
	clients = 8
	creates = 2000
)

// TestAdmissionBench prints service creates per second with allocation and
// quota on and off, and their ratio.
func TestAdmissionBench(t *testing.T) {
	if os.Getenv("WHARF_BENCH") != "1" || testing.Short() {
		t.Skip("set WHARF_BENCH=1 to run the admission benchmark")
	}
	s := framework.Start(t, framework.Options{})
	ctx := context.Background()
	admin := s.Client()
	for _, ns := range []string{"with", "without"} {
		if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "q"}, Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{
		corev1.ResourceServices: resource.MustParse("100000"), corev1.ResourceServicesNodePorts: resource.MustParse("100000")}}}
	if _, err := admin.CoreV1().ResourceQuotas("with").Create(ctx, q, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		got, err := admin.CoreV1().ResourceQuotas("with").Get(ctx, "q", metav1.GetOptions{})
		if err == nil && len(got.Status.Hard) > 0 {
			break
		}
	}
	cs := make([]kubernetes.Interface, clients)
	for i := range cs {
		cfg := s.RestConfig()
		cfg.QPS, cfg.Burst = -1, 0
		c, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		cs[i] = c
	}
	// Warm up both paths.
	run(t, cs, "without", 100, false)
	run(t, cs, "with", 100, true)
	off := run(t, cs, "without", creates, false)
	on := run(t, cs, "with", creates, true)
	fmt.Printf("\nService creates, %d parallel clients, %d each run\n", clients, creates)
	fmt.Printf("| run | creates/s |\n|---|---|\n")
	fmt.Printf("| allocation (cluster IP + node port) and quota on | %.0f |\n", on)
	fmt.Printf("| both off (headless, no quota in the namespace) | %.0f |\n", off)
	fmt.Printf("| ratio on/off | %.2f |\n", on/off)
}

var seq atomic.Int64

// run creates n services over the clients and returns creates per second.
func run(t *testing.T, cs []kubernetes.Interface, ns string, n int, allocate bool) float64 {
	t.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Int64
	start := time.Now()
	for _, c := range cs {
		wg.Add(1)
		go func(c kubernetes.Interface) {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s-%d", seq.Add(1))},
					Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
				if allocate {
					svc.Spec.Type = corev1.ServiceTypeNodePort
				} else {
					svc.Spec.ClusterIP = corev1.ClusterIPNone
				}
				if _, err := c.CoreV1().Services(ns).Create(context.Background(), svc, metav1.CreateOptions{}); err != nil {
					failed.Add(1)
				}
			}
		}(c)
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d creates failed in %s", f, ns)
	}
	return float64(n) / time.Since(start).Seconds()
}
