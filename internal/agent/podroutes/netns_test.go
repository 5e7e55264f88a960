package podroutes

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// nsWorker is a goroutine locked to an OS thread inside a fresh network
// namespace. What must happen inside the namespace (opening sockets,
// exec'ing nft or iptables, which inherit the thread's namespace, writing
// /proc/sys/net) runs through do; netlink goes through nl. The thread is
// never unlocked, so Go discards it when the goroutine ends and the
// namespace cannot leak into other goroutines.
type nsWorker struct {
	name string
	ns   netns.NsHandle
	nl   *netlink.Handle
	fns  chan func()
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
}

// newNS makes a namespace with lo up; t.Cleanup removes it.
func newNS(t *testing.T, name string) *nsWorker {
	t.Helper()
	w := &nsWorker{name: name, fns: make(chan func())}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := netns.New() // unshare(CLONE_NEWNET) on this thread only
		if err != nil {
			errc <- fmt.Errorf("new netns: %w", err)
			return
		}
		w.ns = ns
		errc <- nil
		for f := range w.fns {
			f()
		}
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		close(w.fns)
		if w.nl != nil {
			w.nl.Close()
		}
		w.ns.Close()
	})
	nl, err := netlink.NewHandleAt(w.ns)
	if err != nil {
		t.Fatalf("%s: netlink handle: %v", name, err)
	}
	w.nl = nl
	w.up(t, "lo")
	return w
}

// do runs f on the namespace's thread and waits for it.
func (w *nsWorker) do(f func()) {
	done := make(chan struct{})
	w.fns <- func() { defer close(done); f() }
	<-done
}

func (w *nsWorker) up(t *testing.T, link string) {
	t.Helper()
	l, err := w.nl.LinkByName(link)
	if err == nil {
		err = w.nl.LinkSetUp(l)
	}
	if err != nil {
		t.Fatalf("%s: set %s up: %v", w.name, link, err)
	}
}

// veth joins w's link name to peer's link peerName, both up; the pair
// goes with the namespaces.
func (w *nsWorker) veth(t *testing.T, name string, peer *nsWorker, peerName string) {
	t.Helper()
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: peerName, PeerNamespace: netlink.NsFd(int(peer.ns))}
	if err := w.nl.LinkAdd(v); err != nil {
		t.Fatalf("%s: add veth %s<->%s/%s: %v", w.name, name, peer.name, peerName, err)
	}
	w.up(t, name)
	peer.up(t, peerName)
}

func (w *nsWorker) addr(t *testing.T, link, cidr string) {
	t.Helper()
	l, err := w.nl.LinkByName(link)
	if err != nil {
		t.Fatalf("%s: %v", w.name, err)
	}
	a, err := netlink.ParseAddr(cidr)
	if err == nil {
		err = w.nl.AddrAdd(l, a)
	}
	if err != nil {
		t.Fatalf("%s: add %s to %s: %v", w.name, cidr, link, err)
	}
}

func (w *nsWorker) defaultVia(t *testing.T, gw string) {
	t.Helper()
	if err := w.nl.RouteAdd(&netlink.Route{Gw: net.ParseIP(gw)}); err != nil {
		t.Fatalf("%s: default route via %s: %v", w.name, gw, err)
	}
}

func (w *nsWorker) forwarding(t *testing.T) {
	t.Helper()
	var err error
	w.do(func() { err = os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644) })
	if err != nil {
		t.Fatalf("%s: ip_forward: %v", w.name, err)
	}
}

// listen accepts one TCP connection on addr in w and sends its peer's
// address (or "" on error).
func (w *nsWorker) listen(t *testing.T, addr string) <-chan string {
	t.Helper()
	var ln net.Listener
	var err error
	w.do(func() { ln, err = net.Listen("tcp", addr) })
	if err != nil {
		t.Fatalf("%s: listen %s: %v", w.name, addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- ""
			return
		}
		defer c.Close()
		got <- c.RemoteAddr().(*net.TCPAddr).IP.String()
	}()
	return got
}

// dial connects from w to addr.
func (w *nsWorker) dial(addr string, timeout time.Duration) error {
	var err error
	w.do(func() {
		var c net.Conn
		d := net.Dialer{Timeout: timeout}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if c, err = d.DialContext(ctx, "tcp", addr); err == nil {
			c.Close()
		}
	})
	return err
}

// sourceSeen dials from client to server's addr and returns the source
// address the server saw.
func sourceSeen(t *testing.T, client, server *nsWorker, addr string) string {
	t.Helper()
	got := server.listen(t, addr)
	if err := client.dial(addr, 3*time.Second); err != nil {
		t.Fatalf("%s -> %s %s: %v", client.name, server.name, addr, err)
	}
	select {
	case src := <-got:
		return src
	case <-time.After(3 * time.Second):
		t.Fatalf("%s never accepted the connection from %s", server.name, client.name)
		return ""
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
