package container

import (
	"context"
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
)

// joinCgroupScript is run by the host's sh: it moves itself into each
// cgroup.procs named before "--" and then execs the rest, so the command is
// in the container's cgroup before it runs (cgroup v1 has no race-free
// way to start a process in a cgroup from Go).
const joinCgroupScript = `while [ "$1" != -- ]; do echo $$ > "$1" || exit 126; shift; done; shift; exec "$@"`

// execArgs is the argv (after the shell's path) that joins the cgroup dirs
// and runs cmd through nsenter in every namespace, root and working
// directory of the process pid.
func execArgs(nsenter string, pid int, cgroupDirs []string, cmd []string) []string {
	args := []string{"-c", joinCgroupScript, "wharf-exec"}
	for _, d := range cgroupDirs {
		args = append(args, filepath.Join(d, "cgroup.procs"))
	}
	args = append(args, "--", nsenter, "-t", strconv.Itoa(pid), "-m", "-u", "-i", "-n", "-p", "-r", "-w", "--")
	return append(args, cmd...)
}

// ProcessEnv is a container process's environment: env with PATH defaulted
// (and TERM for a terminal).
func ProcessEnv(env []string, tty bool) []string {
	out := append([]string{}, env...)
	has := func(key string) bool {
		for _, kv := range env {
			if strings.HasPrefix(kv, key+"=") {
				return true
			}
		}
		return false
	}
	if !has("PATH") {
		out = append(out, "PATH="+DefaultPath)
	}
	if tty && !has("TERM") {
		out = append(out, "TERM=xterm")
	}
	return out
}

// Exec runs cmd in the running container: in all its namespaces, its root
// and working directory, with its Env, in its cgroup. It returns the
// command's exit code (128+signal when a signal killed it); err is for
// failures to run it at all. With tty, cmd runs on a pseudo-terminal whose
// output goes to stdout, sized by what arrives on resize. Cancelling ctx
// kills the command.
func (r *Runtime) Exec(ctx context.Context, id string, cmd []string, stdin io.Reader, stdout, stderr io.Writer, tty bool, resize <-chan TermSize) (int, error) {
	if len(cmd) == 0 {
		return -1, fmt.Errorf("exec in container %s: no command", id)
	}
	rec, err := r.load(id)
	if err != nil {
		return -1, err
	}
	if !rec.state(rec.initAlive()).Running || !processAlive(rec.started.ContainerPid, rec.started.ContainerStartTime) {
		return -1, fmt.Errorf("exec in container %s: it is not running", id)
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return -1, fmt.Errorf("exec in container %s: needs nsenter (util-linux): %w", id, err)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		return -1, fmt.Errorf("exec in container %s: needs sh: %w", id, err)
	}
	c := exec.CommandContext(ctx, sh, execArgs(nsenter, rec.started.ContainerPid, rec.setup.Cgroup.AllDirs(), cmd)...)
	c.Env = ProcessEnv(rec.spec.Env, tty)
	// Kill the whole process group (nsenter forks the command into it).
	c.Cancel = func() error { return unix.Kill(-c.Process.Pid, unix.SIGKILL) }
	c.WaitDelay = 2 * time.Second
	if tty {
		err = runOnPTY(c, stdin, stdout, resize)
	} else {
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		c.Stdin, c.Stdout, c.Stderr = stdin, stdout, stderr
		err = c.Run()
	}
	if c.ProcessState == nil {
		return -1, fmt.Errorf("exec in container %s: %w", id, err)
	}
	if ctx.Err() != nil {
		return -1, fmt.Errorf("exec in container %s: %w", id, ctx.Err())
	}
	return exitCode(c.ProcessState), nil
}

// exitCode is the shell's view of a wait status.
func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// runOnPTY runs c on a new pseudo-terminal, copying stdin to it and its
// output to stdout, and applying resizes, until c exits.
func runOnPTY(c *exec.Cmd, stdin io.Reader, stdout io.Writer, resize <-chan TermSize) error {
	size := &pty.Winsize{Cols: 80, Rows: 24}
	select {
	case sz, ok := <-resize:
		if ok {
			size = &pty.Winsize{Cols: sz.Width, Rows: sz.Height}
		}
	default:
	}
	ptmx, err := pty.StartWithSize(c, size)
	if err != nil {
		return err
	}
	defer ptmx.Close()
	done := make(chan struct{})
	defer close(done)
	go applyResizes(ptmx, resize, done)
	if stdin != nil {
		go func() { _, _ = io.Copy(ptmx, stdin) }()
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		if stdout == nil {
			stdout = io.Discard
		}
		// Reading the master fails with EIO once no process holds the
		// terminal any more: that is its end of file.
		_, _ = io.Copy(stdout, ptmx)
	}()
	err = c.Wait()
	select {
	case <-copied:
	case <-time.After(2 * time.Second): // a background process still holds the terminal
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return nil
	}
	return err
}

func applyResizes(ptmx *os.File, resize <-chan TermSize, done <-chan struct{}) {
	if resize == nil {
		return
	}
	for {
		select {
		case <-done:
			return
		case sz, ok := <-resize:
			if !ok {
				return
			}
			_ = pty.Setsize(ptmx, &pty.Winsize{Cols: sz.Width, Rows: sz.Height})
		}
	}
}
