package podnet

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Namespaces are switched per OS thread. A goroutine that changes its
// thread's network namespace locks itself to the thread and never unlocks:
// when the goroutine ends, the Go runtime then ends the thread rather than
// give a thread in a foreign namespace to other goroutines. New threads are
// spawned from the runtime's template thread, so they never inherit it.

// createNetns makes a new network namespace, bind-mounts it at path (as
// `ip netns add` does) and brings its loopback up, which the CNI plugins
// leave to the runtime.
func createNetns(path string) (err error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("create netns file: %w", err)
	}
	f.Close()
	defer func() {
		if err != nil {
			err = errors.Join(err, removeNetns(path))
		}
	}()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see the comment at the top
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare network namespace: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind-mount %s on %s: %w", src, path, err)
			return
		}
		errc <- setLoopbackUp()
	}()
	return <-errc
}

// setLoopbackUp brings up lo in the calling thread's network namespace.
func setLoopbackUp() error {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in new netns: %w", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}

// removeNetns unmounts the namespace at path and removes the file. A path
// that is not mounted or does not exist is not an error. The namespace
// itself goes when its last user (process, socket, open fd) does.
func removeNetns(path string) error {
	err := unix.Unmount(path, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove netns file: %w", err)
	}
	return nil
}

// isNetns reports whether path is a mounted network namespace (nsfs), not
// a leftover empty file.
func isNetns(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

// listNetns returns the names in dir that start with prefix, sorted. A
// missing dir holds none.
func listNetns(dir, prefix string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list netns dir: %w", err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) && !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// ensureSharedMount makes dir a shared mount, as iproute2 does for
// /run/netns: so that namespaces mounted there later propagate into mount
// namespaces copied from this one (`ip netns exec`, containers), instead of
// those holding a stale view. A dir that is not a mount point is first
// bind-mounted on itself.
func ensureSharedMount(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create netns dir: %w", err)
	}
	for bound := false; ; bound = true {
		err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EINVAL) || bound {
			return fmt.Errorf("make %s a shared mount: %w", dir, err)
		}
		if err := unix.Mount(dir, dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind-mount %s on itself: %w", dir, err)
		}
	}
}

// InNetns runs fn on an OS thread switched into the network namespace at
// path, and returns its error. Sockets fn opens stay in that namespace after
// it returns, so fn may return a listener or connection for use elsewhere.
// fn runs on another goroutine: it must not call t.Fatal and the like. The
// thread is thrown away afterwards, never handed back to the scheduler.
func InNetns(path string, fn func() error) error {
	fd, err := unix.Open(filepath.Clean(path), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", path, err)
	}
	defer unix.Close(fd)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread() // still in its own namespace: reusable
			errc <- fmt.Errorf("enter netns %s: %w", path, err)
			return
		}
		// Never unlocked: see the comment at the top.
		errc <- fn()
	}()
	return <-errc
}
