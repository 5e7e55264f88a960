package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"sigs.k8s.io/knftables"

	"github.com/wharf-io/wharf/internal/proxy/conntrack"
	"github.com/wharf-io/wharf/internal/proxy/model"
	"github.com/wharf-io/wharf/internal/proxy/nft"
)

// kernelWorld is a node namespace routing between a client pod, a server
// pod and an outside host, each in its own namespace:
//
//	client 10.244.1.2 -- 10.244.1.1 [node] 10.244.2.1 -- 10.244.2.2 server
//	                               192.168.77.1 -- 192.168.77.2 outside
type kernelWorld struct {
	node, client, server, outside *nsWorker
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func (w *nsWorker) link(t *testing.T, name, addr string) {
	t.Helper()
	l, err := w.nl.LinkByName(name)
	if err == nil {
		a, _ := netlink.ParseAddr(addr)
		err = errors.Join(w.nl.AddrAdd(l, a), w.nl.LinkSetUp(l))
	}
	if err != nil {
		t.Fatalf("set up %s %s: %v", name, addr, err)
	}
}

func (w *nsWorker) defaultVia(t *testing.T, gw string) {
	t.Helper()
	if err := w.nl.RouteAdd(&netlink.Route{Gw: net.ParseIP(gw)}); err != nil {
		t.Fatalf("default route via %s: %v", gw, err)
	}
}

// veth connects node's nodeSide to peer's eth0.
func veth(t *testing.T, node *nsWorker, nodeSide string, peer *nsWorker) {
	t.Helper()
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: nodeSide}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(peer.ns))}
	if err := node.nl.LinkAdd(v); err != nil {
		t.Fatalf("veth %s: %v", nodeSide, err)
	}
}

func newKernelWorld(t *testing.T) *kernelWorld {
	w := &kernelWorld{node: newNS(t), client: newNS(t), server: newNS(t), outside: newNS(t)}
	veth(t, w.node, "to-client", w.client)
	veth(t, w.node, "to-server", w.server)
	veth(t, w.node, "to-outside", w.outside)
	w.node.link(t, "to-client", "10.244.1.1/24")
	w.node.link(t, "to-server", "10.244.2.1/24")
	w.node.link(t, "to-outside", "192.168.77.1/24")
	w.client.link(t, "eth0", "10.244.1.2/24")
	w.server.link(t, "eth0", "10.244.2.2/24")
	w.outside.link(t, "eth0", "192.168.77.2/24")
	w.client.defaultVia(t, "10.244.1.1")
	w.server.defaultVia(t, "10.244.2.1")
	// A node has a default route; connect() to a cluster IP needs one
	// (no route, no OUTPUT hook, no DNAT).
	w.node.defaultVia(t, "192.168.77.2")
	// The outside host owns 10.96.0.99 and routes back to the pods: a
	// packet the proxy fails to drop or reject there is answered with RST,
	// so the guards below are told apart from a silent loss.
	w.outside.link(t, "lo", "10.96.0.99/32")
	_, pods, _ := net.ParseCIDR("10.244.0.0/16")
	if err := w.outside.nl.RouteAdd(&netlink.Route{Dst: pods, Gw: net.ParseIP("192.168.77.1")}); err != nil {
		t.Fatalf("outside route to pods: %v", err)
	}
	var err error
	w.node.do(func() { err = os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644) })
	if err != nil {
		t.Fatalf("ip_forward: %v", err)
	}
	return w
}

// serveTCP answers every connection with the peer address it sees.
func (w *nsWorker) serveTCP(t *testing.T, addr, reply string) {
	t.Helper()
	var ln net.Listener
	var err error
	w.do(func() { ln, err = net.Listen("tcp", addr) })
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			msg := reply
			if msg == "" {
				msg = c.RemoteAddr().String()
			}
			_, _ = io.WriteString(c, msg)
			c.Close()
		}
	}()
}

// serveUDP echoes the peer address of every datagram.
func (w *nsWorker) serveUDP(t *testing.T, addr string) {
	t.Helper()
	var pc net.PacketConn
	var err error
	w.do(func() { pc, err = net.ListenPacket("udp4", addr) })
	if err != nil {
		t.Fatalf("listen udp %s: %v", addr, err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(from.String()), from)
		}
	}()
}

// get connects from w to addr and returns what the server says.
func (w *nsWorker) get(addr string, timeout time.Duration) (string, error) {
	var out string
	var err error
	w.do(func() {
		var c net.Conn
		if c, err = net.DialTimeout("tcp4", addr, timeout); err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(timeout))
		var b []byte
		b, err = io.ReadAll(c)
		out = string(b)
	})
	return out, err
}

