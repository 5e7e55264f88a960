package controllers

import (
	"context"
	"fmt"
	"os"
	"sort"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/wharf-io/wharf/test/e2e/framework"
)

// TestControllersBench prints how long an RC of 100 replicas takes to have
// all its pods, over three runs.
func TestControllersBench(t *testing.T) {
	if os.Getenv("WHARF_BENCH") != "1" || testing.Short() {
		t.Skip("set WHARF_BENCH=1 to run the controllers benchmark")
	}
	s := framework.Start(t, framework.Options{})
	client := s.Client()
	ctx := context.Background()
	var runs []time.Duration
	for run := 0; run < 3; run++ {
		name := fmt.Sprintf("bench-%d", run)
		w, err := client.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		if err != nil {
			t.Fatal(err)
		}
		replicas := int32(100)
		rc := &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.ReplicationControllerSpec{Replicas: &replicas, Template: &corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}
		start := time.Now()
		if _, err := client.CoreV1().ReplicationControllers("default").Create(ctx, rc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		seen := 0
		timeout := time.After(2 * time.Minute)
		for seen < 100 {
			select {
			case ev := <-w.ResultChan():
				if ev.Type == watch.Added {
					seen++
				}
			case <-timeout:
				t.Fatalf("only %d of 100 pods after 2 minutes", seen)
			}
		}
		runs = append(runs, time.Since(start))
		w.Stop()
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i] < runs[j] })
	fmt.Printf("\nRC of 100 replicas, time until all 100 pods exist (3 runs): min %s, median %s, max %s\n",
		runs[0].Round(time.Millisecond), runs[1].Round(time.Millisecond), runs[2].Round(time.Millisecond))
}
