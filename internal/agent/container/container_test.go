package container

import (
	"bytes"
	"errors"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	line := "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000000 100 18446744073709551615"
	got, err := parseProcStat(line)
	if err != nil || got.State != 'S' || got.StartTime != 987654 {
		t.Errorf("parseProcStat = %+v, %v; want state S, start 987654", got, err)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 x S"} {
		if _, err := parseProcStat(bad); err == nil {
			t.Errorf("parseProcStat(%q) succeeded", bad)
		}
	}
}

func TestParseProcCgroup(t *testing.T) {
	got := parseProcCgroup("9:name=systemd:/\n4:memory:/a/b\n1:cpu,cpuacct:/c\n0::/u\n")
	want := map[string]string{"name=systemd": "/", "memory": "/a/b", "cpu": "/c", "cpuacct": "/c", "": "/u"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseProcCgroup = %v, want %v", got, want)
	}
}

func TestParseOOMKills(t *testing.T) {
	for content, want := range map[string]int{
		"oom_kill_disable 0\nunder_oom 0\noom_kill 2\n": 2, // v1 memory.oom_control
		"low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n":     1, // v2 memory.events
		"oom_kill_disable 0\nunder_oom 0\n":             0, // old v1 kernels
	} {
		if got := parseOOMKills(content); got != want {
			t.Errorf("parseOOMKills(%q) = %d, want %d", content, got, want)
		}
	}
}

func TestLimitWrites(t *testing.T) {
	v1 := Cgroup{Version: 1, Dirs: map[string]string{"memory": "/m", "cpu": "/c"}}
	want := []limitWrite{
		{"memory", "/m/memory.limit_in_bytes", "1048576"},
		{"cpu", "/c/cpu.cfs_period_us", "100000"},
		{"cpu", "/c/cpu.cfs_quota_us", "150000"},
	}
	if got := v1.limitWrites(1500, 1<<20); !reflect.DeepEqual(got, want) {
		t.Errorf("v1 writes = %v, want %v", got, want)
	}
	v2 := Cgroup{Version: 2, Dirs: map[string]string{"unified": "/u"}}
	want = []limitWrite{{"memory", "/u/memory.max", "1048576"}, {"cpu", "/u/cpu.max", "1000 100000"}}
	if got := v2.limitWrites(1, 1<<20); !reflect.DeepEqual(got, want) {
		t.Errorf("v2 writes = %v, want %v (1m rounds up to the 1ms minimum)", got, want)
	}
	if got := v1.limitWrites(0, 0); len(got) != 0 {
		t.Errorf("no limits: writes %v", got)
	}
}

func TestMountsUnder(t *testing.T) {
	info := strings.Join([]string{
		"27 1 254:0 / / rw - ext4 /dev/vda rw",
		"50 27 0:40 / /var/lib/w/c1/rootfs rw - tmpfs t rw",
		"51 50 0:41 / /var/lib/w/c1/rootfs/etc rw - overlay o rw",
		"52 27 0:42 / /var/lib/w/c10 rw - tmpfs t rw",
		`53 27 0:43 / /var/lib/w/c1/with\040space rw - tmpfs t rw`,
	}, "\n")
	got := mountsUnder(info, "/var/lib/w/c1")
	want := []string{"/var/lib/w/c1/rootfs/etc", "/var/lib/w/c1/with space", "/var/lib/w/c1/rootfs"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mountsUnder = %q, want %q (deepest first, not c10)", got, want)
	}
}

func TestExecArgs(t *testing.T) {
	got := execArgs("/usr/bin/nsenter", 42, []string{"/cg/memory/x", "/cg/pids/x"}, []string{"echo", "--", "hi"})
	want := []string{"-c", joinCgroupScript, "wharf-exec", "/cg/memory/x/cgroup.procs", "/cg/pids/x/cgroup.procs", "--",
		"/usr/bin/nsenter", "-t", "42", "-m", "-u", "-i", "-n", "-p", "-r", "-w", "--", "echo", "--", "hi"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("execArgs = %q, want %q", got, want)
	}
}

