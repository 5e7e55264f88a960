package podnet

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// testCIDR is the pod CIDR of the root tests; it only exists inside the
// throwaway network namespace each test runs in.
const testCIDR = "10.244.250.0/24"

// testPluginPkgs are the plugins the default conflist needs, as the
// Makefile builds them.
var testPluginPkgs = []string{
	"github.com/containernetworking/plugins/plugins/main/bridge",
	"github.com/containernetworking/plugins/plugins/ipam/host-local",
	"github.com/containernetworking/plugins/plugins/main/loopback",
	"github.com/containernetworking/plugins/plugins/meta/portmap",
}

var testPlugins struct {
	once sync.Once
	dir  string
	err  error
}

// testPluginDir builds the reference plugins once per plugins version into
// a cached directory under os.TempDir and returns it.
func testPluginDir(t *testing.T) string {
	t.Helper()
	testPlugins.once.Do(func() { testPlugins.dir, testPlugins.err = buildTestPlugins() })
	if testPlugins.err != nil {
		t.Fatalf("build CNI plugins: %v", testPlugins.err)
	}
	return testPlugins.dir
}

func buildTestPlugins() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/containernetworking/plugins").Output()
	if err != nil {
		return "", fmt.Errorf("go list plugins version: %w", err)
	}
	dir := filepath.Join(os.TempDir(), "wharf-cni-test-plugins-"+strings.TrimSpace(string(out)))
	if havePlugins(dir) {
		return dir, nil
	}
	tmp, err := os.MkdirTemp(os.TempDir(), "wharf-cni-build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // empty after a successful rename
	cmd := exec.Command("go", append([]string{"build", "-o", tmp + "/"}, testPluginPkgs...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, dir); err != nil && !havePlugins(dir) {
		return "", err
	}
	return dir, nil
}

func havePlugins(dir string) bool {
	for _, p := range testPluginPkgs {
		if _, err := os.Stat(filepath.Join(dir, filepath.Base(p))); err != nil {
			return false
		}
	}
	return true
}

// enterThrowawayNetns moves the test's goroutine onto an OS thread of its
// own in a new network namespace, so the bridge, veths, routes and sysctls
// the test (and the CNI plugins it starts, which inherit the thread's
// namespace) makes never touch the host. The thread stays locked: when the
// test's goroutine ends, after its cleanups, the thread and with it the
// namespace and everything in it are destroyed.
func enterThrowawayNetns(t *testing.T) {
	t.Helper()
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		t.Fatalf("unshare network namespace: %v", err)
	}
}

// testEnv is a Manager whose every file, mount and interface lives in the
// test's temp dir and throwaway namespace.
type testEnv struct {
	cfg Config
	m   *Manager
}

// newTestEnv skips unless root, enters a throwaway network namespace and
// makes a Manager with the default conflist for testCIDR. Pods' namespace
// mounts left behind are removed in cleanup.
func newTestEnv(t *testing.T, edit func(*Config)) *testEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, bridges and bind mounts")
	}
	plugins := testPluginDir(t)
	enterThrowawayNetns(t)
	dir := t.TempDir()
	cfg := Config{
		DataDir:      filepath.Join(dir, "data"),
		NetnsDir:     filepath.Join(dir, "netns"),
		PluginSource: plugins,
		BridgeName:   "wt" + randHex(t, 3),
	}
	if edit != nil {
		edit(&cfg)
	}
	// Registered after t.TempDir, so it runs before the dir is removed.
	t.Cleanup(func() { unmountAll(t, cfg.NetnsDir) })
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := m.WriteDefaultConfig(testCIDR); err != nil {
		t.Fatal(err)
	}
	return &testEnv{cfg: m.cfg, m: m}
}

func unmountAll(t *testing.T, dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if err := removeNetns(filepath.Join(dir, e.Name())); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
}

func randHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// ipFiles lists host-local's reservations: the files of its network dir
// named by an address.
func (e *testEnv) ipFiles(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(e.cfg.ipamDir(), NetworkName))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var ips []string
	for _, en := range entries {
		if net.ParseIP(en.Name()) != nil {
			ips = append(ips, en.Name())
		}
	}
	return ips
}

// reserved reports whether host-local holds ip.
func (e *testEnv) reserved(ip net.IP) bool {
	_, err := os.Stat(filepath.Join(e.cfg.ipamDir(), NetworkName, ip.String()))
	return err == nil
}

func (e *testEnv) list(t *testing.T) []string {
	t.Helper()
	names, err := e.m.List()
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func testPod(name string) PodRef {
	return PodRef{Namespace: "default", Name: name, UID: name + "-0a1b2c3d-4e5f-6789"}
}
