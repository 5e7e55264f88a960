package podnet

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// installPlugins copies every regular file in src into dst unless dst
// already holds the same bytes, and returns the names it copied. A missing
// src installs nothing. Each copy is written beside its target and renamed
// over it, so a plugin that is running keeps its old inode and one that
// starts never sees half a file.
func installPlugins(src, dst string) ([]string, error) {
	entries, err := os.ReadDir(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read CNI plugin source %s: %w", src, err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return nil, fmt.Errorf("create CNI plugin dir: %w", err)
	}
	var installed []string
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		changed, err := installFile(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()))
		if err != nil {
			return installed, fmt.Errorf("install CNI plugin %s: %w", e.Name(), err)
		}
		if changed {
			installed = append(installed, e.Name())
		}
	}
	return installed, nil
}

// installFile makes dst an executable copy of src; changed reports whether
// it had to write.
func installFile(src, dst string) (changed bool, err error) {
	want, err := os.ReadFile(src)
	if err != nil {
		return false, err
	}
	if have, err := os.ReadFile(dst); err == nil && bytes.Equal(have, want) {
		return false, nil
	}
	return true, writeFileAtomic(dst, want, 0o755)
}

// writeFileAtomic writes data to a temporary file in path's directory and
// renames it over path.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ipForwardPath is the IPv4 forwarding sysctl. /proc/sys/net is resolved
// against the network namespace of the thread that opens it.
const ipForwardPath = "/proc/sys/net/ipv4/ip_forward"

// enableIPForward sets net.ipv4.ip_forward=1 in the calling thread's network
// namespace, without which the bridge cannot route pod traffic off the node;
// changed reports whether it was off.
func enableIPForward() (changed bool, err error) {
	cur, err := os.ReadFile(ipForwardPath)
	if err != nil {
		return false, fmt.Errorf("read net.ipv4.ip_forward: %w", err)
	}
	if strings.TrimSpace(string(cur)) == "1" {
		return false, nil
	}
	if err := os.WriteFile(ipForwardPath, []byte("1\n"), 0o644); err != nil {
		return false, fmt.Errorf("enable net.ipv4.ip_forward: %w", err)
	}
	return true, nil
}
