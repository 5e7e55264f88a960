package initproc

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// maxSymlinks bounds symlink resolution, as the kernel's ELOOP does.
const maxSymlinks = 40

// resolveInRoot is the host path of the container path p under root,
// following symlinks as if root were "/": an absolute link restarts at
// root and ".." never climbs above it. Components from the first missing
// one on are appended as they are, so the caller can create them.
func resolveInRoot(root, p string) (string, error) {
	current := "/"
	parts := splitPath(p)
	links := 0
	for len(parts) > 0 {
		part := parts[0]
		parts = parts[1:]
		if part == ".." {
			current = path.Dir(current)
			continue
		}
		next := path.Join(current, part)
		fi, err := os.Lstat(filepath.Join(root, next))
		if os.IsNotExist(err) {
			return filepath.Join(root, next, path.Join(append([]string{"/"}, parts...)...)), nil
		}
		if err != nil {
			return "", fmt.Errorf("resolve %s in the container root: %w", p, err)
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			current = next
			continue
		}
		if links++; links > maxSymlinks {
			return "", fmt.Errorf("resolve %s in the container root: too many symlinks", p)
		}
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return "", fmt.Errorf("resolve %s in the container root: %w", p, err)
		}
		if path.IsAbs(target) {
			current = "/"
		}
		parts = append(splitPath(target), parts...)
	}
	return filepath.Join(root, current), nil
}

// splitPath splits p into its components, without empty ones and ".".
func splitPath(p string) []string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if s != "" && s != "." {
			out = append(out, s)
		}
	}
	return out
}

// lookPath finds the executable name the way execvp would inside the
// container: a name with a '/' is used as is; otherwise each PATH entry
// (relative ones against workDir) is searched under root. The error for a
// missing one is os/exec's, `exec: "foo": executable file not found in
// $PATH`, which kubelet users know.
func lookPath(root, name, pathEnv, workDir string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		candidate := path.Join(dir, name)
		inRoot := candidate
		if !path.IsAbs(inRoot) {
			inRoot = path.Join(workDir, inRoot)
		}
		host, err := resolveInRoot(root, inRoot)
		if err != nil {
			continue
		}
		if fi, err := os.Stat(host); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return candidate, nil
		}
	}
	return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
}

// envValue is the value of key in env (the last one wins, as in getenv).
func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if strings.HasPrefix(kv, key+"=") {
			v = kv[len(key)+1:]
		}
	}
	return v
}