// proxyUnderTest is the nftables backend and host parts inside the node.
type proxyUnderTest struct {
	node    *nsWorker
	backend *nft.Proxier
	tracker *model.Tracker
	sy      *syncer
	table   string
}

func newProxyUnderTest(t *testing.T, node *nsWorker) *proxyUnderTest {
	p := &proxyUnderTest{node: node, table: fmt.Sprintf("wharf-test-%d", os.Getpid())}
	var nftIface knftables.Interface
	var err error
	node.do(func() { nftIface, err = knftables.New(knftables.IPv4Family, p.table) })
	if err != nil {
		t.Fatalf("knftables in the node namespace: %v", err)
	}
	p.tracker = model.NewTracker(model.Options{NodeName: "node1", ClusterDNS: mustAddr("10.96.0.10")})
	p.backend = nft.New(nftIface, nft.Config{
		ClusterCIDR:       netip.MustParsePrefix("10.244.0.0/16"),
		ServiceCIDR:       netip.MustParsePrefix("10.96.0.0/12"),
		ClusterDNS:        mustAddr("10.96.0.10"),
		NodePortAddresses: []netip.Addr{mustAddr("192.168.77.1")},
	})
	p.sy = &syncer{tracker: p.tracker, backend: p.backend, cleaner: conntrack.New(node.nl),
		synced: func() bool { return true }, now: time.Now}
	return p
}

// sync runs one sync inside the node namespace (nft is exec'd there).
func (p *proxyUnderTest) sync(t *testing.T) {
	t.Helper()
	var err error
	p.node.do(func() { _, err = p.sy.sync(context.Background()) })
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
}

func service(name, ip string, proto model.Protocol, port, nodePort uint16) *model.Service {
	return &model.Service{Key: model.ServiceKey{Namespace: "default", Name: name}, ClusterIPs: []netip.Addr{mustAddr(ip)},
		Ports: []model.PortSpec{{Name: "p", Protocol: proto, Port: port, NodePort: nodePort}}}
}

func endpoints(svc *model.Service, port uint16, ips ...string) *model.EndpointSlice {
	s := &model.EndpointSlice{Service: svc.Key, Ports: []model.EndpointPort{{Name: "p", Protocol: svc.Ports[0].Protocol, Port: port}}}
	for _, ip := range ips {
		s.Endpoints = append(s.Endpoints, model.Endpoint{Addrs: []netip.Addr{mustAddr(ip)}, Ready: true, Serving: true, NodeName: "node2"})
	}
	return s
}

func sliceKey(name string) model.SliceKey { return model.SliceKey{Namespace: "default", Name: name} }

func wantRefused(t *testing.T, who *nsWorker, addr string) {
	t.Helper()
	start := time.Now()
	_, err := who.get(addr, 2*time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("%s: got %v, want connection refused", addr, err)
	} else if d := time.Since(start); d > time.Second {
		t.Errorf("%s: refused only after %v", addr, d)
	}
}

func wantReply(t *testing.T, who *nsWorker, addr, prefix string) {
	t.Helper()
	got, err := who.get(addr, 2*time.Second)
	if err != nil || !strings.HasPrefix(got, prefix) {
		t.Errorf("%s: got %q, %v; want a reply starting %q", addr, got, err, prefix)
	}
}

