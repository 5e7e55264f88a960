package pods

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wharf-io/wharf/internal/agent/podnet"
)

// podWorker drives one pod. Its fields are the run goroutine's, except
// those under mu (the latest pod object and the probe results).
type podWorker struct {
	m    *Manager
	uid  types.UID
	ref  podnet.PodRef
	wake chan struct{}
	stop chan bool // closed-over value: stop the pods too

	mu     sync.Mutex
	latest *corev1.Pod
	pub    published

	sandbox   *podnet.Sandbox
	sandboxAt time.Time
	netErr    string
	volumes   volumeSet
	volPaths  map[string]string
	ctrs      map[string]*ctr
	posted    *corev1.PodStatus
	failed    string
	failedMsg string
}

func newPodWorker(m *Manager, pod *corev1.Pod) *podWorker {
	w := &podWorker{m: m, uid: pod.UID, ref: refOf(pod), wake: make(chan struct{}, 1), stop: make(chan bool, 1)}
	w.latest = pod
	return w
}

func (w *podWorker) wakeUp() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// shutdown ends the worker when the agent stops; with stopPods the pod's
// containers and sandbox go too.
func (w *podWorker) shutdown(stopPods bool) {
	select {
	case w.stop <- stopPods:
	default:
	}
}

func (w *podWorker) dir() string { return filepath.Join(w.m.podsDir(), string(w.uid)) }
func (w *podWorker) logDir() string {
	return filepath.Join(w.m.logsDir(), w.ref.Namespace+"_"+w.ref.Name+"_"+string(w.uid))
}

// current is the pod as the API has it now; nil once it is gone.
func (w *podWorker) current() *corev1.Pod {
	pod, err := w.m.pods.Pods(w.ref.Namespace).Get(w.ref.Name)
	if err != nil || pod.UID != w.uid {
		return nil
	}
	w.mu.Lock()
	w.latest = pod
	w.mu.Unlock()
	return pod
}

// run syncs the pod on every event, container exit and probe change, and
// once a second, until the pod is gone.
func (w *podWorker) run(ctx context.Context) {
	w.adopt()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		done := w.sync(ctx)
		w.publish()
		if done {
			return
		}
		select {
		case stopPods := <-w.stop:
			if stopPods {
				w.stopForExit()
			}
			w.stopProbes()
			return
		case <-w.wake:
		case <-tick.C:
		}
	}
}

// adopt loads what is on disk for this pod: its containers' attempts (an
// agent restarted while the pod ran).
func (w *podWorker) adopt() {
	w.ctrs = map[string]*ctr{}
	ids, _ := w.m.cfg.Runtime.List()
	prefix := string(w.uid) + "_"
	type attempt struct {
		n  int
		id string
	}
	byName := map[string][]attempt{}
	for _, id := range ids {
		rest, ok := strings.CutPrefix(id, prefix)
		if !ok {
			continue
		}
		i := strings.LastIndex(rest, "_")
		if i < 0 {
			continue
		}
		n, err := strconv.Atoi(rest[i+1:])
		if err != nil {
			continue
		}
		byName[rest[:i]] = append(byName[rest[:i]], attempt{n, id})
	}
	for name, as := range byName {
		sort.Slice(as, func(i, j int) bool { return as[i].n < as[j].n })
		c := &ctr{name: name, attempt: as[len(as)-1].n, id: as[len(as)-1].id, started: true, adopted: true}
		if st, err := w.m.cfg.Runtime.State(c.id); err == nil {
			c.st = st
		}
		if len(as) > 1 {
			if st, err := w.m.cfg.Runtime.State(as[len(as)-2].id); err == nil {
				c.last, c.lastID = &st, as[len(as)-2].id
			}
		}
		for _, a := range as[:max(0, len(as)-2)] {
			w.m.cfg.Runtime.Remove(a.id)
		}
		w.ctrs[name] = c
	}
}

