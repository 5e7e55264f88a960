package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/wharf-io/wharf/test/e2e/framework"
)

func configMap(name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: data}
}

// TestInformerSeesEveryChangeInOrder runs a client-go shared informer with
// client-go's defaults (watch-list on) over services and pods and checks it
// syncs and sees each add, update and delete in order.
func TestInformerSeesEveryChangeInOrder(t *testing.T) {
	s := framework.Start(t, framework.Options{})
	client := s.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Something that exists before the informer starts.
	if _, err := client.CoreV1().Services("default").Create(ctx, service("before"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	var mu sync.Mutex
	var events []string
	record := func(kind string) cache.ResourceEventHandlerFuncs {
		return cache.ResourceEventHandlerFuncs{
			AddFunc: func(o interface{}) {
				mu.Lock()
				defer mu.Unlock()
				events = append(events, kind+" add "+o.(metav1.Object).GetName())
			},
			UpdateFunc: func(old, o interface{}) {
				mu.Lock()
				defer mu.Unlock()
				if old.(metav1.Object).GetResourceVersion() != o.(metav1.Object).GetResourceVersion() {
					events = append(events, kind+" update "+o.(metav1.Object).GetName())
				}
			},
			DeleteFunc: func(o interface{}) {
				mu.Lock()
				defer mu.Unlock()
				if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
					o = d.Obj
				}
				events = append(events, kind+" delete "+o.(metav1.Object).GetName())
			},
		}
	}
	if _, err := factory.Core().V1().Services().Informer().AddEventHandler(record("svc")); err != nil {
		t.Fatal(err)
	}
	if _, err := factory.Core().V1().Pods().Informer().AddEventHandler(record("pod")); err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("informer for %v never synced", typ)
		}
	}

	svcs := client.CoreV1().Services("default")
	pods := client.CoreV1().Pods("default")
	if _, err := svcs.Create(ctx, service("web"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Create(ctx, pod("p1"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svcs.Patch(ctx, "web", types.MergePatchType, []byte(`{"metadata":{"labels":{"v":"2"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := svcs.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// An unscheduled pod is deleted at once, as upstream.
	if err := pods.Delete(ctx, "p1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"svc add before", "svc add kubernetes", "svc add web", "pod add p1", "svc update web", "svc delete web", "pod delete p1"}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		got := append([]string(nil), events...)
		mu.Unlock()
		if containsInOrder(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("informer events:\n got %q\nwant (in order) %q", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// containsInOrder reports whether want is a subsequence of got once the
// initial adds (whose order among themselves is not defined) are sorted out.
func containsInOrder(got, want []string) bool {
	initial := map[string]bool{}
	for _, w := range want[:2] {
		initial[w] = true
	}
	seen := 0
	for _, g := range got {
		if initial[g] {
			seen++
		}
	}
	if seen < 2 {
		return false
	}
	i := 2
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

func service(name string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
}

func pod(name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
}

// TestWatchResourceVersions checks watch from 0 (current state, then
// changes), from an exact revision (only later changes) and from a compacted
// revision (410 Expired).
func TestWatchResourceVersions(t *testing.T) {
	s := framework.Start(t, framework.Options{Extra: []string{"--etcd-compaction-interval=1s"}})
	client := s.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cms := client.CoreV1().ConfigMaps("default")

	first, err := cms.Create(ctx, configMap("a", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	second, err := cms.Create(ctx, configMap("b", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// From 0: synthetic ADDED for what exists.
	w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for len(names) < 2 {
		ev := next(t, w)
		if ev.Type == watch.Added {
			names[ev.Object.(*corev1.ConfigMap).Name] = true
		}
	}
	w.Stop()

	// From an exact revision: only what happened after it.
	w, err = cms.Watch(ctx, metav1.ListOptions{ResourceVersion: first.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	ev := next(t, w)
	if ev.Type != watch.Added || ev.Object.(*corev1.ConfigMap).Name != "b" ||
		ev.Object.(*corev1.ConfigMap).ResourceVersion != second.ResourceVersion {
		t.Fatalf("watch from %s: first event %s %v", first.ResourceVersion, ev.Type, ev.Object)
	}
	w.Stop()

	// Move history on, let compaction (every 1 s, to the revision of the
	// previous round) pass the first revision, and restart so the watch
	// cache starts after it too: watching from it is then 410 Expired.
	for i := 0; i < 5; i++ {
		if _, err := cms.Update(ctx, configMap("b", map[string]string{"i": strconv.Itoa(i)}), metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
	}
	s.Restart()
	cms = s.Client().CoreV1().ConfigMaps("default")
	w, err = cms.Watch(ctx, metav1.ListOptions{ResourceVersion: first.ResourceVersion})
	if err == nil {
		ev, ok := tryNext(w, 5*time.Second)
		w.Stop()
		if !ok || ev.Type != watch.Error {
			t.Fatalf("watch from compacted revision %s: got %v %v, want 410", first.ResourceVersion, ev.Type, ev.Object)
		}
		err = apierrors.FromObject(ev.Object)
	}
	if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
		t.Fatalf("watch from compacted revision: want 410 Expired, got %v", err)
	}
}

func next(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	ev, ok := tryNext(w, 10*time.Second)
	if !ok {
		t.Fatal("no watch event within 10s")
	}
	return ev
}

func tryNext(w watch.Interface, d time.Duration) (watch.Event, bool) {
	select {
	case ev, ok := <-w.ResultChan():
		return ev, ok
	case <-time.After(d):
		return watch.Event{}, false
	}
}

// TestConcurrentUpdatesOneWins: 20 updates carrying the same resourceVersion
// race; exactly one succeeds and the others get 409 Conflict.
func TestConcurrentUpdatesOneWins(t *testing.T) {
	s := framework.Start(t, framework.Options{})
	client := s.Client()
	ctx := context.Background()
	cm, err := client.CoreV1().ConfigMaps("default").Create(ctx, configMap("race", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	results := make([]error, 20)
	start := make(chan struct{})
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := cm.DeepCopy()
			c.Data = map[string]string{"writer": strconv.Itoa(i)}
			<-start
			_, results[i] = client.CoreV1().ConfigMaps("default").Update(ctx, c, metav1.UpdateOptions{})
		}(i)
	}
	close(start)
	wg.Wait()
	ok, conflicts := 0, 0
	for _, err := range results {
		switch {
		case err == nil:
			ok++
		case apierrors.IsConflict(err):
			conflicts++
			want := `Operation cannot be fulfilled on configmaps "race": the object has been modified; please apply your changes to the latest version and try again`
			if err.Error() != want {
				t.Errorf("conflict message %q", err)
			}
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 || conflicts != 19 {
		t.Fatalf("want 1 success and 19 conflicts, got %d and %d", ok, conflicts)
	}
}

// TestKill9KeepsEverything: after kill -9 and a restart every object comes
// back with the same resourceVersion and uid.
func TestKill9KeepsEverything(t *testing.T) {
	s := framework.Start(t, framework.Options{})
	client := s.Client()
	ctx := context.Background()
	before := map[string]metav1.ObjectMeta{}
	for i := 0; i < 20; i++ {
		cm, err := client.CoreV1().ConfigMaps("default").Create(ctx, configMap(fmt.Sprintf("cm-%d", i), map[string]string{"i": strconv.Itoa(i)}), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		before[cm.Name] = cm.ObjectMeta
	}
	svc, err := client.CoreV1().Services("default").Create(ctx, service("keep"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Kill9()
	s.Restart()
	client = s.Client()
	list, err := client.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, cm := range list.Items {
		if b, ok := before[cm.Name]; ok {
			found++
			if cm.UID != b.UID || cm.ResourceVersion != b.ResourceVersion {
				t.Errorf("%s: uid/rv %s/%s, before %s/%s", cm.Name, cm.UID, cm.ResourceVersion, b.UID, b.ResourceVersion)
			}
		}
	}
	if found != len(before) {
		t.Errorf("found %d of %d configmaps after restart", found, len(before))
	}
	got, err := client.CoreV1().Services("default").Get(ctx, "keep", metav1.GetOptions{})
	if err != nil || got.UID != svc.UID || got.ResourceVersion != svc.ResourceVersion {
		t.Errorf("service after restart: %v %v", got, err)
	}
}

// TestTwoServersShareEtcd: a second server on the first one's etcd serves
// the same objects with the same CA and join token.
func TestTwoServersShareEtcd(t *testing.T) {
	a := framework.Start(t, framework.Options{})
	b := framework.Start(t, framework.Options{Command: "server", EtcdServers: a.EtcdURL})
	ctx := context.Background()
	created, err := a.Client().CoreV1().ConfigMaps("default").Create(ctx, configMap("shared", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.Client().CoreV1().ConfigMaps("default").Get(ctx, "shared", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.UID != created.UID || got.ResourceVersion != created.ResourceVersion {
		t.Errorf("second server sees %s/%s, first wrote %s/%s", got.UID, got.ResourceVersion, created.UID, created.ResourceVersion)
	}
	// The same CA: the first server's admin credentials work on the second.
	cfg := a.RestConfig()
	cfg.Host = b.URL()
	cross, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cross.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Errorf("admin of server A on server B: %v", err)
	}
	ta, tb := readFile(t, a.DataDir+"/token"), readFile(t, b.DataDir+"/token")
	if ta == "" || ta != tb {
		t.Errorf("join tokens differ: %q vs %q", ta, tb)
	}

	// The kubernetes service's endpoints list both servers, and lose the
	// second when it stops.
	waitPorts := func(want ...int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			ep, err := a.Client().CoreV1().Endpoints("default").Get(ctx, "kubernetes", metav1.GetOptions{})
			var got []int
			if err == nil {
				for _, ss := range ep.Subsets {
					for _, p := range ss.Ports {
						got = append(got, int(p.Port))
					}
				}
			}
			if fmt.Sprint(got) == fmt.Sprint(want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("kubernetes endpoints ports %v (err %v), want %v", got, err, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	pa, pb := a.Port, b.Port
	if pa < pb {
		waitPorts(pa, pb)
	} else {
		waitPorts(pb, pa)
	}
	b.Stop()
	waitPorts(pa)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}
