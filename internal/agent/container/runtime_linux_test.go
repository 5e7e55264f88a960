package container_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wharf-io/wharf/internal/agent/container"
	"github.com/wharf-io/wharf/internal/initproc"
)

// initHelperEnv makes the test binary act as `wharf init`, so the tests need
// not build cmd/wharf.
const initHelperEnv = "WHARF_TEST_INIT_HELPER"

// startHelperEnv makes the test binary start the container whose spec
// (JSON) file is its last argument under the Root the variable names, and
// exit: its init then is nobody's child here, as after an agent restart.
const startHelperEnv = "WHARF_TEST_START_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(initHelperEnv) != "" {
		os.Exit(initproc.Main(os.Args[len(os.Args)-1]))
	}
	if root := os.Getenv(startHelperEnv); root != "" {
		os.Exit(startAndExit(root, os.Args[len(os.Args)-1]))
	}
	os.Exit(m.Run())
}

func startAndExit(root, specFile string) int {
	var spec container.Spec
	if err := container.ReadJSON(filepath.Dir(specFile), filepath.Base(specFile), &spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	self, _ := os.Executable()
	rt := &container.Runtime{Root: root, InitPath: self, InitEnv: []string{initHelperEnv + "=1"}, CgroupNestUnderSelf: true}
	if _, err := rt.Start(spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// sandbox is a Runtime over a temporary root, with containers in a cgroup
// parent of their own, nested under the test's cgroups.
type sandbox struct {
	t      *testing.T
	rt     *container.Runtime
	parent string
	logs   string
}

var seq atomic.Int64

func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (namespaces, mounts, cgroups)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	s := &sandbox{
		t: t,
		rt: &container.Runtime{
			Root: filepath.Join(dir, "state"), InitPath: self, InitArgs: []string{"init"},
			InitEnv: []string{initHelperEnv + "=1"}, CgroupNestUnderSelf: true,
		},
		parent: "wharftest-" + hex.EncodeToString(b),
		logs:   filepath.Join(dir, "logs"),
	}
	t.Cleanup(func() {
		if err := s.rt.RemoveCgroupParent(s.parent); err != nil {
			t.Errorf("remove cgroup parent: %v", err)
		}
	})
	return s
}

// spec is a Spec with an ID, log path and cgroup parent filled in.
func (s *sandbox) spec(args ...string) container.Spec {
	id := fmt.Sprintf("pod%d_c_0", seq.Add(1))
	return container.Spec{
		ID: id, Container: "c", Hostname: "testpod", Args: args,
		LogPath: filepath.Join(s.logs, id+".log"), CgroupParent: s.parent,
	}
}

// start starts spec and registers its stop and removal.
func (s *sandbox) start(spec container.Spec) container.State {
	s.t.Helper()
	st, err := s.rt.Start(spec)
	s.t.Cleanup(func() { s.cleanup(spec.ID, st.Pid) })
	if err != nil {
		s.t.Fatalf("start %v: %v", spec.Args, err)
	}
	if !st.Running || st.Pid == 0 || st.ContainerPid == 0 {
		s.t.Fatalf("start %v: state %+v, want running with pids", spec.Args, st)
	}
	return st
}

func (s *sandbox) cleanup(id string, initPid int) {
	if err := s.rt.Stop(id, 0); err != nil && !container.IsNotFound(err) {
		s.t.Errorf("cleanup: stop %s: %v", id, err)
	}
	if err := s.rt.Remove(id); err != nil {
		s.t.Errorf("cleanup: remove %s: %v", id, err)
		if initPid > 0 {
			_ = unix.Kill(initPid, unix.SIGKILL)
		}
	}
}

func (s *sandbox) wait(id string) container.State {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := s.rt.Wait(ctx, id)
	if err != nil {
		s.t.Fatalf("wait %s: %v", id, err)
	}
	if st.Running {
		s.t.Fatalf("wait %s: still running", id)
	}
	return st
}

// run starts a container running sh -c script, waits for it and returns
// its state and stdout.
func (s *sandbox) run(spec container.Spec) (container.State, string) {
	s.t.Helper()
	s.start(spec)
	st := s.wait(spec.ID)
	return st, logText(s.t, spec.LogPath, "stdout")
}

var criLine = regexp.MustCompile(`^(\S+) (stdout|stderr) ([FP]) (.*)$`)

// logText is the stream's text in a CRI log, checking every record's form.
func logText(t *testing.T, path, stream string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read log: %v", err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		m := criLine.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("log line %q is not in the CRI format", sc.Text())
		}
		if _, err := time.Parse(time.RFC3339Nano, m[1]); err != nil {
			t.Fatalf("log line %q: bad time: %v", sc.Text(), err)
		}
		if m[2] == stream {
			out.WriteString(m[4])
			if m[3] == "F" {
				out.WriteString("\n")
			}
		}
	}
	return out.String()
}

