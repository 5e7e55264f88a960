package podnet

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestNewEnablesForwardingInCallersNetns(t *testing.T) {
	e := newTestEnv(t, nil)
	if !e.m.EnabledIPForward() {
		t.Error("EnabledIPForward = false in a fresh namespace (where it starts off)")
	}
	if b, _ := os.ReadFile(ipForwardPath); strings.TrimSpace(string(b)) != "1" {
		t.Errorf("ip_forward = %q, want 1", b)
	}
	if got := e.m.InstalledPlugins(); len(got) < len(testPluginPkgs) {
		t.Errorf("installed plugins %v, want the %d built", got, len(testPluginPkgs))
	}
	m2, err := New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if m2.EnabledIPForward() || len(m2.InstalledPlugins()) != 0 {
		t.Errorf("second New: enabled forwarding %v, installed %v; want neither", m2.EnabledIPForward(), m2.InstalledPlugins())
	}
}

func TestPodsGetDistinctIPsAndReachEachOther(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := context.Background()
	a, b := testPod("a"), testPod("b")
	sa, err := e.m.Setup(ctx, a, nil)
	if err != nil {
		t.Fatalf("Setup a: %v", err)
	}
	sb, err := e.m.Setup(ctx, b, nil)
	if err != nil {
		t.Fatalf("Setup b: %v", err)
	}
	_, cidr, _ := net.ParseCIDR(testCIDR)
	for _, s := range []Sandbox{sa, sb} {
		if len(s.IPs) != 1 || !cidr.Contains(s.IPs[0]) || s.IPs[0].Equal(net.ParseIP("10.244.250.1")) || s.Interface != "eth0" {
			t.Fatalf("sandbox %+v: want one pod address in %s on eth0", s, testCIDR)
		}
	}
	if sa.IPs[0].Equal(sb.IPs[0]) {
		t.Fatalf("both pods got %v", sa.IPs[0])
	}
	if want := []string{"wharf-default_a_a-0a1b2c", "wharf-default_b_b-0a1b2c"}; !reflect.DeepEqual(e.list(t), want) {
		t.Errorf("List = %v, want %v", e.list(t), want)
	}

	ln := listenIn(t, sa.NetnsPath, net.JoinHostPort(sa.IPs[0].String(), "0"))
	go serveOnce(ln, "hello from a")
	var got string
	var local net.Addr
	err = InNetns(sb.NetnsPath, func() error {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		local = c.LocalAddr()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c)
		got = string(b)
		return err
	})
	if err != nil {
		t.Fatalf("dial pod a from pod b: %v", err)
	}
	if got != "hello from a" || !local.(*net.TCPAddr).IP.Equal(sb.IPs[0]) {
		t.Errorf("read %q from %v, want %q from pod b's %v", got, local, "hello from a", sb.IPs[0])
	}
}

