package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/wharf-io/wharf/test/e2e/framework"
)

const chapter = "../../examples/chapter3/"

// TestChapterQuotaScenario is C23 and C24 at the API level: listing 3-16's
// quota in namespace test admits three pods and refuses the fourth with
// upstream's message; describe namespace shows Used and Hard.
func TestChapterQuotaScenario(t *testing.T) {
	s := framework.Start(t, framework.Options{})
	s.MustKubectl("create", "-f", chapter+"listing-3-14-test-ns.yaml")
	s.MustKubectl("create", "-f", chapter+"listing-3-16-quota.yaml")
	waitFor(t, 20*time.Second, func() (bool, string) {
		out := s.MustKubectl("describe", "namespace/test")
		return matches(`pods\s+0\s+3`, out), out
	})
	pod := readFile(t, chapter+"listing-3-15-ns-pod.yaml")
	for i := 1; i <= 3; i++ {
		s.MustKubectl("create", "-f", writeTemp(t, strings.Replace(pod, "name: utility", fmt.Sprintf("name: u%d", i), 1)))
	}
	out, err := s.KubectlIn(strings.Replace(pod, "name: utility", "name: u4", 1), "create", "-f", "-")
	want := `pods "u4" is forbidden: exceeded quota: test-quotas, requested: pods=1, used: pods=3, limited: pods=3`
	if err == nil || !strings.Contains(out, want) {
		t.Fatalf("fourth pod: %v\n%s\nwant %s", err, out, want)
	}
	out = s.MustKubectl("describe", "namespace/test")
	for _, re := range []string{`Resource\s+Used\s+Hard`, `pods\s+3\s+3`, `services\s+0\s+1`, `replicationcontrollers\s+0\s+1`} {
		if !matches(re, out) {
			t.Errorf("describe namespace/test lacks %q:\n%s", re, out)
		}
	}
	// Deleting a pod gives its share back.
	s.MustKubectl("delete", "pod", "u1", "-n", "test")
	waitFor(t, 20*time.Second, func() (bool, string) {
		out := s.MustKubectl("describe", "namespace/test")
		return matches(`pods\s+2\s+3`, out), out
	})
}

// TestQuotaNeverOverAdmits: 50 parallel creates against pods=10 admit
// exactly 10; after a kill -9 in the middle of a second storm, usage again
// equals what exists once the server is back.
func TestQuotaNeverOverAdmits(t *testing.T) {
	s := framework.Start(t, framework.Options{})
	client := s.Client()
	ctx := context.Background()
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "storm"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "ten"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("10")}}}
	if _, err := client.CoreV1().ResourceQuotas("storm").Create(ctx, q, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, func() (bool, string) {
		got, err := client.CoreV1().ResourceQuotas("storm").Get(ctx, "ten", metav1.GetOptions{})
		return err == nil && len(got.Status.Hard) > 0, fmt.Sprint(got, err)
	})
	admitted := storm(t, client, "a", 50)
	if admitted != 10 {
		t.Fatalf("%d of 50 admitted against pods=10", admitted)
	}
	checkUsed(t, client, 10)

	// Free five, then storm again and kill the server in the middle.
	for i := 0; i < 50; i++ {
		_ = client.CoreV1().Pods("storm").Delete(ctx, fmt.Sprintf("a-%d", i), metav1.DeleteOptions{})
		if countPods(t, client) <= 5 {
			break
		}
	}
	done := make(chan int)
	go func() { done <- storm(t, client, "b", 50) }()
	time.Sleep(30 * time.Millisecond)
	s.Kill9()
	<-done
	s.Restart()
	client = s.Client()
	n := countPods(t, client)
	if n > 10 {
		t.Fatalf("%d pods exist against pods=10", n)
	}
	checkUsed(t, client, n)
}

// storm creates n pods in parallel and returns how many were admitted.
func storm(t *testing.T, client kubernetes.Interface, prefix string, n int) int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := client.CoreV1().Pods("storm").Create(context.Background(), pod(fmt.Sprintf("%s-%d", prefix, i)), metav1.CreateOptions{})
			if err == nil {
				mu.Lock()
				admitted++
				mu.Unlock()
			} else if !apierrors.IsForbidden(err) && !strings.Contains(err.Error(), "connection refused") &&
				!strings.Contains(err.Error(), "EOF") && !strings.Contains(err.Error(), "reset by peer") {
				t.Logf("create %s-%d: %v", prefix, i, err)
			}
		}(i)
	}
	wg.Wait()
	return admitted
}

func countPods(t *testing.T, client kubernetes.Interface) int {
	list, err := client.CoreV1().Pods("storm").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return len(list.Items)
}

// checkUsed waits for the quota's used pods to equal want.
func checkUsed(t *testing.T, client kubernetes.Interface, want int) {
	t.Helper()
	waitFor(t, 60*time.Second, func() (bool, string) {
		q, err := client.CoreV1().ResourceQuotas("storm").Get(context.Background(), "ten", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		used := q.Status.Used[corev1.ResourcePods]
		return used.Value() == int64(want), fmt.Sprintf("used pods %s, want %d", used.String(), want)
	})
}

func waitFor(t *testing.T, d time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met in %s: %s", d, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestLimitRangeDefaultsAndLimits: a LimitRange's defaults are filled in
// and its maximum enforced with upstream's message.
func TestLimitRangeDefaultsAndLimits(t *testing.T) {
	s := framework.Start(t, framework.Options{})
	client := s.Client()
	ctx := context.Background()
	lr := &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "limits"}, Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
		Type:           corev1.LimitTypeContainer,
		Default:        corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")},
		DefaultRequest: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
		Max:            corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
	}}}}
	if _, err := client.CoreV1().LimitRanges("default").Create(ctx, lr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var got *corev1.Pod
	waitFor(t, 20*time.Second, func() (bool, string) {
		_ = client.CoreV1().Pods("default").Delete(ctx, "defaulted", metav1.DeleteOptions{})
		p, err := client.CoreV1().Pods("default").Create(ctx, pod("defaulted"), metav1.CreateOptions{})
		if err != nil {
			return false, err.Error()
		}
		got = p
		return p.Spec.Containers[0].Resources.Limits.Cpu().String() == "500m", fmt.Sprint(p.Spec.Containers[0].Resources)
	})
	if r := got.Spec.Containers[0].Resources.Requests.Cpu().String(); r != "100m" {
		t.Errorf("default request %s, want 100m", r)
	}
	big := pod("big")
	big.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}
	_, err := client.CoreV1().Pods("default").Create(ctx, big, metav1.CreateOptions{})
	want := `pods "big" is forbidden: maximum cpu usage per Container is 1, but limit is 2`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("over the maximum: %v, want %s", err, want)
	}
	out := s.MustKubectl("describe", "namespace", "default")
	if !matches(`Container\s+cpu\s+-\s+1\s+100m\s+500m`, out) {
		t.Errorf("describe namespace lacks the limit range:\n%s", out)
	}
}

// TestClasslessIngressGetsTheDefaultClass: listing 3-9 has no class and gets
// wharf's, the default IngressClass.
func TestClasslessIngressGetsTheDefaultClass(t *testing.T) {
	s := framework.Start(t, framework.Options{})
	s.MustKubectl("create", "-f", chapter+"listing-3-09-whale-ingress.yaml")
	out := s.MustKubectl("get", "ingress", "whale-ingress")
	if !matches(`whale-ingress\s+wharf\s+a\.whale\.hey,b\.whale\.hey`, out) {
		t.Errorf("get ingress:\n%s", out)
	}
}
