package container

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Files of a container's state directory, <Runtime.Root>/<ID>/. Together they
// are everything a fresh Runtime needs after the agent restarts; the init
// process (package initproc) reads and writes them by these names.
const (
	// SpecFile holds the Spec as JSON, written by Start.
	SpecFile = "spec.json"
	// SetupFile holds the Setup (cgroups, warnings), written by Start.
	SetupFile = "setup.json"
	// StartedFile holds Started, written by init once the container process runs.
	StartedFile = "started.json"
	// ExitFile holds Exit, written by init when the container process has
	// exited (or by Stop when init had to be killed).
	ExitFile = "exit.json"
	// InitLogFile receives init's own stdout and stderr.
	InitLogFile = "init.log"
	// AttachSocket is the unix socket init serves Attach on.
	AttachSocket = "attach.sock"
	// RootfsDir is where init builds the container's root (in its own mount
	// namespace; on the host it is an empty directory).
	RootfsDir = "rootfs"
	// FilesDir mirrors Spec.Files: the file for /etc/hosts is
	// <state>/files/etc/hosts. Init bind-mounts each over its container path,
	// so rewriting one here changes what the container sees.
	FilesDir = "files"
)

// Setup is what Start prepared for init besides the Spec.
type Setup struct {
	// Cgroup is the container's cgroup, created by Start.
	Cgroup Cgroup `json:"cgroup"`
	// Warnings are limits that could not be applied.
	Warnings []string `json:"warnings,omitempty"`
}

// Started is what init records once the container process is running. Pids
// are in the host's (the agent's) PID namespace; the start times are field 22
// of /proc/<pid>/stat, which tell a live process from a later one that reused
// its pid.
type Started struct {
	InitPid            int       `json:"initPid"`
	InitStartTime      uint64    `json:"initStartTime"`
	ContainerPid       int       `json:"containerPid"`
	ContainerStartTime uint64    `json:"containerStartTime"`
	StartedAt          time.Time `json:"startedAt"`
}

// Exit is how the container process ended.
type Exit struct {
	// ExitCode is the process's exit status, or 128+signal when a signal
	// killed it (as a shell reports it).
	ExitCode int `json:"exitCode"`
	// Signal names the killing signal ("SIGKILL"), or is empty.
	Signal string `json:"signal,omitempty"`
	// Reason is one of the Reason* constants.
	Reason string `json:"reason"`
	// Message explains a StartError.
	Message    string    `json:"message,omitempty"`
	FinishedAt time.Time `json:"finishedAt"`
}

// WriteJSONAtomic writes v as JSON to dir/name through a temporary file and a
// rename, so readers see either nothing or the whole file, also across a
// crash.
func WriteJSONAtomic(dir, name string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	f, err := os.CreateTemp(dir, "."+name+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// ReadJSON decodes dir/name into v. A missing file yields an error for which
// os.IsNotExist / errors.Is(err, fs.ErrNotExist) holds.
func ReadJSON(dir, name string, v any) error {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s: %w", filepath.Join(dir, name), err)
	}
	return nil
}

// FilePath is where the state directory keeps the content of the Spec.Files
// entry for containerPath.
func FilePath(stateDir, containerPath string) string {
	return filepath.Join(stateDir, FilesDir, filepath.Clean("/"+containerPath))
}

// writeFiles stores spec.Files under the state directory.
func writeFiles(stateDir string, files map[string][]byte) error {
	for p, content := range files {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("file %q: container path must be absolute", p)
		}
		host := FilePath(stateDir, p)
		if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
			return fmt.Errorf("file %s: %w", p, err)
		}
		if err := os.WriteFile(host, content, 0o644); err != nil {
			return fmt.Errorf("file %s: %w", p, err)
		}
	}
	return nil
}