func TestExitCodeAndCRILog(t *testing.T) {
	s := newSandbox(t)
	spec := s.spec("sh", "-c", "echo out; echo err >&2; exit 3")
	st, stdout := s.run(spec)
	if st.ExitCode != 3 || st.Reason != container.ReasonError || st.Signal != "" {
		t.Errorf("state = %+v, want exit 3, reason Error", st)
	}
	if stdout != "out\n" {
		t.Errorf("stdout = %q, want %q", stdout, "out\n")
	}
	if got := logText(t, spec.LogPath, "stderr"); got != "err\n" {
		t.Errorf("stderr = %q, want %q", got, "err\n")
	}
	if st.FinishedAt.Before(st.StartedAt) || st.StartedAt.IsZero() {
		t.Errorf("times: started %v finished %v", st.StartedAt, st.FinishedAt)
	}
}

func TestContainerView(t *testing.T) {
	s := newSandbox(t)
	secrets := t.TempDir()
	if err := os.WriteFile(filepath.Join(secrets, "token"), []byte("tok3n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := s.spec("sh", "-c", `hostname; cat /etc/resolv.conf; cat /etc/wharf-extra
cat /var/run/secrets/kubernetes.io/serviceaccount/token; echo
touch /var/run/secrets/kubernetes.io/serviceaccount/x 2>/dev/null || echo read-only
tr '\0' ' ' < /proc/1/cmdline; echo
ls /proc | grep -c '^[0-9]'
pwd; echo "$FOO"`)
	spec.Files = map[string][]byte{
		"/etc/resolv.conf": []byte("nameserver 10.96.0.10\nsearch default.svc.cluster.local\n"),
		"/etc/wharf-extra": []byte("extra file\n"),
	}
	spec.Mounts = []container.Mount{{HostPath: secrets, ContainerPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true}}
	spec.WorkingDir = "/work/dir"
	spec.Env = []string{"FOO=bar"}
	st, out := s.run(spec)
	if st.ExitCode != 0 || st.Reason != container.ReasonCompleted {
		t.Fatalf("state = %+v; output:\n%s", st, out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	want := []string{"testpod", "nameserver 10.96.0.10", "search default.svc.cluster.local", "extra file", "tok3n", "read-only"}
	if len(lines) < 10 {
		t.Fatalf("output:\n%s", out)
	}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("line %d = %q, want %q; output:\n%s", i, lines[i], w, out)
		}
	}
	if !strings.Contains(lines[6], " init ") {
		t.Errorf("PID 1 is %q, want the init", lines[6])
	}
	// PID 1, sh, ls (and grep): a fresh PID namespace.
	if lines[7] > "4" || len(lines[7]) != 1 {
		t.Errorf("%s processes visible, want at most 4", lines[7])
	}
	if lines[8] != "/work/dir" || lines[9] != "bar" {
		t.Errorf("pwd, FOO = %q, %q", lines[8], lines[9])
	}
}

// newNetns makes a network namespace (only lo, down) bound at a file.
func newNetns(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "netns")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread, now in the new netns, is discarded.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- unix.Mount(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), path, "", unix.MS_BIND, "")
	}()
	if err := <-errc; err != nil {
		t.Fatalf("create netns: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount netns: %v", err)
		}
	})
	return path
}

func TestJoinsPodNetns(t *testing.T) {
	s := newSandbox(t)
	spec := s.spec("sh", "-c", "ls /sys/class/net; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '")
	spec.NetnsPath = newNetns(t)
	st, out := s.run(spec)
	if st.ExitCode != 0 || out != "lo\nlo\n" {
		t.Errorf("exit %d, interfaces:\n%s\nwant only lo (from /sys and /proc)", st.ExitCode, out)
	}
}

func TestStopForwardsSIGTERM(t *testing.T) {
	s := newSandbox(t)
	spec := s.spec("sh", "-c", `trap 'echo got TERM; exit 0' TERM; echo ready; sleep 1000 & wait`)
	s.start(spec)
	waitForLog(t, spec.LogPath, "ready")
	begin := time.Now()
	if err := s.rt.Stop(spec.ID, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d > 10*time.Second {
		t.Errorf("stop took %v: the TERM trap did not end it", d)
	}
	st, err := s.rt.State(spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Running || st.ExitCode != 0 || st.Reason != container.ReasonCompleted {
		t.Errorf("state = %+v, want completed", st)
	}
	if out := logText(t, spec.LogPath, "stdout"); !strings.Contains(out, "got TERM") {
		t.Errorf("output %q: the container did not get SIGTERM", out)
	}
}

func TestStopKillsAfterGrace(t *testing.T) {
	s := newSandbox(t)
	spec := s.spec("sh", "-c", `trap '' TERM; sleep 1000 & echo ready; sleep 1000`)
	s.start(spec)
	waitForLog(t, spec.LogPath, "ready")
	var setup container.Setup
	if err := container.ReadJSON(filepath.Join(s.rt.Root, spec.ID), container.SetupFile, &setup); err != nil {
		t.Fatal(err)
	}
	if len(cgroupProcs(t, setup.Cgroup)) < 3 {
		t.Fatalf("cgroup holds %v, want init, sh and two sleeps", cgroupProcs(t, setup.Cgroup))
	}
	begin := time.Now()
	if err := s.rt.Stop(spec.ID, time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d < time.Second {
		t.Errorf("stop took %v, less than the grace period", d)
	}
	st, err := s.rt.State(spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Running || st.ExitCode != 137 || st.Signal != "SIGKILL" {
		t.Errorf("state = %+v, want killed by SIGKILL", st)
	}
	if procs := cgroupProcs(t, setup.Cgroup); len(procs) != 0 {
		t.Errorf("cgroup still holds %v", procs)
	}
	if err := s.rt.Remove(spec.ID); err != nil {
		t.Fatal(err)
	}
	for _, d := range setup.Cgroup.AllDirs() {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("cgroup %s not removed (%v)", d, err)
		}
	}
	if _, err := os.Stat(filepath.Join(s.rt.Root, spec.ID)); !os.IsNotExist(err) {
		t.Errorf("state dir not removed: %v", err)
	}
	if _, err := os.Stat(spec.LogPath); err != nil {
		t.Errorf("log file removed: %v", err)
	}
}

func cgroupProcs(t *testing.T, cg container.Cgroup) []int {
	t.Helper()
	procs, err := cg.Procs()
	if err != nil {
		t.Fatal(err)
	}
	return procs
}

// waitForLog waits until the log's stdout contains want.
func waitForLog(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if data, err := os.ReadFile(path); err == nil && strings.Contains(string(data), want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%q never appeared in the log", want)
}

func TestOrphansAreReaped(t *testing.T) {
	s := newSandbox(t)
	// The subshell exits at once, leaving sleep to init; when sleep ends
	// only init can reap it.
	spec := s.spec("sh", "-c", `(sleep 0.2 &); sleep 1; cat /proc/[0-9]*/stat`)
	st, out := s.run(spec)
	if st.ExitCode != 0 {
		t.Fatalf("state = %+v", st)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		i := strings.LastIndexByte(line, ')')
		if i < 0 || len(line) < i+3 {
			t.Fatalf("bad stat line %q", line)
		}
		if line[i+2] == 'Z' {
			t.Errorf("zombie: %s", line)
		}
	}
}

func TestMissingExecutable(t *testing.T) {
	s := newSandbox(t)
	spec := s.spec("no-such-command", "arg")
	_, err := s.rt.Start(spec)
	t.Cleanup(func() { s.cleanup(spec.ID, 0) })
	want := `exec: "no-such-command": executable file not found in $PATH`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("start error = %v, want %q", err, want)
	}
	st := s.wait(spec.ID)
	if st.Reason != container.ReasonStartError || !strings.Contains(st.Message, want) {
		t.Errorf("state = %+v, want StartError with the message", st)
	}
}

func TestLimits(t *testing.T) {
	s := newSandbox(t)
	spec := s.spec("sleep", "1000")
	spec.MemoryBytes = 64 << 20
	spec.CPUMilli = 250
	st := s.start(spec)
	if len(st.Warnings) != 0 {
		t.Errorf("warnings: %v", st.Warnings)
	}
	var setup container.Setup
	if err := container.ReadJSON(filepath.Join(s.rt.Root, spec.ID), container.SetupFile, &setup); err != nil {
		t.Fatal(err)
	}
	if setup.Cgroup.Version != 1 {
		t.Skipf("checks cgroup v1 files; this host has v%d", setup.Cgroup.Version)
	}
	for file, want := range map[string]string{
		filepath.Join(setup.Cgroup.Dirs["memory"], "memory.limit_in_bytes"): "67108864",
		filepath.Join(setup.Cgroup.Dirs["cpu"], "cpu.cfs_quota_us"):         "25000",
		filepath.Join(setup.Cgroup.Dirs["cpu"], "cpu.cfs_period_us"):        "100000",
	} {
		data, err := os.ReadFile(file)
		if err != nil || strings.TrimSpace(string(data)) != want {
			t.Errorf("%s = %q (%v), want %s", file, data, err, want)
		}
	}
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", st.ContainerPid))
	if !strings.Contains(string(data), spec.ID) {
		t.Errorf("container process cgroups:\n%s\nwant them under %s", data, spec.ID)
	}
}

func TestOOMKilled(t *testing.T) {
	s := newSandbox(t)
	// tail holds a line without newlines in memory: 256 MiB of them.
	spec := s.spec("sh", "-c", "head -c 268435456 /dev/zero | tail -n 1 >/dev/null")
	spec.MemoryBytes = 32 << 20
	st, _ := s.run(spec)
	if st.Reason != container.ReasonOOMKilled {
		t.Errorf("state = %+v, want OOMKilled", st)
	}
}
