// Package container is the node agent's container runtime. A container is a
// plain host process (there are no images or layers) running under
// `wharf init` (package initproc), which is PID 1 of a new PID namespace, in
// its own mount, UTS and IPC namespaces, joined to the pod's network
// namespace, chrooted into a root built from the host's /usr and /etc plus
// the container's mounts and files.
//
// Everything about a container lives in its state directory, <Root>/<ID>/
// (see the *File constants), written so that a new Runtime over the same
// Root (after the agent was killed and restarted) can report State, Wait,
// Stop, Exec and Attach: the init processes are not the agent's children and
// outlive it.
//
// Exec needs nsenter (util-linux) and sh on the host.
package container

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Reasons a container ended, as kubelet reports them.
const (
	// ReasonCompleted: the process exited with status 0.
	ReasonCompleted = "Completed"
	// ReasonError: the process exited non-zero or was killed by a signal.
	ReasonError = "Error"
	// ReasonOOMKilled: the kernel's OOM killer killed a process of the
	// container (its memory limit was reached).
	ReasonOOMKilled = "OOMKilled"
	// ReasonStartError: the process could not be started (State.Message
	// says why, e.g. the executable was not found).
	ReasonStartError = "StartError"
	// ReasonUnknown: init disappeared without recording how the container
	// ended.
	ReasonUnknown = "Unknown"
)

// ErrNotFound is returned (wrapped) for an ID without a state directory.
var ErrNotFound = errors.New("container not found")

// IsNotFound tells whether err says the container does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// Mount is a bind mount of a host path into the container.
type Mount struct {
	HostPath      string `json:"hostPath"`
	ContainerPath string `json:"containerPath"`
	ReadOnly      bool   `json:"readOnly,omitempty"`
}

// Spec describes a container to start. Start saves it as <Root>/<ID>/spec.json.
type Spec struct {
	// ID names the container uniquely on the node, e.g.
	// <podUID>_<container>_<attempt>; it is a directory name.
	ID string `json:"id"`
	// PodUID and Container are for the caller's bookkeeping.
	PodUID    string `json:"podUID,omitempty"`
	Container string `json:"container,omitempty"`
	// Hostname is the UTS hostname (the pod's name).
	Hostname string `json:"hostname,omitempty"`
	// NetnsPath is the network namespace to join (a bind-mounted nsfs file);
	// "" shares the agent's, for hostNetwork pods.
	NetnsPath string `json:"netnsPath,omitempty"`
	// Args is the argv. Args[0] without a '/' is looked up in the PATH of Env
	// inside the container's root.
	Args []string `json:"args"`
	// Env is KEY=VALUE; PATH defaults to the usual one when absent.
	Env []string `json:"env,omitempty"`
	// WorkingDir is inside the container; "" means "/". It is created if
	// missing and writable.
	WorkingDir string `json:"workingDir,omitempty"`
	// Mounts are bind mounts, applied parents first.
	Mounts []Mount `json:"mounts,omitempty"`
	// Files maps container paths to contents (/etc/resolv.conf, /etc/hosts,
	// ...): each is written under <state>/files/ and bind-mounted over its
	// path (see FilePath).
	Files map[string][]byte `json:"files,omitempty"`
	// LogPath is the CRI-format log file init appends the output to. Its
	// directory is created if missing; Remove keeps the file.
	LogPath string `json:"logPath"`
	// Stdin keeps the container's stdin open for Attach; StdinOnce closes
	// it when the first attached client's input ends.
	Stdin     bool `json:"stdin,omitempty"`
	StdinOnce bool `json:"stdinOnce,omitempty"`
	// TTY runs the process on a pseudo-terminal; its output is logged as
	// stdout.
	TTY bool `json:"tty,omitempty"`
	// CPUMilli and MemoryBytes are limits; 0 means none.
	CPUMilli    int64 `json:"cpuMilli,omitempty"`
	MemoryBytes int64 `json:"memoryBytes,omitempty"`
	// CgroupParent is the pod's cgroup, e.g. "wharf/pod<uid>", relative to
	// each hierarchy's base (see Runtime); the container's cgroup is
	// <CgroupParent>/<ID>, so a restarted container never shares one with
	// its previous attempt. Default "wharf".
	CgroupParent string `json:"cgroupParent,omitempty"`
}

func (s Spec) validate() error {
	if s.ID == "" || s.ID == "." || s.ID == ".." || strings.ContainsAny(s.ID, "/\x00") {
		return fmt.Errorf("invalid container ID %q: must be a file name", s.ID)
	}
	if len(s.Args) == 0 || s.Args[0] == "" {
		return fmt.Errorf("container %s: no command", s.ID)
	}
	if s.LogPath == "" || !filepath.IsAbs(s.LogPath) {
		return fmt.Errorf("container %s: log path %q must be absolute", s.ID, s.LogPath)
	}
	if s.NetnsPath != "" && !filepath.IsAbs(s.NetnsPath) {
		return fmt.Errorf("container %s: netns path %q must be absolute", s.ID, s.NetnsPath)
	}
	for _, m := range s.Mounts {
		if !filepath.IsAbs(m.HostPath) || !filepath.IsAbs(m.ContainerPath) {
			return fmt.Errorf("container %s: mount %s -> %s: paths must be absolute", s.ID, m.HostPath, m.ContainerPath)
		}
	}
	return nil
}

