package podnet

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestInNetnsRejectsNonNamespace(t *testing.T) {
	dir := t.TempDir()
	if err := InNetns(filepath.Join(dir, "missing"), func() error { return nil }); err == nil {
		t.Error("InNetns on a missing path succeeded")
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ran := false
	if err := InNetns(plain, func() error { ran = true; return nil }); err == nil || ran {
		t.Errorf("InNetns on a plain file = %v, ran fn %v; want error, fn not run", err, ran)
	}
	if isNetns(plain) {
		t.Error("isNetns(plain file) = true")
	}
}

func TestCreateNetnsKeepsExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ns")
	if err := os.WriteFile(path, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := createNetns(path); err == nil {
		t.Fatal("createNetns over an existing file succeeded")
	}
	if b, _ := os.ReadFile(path); string(b) != "mine" {
		t.Error("createNetns clobbered the existing file")
	}
}

func TestInNetnsSeesOnlyThePodsInterfaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace")
	}
	path := filepath.Join(t.TempDir(), "ns")
	t.Cleanup(func() {
		if err := removeNetns(path); err != nil {
			t.Error(err)
		}
	})
	if err := createNetns(path); err != nil {
		t.Fatal(err)
	}
	if !isNetns(path) {
		t.Fatal("isNetns = false for a fresh namespace")
	}
	var ifaces []net.Interface
	err := InNetns(path, func() (err error) {
		ifaces, err = net.Interfaces()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ifaces) != 1 || ifaces[0].Name != "lo" || ifaces[0].Flags&net.FlagUp == 0 {
		t.Errorf("interfaces in a fresh pod namespace = %+v, want only lo, up", ifaces)
	}
	sentinel := errors.New("from fn")
	if err := InNetns(path, func() error { return sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("InNetns did not return fn's error: %v", err)
	}
}

func TestEnsureSharedMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts")
	}
	dir := filepath.Join(t.TempDir(), "netns")
	t.Cleanup(func() {
		for mountCount(t, dir) > 0 {
			if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", dir, err)
				return
			}
		}
	})
	for range 2 { // the second call finds it shared and mounts nothing
		if err := ensureSharedMount(dir); err != nil {
			t.Fatal(err)
		}
	}
	if n := mountCount(t, dir); n != 1 {
		t.Fatalf("%s is mounted %d times, want once", dir, n)
	}
	if !mountShared(t, dir) {
		t.Errorf("%s is not a shared mount", dir)
	}
}

// mountinfo returns the lines of /proc/self/mountinfo whose mount point is dir.
func mountinfo(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == dir {
			lines = append(lines, l)
		}
	}
	return lines
}

func mountCount(t *testing.T, dir string) int { return len(mountinfo(t, dir)) }

func mountShared(t *testing.T, dir string) bool {
	lines := mountinfo(t, dir)
	return len(lines) > 0 && strings.Contains(lines[len(lines)-1], " shared:")
}
