package kubeletserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// FakeLog is one container's log in a Fake.
type FakeLog struct {
	// Path and PreviousPath are CRI log files; PreviousPath "" means the
	// container never restarted.
	Path, PreviousPath string
	// Running says whether the container still runs.
	Running atomic.Bool
}

// Fake is a Provider for tests: containers by pod, their log files, an exec
// function, attach as an echo of stdin, and port-forward to loopback
// addresses. It answers with the errors the real one should (NotFound,
// BadRequest, CodeExitError).
type Fake struct {
	mu sync.Mutex
	// Containers maps "namespace/pod" to its containers.
	Containers map[string][]string
	// Logs maps "namespace/pod/container" to its log.
	Logs map[string]*FakeLog
	// Exec runs cmd with the streams (out and errOut nil when not asked
	// for) and returns its exit code.
	Exec func(cmd []string, in io.Reader, out, errOut io.Writer) (int, error)
	// Ports maps a pod port to the loopback address it forwards to.
	Ports map[int32]string
}

var _ Provider = (*Fake)(nil)

// LogFile returns the container's current or previous log file.
func (f *Fake) LogFile(namespace, pod, container string, previous bool) (string, func() bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.Logs[namespace+"/"+pod+"/"+container]
	if l == nil {
		return "", nil, NotFound("container %q in pod %q not found", container, podName(namespace, pod))
	}
	if previous {
		if l.PreviousPath == "" {
			return "", nil, BadRequest("previous terminated container %q in pod %q not found", container, pod)
		}
		return l.PreviousPath, func() bool { return false }, nil
	}
	return l.Path, l.Running.Load, nil
}

// CheckPod says whether the pod (and the container, when named) exists.
func (f *Fake) CheckPod(namespace, pod, _, container string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	containers, ok := f.Containers[podName(namespace, pod)]
	if !ok {
		return NotFound("pod %q not found", podName(namespace, pod))
	}
	if container == "" {
		return nil
	}
	for _, c := range containers {
		if c == container {
			return nil
		}
	}
	return NotFound("container not found (%q)", container)
}

// ExecInContainer runs f.Exec; a non-zero code is a CodeExitError.
func (f *Fake) ExecInContainer(_ context.Context, _, _, _ string, cmd []string, in io.Reader, out, errOut io.WriteCloser,
	_ bool, _ <-chan remotecommand.TerminalSize, _ time.Duration) error {
	if f.Exec == nil {
		return errors.New("fake: no Exec function")
	}
	var o, e io.Writer
	if out != nil {
		o = out
	}
	if errOut != nil {
		e = errOut
	}
	code, err := f.Exec(cmd, in, o, e)
	if err != nil {
		return err
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command %v exited with %d", cmd, code), Code: code}
	}
	return nil
}

// AttachContainer echoes stdin to stdout until stdin ends.
func (f *Fake) AttachContainer(_ context.Context, _, _, _ string, in io.Reader, out, _ io.WriteCloser,
	_ bool, _ <-chan remotecommand.TerminalSize) error {
	if in == nil || out == nil {
		return errors.New("fake: attach needs stdin and stdout")
	}
	_, err := io.Copy(out, in)
	return err
}

// PortForward connects stream to the address f.Ports names for port.
func (f *Fake) PortForward(ctx context.Context, name, _ string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	f.mu.Lock()
	addr, ok := f.Ports[port]
	f.mu.Unlock()
	if !ok {
		return fmt.Errorf("pod %s: nothing listens on port %d", name, port)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("pod %s port %d: %w", name, port, err)
	}
	defer conn.Close()
	go func() {
		_, _ = io.Copy(conn, stream)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite() // the client is done sending; let the reply finish
		}
	}()
	_, err = io.Copy(stream, conn)
	return err
}
