// Package initproc is `wharf init`, the first process of a container
// (package container starts it). It is PID 1 of the container's PID
// namespace and alone in its mount, UTS and IPC namespaces; the agent put it
// in the pod's network namespace. Given the container's state directory it:
//
//   - builds the container's root on a tmpfs at <state>/rootfs: the host's
//     /usr (read-only) and its top-level symlinks or read-only binds (/bin,
//     /lib, ...), the host's /etc under a writable overlay, fresh /proc and
//     read-only /sys of the container's namespaces, a small /dev (null, zero,
//     full, random, urandom, tty, the host's pts, a private shm), tmpfs /tmp
//     and /run, /var with /var/run -> ../run, then Spec.Files and
//     Spec.Mounts bound over their paths;
//   - sets the hostname, joins the container's cgroup, and starts the
//     container process chrooted there, on pipes or a pseudo-terminal whose
//     output it appends to Spec.LogPath in the CRI format and fans out to
//     Attach clients on <state>/attach.sock;
//   - records started.json, reports to the agent on container.ReadyFD,
//     forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to the
//     process, reaps every orphan, and when the process ends kills what is
//     left in the namespace, records exit.json and exits.
package initproc

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wharf-io/wharf/internal/agent/container"
)

// Main runs init for the container whose state directory is stateDir and
// returns the exit code for init itself (the container's is in exit.json).
func Main(stateDir string) int {
	// Inherited descriptors are not close-on-exec; the container must not
	// hold the report pipe open.
	unix.CloseOnExec(container.ReadyFD)
	report := os.NewFile(uintptr(container.ReadyFD), "report")
	if err := run(stateDir, report); err != nil {
		fmt.Fprintf(os.Stderr, "wharf init: %v\n", err)
		return 1
	}
	return 0
}

// running is a started container process and what init serves it with.
type running struct {
	proc   *os.Process
	io     *stdio
	attach *attachServer
	log    *os.File
	pumps  sync.WaitGroup
	setup  container.Setup
}

func run(stateDir string, report *os.File) error {
	defer report.Close()
	var spec container.Spec
	var setup container.Setup
	if err := container.ReadJSON(stateDir, container.SpecFile, &spec); err != nil {
		return failStart(stateDir, report, err)
	}
	if err := container.ReadJSON(stateDir, container.SetupFile, &setup); err != nil {
		return failStart(stateDir, report, err)
	}
	// Before the child exists, so no SIGCHLD or forwarded signal is missed.
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, append([]os.Signal{unix.SIGCHLD}, forwarded...)...)

	c, err := start(stateDir, spec, setup)
	if err != nil {
		return failStart(stateDir, report, err)
	}
	if err := recordStarted(stateDir, c.proc.Pid); err != nil {
		_ = c.proc.Kill()
		return failStart(stateDir, report, err)
	}
	sendReport(report, nil)
	report.Close()

	ws := supervise(c.proc.Pid, sigs)
	killRest(5 * time.Second)
	c.finish()
	oom, err := setup.Cgroup.OOMKills()
	if err != nil {
		fmt.Fprintf(os.Stderr, "wharf init: %v\n", err)
	}
	return container.WriteJSONAtomic(stateDir, container.ExitFile, exitFrom(ws, oom > 0, time.Now()))
}

// start prepares everything and starts the container process.
func start(stateDir string, spec container.Spec, setup container.Setup) (*running, error) {
	if err := os.Chdir(stateDir); err != nil {
		return nil, err
	}
	// Join first, so the memory the root's tmpfs uses counts as the
	// container's.
	if err := setup.Cgroup.Join(); err != nil {
		return nil, err
	}
	root, err := buildRoot(stateDir, spec)
	if err != nil {
		return nil, err
	}
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return nil, fmt.Errorf("set hostname %q: %w", spec.Hostname, err)
		}
	}
	c := &running{setup: setup}
	if c.log, err = os.OpenFile(spec.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640); err != nil {
		return nil, fmt.Errorf("open container log: %w", err)
	}
	if c.io, err = openStdio(spec); err != nil {
		return nil, err
	}
	c.attach = &attachServer{input: c.io.input, stdinOnce: spec.StdinOnce}
	if c.io.pty != nil {
		c.attach.resize = func(sz container.TermSize) error {
			return setTermSize(c.io.pty, sz)
		}
	}
	if err := listenAttach(c.attach); err != nil {
		return nil, err
	}
	if c.proc, err = startChild(root, spec, c.io.child); err != nil {
		return nil, err
	}
	c.io.closeChildEnds()
	// The child has its own copy of oom_score_adj; spare init from the
	// container's OOM kills, as it must record them.
	_ = os.WriteFile("/proc/self/oom_score_adj", []byte("-998"), 0)
	c.startPumps()
	return c, nil
}

// startPumps copies each output to the log and the attached clients.
func (c *running) startPumps() {
	l := &criLog{w: c.log, now: time.Now}
	for _, o := range c.io.outputs {
		c.pumps.Add(1)
		go func(o output) {
			defer c.pumps.Done()
			pump(o.r, &streamLog{log: l, stream: o.stream}, outputWriter{c.attach, o.kind})
		}(o)
	}
}

// pump copies r to the log and to attach until r ends (EOF, or EIO from a
// terminal nobody holds any more).
func pump(r io.Reader, log *streamLog, attach io.Writer) {
	buf := make([]byte, 32*1024)
	logFailed := false
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if werr := logWrite(log, buf[:n]); werr != nil && !logFailed {
				logFailed = true
				fmt.Fprintf(os.Stderr, "wharf init: write container log: %v\n", werr)
			}
			_, _ = attach.Write(buf[:n])
		}
		if err != nil {
			_ = log.Flush()
			return
		}
	}
}

func logWrite(l *streamLog, p []byte) error { _, err := l.Write(p); return err }

// finish waits (briefly) for the output to drain, then ends the attached
// clients' connections and closes the log.
func (c *running) finish() {
	drained := make(chan struct{})
	go func() { c.pumps.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(2 * time.Second):
	}
	c.attach.close()
	_ = c.log.Sync()
	_ = c.log.Close()
}

// recordStarted writes started.json with the host pids and start times.
func recordStarted(stateDir string, childNsPid int) error {
	initPid, childPid, err := hostPids(childNsPid)
	if err != nil {
		return err
	}
	initStat, err := container.ReadProcStat(initPid)
	if err != nil {
		return fmt.Errorf("read init's start time: %w", err)
	}
	childStat, err := container.ReadProcStat(childPid)
	if err != nil {
		return fmt.Errorf("read the container process's start time: %w", err)
	}
	return container.WriteJSONAtomic(stateDir, container.StartedFile, container.Started{
		InitPid: initPid, InitStartTime: initStat.StartTime,
		ContainerPid: childPid, ContainerStartTime: childStat.StartTime,
		StartedAt: time.Now().UTC(),
	})
}

// failStart records a StartError exit, tells the agent and returns err.
func failStart(stateDir string, report *os.File, err error) error {
	exit := container.Exit{ExitCode: 128, Reason: container.ReasonStartError, Message: err.Error(), FinishedAt: time.Now().UTC()}
	if werr := container.WriteJSONAtomic(stateDir, container.ExitFile, exit); werr != nil {
		fmt.Fprintf(os.Stderr, "wharf init: %v\n", werr)
	}
	sendReport(report, err)
	return err
}

func sendReport(report *os.File, err error) {
	var rep container.InitReport
	if err != nil {
		rep.Error = err.Error()
	}
	data, _ := json.Marshal(rep)
	_, _ = report.Write(append(data, '\n'))
}
