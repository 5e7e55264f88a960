package container

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Wait blocks until the container has exited (or ctx is done) and returns
// its final State. It works for inits this Runtime did not start, such as
// those of a previous agent process.
func (r *Runtime) Wait(ctx context.Context, id string) (State, error) {
	rec, err := r.load(id)
	if err != nil {
		return State{}, err
	}
	if rec.exit == nil && rec.started != nil {
		if err := waitProcessExit(ctx, rec.started.InitPid, rec.started.InitStartTime); err != nil {
			return State{}, fmt.Errorf("wait for container %s: %w", id, err)
		}
	}
	return r.settledState(id)
}

// settledState is the State once init is gone, giving a Stop that killed
// init a moment to record the exit.
func (r *Runtime) settledState(id string) (State, error) {
	deadline := time.Now().Add(time.Second)
	for {
		rec, err := r.load(id)
		if err != nil {
			return State{}, err
		}
		if rec.exit != nil || time.Now().After(deadline) {
			return rec.state(rec.initAlive()), nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends the container: SIGTERM to init, which forwards it to the
// container process; after grace, SIGKILL to every process in the
// container's cgroup, and to init if it has not ended 5s later. A container
// that is not running is not an error.
func (r *Runtime) Stop(id string, grace time.Duration) error {
	rec, err := r.load(id)
	if err != nil {
		return err
	}
	if rec.exit != nil || !rec.initAlive() {
		return nil
	}
	pid, start := rec.started.InitPid, rec.started.InitStartTime
	if err := unix.Kill(pid, unix.SIGTERM); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("stop container %s: signal init %d: %w", id, pid, err)
	}
	if waitFor(pid, start, grace) {
		return nil
	}
	var errs []error
	if rec.setup.Cgroup.Version != 0 {
		if err := rec.setup.Cgroup.killAll(pid, 5*time.Second); err != nil {
			errs = append(errs, err)
		}
	} else if processAlive(rec.started.ContainerPid, rec.started.ContainerStartTime) {
		_ = unix.Kill(rec.started.ContainerPid, unix.SIGKILL)
	}
	if !waitFor(pid, start, 5*time.Second) {
		// Killing PID 1 of the namespace kills every process in it.
		_ = unix.Kill(pid, unix.SIGKILL)
		if !waitFor(pid, start, 5*time.Second) {
			errs = append(errs, fmt.Errorf("init %d survived SIGKILL", pid))
		}
	}
	if err := r.recordKilled(id); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("stop container %s: %w", id, errors.Join(errs...))
	}
	return nil
}

// recordKilled writes the exit of a container whose init was killed before
// it could write one itself.
func (r *Runtime) recordKilled(id string) error {
	if _, err := os.Stat(filepath.Join(r.dir(id), ExitFile)); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return WriteJSONAtomic(r.dir(id), ExitFile, Exit{
		ExitCode: 128 + int(unix.SIGKILL), Signal: unix.SignalName(unix.SIGKILL),
		Reason: ReasonError, Message: "killed with init by Stop", FinishedAt: time.Now().UTC(),
	})
}

// waitFor waits up to d for the process to exit and tells whether it did.
func waitFor(pid int, start uint64, d time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return waitProcessExit(ctx, pid, start) == nil
}

// Remove deletes a container that is not running: leftover mounts under its
// state directory, its cgroup and the state directory. The log file stays.
// Removing a container that does not exist is not an error.
func (r *Runtime) Remove(id string) error {
	rec, err := r.load(id)
	if IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	alive := rec.initAlive()
	if st := rec.state(alive); st.Running {
		return fmt.Errorf("remove container %s: it is running; stop it first", id)
	}
	if alive {
		// init has recorded the exit and is finishing; do not wait on it long.
		if !waitFor(rec.started.InitPid, rec.started.InitStartTime, 2*time.Second) {
			_ = unix.Kill(rec.started.InitPid, unix.SIGKILL)
			waitFor(rec.started.InitPid, rec.started.InitStartTime, 2*time.Second)
		}
	}
	dir := r.dir(id)
	if err := unmountUnder(dir); err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	if err := rec.setup.Cgroup.remove(); err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	return nil
}

// unmountUnder detaches every mount at or below dir in our mount namespace
// (init's mounts live in its own, but a crash in between could leak one),
// deepest first, and fails if any remains: deleting through a bind mount
// would delete host files.
func unmountUnder(dir string) error {
	for attempt := 0; attempt < 2; attempt++ {
		data, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			return fmt.Errorf("read mounts: %w", err)
		}
		mounts := mountsUnder(string(data), dir)
		if len(mounts) == 0 {
			return nil
		}
		for _, m := range mounts {
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("unmount %s: %w", m, err)
			}
		}
	}
	return fmt.Errorf("mounts remain under %s", dir)
}

// mountsUnder lists the mount points in mountinfo content at or below dir,
// deepest first.
func mountsUnder(mountinfo, dir string) []string {
	dir = filepath.Clean(dir)
	var out []string
	sc := bufio.NewScanner(strings.NewReader(mountinfo))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountinfo(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// unescapeMountinfo undoes the octal escapes (\040 for space) of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