func TestProcessEnv(t *testing.T) {
	if got := ProcessEnv([]string{"A=1"}, true); !reflect.DeepEqual(got, []string{"A=1", "PATH=" + DefaultPath, "TERM=xterm"}) {
		t.Errorf("defaults: %q", got)
	}
	if got := ProcessEnv([]string{"PATH=/x", "TERM=dumb"}, true); !reflect.DeepEqual(got, []string{"PATH=/x", "TERM=dumb"}) {
		t.Errorf("kept: %q", got)
	}
}

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	for _, f := range []struct {
		kind byte
		p    []byte
	}{{FrameStdout, []byte("out")}, {FrameResize, EncodeTermSize(TermSize{80, 24})}, {FrameStdinClose, nil}} {
		if err := WriteFrame(&buf, f.kind, f.p); err != nil {
			t.Fatal(err)
		}
		kind, p, err := ReadFrame(bytes.NewReader(buf.Bytes()))
		if err != nil || kind != f.kind || !bytes.Equal(p, f.p) {
			t.Errorf("round trip of %d %q = %d %q %v", f.kind, f.p, kind, p, err)
		}
		buf.Reset()
	}
	if sz, err := DecodeTermSize(EncodeTermSize(TermSize{Width: 300, Height: 2})); err != nil || sz != (TermSize{300, 2}) {
		t.Errorf("term size round trip = %v, %v", sz, err)
	}
	if _, _, err := ReadFrame(bytes.NewReader([]byte{1, 0, 0, 0, 9, 'x'})); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated frame: %v", err)
	}
	if _, _, err := ReadFrame(bytes.NewReader(nil)); err != io.EOF {
		t.Errorf("clean end: %v, want io.EOF", err)
	}
	if err := WriteFrame(io.Discard, FrameStdin, make([]byte, maxFrame+1)); err == nil {
		t.Error("oversized frame written")
	}
}

func TestRecordState(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	started := &Started{InitPid: 10, ContainerPid: 11, StartedAt: start}
	exit := &Exit{ExitCode: 137, Signal: "SIGKILL", Reason: ReasonOOMKilled, FinishedAt: start.Add(time.Minute)}
	cases := []struct {
		name  string
		rec   record
		alive bool
		want  State
	}{
		{"running", record{started: started}, true, State{Pid: 10, ContainerPid: 11, Running: true, StartedAt: start}},
		{"exited", record{started: started, exit: exit}, false,
			State{Pid: 10, ContainerPid: 11, ExitCode: 137, Signal: "SIGKILL", Reason: ReasonOOMKilled, StartedAt: start, FinishedAt: exit.FinishedAt}},
		{"exit recorded, init finishing", record{started: started, exit: exit}, true,
			State{Pid: 10, ContainerPid: 11, ExitCode: 137, Signal: "SIGKILL", Reason: ReasonOOMKilled, StartedAt: start, FinishedAt: exit.FinishedAt}},
		{"init vanished", record{started: started}, false,
			State{Pid: 10, ContainerPid: 11, ExitCode: 255, Reason: ReasonUnknown, Message: "init exited without recording the container's exit", StartedAt: start}},
		{"never started", record{}, false, State{ExitCode: 255, Reason: ReasonUnknown, Message: "init has not reported the container started"}},
	}
	for _, c := range cases {
		c.rec.spec.ID, c.want.ID = "x", "x"
		if got := c.rec.state(c.alive); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: state = %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestSpecValidate(t *testing.T) {
	ok := Spec{ID: "uid_c_0", Args: []string{"sh"}, LogPath: "/l/c.log"}
	if err := ok.validate(); err != nil {
		t.Fatalf("valid spec: %v", err)
	}
	for name, mutate := range map[string]func(*Spec){
		"ID with slash":     func(s *Spec) { s.ID = "a/b" },
		"ID dot-dot":        func(s *Spec) { s.ID = ".." },
		"no args":           func(s *Spec) { s.Args = nil },
		"relative log path": func(s *Spec) { s.LogPath = "c.log" },
		"relative netns":    func(s *Spec) { s.NetnsPath = "ns" },
		"relative mount":    func(s *Spec) { s.Mounts = []Mount{{HostPath: "x", ContainerPath: "/x"}} },
	} {
		s := ok
		mutate(&s)
		if err := s.validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestStateFilesRoundTrip(t *testing.T) {
	dir := t.TempDir()
	in := Exit{ExitCode: 3, Reason: ReasonError, FinishedAt: time.Now().UTC().Round(0)}
	if err := WriteJSONAtomic(dir, ExitFile, in); err != nil {
		t.Fatal(err)
	}
	var out Exit
	if err := ReadJSON(dir, ExitFile, &out); err != nil || !reflect.DeepEqual(in, out) {
		t.Errorf("read back %+v, %v; want %+v", out, err, in)
	}
	if err := ReadJSON(dir, StartedFile, &Started{}); !os.IsNotExist(err) {
		t.Errorf("missing file: %v, want not-exist", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	if got := FilePath("/s", "/etc/../etc/hosts"); got != "/s/files/etc/hosts" {
		t.Errorf("FilePath = %s", got)
	}
}

func TestReasonFor(t *testing.T) {
	for _, c := range []struct {
		code int
		oom  bool
		want string
	}{{0, false, ReasonCompleted}, {1, false, ReasonError}, {137, false, ReasonError}, {137, true, ReasonOOMKilled}} {
		if got := ReasonFor(c.code, c.oom); got != c.want {
			t.Errorf("ReasonFor(%d, %v) = %s, want %s", c.code, c.oom, got, c.want)
		}
	}
}
