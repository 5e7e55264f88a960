package pods

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/wharf-io/wharf/internal/agent/container"
)

// Crash-loop back-off, as kubelet: the first restart is immediate, then
// 10 s doubling to 5 minutes; a container that ran 10 minutes starts over.
const (
	backoffInitial = 10 * time.Second
	backoffMax     = 300 * time.Second
	backoffReset   = 10 * time.Minute
)

// ctr is one container of the pod: its current attempt and the one before.
type ctr struct {
	name    string
	attempt int // restart count; the current attempt's index
	id      string
	st      container.State
	last    *container.State
	lastID  string
	started bool // has an attempt ever started
	adopted bool // found running by a restarted agent: probes and watch to resume

	waitReason, waitMsg string
	backoff             time.Duration
	notBefore           time.Time

	probeCancel context.CancelFunc
	probes      map[probeKind]*prober
	mu          sync.Mutex
	ready       bool
	startupOK   bool
}

func (w *podWorker) ctr(name string) *ctr {
	c, ok := w.ctrs[name]
	if !ok {
		c = &ctr{name: name, attempt: -1}
		w.ctrs[name] = c
	}
	return c
}

// refreshStates reads the state of every running attempt.
func (w *podWorker) refreshStates() {
	for _, c := range w.ctrs {
		if c.id == "" || !c.st.Running {
			continue
		}
		st, err := w.m.cfg.Runtime.State(c.id)
		if err != nil {
			continue
		}
		c.st = st
		if !st.Running {
			w.exited(c)
		}
	}
}

// resume restarts the probes and exit watch of attempts an agent restart
// adopted while they ran.
func (w *podWorker) resume(ctx context.Context, pod *corev1.Pod) {
	for _, spec := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		c, ok := w.ctrs[spec.Name]
		if !ok || !c.adopted {
			continue
		}
		c.adopted = false
		if c.st.Running {
			w.watch(ctx, c)
			w.startProbes(ctx, pod, spec, c)
		}
	}
}

// exited stops the probes of an attempt that ended and sets its back-off.
func (w *podWorker) exited(c *ctr) {
	w.stopProbe(c)
	ran := c.st.FinishedAt.Sub(c.st.StartedAt)
	switch {
	case ran >= backoffReset || c.backoff == 0:
		c.backoff = 0
		c.notBefore = time.Time{}
		if c.attempt > 0 && ran < backoffReset {
			c.backoff = backoffInitial
		}
	default:
		c.backoff = min(c.backoff*2, backoffMax)
	}
	if c.backoff > 0 {
		c.notBefore = c.st.FinishedAt.Add(c.backoff)
	}
}

// runInitContainers runs init containers one after another; true when all
// have succeeded.
func (w *podWorker) runInitContainers(ctx context.Context, pod *corev1.Pod) bool {
	for _, spec := range pod.Spec.InitContainers {
		c := w.ctr(spec.Name)
		switch {
		case c.st.Running:
			return false
		case c.started && c.st.ExitCode == 0 && !c.st.Running:
			continue
		case c.started && pod.Spec.RestartPolicy == corev1.RestartPolicyNever:
			w.failed, w.failedMsg = "", ""
			return false
		}
		w.maybeStart(ctx, pod, spec, c)
		return false
	}
	return true
}

func (w *podWorker) initDone(pod *corev1.Pod) bool {
	for _, spec := range pod.Spec.InitContainers {
		c, ok := w.ctrs[spec.Name]
		if !ok || !c.started || c.st.Running || c.st.ExitCode != 0 {
			return false
		}
	}
	return true
}

// runContainers starts containers never started and restarts exited ones
// as the restart policy says.
func (w *podWorker) runContainers(ctx context.Context, pod *corev1.Pod) {
	for _, spec := range pod.Spec.Containers {
		c := w.ctr(spec.Name)
		if c.st.Running {
			continue
		}
		if c.started && !restarts(pod.Spec.RestartPolicy, c.st.ExitCode) {
			continue
		}
		w.maybeStart(ctx, pod, spec, c)
	}
}

func restarts(policy corev1.RestartPolicy, code int) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return code != 0
	}
	return true
}

// maybeStart starts the next attempt unless it is backing off.
func (w *podWorker) maybeStart(ctx context.Context, pod *corev1.Pod, spec corev1.Container, c *ctr) {
	if now := time.Now(); now.Before(c.notBefore) {
		switch c.waitReason {
		case "ErrImagePull", "ImagePullBackOff":
			c.waitReason, c.waitMsg = "ImagePullBackOff", fmt.Sprintf("Back-off pulling image %q", spec.Image)
			return
		case "CreateContainerConfigError", "InvalidImageName":
			return // the reason stands until the next try
		}
		if c.waitReason != "CrashLoopBackOff" {
			w.event(pod, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container "+spec.Name+
				" in pod "+pod.Name+"_"+pod.Namespace+"("+string(pod.UID)+")")
		}
		c.waitReason = "CrashLoopBackOff"
		c.waitMsg = fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)",
			c.backoff, spec.Name, pod.Name, pod.Namespace, pod.UID)
		return
	}
	w.start(ctx, pod, spec, c)
}

