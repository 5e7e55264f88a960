// Package sandbox builds the network every end-to-end test runs in, out of
// network namespaces the test makes and always removes:
//
//	node-1 ─┐                       ┌─ outside (its own subnet)
//	node-2 ─┼─ bridge ── router ────┤
//	node-N ─┘   (node subnet)       └─ resolver (an upstream DNS host)
//
// Nodes share one L2 segment (a bridge in the router's namespace); the
// router is their default route and the only way out, drops the cluster's
// pod, service and LoadBalancer ranges, and has no route beyond the
// sandbox. Names and subnets come from a random run ID. Processes are run
// in a namespace by network namespace only (nsenter --net=), never with
// `ip netns exec`, whose private mount namespace hides the pods' namespaces
// from an agent.
package sandbox

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Host is one namespace of the sandbox.
type Host struct {
	// Name is the namespace's name (ip netns list shows it).
	Name string
	// IP is its address on its subnet.
	IP string
	// Iface is its interface name inside the namespace.
	Iface string
}

// NetnsPath is the namespace's file, for nsenter --net= or setns.
func (h *Host) NetnsPath() string { return "/run/netns/" + h.Name }

// Sandbox is a built network.
type Sandbox struct {
	t  testing.TB
	ID string
	// Nodes are the simulated machines, on NodeSubnet.
	Nodes []*Host
	// Router is the nodes' gateway (NodeSubnet .1, OutsideSubnet .1).
	Router *Host
	// Outside is a host beyond the router, on OutsideSubnet.
	Outside *Host
	// Resolver is a second host beyond the router, for --dns-upstream.
	Resolver *Host
	// NodeSubnet and OutsideSubnet are /24s chosen at random.
	NodeSubnet, OutsideSubnet string
	// Blocked are the ranges the router drops (pod, service, LB).
	Blocked []string

	names []string
	procs []*exec.Cmd
}

// Options shape the sandbox.
type Options struct {
	// Nodes is the number of node namespaces (default 1).
	Nodes int
	// Blocked ranges the router drops; default the cluster defaults
	// 10.244.0.0/16 and 10.96.0.0/12.
	Blocked []string
}

const stateDir = "/run/wharf-sandbox"

// New builds a sandbox and removes it when the test ends, however it ends.
// It skips the test when not root or when ip/nsenter are missing.
func New(t testing.TB, o Options) *Sandbox {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("sandbox needs root (network namespaces)")
	}
	for _, tool := range []string{"ip", "nsenter", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("sandbox needs %s: %v", tool, err)
		}
	}
	reapStale()
	if o.Nodes == 0 {
		o.Nodes = 1
	}
	if len(o.Blocked) == 0 {
		o.Blocked = []string{"10.244.0.0/16", "10.96.0.0/12"}
	}
	s := &Sandbox{t: t, ID: randomID(), Blocked: o.Blocked}
	s.NodeSubnet, s.OutsideSubnet = pickSubnets(t)
	t.Cleanup(s.Teardown)
	if err := s.build(o.Nodes); err != nil {
		t.Fatalf("build sandbox %s: %v", s.ID, err)
	}
	return s
}

func randomID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// pickSubnets chooses a node /24 in 172.31.0.0/16 and an outside /24 in
// 198.18.0.0/15 that no host route or address overlaps.
func pickSubnets(t testing.TB) (string, string) {
	routes, _ := exec.Command("ip", "-4", "route", "show", "table", "all").Output()
	addrs, _ := exec.Command("ip", "-4", "-o", "addr").Output()
	taken := string(routes) + string(addrs)
	for i := 0; i < 50; i++ {
		a, _ := rand.Int(rand.Reader, big.NewInt(250))
		b, _ := rand.Int(rand.Reader, big.NewInt(250))
		node := fmt.Sprintf("172.31.%d", a.Int64()+2)
		out := fmt.Sprintf("198.18.%d", b.Int64()+2)
		if !strings.Contains(taken, node+".") && !strings.Contains(taken, out+".") {
			return node + ".0/24", out + ".0/24"
		}
	}
	t.Fatal("no free subnet for the sandbox")
	return "", ""
}

func prefix(subnet string) string { return strings.TrimSuffix(subnet, ".0/24") }

// ip runs `ip args...`.
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func (s *Sandbox) addNetns(role string) (string, error) {
	name := fmt.Sprintf("wharf-%s-%s", s.ID, role)
	if err := ip("netns", "add", name); err != nil {
		return "", err
	}
	s.names = append(s.names, name)
	if err := os.MkdirAll(stateDir, 0o755); err == nil {
		_ = os.WriteFile(filepath.Join(stateDir, name), []byte(strconv.Itoa(os.Getpid())), 0o644)
	}
	return name, ip("-n", name, "link", "set", "lo", "up")
}