// sync moves the pod one step towards its spec; true when the worker is
// done (the pod is gone and everything of it removed).
func (w *podWorker) sync(ctx context.Context) bool {
	pod := w.current()
	if pod == nil {
		w.teardown(ctx, time.Second)
		return true
	}
	if pod.DeletionTimestamp != nil {
		grace := 30 * time.Second
		if g := pod.DeletionGracePeriodSeconds; g != nil {
			grace = time.Duration(*g) * time.Second
		}
		w.teardown(ctx, max(grace, 2*time.Second))
		w.finalDelete(ctx, pod)
		return true
	}
	if isTerminal(pod.Status.Phase) {
		w.stopContainers(time.Second)
		if w.sandbox != nil {
			w.m.cfg.Network.Teardown(ctx, w.ref)
			w.sandbox = nil
		}
		return false
	}
	w.record(pod)
	if w.ensureSandbox(ctx, pod) && w.ensureVolumes(ctx, pod) {
		w.refreshStates()
		w.resume(ctx, pod)
		if w.runInitContainers(ctx, pod) {
			w.runContainers(ctx, pod)
		}
	}
	w.postStatus(ctx, pod)
	return false
}

func isTerminal(p corev1.PodPhase) bool { return p == corev1.PodSucceeded || p == corev1.PodFailed }

// record writes pod.json once, so the pod can be cleaned up after an
// agent restart even if it is deleted meanwhile.
func (w *podWorker) record(pod *corev1.Pod) {
	path := filepath.Join(w.dir(), "pod.json")
	if _, err := os.Stat(path); err == nil {
		return
	}
	os.MkdirAll(w.dir(), 0o755)
	data, _ := json.Marshal(podRecord{PodRef: w.ref})
	os.WriteFile(path, data, 0o644)
}

// ensureSandbox gives the pod its network: recovered after a restart, or
// set up once. Host-network pods use the node's.
func (w *podWorker) ensureSandbox(ctx context.Context, pod *corev1.Pod) bool {
	if w.sandbox != nil {
		return true
	}
	if pod.Spec.HostNetwork {
		w.sandbox = &podnet.Sandbox{}
		w.sandboxAt = time.Now()
		return true
	}
	sb, ok, err := w.m.cfg.Network.Recover(ctx, w.ref)
	if err != nil || !ok {
		if err != nil {
			logf("pod %s/%s: recover sandbox: %v (setting up a new one)", pod.Namespace, pod.Name, err)
			w.m.cfg.Network.Teardown(ctx, w.ref)
		}
		sb, err = w.m.cfg.Network.Setup(ctx, w.ref, portMappings(pod))
	}
	if err != nil {
		msg := "Failed to create pod sandbox: " + err.Error()
		if msg != w.netErr {
			w.event(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", msg)
		}
		w.netErr = msg
		return false
	}
	w.netErr = ""
	w.sandbox = &sb
	w.sandboxAt = time.Now()
	return true
}

func portMappings(pod *corev1.Pod) []podnet.PortMapping {
	var out []podnet.PortMapping
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort == 0 {
				continue
			}
			proto := strings.ToLower(string(p.Protocol))
			if proto == "" {
				proto = "tcp"
			}
			out = append(out, podnet.PortMapping{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: proto, HostIP: p.HostIP})
		}
	}
	return out
}

// podIPs are the pod's addresses: its sandbox's, or the node's.
func (w *podWorker) podIPs() []string {
	if w.sandbox == nil {
		return nil
	}
	if w.sandbox.NetnsPath == "" { // the host's network
		return []string{w.m.cfg.NodeIP}
	}
	var out []string
	for _, ip := range w.sandbox.IPs {
		out = append(out, ip.String())
	}
	return out
}

// ensureVolumes writes the pod's volumes once, and again when a token
// needs refreshing.
func (w *podWorker) ensureVolumes(ctx context.Context, pod *corev1.Pod) bool {
	if w.volPaths != nil && !w.volumes.NeedsRefresh(time.Now()) {
		return true
	}
	w.volumes.dir = filepath.Join(w.dir(), "volumes")
	paths, err := w.volumes.write(ctx, pod, w.m.objects)
	if err != nil {
		w.event(pod, corev1.EventTypeWarning, "FailedMount", "MountVolume.SetUp failed: "+err.Error())
		return w.volPaths != nil
	}
	w.volPaths = paths
	return true
}

