package endpoints

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/wharf-io/wharf/test/e2e/framework"
)

const (
	services  = 1000 // each selecting one pod
	flips     = 1000 // not ready -> ready, one pod at a time
	parallel  = 8    // clients creating the objects
	namespace = "bench-endpoints"
	target99  = 100 * time.Millisecond
)

// seen records, per pod IP, when a watch first showed it ready and whether
// it has been seen at all.
type seen struct {
	mu      sync.Mutex
	cond    *sync.Cond
	present map[string]bool
	ready   map[string]time.Time
	closed  error
}

func newSeen() *seen {
	s := &seen{present: map[string]bool{}, ready: map[string]time.Time{}}
	s.cond = sync.NewCond(&s.mu)
	return s
}

func (s *seen) mark(ip string, ready bool, at time.Time) {
	s.present[ip] = true
	if _, ok := s.ready[ip]; ready && !ok {
		s.ready[ip] = at
	}
}

func (s *seen) count() (present, ready int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.present), len(s.ready)
}

// waitReady waits until ip was seen ready or the deadline passes.
func (s *seen) waitReady(ip string, deadline time.Time) (time.Time, error) {
	timer := time.AfterFunc(time.Until(deadline), func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer timer.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if at, ok := s.ready[ip]; ok {
			return at, nil
		}
		if s.closed != nil {
			return time.Time{}, s.closed
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("%s not ready in time", ip)
		}
		s.cond.Wait()
	}
}

// follow applies every event of w to s until the watch ends.
func follow(w watch.Interface, s *seen, apply func(obj interface{}, at time.Time)) {
	for ev := range w.ResultChan() {
		at := time.Now()
		if ev.Type == watch.Error {
			s.mu.Lock()
			s.closed = fmt.Errorf("watch error: %v", ev.Object)
			s.cond.Broadcast()
			s.mu.Unlock()
			return
		}
		if ev.Type == watch.Deleted || ev.Type == watch.Bookmark {
			continue
		}
		s.mu.Lock()
		apply(ev.Object, at)
		s.cond.Broadcast()
		s.mu.Unlock()
	}
	s.mu.Lock()
	if s.closed == nil {
		s.closed = fmt.Errorf("watch ended")
	}
	s.cond.Broadcast()
	s.mu.Unlock()
}

func podIP(i int) string { return fmt.Sprintf("10.244.%d.%d", i/250, i%250+1) }