// State is what the runtime knows of a container.
type State struct {
	ID string
	// Pid is the host pid of the container's init; ContainerPid that of the
	// container's main process. Both are 0 before it started.
	Pid          int
	ContainerPid int
	// Running is true while the container process runs.
	Running bool
	// ExitCode, Signal, Reason and Message describe how it ended (see Exit).
	ExitCode int
	Signal   string
	Reason   string
	Message  string
	// StartedAt and FinishedAt are zero when unknown.
	StartedAt, FinishedAt time.Time
	// Warnings are limits that could not be applied at Start, for the caller
	// to turn into events.
	Warnings []string
}

// TermSize is a terminal's size in characters.
type TermSize struct{ Width, Height uint16 }

// Runtime starts and tracks containers whose state lives under Root. The
// zero value of every field but Root is usable.
type Runtime struct {
	// Root holds a state directory per container.
	Root string
	// InitPath is the binary whose `init` subcommand is the container's
	// init; default os.Executable().
	InitPath string
	// InitArgs come between InitPath and the state directory; default
	// ["init"].
	InitArgs []string
	// InitEnv is added to the agent's environment for init (tests use it to
	// make the test binary act as init).
	InitEnv []string
	// CgroupRoot is where the cgroup hierarchies are mounted; default
	// /sys/fs/cgroup.
	CgroupRoot string
	// CgroupNestUnderSelf makes CgroupParent relative to the agent's own
	// cgroup in each hierarchy (from /proc/self/cgroup) instead of the
	// hierarchy's root: for an agent in a delegated cgroup, and for tests.
	CgroupNestUnderSelf bool
	// StartTimeout bounds how long Start waits for init to start the
	// process; default 30s.
	StartTimeout time.Duration
}

func (r *Runtime) dir(id string) string { return filepath.Join(r.Root, id) }

func (r *Runtime) initPath() (string, error) {
	if r.InitPath != "" {
		return r.InitPath, nil
	}
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the wharf binary for init: %w", err)
	}
	return p, nil
}

func (r *Runtime) initArgs() []string {
	if r.InitArgs != nil {
		return r.InitArgs
	}
	return []string{"init"}
}

func (r *Runtime) cgroupLayout() cgroupLayout {
	root := r.CgroupRoot
	if root == "" {
		root = "/sys/fs/cgroup"
	}
	self, _ := os.ReadFile("/proc/self/cgroup")
	return detectCgroups(root, r.CgroupNestUnderSelf, string(self))
}

func (r *Runtime) startTimeout() time.Duration {
	if r.StartTimeout > 0 {
		return r.StartTimeout
	}
	return 30 * time.Second
}

// record is a container's state directory, read.
type record struct {
	spec    Spec
	setup   Setup
	started *Started
	exit    *Exit
}

func (r *Runtime) load(id string) (record, error) {
	var rec record
	dir := r.dir(id)
	if err := ReadJSON(dir, SpecFile, &rec.spec); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return rec, fmt.Errorf("container %s: %w", id, ErrNotFound)
		}
		return rec, fmt.Errorf("container %s: %w", id, err)
	}
	if err := ReadJSON(dir, SetupFile, &rec.setup); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return rec, fmt.Errorf("container %s: %w", id, err)
	}
	var st Started
	if err := ReadJSON(dir, StartedFile, &st); err == nil {
		rec.started = &st
	} else if !errors.Is(err, fs.ErrNotExist) {
		return rec, fmt.Errorf("container %s: %w", id, err)
	}
	var ex Exit
	if err := ReadJSON(dir, ExitFile, &ex); err == nil {
		rec.exit = &ex
	} else if !errors.Is(err, fs.ErrNotExist) {
		return rec, fmt.Errorf("container %s: %w", id, err)
	}
	return rec, nil
}

// initAlive tells whether the record's init process still exists.
func (rec record) initAlive() bool {
	return rec.started != nil && processAlive(rec.started.InitPid, rec.started.InitStartTime)
}

// state derives the State from the files and init's liveness: exit.json
// wins; else a live init means running; else init vanished unrecorded.
func (rec record) state(initAlive bool) State {
	st := State{ID: rec.spec.ID, Warnings: rec.setup.Warnings}
	if rec.started != nil {
		st.Pid, st.ContainerPid, st.StartedAt = rec.started.InitPid, rec.started.ContainerPid, rec.started.StartedAt
	}
	switch {
	case rec.exit != nil:
		st.ExitCode, st.Signal, st.Reason, st.Message, st.FinishedAt =
			rec.exit.ExitCode, rec.exit.Signal, rec.exit.Reason, rec.exit.Message, rec.exit.FinishedAt
	case rec.started != nil && initAlive:
		st.Running = true
	default:
		st.ExitCode, st.Reason = 255, ReasonUnknown
		st.Message = "init exited without recording the container's exit"
		if rec.started == nil {
			st.Message = "init has not reported the container started"
		}
	}
	return st
}

// State reports the container's state from its state directory and the
// liveness of its init process.
func (r *Runtime) State(id string) (State, error) {
	rec, err := r.load(id)
	if err != nil {
		return State{}, err
	}
	return rec.state(rec.initAlive()), nil
}

// List returns the IDs of the containers that have a state directory,
// running or not: after a restart the agent adopts them from this list.
func (r *Runtime) List() ([]string, error) {
	entries, err := os.ReadDir(r.Root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(r.Root, e.Name(), SpecFile)); e.IsDir() && err == nil {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}
