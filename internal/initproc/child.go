package initproc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/wharf-io/wharf/internal/agent/container"
)

// forwarded are the signals init passes on to the container process.
var forwarded = []os.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2}

// output is a stream init reads from the container process.
type output struct {
	r      *os.File
	stream string // "stdout" or "stderr", as logged
	kind   byte   // the attach frame kind
}

// stdio is the container process's standard streams: the ends it gets, the
// ends init reads and writes.
type stdio struct {
	child   [3]*os.File
	outputs []output
	input   io.WriteCloser // nil without Spec.Stdin
	pty     *os.File       // the terminal's master, nil without Spec.TTY
}

// openStdio makes a pseudo-terminal (TTY) or pipes for the process.
func openStdio(spec container.Spec) (*stdio, error) {
	s := &stdio{}
	if spec.TTY {
		ptmx, tty, err := pty.Open()
		if err != nil {
			return nil, fmt.Errorf("open a pseudo-terminal: %w", err)
		}
		_ = pty.Setsize(ptmx, &pty.Winsize{Cols: 80, Rows: 24})
		s.child = [3]*os.File{tty, tty, tty}
		s.outputs = []output{{ptmx, "stdout", container.FrameStdout}}
		s.pty = ptmx
		if spec.Stdin {
			s.input = ptyInput{ptmx}
		}
		return s, nil
	}
	for _, o := range []struct {
		stream string
		kind   byte
	}{{"stdout", container.FrameStdout}, {"stderr", container.FrameStderr}} {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("create %s pipe: %w", o.stream, err)
		}
		s.outputs = append(s.outputs, output{r, o.stream, o.kind})
		s.child[len(s.outputs)] = w
	}
	if spec.Stdin {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("create stdin pipe: %w", err)
		}
		s.child[0], s.input = r, w
		return s, nil
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	s.child[0] = null
	return s, nil
}

// closeChildEnds closes init's copies of the process's ends, so reads see
// EOF once every process holding them is gone.
func (s *stdio) closeChildEnds() {
	closed := map[*os.File]bool{}
	for _, f := range s.child {
		if f != nil && !closed[f] {
			closed[f] = true
			f.Close()
		}
	}
}

// ptyInput writes to a terminal; closing it sends end-of-file (^D)
// instead of closing the master, which carries the output too.
type ptyInput struct{ ptmx *os.File }

func (p ptyInput) Write(b []byte) (int, error) { return p.ptmx.Write(b) }
func (p ptyInput) Close() error                { _, err := p.ptmx.Write([]byte{4}); return err }

// startChild starts the container process chrooted into root.
func startChild(root string, spec container.Spec, files [3]*os.File) (*os.Process, error) {
	env := container.ProcessEnv(spec.Env, spec.TTY)
	wd := spec.WorkingDir
	if wd == "" {
		wd = "/"
	}
	ensureWorkDir(root, wd)
	if host, err := resolveInRoot(root, wd); err != nil {
		return nil, err
	} else if fi, err := os.Stat(host); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("working directory %q: not a directory in the container", wd)
	}
	path, err := lookPath(root, spec.Args[0], envValue(env, "PATH"), wd)
	if err != nil {
		return nil, err
	}
	attr := &os.ProcAttr{
		Dir: wd, Env: env, Files: files[:],
		Sys: &syscall.SysProcAttr{Chroot: root, Setsid: true, Setctty: spec.TTY, Ctty: 0},
	}
	p, err := os.StartProcess(path, spec.Args, attr)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, &exec.Error{Name: spec.Args[0], Err: err}
	}
	return p, nil
}

// supervise forwards signals to the child and reaps every process that
// ends (init is PID 1: orphans are its children) until the child itself
// has ended, returning its status.
func supervise(child int, sigs <-chan os.Signal) unix.WaitStatus {
	if ws, ok := reap(child); ok {
		return ws
	}
	for sig := range sigs {
		if sig == unix.SIGCHLD {
			if ws, ok := reap(child); ok {
				return ws
			}
			continue
		}
		_ = unix.Kill(child, sig.(syscall.Signal))
	}
	panic("signal channel closed")
}

// reap collects every ended child without blocking and tells whether
// child was among them.
func reap(child int) (unix.WaitStatus, bool) {
	var status unix.WaitStatus
	found := false
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return status, found
		}
		if pid == child {
			status, found = ws, true
		}
	}
}

// killRest kills every other process of the PID namespace (daemons the
// container left, Exec'd commands) and reaps them, for at most timeout.
func killRest(timeout time.Duration) {
	_ = unix.Kill(-1, unix.SIGKILL)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, err := unix.Wait4(-1, nil, 0, nil)
			if err != nil && !errors.Is(err, unix.EINTR) {
				return // ECHILD: none left
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(timeout):
	}
}

// exitFrom describes how the child ended.
func exitFrom(ws unix.WaitStatus, oomKilled bool, now time.Time) container.Exit {
	e := container.Exit{ExitCode: ws.ExitStatus(), FinishedAt: now.UTC()}
	if ws.Signaled() {
		e.ExitCode = 128 + int(ws.Signal())
		e.Signal = unix.SignalName(ws.Signal())
	}
	e.Reason = container.ReasonFor(e.ExitCode, oomKilled)
	return e
}

// hostPids finds init's and the child's pids in the host's PID namespace.
// Init's /proc is still the host's procfs (it mounted the new one inside
// the container root), where /proc/self is init's host pid and the child
// is the task whose NSpid ends in its pid in our namespace.
func hostPids(childNsPid int) (initPid, childPid int, err error) {
	self, err := os.Readlink("/proc/self")
	if err != nil {
		return 0, 0, fmt.Errorf("find init's host pid: %w", err)
	}
	if initPid, err = strconv.Atoi(self); err != nil {
		return 0, 0, fmt.Errorf("find init's host pid: /proc/self is %q", self)
	}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", initPid))
	for _, t := range tasks {
		data, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(data)) {
			pid, _ := strconv.Atoi(f)
			status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if err != nil {
				continue
			}
			if ns := parseNSpid(string(status)); len(ns) > 0 && ns[len(ns)-1] == childNsPid {
				return initPid, pid, nil
			}
		}
	}
	return initPid, 0, fmt.Errorf("find the container process's host pid: not among init's (%d) children", initPid)
}

// parseNSpid reads the NSpid line of /proc/<pid>/status: the pid in each
// PID namespace, outermost first.
func parseNSpid(status string) []int {
	for _, line := range strings.Split(status, "\n") {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			var out []int
			for _, f := range strings.Fields(rest) {
				n, err := strconv.Atoi(f)
				if err != nil {
					return nil
				}
				out = append(out, n)
			}
			return out
		}
	}
	return nil
}