// start starts attempt c.attempt+1 of a container.
func (w *podWorker) start(ctx context.Context, pod *corev1.Pod, spec corev1.Container, c *ctr) {
	built, err := w.buildSpec(pod, spec, c.attempt+1)
	if err != nil {
		// Retried with the same back-off as a crash loop (kubelet backs
		// image pulls off the same way), so the event is not repeated
		// every second.
		c.waitReason, c.waitMsg = err.reason, err.msg
		w.event(pod, corev1.EventTypeWarning, err.eventReason, err.msg)
		c.backoff = min(max(c.backoff*2, backoffInitial), backoffMax)
		c.notBefore = time.Now().Add(c.backoff)
		return
	}
	w.event(pod, corev1.EventTypeNormal, "Pulled", fmt.Sprintf("Container image %q already present on machine", spec.Image))
	if c.lastID != "" {
		w.m.cfg.Runtime.Remove(c.lastID)
	}
	if c.id != "" {
		prev := c.st
		c.last, c.lastID = &prev, c.id
	}
	c.attempt++
	c.id = built.ID
	c.started = true
	c.waitReason, c.waitMsg = "", ""
	st, serr := w.m.cfg.Runtime.Start(built)
	w.event(pod, corev1.EventTypeNormal, "Created", "Created container: "+spec.Name)
	if serr != nil {
		now := time.Now()
		c.st = container.State{ID: built.ID, ExitCode: 128, Reason: "StartError", StartedAt: now, FinishedAt: now}
		c.st.Message = serr.Error()
		w.event(pod, corev1.EventTypeWarning, "Failed", "Error: "+serr.Error())
		w.exited(c)
		return
	}
	c.st = st
	for _, warning := range st.Warnings {
		w.event(pod, corev1.EventTypeWarning, "ResourceLimitsNotApplied", "Container "+spec.Name+": "+warning)
	}
	w.event(pod, corev1.EventTypeNormal, "Started", "Started container "+spec.Name)
	w.watch(ctx, c)
	w.startProbes(ctx, pod, spec, c)
}

// watch wakes the worker when the attempt ends.
func (w *podWorker) watch(ctx context.Context, c *ctr) {
	id := c.id
	go func() {
		if _, err := w.m.cfg.Runtime.Wait(ctx, id); err == nil {
			w.wakeUp()
		}
	}()
}

// stopContainers stops every running attempt within grace, in parallel.
func (w *podWorker) stopContainers(grace time.Duration) {
	var wg sync.WaitGroup
	w.mu.Lock()
	pod := w.latest
	w.mu.Unlock()
	for _, c := range w.ctrs {
		w.stopProbe(c)
		if c.id == "" {
			continue
		}
		if st, err := w.m.cfg.Runtime.State(c.id); err != nil || !st.Running {
			continue
		}
		if pod != nil {
			w.event(pod, corev1.EventTypeNormal, "Killing", "Stopping container "+c.name)
		}
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			if err := w.m.cfg.Runtime.Stop(id, grace); err != nil {
				logf("stop container %s: %v", id, err)
			}
		}(c.id)
	}
	wg.Wait()
	for _, c := range w.ctrs {
		if c.id != "" {
			if st, err := w.m.cfg.Runtime.State(c.id); err == nil {
				c.st = st
			}
		}
	}
}

// ctrView is the status input of one container.
func (w *podWorker) ctrView(spec corev1.Container) ctrView {
	v := ctrView{Name: spec.Name, Image: spec.Image}
	c, ok := w.ctrs[spec.Name]
	if !ok {
		v.WaitingReason = "ContainerCreating"
		if w.sandbox != nil && !w.initDone(w.latestPod()) {
			v.WaitingReason = "PodInitializing"
		}
		return v
	}
	v.RestartCount = int32(max(c.attempt, 0))
	if c.attempt >= 0 && c.id != "" {
		v.ID = c.id
		v.Running, v.Exited = c.st.Running, !c.st.Running
		v.ExitCode, v.Reason, v.Message = int32(c.st.ExitCode), c.st.Reason, c.st.Message
		v.StartedAt, v.Finished = c.st.StartedAt, c.st.FinishedAt
	}
	v.WaitingReason, v.WaitingMessage = c.waitReason, c.waitMsg
	if v.Exited && v.WaitingReason != "" {
		last := v
		last.WaitingReason, last.WaitingMessage, last.Last = "", "", nil
		v.Last = &last
	} else if c.last != nil {
		v.Last = &ctrView{Exited: true, ID: c.lastID, ExitCode: int32(c.last.ExitCode), Reason: c.last.Reason,
			Message: c.last.Message, StartedAt: c.last.StartedAt, Finished: c.last.FinishedAt}
	}
	c.mu.Lock()
	v.Ready = v.Running && c.ready
	v.Started = v.Running && c.startupOK
	c.mu.Unlock()
	return v
}

func (w *podWorker) latestPod() *corev1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.latest
}

func (w *podWorker) containerLog(name string, attempt int) string {
	return filepath.Join(w.logDir(), name, fmt.Sprintf("%d.log", attempt))
}