// TestKernelServiceTraffic programs a real nftables table in a throwaway
// node namespace and sends real packets through it.
func TestKernelServiceTraffic(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, nftables)")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft binary not installed")
	}
	w := newKernelWorld(t)
	w.server.serveTCP(t, "10.244.2.2:8080", "")
	w.server.serveUDP(t, "10.244.2.2:5353")
	p := newProxyUnderTest(t, w.node)

	host := &linuxHost{nl: w.node.nl}
	if err := host.EnsureLoopbackAddr(mustAddr("10.96.0.10")); err != nil {
		t.Fatal(err)
	}
	if err := host.EnsureLoopbackAddr(mustAddr("10.96.0.10")); err != nil {
		t.Fatalf("second EnsureLoopbackAddr (must be idempotent): %v", err)
	}
	w.node.serveTCP(t, "10.96.0.10:53", "dns")

	web := service("web", "10.96.0.50", model.TCP, 80, 30080)
	empty := service("empty", "10.96.0.60", model.TCP, 80, 0)
	dns := service("udp", "10.96.0.70", model.UDP, 53, 0)
	p.tracker.SetService(web)
	p.tracker.SetSlice(sliceKey("web"), endpoints(web, 8080, "10.244.2.2"))
	p.tracker.SetService(empty)
	p.tracker.SetService(dns)
	p.tracker.SetSlice(sliceKey("udp"), endpoints(dns, 5353, "10.244.2.2"))
	p.sync(t)

	t.Run("nft ran in the node namespace, not the host's", func(t *testing.T) {
		out, err := exec.Command("nft", "list", "tables").CombinedOutput()
		if err != nil {
			t.Skipf("cannot list host tables: %v %s", err, out)
		}
		if strings.Contains(string(out), p.table) {
			t.Fatalf("table %s is in the host namespace", p.table)
		}
	})
	t.Run("pod to ClusterIP keeps the pod's address", func(t *testing.T) {
		wantReply(t, w.client, "10.96.0.50:80", "10.244.1.2:")
	})
	t.Run("node to ClusterIP through OUTPUT is masqueraded", func(t *testing.T) {
		wantReply(t, w.node, "10.96.0.50:80", "10.244.2.1:")
	})
	t.Run("NodePort from outside", func(t *testing.T) {
		wantReply(t, w.outside, "192.168.77.1:30080", "10.244.2.1:")
	})
	t.Run("service without endpoints refuses at once", func(t *testing.T) {
		wantRefused(t, w.client, "10.96.0.60:80")
		wantRefused(t, w.node, "10.96.0.60:80")
	})
	t.Run("unserved port of a cluster IP refuses", func(t *testing.T) {
		wantRefused(t, w.client, "10.96.0.50:81")
	})
	t.Run("unallocated service address is dropped", func(t *testing.T) {
		_, err := w.client.get("10.96.0.99:80", 300*time.Millisecond)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("got %v, want a timeout (drop)", err)
		}
	})
	t.Run("cluster DNS address is served on lo, untracked", func(t *testing.T) {
		wantReply(t, w.client, "10.96.0.10:53", "dns")
		flows, err := w.node.nl.ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range flows {
			if f.Forward.DstIP.Equal(net.ParseIP("10.96.0.10")) {
				t.Errorf("DNS traffic tracked: %s", f)
			}
		}
	})
	t.Run("incremental sync gives the empty service an endpoint", func(t *testing.T) {
		p.tracker.SetSlice(sliceKey("empty"), endpoints(empty, 8080, "10.244.2.2"))
		p.sync(t)
		wantReply(t, w.client, "10.96.0.60:80", "10.244.1.2:")
	})
	t.Run("removed UDP endpoint's conntrack entries are deleted", func(t *testing.T) {
		testUDPConntrack(t, w, p)
	})
	t.Run("clean stop removes the table and the lo address", func(t *testing.T) {
		var err error
		w.node.do(func() { err = p.backend.Cleanup(context.Background()) })
		if err == nil {
			err = host.RemoveLoopbackAddr(mustAddr("10.96.0.10"))
		}
		if err != nil {
			t.Fatal(err)
		}
		var out []byte
		w.node.do(func() { out, err = exec.Command("nft", "list", "tables").CombinedOutput() })
		if err != nil || strings.Contains(string(out), p.table) {
			t.Errorf("after cleanup: %s %v", out, err)
		}
		lo, _ := w.node.nl.LinkByName("lo")
		addrs, _ := w.node.nl.AddrList(lo, unix.AF_INET)
		for _, a := range addrs {
			if a.IP.Equal(net.ParseIP("10.96.0.10")) {
				t.Error("cluster DNS address still on lo")
			}
		}
	})
}

// testUDPConntrack sends UDP through the service so an entry exists, then
// removes the endpoint and checks that the sync deleted the entry.
func testUDPConntrack(t *testing.T, w *kernelWorld, p *proxyUnderTest) {
	var reply string
	var err error
	w.client.do(func() {
		var c net.Conn
		if c, err = net.Dial("udp4", "10.96.0.70:53"); err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err = c.Write([]byte("q")); err != nil {
			return
		}
		buf := make([]byte, 64)
		var n int
		n, err = c.Read(buf)
		reply = string(buf[:n])
	})
	if err != nil || !strings.HasPrefix(reply, "10.244.1.2:") {
		t.Fatalf("UDP through the service: %q %v", reply, err)
	}
	entries := func() int {
		flows, err := w.node.nl.ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, f := range flows {
			if f.Forward.Protocol == unix.IPPROTO_UDP && f.Reverse.SrcIP.Equal(net.ParseIP("10.244.2.2")) && f.Reverse.SrcPort == 5353 {
				n++
			}
		}
		return n
	}
	if entries() == 0 {
		t.Fatal("no conntrack entry for the UDP flow")
	}
	p.tracker.DeleteSlice(sliceKey("udp"))
	p.sync(t)
	if n := entries(); n != 0 {
		t.Errorf("%d entries to the removed endpoint left", n)
	}
}
