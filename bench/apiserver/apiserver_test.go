package apiserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/wharf-io/wharf/test/e2e/framework"
)

// The workload. Kept small enough for a few minutes on a 2-core machine.
const (
	readyRuns       = 3 // fresh starts per storage variant
	readyPoll       = 10 * time.Millisecond
	idleWait        = 5 * time.Second
	settleWait      = 5 * time.Second
	loadObjects     = 10000 // Services and, again, Endpoints
	parallelClients = 8
	createsParallel = 4000 // ConfigMaps, 8 clients
	createsSerial   = 1000 // ConfigMaps, 1 client
	watchWrites     = 2000
	watchRate       = 200 // writes per second, spread over 8 clients
	mib             = 1 << 20
)

// Targets.
const (
	targetReady   = 2 * time.Second
	targetRSS     = 150 * mib
	targetWatch99 = 50 * time.Millisecond
)

// TestAPIServerBench measures the figures bench/apiserver.sh prints. It runs
// only with WHARF_BENCH=1; the table goes to $WHARF_BENCH_OUT (or stdout).
func TestAPIServerBench(t *testing.T) {
	if os.Getenv("WHARF_BENCH") != "1" {
		t.Skip("API server benchmark: set WHARF_BENCH=1 (or run bench/apiserver.sh / make bench)")
	}
	if testing.Short() {
		t.Skip("benchmark skipped in -short mode")
	}
	r := &report{}
	startLoad := loadavg()
	bin := framework.Binary(t)
	r.note("wharf binary", bin)
	r.note("machine", fmt.Sprintf("%d CPUs, %s/%s, %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version()))
	r.note("storage", "tmpfs (/dev/shm) with --etcd-unsafe-no-fsync, as test/e2e/framework starts it, unless a row says disk")

	benchReady(t, r, bin)
	benchMemory(t, r)
	benchThroughputAndWatch(t, r)

	r.note("loadavg", "at start "+startLoad+", at end "+loadavg()+" (1/5/15 min; other work on the machine skews every figure)")
	out := r.String()
	if p := os.Getenv("WHARF_BENCH_OUT"); p != "" {
		if err := os.WriteFile(p, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	} else {
		fmt.Print(out)
	}
}

// loadavg is the first three fields of /proc/loadavg.
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

// ---------------------------------------------------------------------------
// 1. start to /readyz

func benchReady(t *testing.T, r *report, bin string) {
	shm := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		shm = "/dev/shm"
	}
	variants := []struct {
		label string
		base  string
		fsync bool
	}{
		{"tmpfs, no fsync", shm, false},
		{"disk (" + os.TempDir() + "), fsync", "", true},
	}
	for _, v := range variants {
		var ds []time.Duration
		for i := 0; i < readyRuns; i++ {
			d := startToReady(t, bin, v.base, v.fsync)
			t.Logf("ready [%s] run %d: %v", v.label, i+1, d)
			ds = append(ds, d)
		}
		sortDur(ds)
		r.row("1. start → /readyz 200",
			fmt.Sprintf("fresh data dir, %s: min / median of %d", v.label, readyRuns),
			fmt.Sprintf("%s / %s", ms(ds[0]), ms(ds[len(ds)/2])),
			"< 2 s", pass(ds[len(ds)/2] < targetReady))
	}
}

// startToReady starts `wharf up` in a fresh data dir and returns the time
// from exec to the first 200 from /readyz (polled every 10 ms), then stops
// the process by pid.
func startToReady(t *testing.T, bin, base string, fsync bool) time.Duration {
	t.Helper()
	dir, err := os.MkdirTemp(base, "wharf-bench-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	port := framework.FreePort(t)
	args := []string{"up", "--data-dir", dir, "--secure-port", fmt.Sprint(port), "--bind-address", "127.0.0.1",
		"--etcd-client-url", fmt.Sprintf("http://127.0.0.1:%d", framework.FreePort(t)),
		"--etcd-peer-url", fmt.Sprintf("http://127.0.0.1:%d", framework.FreePort(t))}
	if !fsync {
		args = append(args, "--etcd-unsafe-no-fsync")
	}
	logf, err := os.Create(filepath.Join(dir, "wharf.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		Proxy:           nil, // straight to 127.0.0.1
	}}
	readyURL := fmt.Sprintf("https://127.0.0.1:%d/readyz", port)

	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	defer stopPid(cmd, done)

	deadline := start.Add(90 * time.Second)
	for {
		select {
		case <-done:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("wharf up exited before ready:\n%s", b)
		default:
		}
		resp, err := client.Get(readyURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start)
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("wharf up not ready after 90 s (last error %v):\n%s", err, b)
		}
		time.Sleep(readyPoll)
	}
}

// stopPid sends SIGTERM to the process we started (by pid), and SIGKILL
// after 20 s.
func stopPid(cmd *exec.Cmd, done chan struct{}) {
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// ---------------------------------------------------------------------------
// 2. memory

func benchMemory(t *testing.T, r *report) {
	s := framework.Start(t, framework.Options{})
	defer s.Stop()
	pid := s.PID()
	time.Sleep(idleWait)
	idle := readMem(t, pid)
	t.Logf("idle: %s", idle)
	r.row("2. memory (wharf process, etcd inside)", fmt.Sprintf("RSS idle, %v after ready (no objects of ours)", idleWait),
		mibStr(idle.rss), "—", "")
	r.row("", "  idle RSS split: anon / file / shmem",
		fmt.Sprintf("%s / %s / %s", mibStr(idle.anon), mibStr(idle.file), mibStr(idle.shmem)), "—", "")

	ctx := context.Background()
	clients := newClients(t, s, parallelClients)

	svcStats := runCreates(t, clients, loadObjects, func(ctx context.Context, c kubernetes.Interface, i int) error {
		_, err := c.CoreV1().Services("default").Create(ctx, service(i), metav1.CreateOptions{})
		return err
	})
	t.Logf("services: %s", svcStats)
	epStats := runCreates(t, clients, loadObjects, func(ctx context.Context, c kubernetes.Interface, i int) error {
		_, err := c.CoreV1().Endpoints("default").Create(ctx, endpoints(i), metav1.CreateOptions{})
		return err
	})
	t.Logf("endpoints: %s", epStats)
	if svcStats.errors+epStats.errors > 0 {
		t.Errorf("load: %d service and %d endpoints creates failed; first: %v / %v",
			svcStats.errors, epStats.errors, svcStats.firstErr, epStats.firstErr)
	}
	nSvc, nEp := countItems(ctx, t, clients[0], "services"), countItems(ctx, t, clients[0], "endpoints")
	loaded := readMem(t, pid)
	t.Logf("loaded (%d services, %d endpoints): %s", nSvc, nEp, loaded)

	// Settle: force a GC in the server (net/http/pprof's heap handler runs
	// runtime.GC() for ?gc=1; admin may read /debug/pprof), then wait.
	gcNote := "GC forced via /debug/pprof/heap?gc=1, then"
	if _, err := clients[0].CoreV1().RESTClient().Get().AbsPath("/debug/pprof/heap").Param("gc", "1").DoRaw(ctx); err != nil {
		gcNote = "no forced GC (" + err.Error() + "), only"
		t.Logf("forced GC failed: %v", err)
	}
	time.Sleep(settleWait)
	settled := readMem(t, pid)
	t.Logf("settled: %s", settled)
	heap := goHeapInuse(ctx, clients[0])

	stored := fmt.Sprintf("%d Services + %d Endpoints in default", nSvc, nEp)
	r.row("", "RSS right after storing "+stored, mibStr(loaded.rss), "< 150 MiB", pass(loaded.rss < targetRSS))
	r.row("", fmt.Sprintf("RSS after settle (%s %v wait)", gcNote, settleWait), mibStr(settled.rss), "< 150 MiB", pass(settled.rss < targetRSS))
	r.row("", "  settled RSS split: anon / file (wharf binary pages) / shmem (etcd bbolt mmap on tmpfs)",
		fmt.Sprintf("%s / %s / %s", mibStr(settled.anon), mibStr(settled.file), mibStr(settled.shmem)), "—", "")
	if heap > 0 {
		r.row("", "  settled Go heap in use (go_memstats_heap_inuse_bytes)", mibStr(heap), "—", "")
	}
	r.row("", "peak RSS (VmHWM) over the whole phase", mibStr(settled.hwm), "—", "")
	r.row("", fmt.Sprintf("load rate: Services, %d clients", parallelClients), svcStats.rateStr(), "—", "")
	r.row("", fmt.Sprintf("load rate: Endpoints, %d clients", parallelClients), epStats.rateStr(), "—", "")
}

func service(i int) *corev1.Service {
	name := fmt.Sprintf("svc-%05d", i)
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"bench": "apiserver"}},
		// No selector: the Endpoints are the benchmark's own (listing 3-10
		// style), so the endpoints controllers leave them alone.
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP,
			Ports: []corev1.ServicePort{{
				Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080),
			}},
		},
	}
}