func TestPodLoopbackIsUp(t *testing.T) {
	e := newTestEnv(t, nil)
	s, err := e.m.Setup(context.Background(), testPod("a"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ln := listenIn(t, s.NetnsPath, "127.0.0.1:0")
	go serveOnce(ln, "lo")
	err = InNetns(s.NetnsPath, func() error {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	if err != nil {
		t.Fatalf("dial 127.0.0.1 inside the pod: %v", err)
	}
}

func TestTeardownRemovesNetnsAndIP(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := context.Background()
	a := testPod("a")
	s, err := e.m.Setup(ctx, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !e.reserved(s.IPs[0]) || !isNetns(s.NetnsPath) {
		t.Fatalf("after Setup: reserved %v, netns mounted %v; want both", e.reserved(s.IPs[0]), isNetns(s.NetnsPath))
	}
	for i := range 2 { // the second time there is nothing left to remove
		if err := e.m.Teardown(ctx, a); err != nil {
			t.Fatalf("Teardown #%d: %v", i+1, err)
		}
	}
	if _, err := os.Lstat(s.NetnsPath); !os.IsNotExist(err) {
		t.Errorf("netns file still there: %v", err)
	}
	if e.reserved(s.IPs[0]) {
		t.Errorf("host-local still reserves %v", s.IPs[0])
	}
	if names := e.list(t); len(names) != 0 {
		t.Errorf("List = %v, want none", names)
	}
}

func TestTeardownAfterNetnsRemovedManually(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := context.Background()
	a := testPod("a")
	s, err := e.m.Setup(ctx, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := removeNetns(s.NetnsPath); err != nil { // as `ip netns delete` would
		t.Fatal(err)
	}
	if err := e.m.Teardown(ctx, a); err != nil {
		t.Fatalf("Teardown without the netns: %v", err)
	}
	if e.reserved(s.IPs[0]) {
		t.Errorf("host-local still reserves %v", s.IPs[0])
	}
}

func TestRecoverAfterRestartReturnsSameIPWithoutNewADD(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := context.Background()
	a := testPod("a")
	s, err := e.m.Setup(ctx, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	restarted, err := New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := restarted.Recover(ctx, a)
	if err != nil || !ok {
		t.Fatalf("Recover = ok %v, err %v; want the sandbox", ok, err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Errorf("Recover = %+v, want %+v", got, s)
	}
	if ips := e.ipFiles(t); len(ips) != 1 || ips[0] != s.IPs[0].String() {
		t.Errorf("host-local reservations %v, want only %v", ips, s.IPs[0])
	}
	if _, err := restarted.Setup(ctx, a, nil); !errors.Is(err, ErrSandboxExists) {
		t.Errorf("Setup of a recovered pod = %v, want ErrSandboxExists", err)
	}
	if _, ok, err := restarted.Recover(ctx, testPod("never")); ok || err != nil {
		t.Errorf("Recover of an unknown pod = ok %v, err %v; want false, nil", ok, err)
	}
}

func TestRecoverTearsDownHalfSandbox(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := context.Background()
	a := testPod("a")
	s, err := e.m.Setup(ctx, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := removeNetns(s.NetnsPath); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := e.m.Recover(ctx, a); ok || err != nil {
		t.Fatalf("Recover without netns = ok %v, err %v; want false, nil", ok, err)
	}
	if e.reserved(s.IPs[0]) {
		t.Errorf("host-local still reserves %v; Recover should have released it", s.IPs[0])
	}
	if _, err := e.m.Setup(ctx, a, nil); err != nil {
		t.Errorf("Setup after Recover gave up: %v", err)
	}
}

func TestGCRemovesLeakedNetnsAndIP(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := context.Background()
	a, b := testPod("a"), testPod("b")
	sa, err := e.m.Setup(ctx, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := e.m.Setup(ctx, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A namespace with our prefix and no CNI state, as a crash leaves it.
	stray := filepath.Join(e.cfg.NetnsDir, "wharf-default_stray_12345678")
	if err := createNetns(stray); err != nil {
		t.Fatal(err)
	}
	if err := e.m.GC(ctx, []PodRef{a}); err != nil {
		t.Fatalf("GC: %v", err)
	}
	if want := []string{NetnsName("wharf-", a)}; !reflect.DeepEqual(e.list(t), want) {
		t.Errorf("after GC, List = %v, want %v", e.list(t), want)
	}
	if e.reserved(sb.IPs[0]) {
		t.Errorf("GC left b's %v reserved", sb.IPs[0])
	}
	if !e.reserved(sa.IPs[0]) {
		t.Errorf("GC released a's %v, which it was told to keep", sa.IPs[0])
	}
	if _, ok, err := e.m.Recover(ctx, a); !ok || err != nil {
		t.Errorf("Recover(a) after GC = ok %v, err %v", ok, err)
	}
}

// failPlugin fails ADD and succeeds at everything else.
const failPlugin = `#!/bin/sh
cat >/dev/null
case "$CNI_COMMAND" in
ADD) echo '{"cniVersion":"1.0.0","code":999,"msg":"injected failure"}'; exit 1;;
VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}';;
esac
exit 0
`

func TestSetupFailureLeaksNothing(t *testing.T) {
	extra, confDir := t.TempDir(), t.TempDir()
	e := newTestEnv(t, func(c *Config) {
		c.ConfDir = confDir
		c.BinDirs = []string{extra}
	})
	if err := os.WriteFile(filepath.Join(extra, "fail"), []byte(failPlugin), 0o755); err != nil {
		t.Fatal(err)
	}
	conf, err := DefaultConflist(ConflistParams{PodCIDR: testCIDR, BridgeName: e.cfg.BridgeName, IPAMDir: e.cfg.ipamDir(), PortmapBackend: "iptables"})
	if err != nil {
		t.Fatal(err)
	}
	conf = []byte(strings.Replace(string(conf), `"type": "portmap"`, `"type": "fail"`, 1))
	if err := os.WriteFile(filepath.Join(confDir, "50-fail.conflist"), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(e.cfg.defaultConfDir()); len(entries) != 0 {
		t.Errorf("default conflist written although ConfDir is set")
	}
	_, err = e.m.Setup(context.Background(), testPod("a"), nil)
	if err == nil || !strings.Contains(err.Error(), "injected failure") {
		t.Fatalf("Setup = %v, want the injected failure", err)
	}
	if names := e.list(t); len(names) != 0 {
		t.Errorf("netns left behind: %v", names)
	}
	if ips := e.ipFiles(t); len(ips) != 0 {
		t.Errorf("IPs left reserved: %v", ips)
	}
}

// TestSetupWithHostPortLeavesNothingBehind: portmap needs nft or iptables,
// which a test machine may lack. Either way no state may outlive Teardown
// or a failed Setup.
func TestSetupWithHostPortLeavesNothingBehind(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := context.Background()
	a := testPod("a")
	_, err := e.m.Setup(ctx, a, []PortMapping{{HostPort: 18080, ContainerPort: 80}})
	if err == nil {
		if err := e.m.Teardown(ctx, a); err != nil {
			t.Fatalf("Teardown: %v", err)
		}
	} else {
		t.Logf("Setup with a hostPort failed (portmap backend %s): %v", portmapBackend(), err)
	}
	if names := e.list(t); len(names) != 0 {
		t.Errorf("netns left behind: %v", names)
	}
	if ips := e.ipFiles(t); len(ips) != 0 {
		t.Errorf("IPs left reserved: %v", ips)
	}
}

// listenIn opens a TCP listener inside the netns at path, closed at cleanup.
func listenIn(t *testing.T, path, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	err := InNetns(path, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, path, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// serveOnce writes msg to the first connection and closes it.
func serveOnce(ln net.Listener, msg string) {
	c, err := ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	io.WriteString(c, msg)
}
