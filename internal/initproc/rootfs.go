package initproc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/wharf-io/wharf/internal/agent/container"
)

// hostTopDirs are the host's top-level entries a container shares: the
// programs and libraries. On merged-/usr hosts all but usr are symlinks
// (bin -> usr/bin), copied as such; real directories are bound read-only.
var hostTopDirs = []string{"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"}

// devNodes are the device files a container gets from the host's /dev.
var devNodes = []string{"null", "zero", "full", "random", "urandom", "tty"}

// buildRoot makes the container's root at <stateDir>/rootfs in init's own
// mount namespace and returns its path. See Main for the layout.
func buildRoot(stateDir string, spec container.Spec) (string, error) {
	// Our mounts must not propagate back to the host. Slave rather than
	// private: our namespace starts as a copy of every host mount, and
	// unmounts on the host (a pod's netns bind mount, a volume) must reach
	// the copy too, or it would keep them alive while the container runs.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return "", fmt.Errorf("make / a slave mount: %w", err)
	}
	root := filepath.Join(stateDir, container.RootfsDir)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("create root: %w", err)
	}
	if err := mountFS("tmpfs", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=755"); err != nil {
		return "", err
	}
	steps := []struct {
		what string
		do   func() error
	}{
		{"host directories", func() error { return shareHostDirs(root) }},
		{"/etc", func() error { return mountEtc(stateDir, root) }},
		{"/proc", func() error {
			return mountFS("proc", filepath.Join(root, "proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
		}},
		{"/dev", func() error { return mountDev(root) }},
		{"/sys", func() error { return mountSys(root) }},
		{"/tmp, /run, /var", func() error { return makeScratch(root) }},
		{"files", func() error { return mountFiles(stateDir, root, spec.Files) }},
		{"mounts", func() error { return mountVolumes(root, spec.Mounts) }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return "", fmt.Errorf("build container root: %s: %w", s.what, err)
		}
	}
	return root, nil
}

func shareHostDirs(root string) error {
	for _, name := range hostTopDirs {
		host := "/" + name
		fi, err := os.Lstat(host)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		dst := filepath.Join(root, name)
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(host)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, dst); err != nil {
				return err
			}
			continue
		}
		if err := bind(host, dst, true, true); err != nil {
			return err
		}
	}
	return nil
}

// mountEtc gives the container the host's /etc under a writable overlay
// whose upper layer is a tmpfs (so files can be created there, such as mount
// points for Spec.Files); without overlayfs, a read-only bind.
func mountEtc(stateDir, root string) error {
	rw := filepath.Join(stateDir, "etc-rw")
	dst := filepath.Join(root, "etc")
	if err := mountFS("tmpfs", rw, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=755"); err != nil {
		return err
	}
	upper, work := filepath.Join(rw, "upper"), filepath.Join(rw, "work")
	for _, d := range []string{upper, work, dst} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	opts := fmt.Sprintf("lowerdir=/etc,upperdir=%s,workdir=%s", upper, work)
	err := unix.Mount("overlay", dst, "overlay", 0, opts)
	if err == nil {
		return nil
	}
	fmt.Fprintf(os.Stderr, "wharf init: overlay on /etc failed (%v); binding the host's /etc read-only\n", err)
	return bind("/etc", dst, true, false)
}