func endpoints(i int) *corev1.Endpoints {
	return &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("svc-%05d", i), Labels: map[string]string{"bench": "apiserver"}},
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: fmt.Sprintf("10.244.%d.%d", i/250, i%250+1)}},
			Ports:     []corev1.EndpointPort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 8080}},
		}},
	}
}

// countItems counts the objects in default labelled by the benchmark,
// paging through the list.
func countItems(ctx context.Context, t *testing.T, c kubernetes.Interface, resource string) int {
	t.Helper()
	opts := metav1.ListOptions{LabelSelector: "bench=apiserver", Limit: 2000}
	n := 0
	for {
		var cont string
		switch resource {
		case "services":
			l, err := c.CoreV1().Services("default").List(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			n += len(l.Items)
			cont = l.Continue
		default:
			l, err := c.CoreV1().Endpoints("default").List(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			n += len(l.Items)
			cont = l.Continue
		}
		if cont == "" {
			return n
		}
		opts.Continue = cont
	}
}

type memInfo struct{ rss, hwm, anon, file, shmem int64 }

func (m memInfo) String() string {
	return fmt.Sprintf("VmRSS %s (anon %s, file %s, shmem %s), VmHWM %s",
		mibStr(m.rss), mibStr(m.anon), mibStr(m.file), mibStr(m.shmem), mibStr(m.hwm))
}

// readMem reads /proc/<pid>/status.
func readMem(t *testing.T, pid int) memInfo {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var m memInfo
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || fields[2] != "kB" {
			continue
		}
		kb, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			continue
		}
		switch fields[0] {
		case "VmRSS:":
			m.rss = kb << 10
		case "VmHWM:":
			m.hwm = kb << 10
		case "RssAnon:":
			m.anon = kb << 10
		case "RssFile:":
			m.file = kb << 10
		case "RssShmem:":
			m.shmem = kb << 10
		}
	}
	if m.rss == 0 {
		t.Fatalf("no VmRSS in /proc/%d/status", pid)
	}
	return m
}