// teardown stops every container within grace, removes them, the sandbox
// and the pod's files.
func (w *podWorker) teardown(ctx context.Context, grace time.Duration) {
	if w.ctrs == nil {
		w.adopt()
	}
	w.stopContainers(grace)
	w.removeContainers(ctx)
	os.RemoveAll(w.dir())
	os.RemoveAll(w.logDir())
}

// stopForExit is a clean agent stop: containers, their cgroups and the
// sandbox go; the pod's record and logs stay for the next start, which
// runs the pod again.
func (w *podWorker) stopForExit() {
	w.stopContainers(2 * time.Second)
	w.removeContainers(context.Background())
}

// removeContainers removes every container state dir and cgroup of the pod
// and its sandbox.
func (w *podWorker) removeContainers(ctx context.Context) {
	ids, _ := w.m.cfg.Runtime.List()
	for _, id := range ids {
		if strings.HasPrefix(id, string(w.uid)+"_") {
			if err := w.m.cfg.Runtime.Remove(id); err != nil {
				logf("pod %s/%s: %v", w.ref.Namespace, w.ref.Name, err)
			}
		}
	}
	if rc, ok := w.m.cfg.Runtime.(interface{ RemoveCgroupParent(string) error }); ok {
		if err := rc.RemoveCgroupParent(cgroupParent(w.uid)); err != nil {
			logf("pod %s/%s: %v", w.ref.Namespace, w.ref.Name, err)
		}
	}
	if err := w.m.cfg.Network.Teardown(ctx, w.ref); err != nil {
		logf("pod %s/%s: remove sandbox: %v", w.ref.Namespace, w.ref.Name, err)
	}
	w.sandbox = nil
}

// finalDelete removes the pod object once everything of it is gone, as
// kubelet does after graceful termination.
func (w *podWorker) finalDelete(ctx context.Context, pod *corev1.Pod) {
	zero := int64(0)
	err := w.m.cfg.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		logf("pod %s/%s: final delete: %v", pod.Namespace, pod.Name, err)
	}
}

// postStatus posts the pod's status when it changed.
func (w *podWorker) postStatus(ctx context.Context, pod *corev1.Pod) {
	st := computeStatus(pod, w.view(pod), time.Now())
	if w.posted != nil && statusEqual(*w.posted, st) {
		return
	}
	if statusEqual(pod.Status, st) {
		w.posted = &st
		return
	}
	upd := pod.DeepCopy()
	upd.Status = st
	_, err := w.m.cfg.Client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		fresh, gerr := w.m.cfg.Client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if gerr == nil && fresh.UID == pod.UID {
			fresh.Status = computeStatus(fresh, w.view(fresh), time.Now())
			_, err = w.m.cfg.Client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, fresh, metav1.UpdateOptions{})
		}
	}
	if err != nil {
		if ctx.Err() == nil && !apierrors.IsNotFound(err) {
			logf("pod %s/%s: update status: %v", pod.Namespace, pod.Name, err)
		}
		return
	}
	w.posted = &st
}

// view is the status input: sandbox, containers, probe results.
func (w *podWorker) view(pod *corev1.Pod) podView {
	v := podView{HostIP: w.m.cfg.NodeIP, SandboxReady: w.sandbox != nil, InitDone: w.initDone(pod),
		FailedReason: w.failed, FailedMessage: w.failedMsg}
	if w.sandbox != nil {
		v.PodIPs = w.podIPs()
	}
	if pod.Status.StartTime != nil {
		v.StartTime = pod.Status.StartTime.Time
	} else {
		v.StartTime = time.Now()
	}
	for _, c := range pod.Spec.InitContainers {
		v.Init = append(v.Init, w.ctrView(c))
	}
	for _, c := range pod.Spec.Containers {
		v.Containers = append(v.Containers, w.ctrView(c))
	}
	return v
}

func (w *podWorker) event(pod *corev1.Pod, typ, reason, msg string) {
	if w.m.cfg.Recorder != nil {
		w.m.cfg.Recorder.Event(pod, typ, reason, msg)
	}
}
