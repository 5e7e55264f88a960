package proxy

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// nsWorker is a goroutine locked to an OS thread inside a fresh network
// namespace. Everything that must happen inside the namespace (opening
// sockets, exec'ing nft, which inherits the thread's namespace) is run
// through do. The thread is never unlocked, so Go discards it when the
// goroutine ends and the namespace cannot leak into other goroutines.
type nsWorker struct {
	ns  netns.NsHandle
	nl  *netlink.Handle
	fns chan func()
}

// newNS makes a namespace with lo up; t.Cleanup removes it.
func newNS(t *testing.T) *nsWorker {
	t.Helper()
	w := &nsWorker{fns: make(chan func())}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := netns.New() // unshare(CLONE_NEWNET) on this thread
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
		t.Fatalf("netlink handle: %v", err)
	}
	w.nl = nl
	lo, err := nl.LinkByName("lo")
	if err == nil {
		err = nl.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("lo up: %v", err)
	}
	return w
}

// do runs f on the namespace's thread and waits for it.
func (w *nsWorker) do(f func()) {
	done := make(chan struct{})
	w.fns <- func() { defer close(done); f() }
	<-done
}