// mountDev makes a small /dev: a few device nodes bound from the host, the
// host's /dev/pts (so ttys opened by init and Exec have names inside),
// a private /dev/shm and the usual symlinks.
func mountDev(root string) error {
	dev := filepath.Join(root, "dev")
	if err := mountFS("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=65536k"); err != nil {
		return err
	}
	for _, n := range devNodes {
		if err := bind("/dev/"+n, filepath.Join(dev, n), false, false); err != nil {
			return err
		}
	}
	if err := bind("/dev/pts", filepath.Join(dev, "pts"), false, false); err != nil {
		return err
	}
	if err := mountFS("tmpfs", filepath.Join(dev, "shm"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=65536k"); err != nil {
		return err
	}
	links := [][2]string{{"pts/ptmx", "ptmx"}, {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}}
	for _, l := range links {
		if err := os.Symlink(l[0], filepath.Join(dev, l[1])); err != nil {
			return err
		}
	}
	return nil
}

// mountSys mounts a sysfs of the container's network namespace, read-only
// (so /sys/class/net lists its interfaces), else binds the host's.
func mountSys(root string) error {
	dst := filepath.Join(root, "sys")
	flags := uintptr(unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if err := mountFS("sysfs", dst, "sysfs", flags, ""); err == nil {
		return nil
	}
	return bind("/sys", dst, true, false)
}

// makeScratch makes /tmp and /run fresh tmpfs and /var a directory of the
// root's tmpfs with /var/run -> ../run, so mounts under /var/run/secrets
// land in /run.
func makeScratch(root string) error {
	if err := mountFS("tmpfs", filepath.Join(root, "tmp"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
		return err
	}
	if err := mountFS("tmpfs", filepath.Join(root, "run"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=755"); err != nil {
		return err
	}
	for _, d := range []string{"var/tmp", "var/lib", "var/log", "var/cache"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(root, "var/tmp"), 0o1777); err != nil {
		return err
	}
	return os.Symlink("../run", filepath.Join(root, "var/run"))
}

// mountFiles binds each Spec.Files entry (kept under <state>/files) over
// its path in the container, creating the mount point when missing.
func mountFiles(stateDir, root string, files map[string][]byte) error {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		dst, err := resolveInRoot(root, p)
		if err != nil {
			return err
		}
		if err := bind(container.FilePath(stateDir, p), dst, false, false); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

// mountVolumes applies the mounts, parents before children.
func mountVolumes(root string, mounts []container.Mount) error {
	sorted := append([]container.Mount(nil), mounts...)
	sort.SliceStable(sorted, func(i, j int) bool {
		return depth(sorted[i].ContainerPath) < depth(sorted[j].ContainerPath)
	})
	for _, m := range sorted {
		dst, err := resolveInRoot(root, m.ContainerPath)
		if err != nil {
			return err
		}
		if err := bind(m.HostPath, dst, m.ReadOnly, true); err != nil {
			return fmt.Errorf("%s -> %s: %w", m.HostPath, m.ContainerPath, err)
		}
	}
	return nil
}

func depth(p string) int { return len(splitPath(p)) }

// mountFS mounts a filesystem at dst, creating the directory.
func mountFS(source, dst, fstype string, flags uintptr, data string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(source, dst, fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s on %s: %w", fstype, dst, err)
	}
	return nil
}

// bind bind-mounts src (a file or directory) on dst, creating the mount
// point like src, and makes it read-only when ro.
func bind(src, dst string, ro, recursive bool) error {
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("bind %s: %w", src, err)
	}
	if err := makeMountPoint(dst, fi.IsDir()); err != nil {
		return fmt.Errorf("bind %s: %w", src, err)
	}
	flags := uintptr(unix.MS_BIND)
	if recursive {
		flags |= unix.MS_REC
	}
	if err := unix.Mount(src, dst, "", flags, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", src, dst, err)
	}
	if !ro {
		return nil
	}
	// A read-only remount must keep the locked flags of the source mount
	// (nosuid, nodev, noexec, ...), or the kernel refuses it.
	var st unix.Statfs_t
	if err := unix.Statfs(dst, &st); err != nil {
		return fmt.Errorf("stat %s: %w", dst, err)
	}
	remount := uintptr(unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY) | keptFlags(st.Flags)
	if err := unix.Mount("", dst, "", remount, ""); err != nil {
		return fmt.Errorf("make %s read-only: %w", dst, err)
	}
	return nil
}

// keptFlags maps statfs flags to the mount flags a remount must repeat.
func keptFlags(statfs int64) uintptr {
	pairs := [][2]int64{
		{unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV}, {unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME}, {unix.ST_NODIRATIME, unix.MS_NODIRATIME}, {unix.ST_RELATIME, unix.MS_RELATIME},
	}
	var out uintptr
	for _, p := range pairs {
		if statfs&p[0] != 0 {
			out |= uintptr(p[1])
		}
	}
	return out
}

// makeMountPoint creates dst as a directory or an empty file unless it
// exists.
func makeMountPoint(dst string, dir bool) error {
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	if dir {
		return os.MkdirAll(dst, 0o755)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// ensureWorkDir creates the working directory when it is missing; one that
// cannot be created makes the start fail with chdir's error.
func ensureWorkDir(root, wd string) {
	if host, err := resolveInRoot(root, wd); err == nil && !strings.HasPrefix(wd, "/proc") {
		_ = os.MkdirAll(host, 0o755)
	}
}
