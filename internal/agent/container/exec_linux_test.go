package container_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wharf-io/wharf/internal/agent/container"
)

func TestExec(t *testing.T) {
	s := newSandbox(t)
	spec := s.spec("sleep", "1000")
	spec.Env = []string{"GREETING=hello"}
	s.start(spec)
	cases := []struct {
		name     string
		cmd      []string
		stdin    string
		wantCode int
		wantOut  string
	}{
		{"echo", []string{"echo", "hi"}, "", 0, "hi\n"},
		{"exit code", []string{"sh", "-c", "exit 7"}, "", 7, ""},
		{"container env", []string{"sh", "-c", `echo "$GREETING"`}, "", 0, "hello\n"},
		{"hostname", []string{"hostname"}, "", 0, "testpod\n"},
		{"pid namespace", []string{"sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline | grep -c ' init '"}, "", 0, "1\n"},
		{"cgroup", []string{"sh", "-c", "grep -c " + spec.ID + " /proc/self/cgroup"}, "", 0, "4\n"},
		{"stdin", []string{"cat"}, "piped\n", 0, "piped\n"},
		{"missing command", []string{"no-such-command"}, "", 127, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var stdin *strings.Reader
			if c.stdin != "" {
				stdin = strings.NewReader(c.stdin)
			}
			var code int
			var err error
			if stdin != nil {
				code, err = s.rt.Exec(ctx, spec.ID, c.cmd, stdin, &stdout, &stderr, false, nil)
			} else {
				code, err = s.rt.Exec(ctx, spec.ID, c.cmd, nil, &stdout, &stderr, false, nil)
			}
			if err != nil {
				t.Fatalf("exec %v: %v", c.cmd, err)
			}
			if code != c.wantCode || stdout.String() != c.wantOut {
				t.Errorf("exec %v = %d, %q (stderr %q), want %d, %q", c.cmd, code, stdout.String(), stderr.String(), c.wantCode, c.wantOut)
			}
		})
	}
}

func TestExecTTY(t *testing.T) {
	s := newSandbox(t)
	spec := s.spec("sleep", "1000")
	s.start(spec)
	resize := make(chan container.TermSize, 1)
	resize <- container.TermSize{Width: 100, Height: 40}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code, err := s.rt.Exec(ctx, spec.ID, []string{"sh", "-c", "tty; stty size; echo $TERM"}, nil, &out, nil, true, resize)
	if err != nil || code != 0 {
		t.Fatalf("exec = %d, %v; output %q", code, err, out.String())
	}
	lines := strings.Split(strings.ReplaceAll(strings.TrimSpace(out.String()), "\r", ""), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "/dev/pts/") || lines[1] != "40 100" || lines[2] != "xterm" {
		t.Errorf("output %q, want a /dev/pts tty of 40 rows, 100 columns, TERM=xterm", out.String())
	}
}

func TestExecNotRunning(t *testing.T) {
	s := newSandbox(t)
	spec := s.spec("sleep", "0.3") // long enough for start to see it run
	s.start(spec)
	s.wait(spec.ID)
	if _, err := s.rt.Exec(context.Background(), spec.ID, []string{"true"}, nil, nil, nil, false, nil); err == nil {
		t.Error("exec in an exited container succeeded")
	}
}