// goHeapInuse reads go_memstats_heap_inuse_bytes from /metrics (0 if absent).
func goHeapInuse(ctx context.Context, c kubernetes.Interface) int64 {
	b, err := c.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "go_memstats_heap_inuse_bytes "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return int64(f)
			}
		}
	}
	return 0
}

// ---------------------------------------------------------------------------
// 3. create throughput and 4. write-to-watch latency, on a fresh server

func benchThroughputAndWatch(t *testing.T, r *report) {
	s := framework.Start(t, framework.Options{})
	defer s.Stop()
	ctx := context.Background()
	clients := newClients(t, s, parallelClients)
	for _, ns := range []string{"bench-watch", "bench-create"} {
		if _, err := clients[0].CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// 4 first, on the quiet server.
	w := watchLatency(t, s, clients)
	t.Logf("watch: %+v", w)

	par := runCreates(t, clients, createsParallel, func(ctx context.Context, c kubernetes.Interface, i int) error {
		_, err := c.CoreV1().ConfigMaps("bench-create").Create(ctx, configMap(fmt.Sprintf("par-%05d", i)), metav1.CreateOptions{})
		return err
	})
	t.Logf("configmaps, %d clients: %s", parallelClients, par)
	ser := runCreates(t, clients[:1], createsSerial, func(ctx context.Context, c kubernetes.Interface, i int) error {
		_, err := c.CoreV1().ConfigMaps("bench-create").Create(ctx, configMap(fmt.Sprintf("ser-%05d", i)), metav1.CreateOptions{})
		return err
	})
	t.Logf("configmaps, 1 client: %s", ser)
	if par.errors+ser.errors > 0 {
		t.Errorf("creates failed: %d parallel, %d serial; first: %v / %v", par.errors, ser.errors, par.firstErr, ser.firstErr)
	}

	r.row("3. create throughput (fresh server)", fmt.Sprintf("ConfigMaps, %d parallel clients, %d creates", parallelClients, createsParallel),
		par.rateStr(), "—", "")
	r.row("", "  per-create latency p50 / p99", fmt.Sprintf("%s / %s", ms(par.p50), ms(par.p99)), "—", "")
	r.row("", fmt.Sprintf("ConfigMaps, 1 client (for comparison), %d creates", createsSerial), ser.rateStr(), "—", "")
	r.row("", "  per-create latency p50 / p99", fmt.Sprintf("%s / %s", ms(ser.p50), ms(ser.p99)), "—", "")

	r.row("4. write → watch event", fmt.Sprintf("%d ConfigMap creates at %d/s over %d clients; received / lost",
		w.writes, watchRate, parallelClients), fmt.Sprintf("%d / %d", w.received, w.writes-w.received), "0 lost", pass(w.received == w.writes))
	r.row("", "from create sent (timestamp in data) to ADDED at watcher: p50", ms(w.p50), "—", "")
	r.row("", "from create sent (timestamp in data) to ADDED at watcher: p99", ms(w.p99), "< 50 ms", pass(w.received > 0 && w.p99 < targetWatch99))
	r.row("", "  max", ms(w.max), "—", "")
	r.row("", "  from create response to ADDED: p50 / p99 (negative: event first)", fmt.Sprintf("%s / %s", ms(w.afterRespP50), ms(w.afterRespP99)), "—", "")
	r.row("", "  create call latency during the run: p50 / p99", fmt.Sprintf("%s / %s", ms(w.createP50), ms(w.createP99)), "—", "")
}

func configMap(name string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Data:       map[string]string{"sent": strconv.FormatInt(time.Now().UnixNano(), 10), "payload": strings.Repeat("x", 64)},
	}
}