// TestEndpointsBench measures pod-Ready-to-endpoints latency. It runs only
// with WHARF_BENCH=1.
func TestEndpointsBench(t *testing.T) {
	if os.Getenv("WHARF_BENCH") != "1" {
		t.Skip("endpoints benchmark: set WHARF_BENCH=1")
	}
	if testing.Short() {
		t.Skip("benchmark skipped in -short mode")
	}
	s := framework.Start(t, framework.Options{})
	cfg := s.RestConfig()
	cfg.WarningHandler = rest.NoWarnings{}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	eps, slices := newSeen(), newSeen()
	epW, err := client.CoreV1().Endpoints(namespace).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer epW.Stop()
	slW, err := client.DiscoveryV1().EndpointSlices(namespace).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer slW.Stop()
	go follow(epW, eps, func(obj interface{}, at time.Time) {
		ep, ok := obj.(*corev1.Endpoints)
		if !ok {
			return
		}
		for _, ss := range ep.Subsets {
			for _, a := range ss.Addresses {
				eps.mark(a.IP, true, at)
			}
			for _, a := range ss.NotReadyAddresses {
				eps.mark(a.IP, false, at)
			}
		}
	})
	go follow(slW, slices, func(obj interface{}, at time.Time) {
		sl, ok := obj.(*discoveryv1.EndpointSlice)
		if !ok {
			return
		}
		for _, e := range sl.Endpoints {
			ready := e.Conditions.Ready != nil && *e.Conditions.Ready
			for _, a := range e.Addresses {
				slices.mark(a, ready, at)
			}
		}
	})

	// Load: services, pods, and pod status (running, an IP, not ready).
	loadStart := time.Now()
	runParallel(t, services, func(i int) error {
		name := fmt.Sprintf("svc-%04d", i)
		_, err := client.CoreV1().Services(namespace).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}},
		}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		p, err := client.CoreV1().Pods(namespace).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%04d", i), Labels: map[string]string{"app": name}},
			Spec: corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "c", Image: "busybox",
				Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}},
		}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		return setStatus(ctx, client, p, podIP(i), false)
	})
	t.Logf("created %d services and pods in %v", services, time.Since(loadStart).Round(time.Millisecond))
	deadline := time.Now().Add(5 * time.Minute)
	for {
		ep, _ := eps.count()
		sl, _ := slices.count()
		if ep == services && sl == services {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after load: %d pods in Endpoints, %d in EndpointSlices, want %d", ep, sl, services)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("all %d pods listed (not ready) in Endpoints and EndpointSlices %v after the load started", services, time.Since(loadStart).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // let the controllers go idle

	pods := make([]*corev1.Pod, flips)
	for i := 0; i < flips; i++ {
		p, err := client.CoreV1().Pods(namespace).Get(ctx, fmt.Sprintf("pod-%04d", i%services), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pods[i] = p
	}
	var epLat, slLat, bothLat, writeLat []time.Duration
	flipStart := time.Now()
	for i := 0; i < flips; i++ {
		ip := podIP(i % services)
		start := time.Now()
		if err := setStatus(ctx, client, pods[i], ip, true); err != nil {
			t.Fatalf("flip %d: %v", i, err)
		}
		writeLat = append(writeLat, time.Since(start))
		d := time.Now().Add(30 * time.Second)
		atEp, err := eps.waitReady(ip, d)
		if err != nil {
			t.Fatalf("flip %d: Endpoints: %v", i, err)
		}
		atSl, err := slices.waitReady(ip, d)
		if err != nil {
			t.Fatalf("flip %d: EndpointSlice: %v", i, err)
		}
		e, sl := atEp.Sub(start), atSl.Sub(start)
		epLat, slLat = append(epLat, e), append(slLat, sl)
		bothLat = append(bothLat, max(e, sl))
	}
	flipTime := time.Since(flipStart)

	var b strings.Builder
	fmt.Fprintf(&b, "Wharf endpoints benchmark (%d services with one pod each, %d not-ready -> ready flips, one at a time)\n", services, flips)
	fmt.Fprintf(&b, "  machine: %d CPUs, %s/%s, %s; loadavg %s\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), loadavg())
	fmt.Fprintf(&b, "  measured from UpdateStatus sent to the watch event showing the address ready; flips took %v in all\n", flipTime.Round(time.Millisecond))
	fmt.Fprintf(&b, "  %-36s %10s %10s %10s %10s  %s\n", "latency", "p50", "p90", "p99", "max", "p99 target")
	for _, row := range []struct {
		name string
		d    []time.Duration
	}{{"Endpoints (addresses)", epLat}, {"EndpointSlice (ready=true)", slLat}, {"both", bothLat}} {
		p50, p90, p99, mx := percentiles(row.d)
		res := "PASS"
		if p99 >= target99 {
			res = "MISS"
		}
		fmt.Fprintf(&b, "  %-36s %10s %10s %10s %10s  < %v %s\n", row.name, ms(p50), ms(p90), ms(p99), ms(mx), target99, res)
	}
	p50, p90, p99, mx := percentiles(writeLat)
	fmt.Fprintf(&b, "  %-36s %10s %10s %10s %10s  (context: the UpdateStatus round trip itself)\n", "pod UpdateStatus response", ms(p50), ms(p90), ms(p99), ms(mx))
	out := b.String()
	t.Log("\n" + out)
	if p := os.Getenv("WHARF_BENCH_OUT"); p != "" {
		if err := os.WriteFile(p, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, p99, _ := percentiles(bothLat); p99 >= target99 {
		t.Errorf("p99 %v, target < %v", p99, target99)
	}
}

func setStatus(ctx context.Context, client kubernetes.Interface, p *corev1.Pod, ip string, ready bool) error {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	for attempt := 0; ; attempt++ {
		p.Status.Phase = corev1.PodRunning
		p.Status.PodIP = ip
		p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st, LastTransitionTime: metav1.Now()}}
		_, err := client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		if err == nil || !apierrors.IsConflict(err) || attempt > 5 {
			return err
		}
		cur, gerr := client.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if gerr != nil {
			return gerr
		}
		*p = *cur
	}
}

func runParallel(t *testing.T, n int, f func(i int) error) {
	t.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		t.Fatal(err)
	}
}

func percentiles(d []time.Duration) (p50, p90, p99, mx time.Duration) {
	if len(d) == 0 {
		return
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(q float64) time.Duration {
		i := int(q*float64(len(s))+0.5) - 1
		if i < 0 {
			i = 0
		}
		if i >= len(s) {
			i = len(s) - 1
		}
		return s[i]
	}
	return at(0.50), at(0.90), at(0.99), s[len(s)-1]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
