package container

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ReadyFD is the descriptor on which init reports, as one JSON InitReport,
// that the container process started or why it did not.
const ReadyFD = 3

// InitReport is init's answer on ReadyFD.
type InitReport struct {
	// Error is empty when the container process started.
	Error string `json:"error,omitempty"`
}

// DefaultPath is the PATH a container gets when its Env has none (Docker's).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// initCloneFlags are the namespaces init is PID 1 of, or alone in.
const initCloneFlags = unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC

// Start creates the container's state directory and cgroup and starts its
// init, returning once init has started the container process. When it
// fails before init ran, Start removes what it made; after that (init
// reported an error, such as `exec: "foo": executable file not found in
// $PATH`), the state directory stays with a StartError exit, and the caller
// calls Remove.
func (r *Runtime) Start(spec Spec) (State, error) {
	if err := spec.validate(); err != nil {
		return State{}, err
	}
	if spec.CgroupParent == "" {
		spec.CgroupParent = "wharf"
	}
	dir := r.dir(spec.ID)
	if err := os.MkdirAll(r.Root, 0o711); err != nil {
		return State{}, fmt.Errorf("start container %s: %w", spec.ID, err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return State{}, fmt.Errorf("start container %s: already exists", spec.ID)
		}
		return State{}, fmt.Errorf("start container %s: %w", spec.ID, err)
	}
	setup, err := r.prepare(dir, spec)
	if err != nil {
		_ = setup.Cgroup.remove()
		_ = os.RemoveAll(dir)
		return State{}, fmt.Errorf("start container %s: %w", spec.ID, err)
	}
	if err := r.launchInit(dir, spec.NetnsPath); err != nil {
		return r.stateOr(spec.ID, setup), fmt.Errorf("start container %s: %w", spec.ID, err)
	}
	st, err := r.State(spec.ID)
	if err != nil {
		return State{}, fmt.Errorf("start container %s: %w", spec.ID, err)
	}
	return st, nil
}

// stateOr is the container's State, or one with just the warnings when the
// state directory cannot be read.
func (r *Runtime) stateOr(id string, setup Setup) State {
	if st, err := r.State(id); err == nil {
		return st
	}
	return State{ID: id, Warnings: setup.Warnings}
}

// prepare writes the spec, the files and the setup (the cgroup it creates).
func (r *Runtime) prepare(dir string, spec Spec) (Setup, error) {
	var setup Setup
	if err := WriteJSONAtomic(dir, SpecFile, spec); err != nil {
		return setup, err
	}
	if err := writeFiles(dir, spec.Files); err != nil {
		return setup, err
	}
	if err := os.MkdirAll(filepath.Dir(spec.LogPath), 0o755); err != nil {
		return setup, fmt.Errorf("create log directory: %w", err)
	}
	cg, warnings, err := r.cgroupLayout().create(spec.CgroupParent, spec.ID, spec.CPUMilli, spec.MemoryBytes)
	setup = Setup{Cgroup: cg, Warnings: warnings}
	if err != nil {
		return setup, err
	}
	if cg.Version == 0 && (spec.CPUMilli > 0 || spec.MemoryBytes > 0) {
		setup.Warnings = append(setup.Warnings, "no cgroup controllers found: CPU and memory limits are not applied")
	}
	return setup, WriteJSONAtomic(dir, SetupFile, setup)
}

// launchInit starts `<InitPath> <InitArgs...> <dir>` in new namespaces (and
// the netns at netnsPath) and waits for its InitReport.
func (r *Runtime) launchInit(dir, netnsPath string) error {
	path, err := r.initPath()
	if err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(dir, InitLogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open init log: %w", err)
	}
	defer logFile.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("create init report pipe: %w", err)
	}
	defer readyR.Close()
	cmd := exec.Command(path, append(append([]string{}, r.initArgs()...), dir)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), r.InitEnv...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.ExtraFiles = []*os.File{readyW} // fd 3 = ReadyFD
	// No Pdeathsig: the container outlives the agent.
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: initCloneFlags, Setsid: true}
	err = startInNetns(cmd, netnsPath)
	readyW.Close()
	if err != nil {
		return fmt.Errorf("start init %s: %w", path, err)
	}
	go cmd.Wait() // reap init when it ends while we run; after a restart nobody needs to
	return r.awaitReport(dir, cmd.Process, readyR)
}

// awaitReport reads init's InitReport, killing init when it does not come
// in time.
func (r *Runtime) awaitReport(dir string, init *os.Process, readyR *os.File) error {
	timeout := r.startTimeout()
	_ = readyR.SetReadDeadline(time.Now().Add(timeout))
	// One line; EOF without one means init died.
	data, err := bufio.NewReader(readyR).ReadBytes('\n')
	if errors.Is(err, os.ErrDeadlineExceeded) {
		_ = init.Kill()
		return fmt.Errorf("init did not start the container within %v (killed it); init log: %s", timeout, initLogTail(dir))
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return fmt.Errorf("init exited before starting the container; init log: %s", initLogTail(dir))
	}
	var rep InitReport
	if err := json.Unmarshal(data, &rep); err != nil {
		return fmt.Errorf("init sent a bad report %q: %w", data, err)
	}
	if rep.Error != "" {
		return errors.New(rep.Error)
	}
	return nil
}

// startInNetns starts cmd in the network namespace at path ("" = ours).
// The child inherits the netns of the thread that forks it, so the fork
// runs on a locked thread that joined the netns; that thread is never
// unlocked, so Go discards it rather than reuse it in the wrong netns.
func startInNetns(cmd *exec.Cmd, path string) error {
	if path == "" {
		return cmd.Start()
	}
	ns, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open netns: %w", err)
	}
	defer ns.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("join netns %s: %w", path, err)
			return
		}
		errc <- cmd.Start()
	}()
	return <-errc
}

// initLogTail is the end of init's log, for errors.
func initLogTail(dir string) string {
	data, _ := os.ReadFile(filepath.Join(dir, InitLogFile))
	data = bytes.TrimSpace(data)
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	if len(data) == 0 {
		return "(empty)"
	}
	return string(data)
}

// ReasonFor is the Reason of an exit: OOMKilled when the OOM killer struck
// the container, else Completed for status 0 and Error otherwise.
func ReasonFor(exitCode int, oomKilled bool) string {
	switch {
	case oomKilled:
		return ReasonOOMKilled
	case exitCode == 0:
		return ReasonCompleted
	default:
		return ReasonError
	}
}