type watchResult struct {
	writes, received           int
	p50, p99, max              time.Duration
	afterRespP50, afterRespP99 time.Duration
	createP50, createP99       time.Duration
}

// watchLatency starts a plain client-go watch on bench-watch, checks it is
// live with one warm-up object, then creates watchWrites ConfigMaps at
// watchRate per second over the clients, each carrying its send time, and
// measures when the watcher sees each ADDED event.
func watchLatency(t *testing.T, s *framework.Server, clients []kubernetes.Interface) watchResult {
	const ns = "bench-watch"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watcher := newClients(t, s, 1)[0]
	wi, err := watcher.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer wi.Stop()

	type seen struct {
		at   time.Time
		sent time.Time
	}
	var mu sync.Mutex
	got := map[string]seen{}
	warm := make(chan struct{})
	all := make(chan struct{})
	go func() {
		for ev := range wi.ResultChan() {
			now := time.Now()
			if ev.Type != watch.Added {
				continue
			}
			cm, ok := ev.Object.(*corev1.ConfigMap)
			if !ok {
				continue
			}
			if cm.Name == "warm-up" {
				close(warm)
				continue
			}
			ns, err := strconv.ParseInt(cm.Data["sent"], 10, 64)
			if err != nil {
				continue
			}
			mu.Lock()
			if _, dup := got[cm.Name]; !dup {
				got[cm.Name] = seen{at: now, sent: time.Unix(0, ns)}
			}
			n := len(got)
			mu.Unlock()
			if n == watchWrites {
				close(all)
			}
		}
	}()
	if _, err := clients[0].CoreV1().ConfigMaps(ns).Create(ctx, configMap("warm-up"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-warm:
	case <-time.After(30 * time.Second):
		t.Fatal("watch did not deliver the warm-up object within 30 s")
	}

	// Pace: one write every 1/watchRate s, handed to whichever of the
	// clients is free.
	returned := make([]time.Time, watchWrites)
	createDur := make([]time.Duration, watchWrites)
	var failed atomic.Int64
	work := make(chan int)
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func(c kubernetes.Interface) {
			defer wg.Done()
			for i := range work {
				cm := configMap(fmt.Sprintf("w-%05d", i))
				start := time.Now()
				cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
				_, err := c.CoreV1().ConfigMaps(ns).Create(cctx, cm, metav1.CreateOptions{})
				ccancel()
				returned[i] = time.Now()
				createDur[i] = returned[i].Sub(start)
				if err != nil {
					failed.Add(1)
				}
			}
		}(c)
	}
	tick := time.NewTicker(time.Second / watchRate)
	for i := 0; i < watchWrites; i++ {
		<-tick.C
		work <- i
	}
	tick.Stop()
	close(work)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Errorf("watch phase: %d creates failed", n)
	}
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		t.Errorf("watch: not every event arrived within 30 s of the last write")
	}

	mu.Lock()
	defer mu.Unlock()
	var lat, after []time.Duration
	for name, sn := range got {
		lat = append(lat, sn.at.Sub(sn.sent))
		i, err := strconv.Atoi(strings.TrimPrefix(name, "w-"))
		if err == nil && i >= 0 && i < watchWrites && !returned[i].IsZero() {
			after = append(after, sn.at.Sub(returned[i]))
		}
	}
	sortDur(lat)
	sortDur(after)
	cd := append([]time.Duration(nil), createDur...)
	sortDur(cd)
	res := watchResult{writes: watchWrites, received: len(got),
		createP50: pct(cd, 50), createP99: pct(cd, 99)}
	if len(lat) > 0 {
		res.p50, res.p99, res.max = pct(lat, 50), pct(lat, 99), lat[len(lat)-1]
	}
	if len(after) > 0 {
		res.afterRespP50, res.afterRespP99 = pct(after, 50), pct(after, 99)
	}
	return res
}

