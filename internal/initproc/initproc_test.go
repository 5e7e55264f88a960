package initproc

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wharf-io/wharf/internal/agent/container"
)

var fixedTime = time.Date(2026, 3, 4, 5, 6, 7, 890, time.UTC)

func TestStreamLog(t *testing.T) {
	var buf bytes.Buffer
	l := &criLog{w: &buf, now: func() time.Time { return fixedTime }}
	s := &streamLog{log: l, stream: "stdout"}
	long := strings.Repeat("x", maxLogLine+10)
	for _, w := range []string{"a\nb", "c\n\n", long + "\n", "tail"} {
		if _, err := s.Write([]byte(w)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	ts := "2026-03-04T05:06:07.00000089Z"
	want := ts + " stdout F a\n" + ts + " stdout F bc\n" + ts + " stdout F \n" +
		ts + " stdout P " + long[:maxLogLine] + "\n" + ts + " stdout F " + long[maxLogLine:] + "\n" +
		ts + " stdout F tail\n"
	if got := buf.String(); got != want {
		t.Errorf("log:\n%.300s\nwant:\n%.300s", got, want)
	}
}

// mkRoot makes a fake container root: files, and symlinks as a merged-usr
// host has them.
func mkRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"usr/bin", "run", "var", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]os.FileMode{"usr/bin/tool": 0o755, "usr/bin/data": 0o644}
	for f, mode := range files {
		if err := os.WriteFile(filepath.Join(root, f), nil, mode); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{"bin": "usr/bin", "var/run": "../run", "abs": "/usr", "escape": "../../../../..", "loop": "loop"}
	for l, target := range links {
		if err := os.Symlink(target, filepath.Join(root, l)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestResolveInRoot(t *testing.T) {
	root := mkRoot(t)
	for p, want := range map[string]string{
		"/var/run/secrets/sa":   "/run/secrets/sa",
		"/bin/tool":             "/usr/bin/tool",
		"/abs/bin":              "/usr/bin",
		"/escape/etc/passwd":    "/etc/passwd",
		"/../../etc":            "/etc",
		"/usr/./bin/../bin/x/y": "/usr/bin/x/y",
		"relative/path":         "/relative/path",
	} {
		got, err := resolveInRoot(root, p)
		if err != nil || got != filepath.Join(root, want) {
			t.Errorf("resolveInRoot(%s) = %s, %v; want <root>%s", p, got, err, want)
		}
	}
	if _, err := resolveInRoot(root, "/loop/x"); err == nil {
		t.Error("symlink loop resolved")
	}
}

func TestLookPath(t *testing.T) {
	root := mkRoot(t)
	for _, c := range []struct{ name, path, want string }{
		{"tool", "/nope:/bin", "/bin/tool"},
		{"tool", "/usr/bin", "/usr/bin/tool"},
		{"./local", "/bin", "./local"},
		{"/abs/anything", "", "/abs/anything"},
	} {
		got, err := lookPath(root, c.name, c.path, "/")
		if err != nil || got != c.want {
			t.Errorf("lookPath(%s, %s) = %s, %v; want %s", c.name, c.path, got, err, c.want)
		}
	}
	for _, name := range []string{"data", "missing"} {
		_, err := lookPath(root, name, "/usr/bin:/bin", "/")
		want := `exec: "` + name + `": executable file not found in $PATH`
		if err == nil || err.Error() != want {
			t.Errorf("lookPath(%s) error = %v, want %s", name, err, want)
		}
	}
}

func TestParseNSpid(t *testing.T) {
	status := "Name:\tsleep\nPid:\t5123\nNSpid:\t5123\t2\nNSpgid:\t5123\t2\n"
	if got := parseNSpid(status); !reflect.DeepEqual(got, []int{5123, 2}) {
		t.Errorf("parseNSpid = %v", got)
	}
	if got := parseNSpid("Name:\tx\n"); got != nil {
		t.Errorf("no NSpid line: %v", got)
	}
}

func TestExitFrom(t *testing.T) {
	exited := func(code int) unix.WaitStatus { return unix.WaitStatus(code << 8) }
	killed := func(sig unix.Signal) unix.WaitStatus { return unix.WaitStatus(sig) }
	for _, c := range []struct {
		ws   unix.WaitStatus
		oom  bool
		want container.Exit
	}{
		{exited(0), false, container.Exit{ExitCode: 0, Reason: container.ReasonCompleted}},
		{exited(3), false, container.Exit{ExitCode: 3, Reason: container.ReasonError}},
		{killed(unix.SIGTERM), false, container.Exit{ExitCode: 143, Signal: "SIGTERM", Reason: container.ReasonError}},
		{killed(unix.SIGKILL), true, container.Exit{ExitCode: 137, Signal: "SIGKILL", Reason: container.ReasonOOMKilled}},
	} {
		c.want.FinishedAt = fixedTime
		if got := exitFrom(c.ws, c.oom, fixedTime); got != c.want {
			t.Errorf("exitFrom(%#x, %v) = %+v, want %+v", int(c.ws), c.oom, got, c.want)
		}
	}
}