// link joins namespace ns to the router: its end is eth0 with addr, the
// router's end a port of bridge.
func (s *Sandbox) link(ns, short, addr, bridge string) error {
	peer := "w" + s.ID + short
	if err := ip("link", "add", peer, "type", "veth", "peer", "name", "eth0", "netns", ns); err != nil {
		return err
	}
	if err := ip("link", "set", peer, "netns", s.Router.Name); err != nil {
		return err
	}
	steps := [][]string{
		{"-n", ns, "addr", "add", addr, "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"-n", s.Router.Name, "link", "set", peer, "up"},
	}
	steps = append(steps, []string{"-n", s.Router.Name, "link", "set", peer, "master", bridge})
	for _, st := range steps {
		if err := ip(st...); err != nil {
			return err
		}
	}
	return nil
}

func (s *Sandbox) build(nodes int) error {
	rt, err := s.addNetns("rt")
	if err != nil {
		return err
	}
	np, op := prefix(s.NodeSubnet), prefix(s.OutsideSubnet)
	s.Router = &Host{Name: rt, IP: np + ".1", Iface: "br0"}
	for _, st := range [][]string{
		{"-n", rt, "link", "add", "br0", "type", "bridge"},
		{"-n", rt, "addr", "add", np + ".1/24", "dev", "br0"},
		{"-n", rt, "link", "set", "br0", "up"},
	} {
		if err := ip(st...); err != nil {
			return err
		}
	}
	for i := 1; i <= nodes; i++ {
		name, err := s.addNetns("n" + strconv.Itoa(i))
		if err != nil {
			return err
		}
		h := &Host{Name: name, IP: fmt.Sprintf("%s.%d", np, 10+i), Iface: "eth0"}
		if err := s.link(name, "n"+strconv.Itoa(i), h.IP+"/24", "br0"); err != nil {
			return err
		}
		if err := ip("-n", name, "route", "add", "default", "via", s.Router.IP); err != nil {
			return err
		}
		s.Nodes = append(s.Nodes, h)
	}
	for _, st := range [][]string{
		{"-n", rt, "link", "add", "br1", "type", "bridge"},
		{"-n", rt, "addr", "add", op + ".1/24", "dev", "br1"},
		{"-n", rt, "link", "set", "br1", "up"},
	} {
		if err := ip(st...); err != nil {
			return err
		}
	}
	for i, role := range []string{"out", "dns"} {
		name, err := s.addNetns(role)
		if err != nil {
			return err
		}
		h := &Host{Name: name, IP: fmt.Sprintf("%s.%d", op, 2+i), Iface: "eth0"}
		if err := s.link(name, role, h.IP+"/24", "br1"); err != nil {
			return err
		}
		if err := ip("-n", name, "route", "add", "default", "via", op+".1"); err != nil {
			return err
		}
		if role == "out" {
			s.Outside = h
		} else {
			s.Resolver = h
		}
	}
	return s.routerRules()
}

// routerRules turn forwarding on in the router and drop the cluster ranges
// there, so nothing of the cluster's leaks even inside the sandbox.
func (s *Sandbox) routerRules() error {
	if out, err := s.Exec(s.Router, "sysctl", "-qw", "net.ipv4.ip_forward=1"); err != nil {
		return fmt.Errorf("router forwarding: %v: %s", err, out)
	}
	// Frames bridged between nodes on br0 (node to node, pod to pod) are
	// the nodes' own L2 segment, not routed by the router: keep them out
	// of its forward hook (br_netfilter would pass them there and the drop
	// below would eat pod traffic between nodes).
	if out, err := s.Exec(s.Router, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0"); err != nil {
		return fmt.Errorf("router bridge netfilter: %v: %s", err, out)
	}
	ruleset := fmt.Sprintf(`table inet sandbox {
  chain forward {
    type filter hook forward priority 0; policy accept;
    ip daddr { %s } counter drop
  }
}
`, strings.Join(s.Blocked, ", "))
	cmd := exec.Command("nsenter", "--net="+s.Router.NetnsPath(), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("router nftables: %v: %s", err, out)
	}
	return nil
}

// Command returns a command that runs in h's network namespace only.
func (s *Sandbox) Command(h *Host, name string, args ...string) *exec.Cmd {
	full := append([]string{"--net=" + h.NetnsPath(), "--", name}, args...)
	cmd := exec.Command("nsenter", full...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd
}

// Exec runs a command in h and returns its combined output.
func (s *Sandbox) Exec(h *Host, name string, args ...string) (string, error) {
	out, err := s.Command(h, name, args...).CombinedOutput()
	return string(out), err
}

// Start starts a long-running command in h; it is stopped (by pid) at
// teardown.
func (s *Sandbox) Start(h *Host, name string, args ...string) *exec.Cmd {
	s.t.Helper()
	cmd := s.Command(h, name, args...)
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start %s in %s: %v", name, h.Name, err)
	}
	s.procs = append(s.procs, cmd)
	return cmd
}

// Teardown stops what Start started and deletes every namespace; it runs
// at test cleanup, also after a failure.
func (s *Sandbox) Teardown() {
	for _, p := range s.procs {
		if p.Process != nil {
			_ = syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
			_ = p.Wait()
		}
	}
	s.procs = nil
	for i := len(s.names) - 1; i >= 0; i-- {
		_ = ip("netns", "del", s.names[i])
		_ = os.Remove(filepath.Join(stateDir, s.names[i]))
	}
	s.names = nil
}

// reapStale removes sandboxes left by test processes that no longer run
// (a test binary killed before its cleanup).
func reapStale() {
	entries, err := os.ReadDir(stateDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(stateDir, e.Name()))
		if err != nil {
			continue
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		if pid > 0 && syscall.Kill(pid, 0) == nil {
			continue
		}
		_ = ip("netns", "del", e.Name())
		_ = os.Remove(filepath.Join(stateDir, e.Name()))
		reapRun(e.Name())
	}
}

// reapRun deletes the other namespaces of a dead run: those whose names
// start with the run's prefix (wharf-<id>-), such as the pod namespaces an
// agent in it made (wharf-<id>-pod-...).
func reapRun(name string) {
	i := strings.LastIndex(name, "-")
	if i < 0 {
		return
	}
	prefix := name[:i+1]
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			_ = ip("netns", "del", e.Name())
		}
	}
}

// ParseCIDR is net.ParseCIDR's network, for callers comparing ranges.
func ParseCIDR(c string) *net.IPNet {
	_, n, _ := net.ParseCIDR(c)
	return n
}
