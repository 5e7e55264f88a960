package pods

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	criremote "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/wharf-io/wharf/internal/agent/container"
	"github.com/wharf-io/wharf/internal/agent/kubeletserver"
	"github.com/wharf-io/wharf/internal/agent/podnet"
)

// Streams is the manager seen by the kubelet server: logs, exec, attach
// and port-forward of this node's pods.
type Streams struct {
	M *Manager
	// Exec and Attach are the runtime's (container.Runtime).
	Exec   func(ctx context.Context, id string, cmd []string, in io.Reader, out, errw io.Writer, tty bool, resize <-chan container.TermSize) (int, error)
	Attach func(ctx context.Context, id string, in io.Reader, out, errw io.Writer, tty bool, resize <-chan container.TermSize) error
}

var _ kubeletserver.Provider = (*Streams)(nil)

// snapshot is a container's current and previous attempt as the worker
// last saw them.
type snapshot struct {
	id, lastID       string
	attempt          int
	running, started bool
	waiting          string
	netns            string
	podIP            string
}

func (s *Streams) container(namespace, pod, name string) (*podWorker, snapshot, error) {
	w, err := s.M.worker(namespace, pod)
	if err != nil {
		return nil, snapshot{}, kubeletserver.NotFound("pod %q not found on this node", pod)
	}
	return w, w.snapshot(name), nil
}

// LogFile is the log of a container's current (or previous) attempt.
func (s *Streams) LogFile(namespace, pod, name string, previous bool) (string, func() bool, error) {
	w, snap, err := s.container(namespace, pod, name)
	if err != nil {
		return "", nil, err
	}
	if !snap.started {
		return "", nil, kubeletserver.BadRequest("container %q in pod %q is waiting to start: %s", name, pod, snap.waiting)
	}
	attempt := snap.attempt
	if previous {
		if attempt < 1 {
			return "", nil, kubeletserver.BadRequest("previous terminated container %q in pod %q not found", name, pod)
		}
		return w.containerLog(name, attempt-1), func() bool { return false }, nil
	}
	id := snap.id
	running := func() bool {
		st, err := s.M.cfg.Runtime.State(id)
		return err == nil && st.Running
	}
	return w.containerLog(name, attempt), running, nil
}

// CheckPod says whether a container runs (or, for port-forward, the pod).
func (s *Streams) CheckPod(namespace, pod, uid, name string) error {
	w, snap, err := s.container(namespace, pod, name)
	if err != nil {
		return err
	}
	if uid != "" && uid != string(w.uid) {
		return kubeletserver.NotFound("pod %q with UID %s not found on this node", pod, uid)
	}
	if name == "" {
		if !w.hasSandbox() {
			return kubeletserver.BadRequest("pod %q has no network yet", pod)
		}
		return nil
	}
	if !snap.running {
		return kubeletserver.BadRequest("container %q in pod %q is not running", name, pod)
	}
	return nil
}

// ExecInContainer runs cmd in the container; a non-zero exit is an
// exec.CodeExitError so kubectl exits with it.
func (s *Streams) ExecInContainer(ctx context.Context, podName, uid, name string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan criremote.TerminalSize, timeout time.Duration) error {
	ns, pod := kubeletserver.SplitPodName(podName)
	_, snap, err := s.container(ns, pod, name)
	if err != nil {
		return err
	}
	if !snap.running {
		return fmt.Errorf("container %q in pod %q is not running", name, pod)
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	code, err := s.Exec(ctx, snap.id, cmd, in, out, errw, tty, sizes(ctx, resize))
	if err != nil {
		return err
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with non-zero exit code: %d", code), Code: code}
	}
	return nil
}

// AttachContainer attaches to the container's output (and stdin).
func (s *Streams) AttachContainer(ctx context.Context, podName, uid, name string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan criremote.TerminalSize) error {
	ns, pod := kubeletserver.SplitPodName(podName)
	_, snap, err := s.container(ns, pod, name)
	if err != nil {
		return err
	}
	if !snap.running {
		return fmt.Errorf("container %q in pod %q is not running", name, pod)
	}
	return s.Attach(ctx, snap.id, in, out, errw, tty, sizes(ctx, resize))
}

// PortForward connects stream to port on the pod's loopback, from inside
// its network namespace (a pod listening on 127.0.0.1 is reached too).
func (s *Streams) PortForward(ctx context.Context, podName, uid string, port int32, stream io.ReadWriteCloser) error {
	ns, pod := kubeletserver.SplitPodName(podName)
	w, err := s.M.worker(ns, pod)
	if err != nil {
		return err
	}
	netns := w.snapshot("").netns
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
	var conn net.Conn
	dial := func() error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp4", addr)
		conn = c
		return err
	}
	if netns != "" {
		err = podnet.InNetns(netns, dial)
	} else {
		err = dial()
	}
	if err != nil {
		return fmt.Errorf("failed to connect to localhost:%d inside namespace of pod %s: %w", port, pod, err)
	}
	defer conn.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(conn, stream); done <- struct{}{} }()
	go func() { io.Copy(stream, conn); done <- struct{}{} }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}

// publish copies what streaming needs for other goroutines to read under
// the lock; the worker calls it after every sync.
func (w *podWorker) publish() {
	pub := published{ctrs: map[string]snapshot{}}
	if w.sandbox != nil {
		pub.sandbox, pub.netns = true, w.sandbox.NetnsPath
	}
	for name, c := range w.ctrs {
		pub.ctrs[name] = snapshot{id: c.id, lastID: c.lastID, attempt: c.attempt, started: c.started,
			running: c.st.Running, waiting: c.waitReason, netns: pub.netns}
	}
	w.mu.Lock()
	w.pub = pub
	w.mu.Unlock()
}

// published is the worker's state as streaming sees it.
type published struct {
	sandbox bool
	netns   string
	ctrs    map[string]snapshot
}

// snapshot is the last published state of container name.
func (w *podWorker) snapshot(name string) snapshot {
	w.mu.Lock()
	defer w.mu.Unlock()
	s, ok := w.pub.ctrs[name]
	if !ok {
		return snapshot{waiting: "ContainerCreating", netns: w.pub.netns}
	}
	return s
}

func (w *podWorker) hasSandbox() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pub.sandbox
}

func sizes(ctx context.Context, in <-chan criremote.TerminalSize) <-chan container.TermSize {
	if in == nil {
		return nil
	}
	out := make(chan container.TermSize)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case s, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- container.TermSize{Width: s.Width, Height: s.Height}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}