func TestAttachOutputAndStdin(t *testing.T) {
	s := newSandbox(t)
	spec := s.spec("sh", "-c", `while read line; do echo "got $line"; echo "err $line" >&2; done; echo bye`)
	spec.Stdin, spec.StdinOnce = true, true
	s.start(spec)
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.rt.Attach(ctx, spec.ID, strings.NewReader("one\ntwo\n"), &stdout, &stderr, false, nil); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "got one\ngot two\nbye\n" || stderr.String() != "err one\nerr two\n" {
		t.Errorf("attached stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	st := s.wait(spec.ID)
	if st.ExitCode != 0 {
		t.Errorf("state = %+v", st)
	}
	if got := logText(t, spec.LogPath, "stdout"); got != "got one\ngot two\nbye\n" {
		t.Errorf("logged %q", got)
	}
}

func TestAttachTTY(t *testing.T) {
	s := newSandbox(t)
	spec := s.spec("sh", "-c", `read line; stty size; echo "got $line"`)
	spec.Stdin, spec.StdinOnce, spec.TTY = true, true, true
	s.start(spec)
	resize := make(chan container.TermSize, 1)
	resize <- container.TermSize{Width: 120, Height: 50}
	// Send the line only after the resize had time to arrive.
	stdin := &slowReader{data: []byte("hello\n"), delay: 300 * time.Millisecond}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.rt.Attach(ctx, spec.ID, stdin, &out, nil, true, resize); err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(out.String(), "\r", "")
	if !strings.Contains(text, "50 120\ngot hello") {
		t.Errorf("attached output %q, want the size and the echoed line", text)
	}
}

// slowReader yields data once, after delay, then EOF.
type slowReader struct {
	data  []byte
	delay time.Duration
	done  bool
}

func (r *slowReader) Read(p []byte) (int, error) {
	if r.done {
		return 0, os.ErrClosed
	}
	time.Sleep(r.delay)
	r.done = true
	return copy(p, r.data), nil
}

func TestAttachLiveOutput(t *testing.T) {
	s := newSandbox(t)
	spec := s.spec("sh", "-c", `echo before; sleep 0.5; for i in 1 2 3; do echo tick $i; sleep 0.1; done`)
	s.start(spec)
	waitForLog(t, spec.LogPath, "before")
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.rt.Attach(ctx, spec.ID, nil, &out, nil, false, nil); err != nil {
		t.Fatal(err)
	}
	if out.String() != "tick 1\ntick 2\ntick 3\n" {
		t.Errorf("attached output %q, want the ticks only (output from now on)", out.String())
	}
}

func TestNewRuntimeAdoptsRunningContainer(t *testing.T) {
	s := newSandbox(t)
	spec := s.spec("sh", "-c", "sleep 1; exit 4")
	first := s.start(spec)

	// A new Runtime over the same root, as after an agent restart.
	again := &container.Runtime{Root: s.rt.Root}
	ids, err := again.List()
	if err != nil || !slices.Contains(ids, spec.ID) {
		t.Fatalf("List = %v, %v; want %s", ids, err, spec.ID)
	}
	st, err := again.State(spec.ID)
	if err != nil || !st.Running || st.Pid != first.Pid || st.ContainerPid != first.ContainerPid {
		t.Fatalf("State = %+v, %v; want running as %+v", st, err, first)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err = again.Wait(ctx, spec.ID)
	if err != nil || st.Running || st.ExitCode != 4 || st.Reason != container.ReasonError {
		t.Errorf("Wait = %+v, %v; want exit 4", st, err)
	}
}

func TestWaitForInitStartedByAnotherProcess(t *testing.T) {
	s := newSandbox(t)
	spec := s.spec("sh", "-c", "sleep 1; exit 5")
	specDir := t.TempDir()
	if err := container.WriteJSONAtomic(specDir, "spec.json", spec); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	helper := exec.Command(self, filepath.Join(specDir, "spec.json"))
	helper.Env = append(os.Environ(), startHelperEnv+"="+s.rt.Root)
	out, err := helper.CombinedOutput()
	t.Cleanup(func() { s.cleanup(spec.ID, 0) })
	if err != nil {
		t.Fatalf("start in a helper process: %v\n%s", err, out)
	}
	st, err := s.rt.State(spec.ID)
	if err != nil || !st.Running {
		t.Fatalf("State = %+v, %v; want running", st, err)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", st.Pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if ppid, _ := strconv.Atoi(fields[1]); ppid == os.Getpid() || ppid == helper.Process.Pid {
		t.Fatalf("init's parent is %d: want neither the test nor the exited helper", ppid)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err = s.rt.Wait(ctx, spec.ID)
	if err != nil || st.Running || st.ExitCode != 5 {
		t.Errorf("Wait = %+v, %v; want exit 5", st, err)
	}
}

func TestWaitHonoursContext(t *testing.T) {
	s := newSandbox(t)
	spec := s.spec("sleep", "1000")
	s.start(spec)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := s.rt.Wait(ctx, spec.ID); err == nil {
		t.Error("Wait returned before the container ended")
	}
}
