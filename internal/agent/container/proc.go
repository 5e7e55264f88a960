package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ProcStat is the part of /proc/<pid>/stat the runtime uses.
type ProcStat struct {
	// State is the one-letter state (R, S, Z, ...).
	State byte
	// StartTime is when the process started, in clock ticks after boot: with
	// the pid it names one process, even after the pid is reused.
	StartTime uint64
}

// ReadProcStat reads /proc/<pid>/stat.
func ReadProcStat(pid int) (ProcStat, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ProcStat{}, err
	}
	return parseProcStat(string(data))
}

// parseProcStat parses a stat line. The command name (field 2) may hold
// spaces and parentheses, so fields are counted after its last ')'.
func parseProcStat(line string) (ProcStat, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return ProcStat{}, fmt.Errorf("parse /proc stat %q: no command name", line)
	}
	f := strings.Fields(line[i+1:])
	// f[0] is field 3 (state); field 22 (starttime) is f[19].
	if len(f) < 20 || len(f[0]) != 1 {
		return ProcStat{}, fmt.Errorf("parse /proc stat %q: too few fields", line)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return ProcStat{}, fmt.Errorf("parse /proc stat start time %q: %w", f[19], err)
	}
	return ProcStat{State: f[0][0], StartTime: start}, nil
}

// processAlive tells whether pid is still the process that started at
// start and has not exited (a zombie has exited).
func processAlive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, err := ReadProcStat(pid)
	return err == nil && st.StartTime == start && st.State != 'Z' && st.State != 'X'
}

// waitProcessExit blocks until the process (pid, start) has exited or ctx
// is done. It works for processes that are not the caller's children: it
// polls a pidfd, which becomes readable when the process exits.
func waitProcessExit(ctx context.Context, pid int, start uint64) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		return pollProcessExit(ctx, pid, start)
	}
	defer unix.Close(fd)
	// The pidfd names whatever process has pid now; the start time says
	// whether that is still ours.
	if !processAlive(pid, start) {
		return nil
	}
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("wait for pid %d: poll pidfd: %w", pid, err)
		}
		if n > 0 {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// pollProcessExit is waitProcessExit for kernels without pidfd_open (<5.3).
func pollProcessExit(ctx context.Context, pid int, start uint64) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for processAlive(pid, start) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