// ---------------------------------------------------------------------------
// helpers

// newClients returns n admin clientsets, each with its own connection (a
// distinct Proxy func keeps client-go from sharing one transport, and it
// returns no proxy: straight to 127.0.0.1) and no client-side rate limit.
func newClients(t *testing.T, s *framework.Server, n int) []kubernetes.Interface {
	t.Helper()
	var out []kubernetes.Interface
	for i := 0; i < n; i++ {
		cfg := rest.CopyConfig(s.RestConfig())
		cfg.QPS, cfg.Burst = -1, 0
		cfg.Proxy = func(*http.Request) (*url.URL, error) { return nil, nil }
		cfg.WarningHandler = rest.NoWarnings{} // v1 Endpoints is deprecated; 10,000 warnings say nothing
		c, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

type createStats struct {
	ok, errors int
	firstErr   error
	elapsed    time.Duration
	p50, p99   time.Duration
}

func (c createStats) rate() float64 { return float64(c.ok) / c.elapsed.Seconds() }

func (c createStats) rateStr() string {
	return fmt.Sprintf("%.0f creates/s (%d in %.2f s)", c.rate(), c.ok, c.elapsed.Seconds())
}

func (c createStats) String() string {
	return fmt.Sprintf("%s, %d errors, p50 %s p99 %s", c.rateStr(), c.errors, ms(c.p50), ms(c.p99))
}

// runCreates runs n creates, as fast as they go, over the clients (one
// goroutine each).
func runCreates(t *testing.T, clients []kubernetes.Interface, n int, create func(context.Context, kubernetes.Interface, int) error) createStats {
	t.Helper()
	var next atomic.Int64
	durs := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range clients {
		wg.Add(1)
		go func(c kubernetes.Interface) {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				s := time.Now()
				errs[i] = create(ctx, c, i)
				durs[i] = time.Since(s)
				cancel()
			}
		}(c)
	}
	wg.Wait()
	st := createStats{elapsed: time.Since(start)}
	for _, err := range errs {
		if err != nil {
			if st.firstErr == nil {
				st.firstErr = err
			}
			st.errors++
		} else {
			st.ok++
		}
	}
	sortDur(durs)
	st.p50, st.p99 = pct(durs, 50), pct(durs, 99)
	return st
}

func sortDur(d []time.Duration) { sort.Slice(d, func(i, j int) bool { return d[i] < d[j] }) }

// pct is the nearest-rank percentile of sorted d.
func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	k := (p*len(d) + 99) / 100
	if k < 1 {
		k = 1
	}
	return d[k-1]
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func mibStr(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/mib) }

func pass(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// report is the printed table.
type report struct {
	notes [][2]string
	rows  [][5]string
}

func (r *report) note(k, v string) { r.notes = append(r.notes, [2]string{k, v}) }

func (r *report) row(section, what, value, target, result string) {
	r.rows = append(r.rows, [5]string{section, what, value, target, result})
}

func (r *report) String() string {
	var b strings.Builder
	b.WriteString("Wharf API server benchmark\n")
	for _, n := range r.notes {
		fmt.Fprintf(&b, "  %-13s %s\n", n[0]+":", n[1])
	}
	head := [5]string{"figure", "measurement", "value", "target", "result"}
	w := [5]int{}
	for _, row := range append([][5]string{head}, r.rows...) {
		for i, c := range row {
			if n := len([]rune(c)); n > w[i] {
				w[i] = n
			}
		}
	}
	line := func(row [5]string) {
		var parts []string
		for i, c := range row {
			parts = append(parts, c+strings.Repeat(" ", w[i]-len([]rune(c))))
		}
		b.WriteString(strings.TrimRight("| "+strings.Join(parts, " | ")+" |", " ") + "\n")
	}
	b.WriteString("\n")
	line(head)
	var sep [5]string
	for i := range sep {
		sep[i] = strings.Repeat("-", w[i])
	}
	line(sep)
	for _, row := range r.rows {
		line(row)
	}
	return b.String()
}
