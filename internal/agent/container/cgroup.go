package container

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// v1Controllers are the cgroup v1 hierarchies a container gets a directory in
// (when mounted): memory and cpu for limits, pids and freezer to find and
// kill every process of the container.
var v1Controllers = []string{"memory", "cpu", "pids", "freezer"}

// v2Unified is the Cgroup.Dirs key of the single v2 directory.
const v2Unified = "unified"

// cfsPeriodUs is the CFS period the CPU limit is expressed in, as kubelet
// sets it (100ms).
const cfsPeriodUs = 100000

// Cgroup is a container's cgroup: one directory per v1 controller, or the
// one v2 directory.
type Cgroup struct {
	// Version is 1 or 2; 0 means the container has no cgroup.
	Version int `json:"version"`
	// Dirs maps a v1 controller ("memory") to its directory; for v2 the one
	// key is "unified".
	Dirs map[string]string `json:"dirs,omitempty"`
}

func (c Cgroup) dir(controller string) string {
	if c.Version == 2 {
		return c.Dirs[v2Unified]
	}
	return c.Dirs[controller]
}

// AllDirs lists the directories, sorted.
func (c Cgroup) AllDirs() []string {
	var out []string
	for _, d := range c.Dirs {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// Join moves the calling process (all its threads) into every directory of
// the cgroup. Init calls it before it starts the container process, which
// then inherits the membership.
func (c Cgroup) Join() error {
	for _, d := range c.AllDirs() {
		// "0" names the writer itself, whatever pid namespace it is in.
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte("0"), 0); err != nil {
			return fmt.Errorf("join cgroup %s: %w", d, err)
		}
	}
	return nil
}

// procsDir is the directory whose cgroup.procs lists every process of the
// container.
func (c Cgroup) procsDir() string {
	for _, ctrl := range []string{"pids", "memory", "freezer", "cpu"} {
		if d := c.dir(ctrl); d != "" {
			return d
		}
	}
	return ""
}

// Procs lists the pids (in the caller's PID namespace) in the cgroup.
func (c Cgroup) Procs() ([]int, error) {
	d := c.procsDir()
	if d == "" {
		return nil, nil
	}
	data, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
	if err != nil {
		return nil, fmt.Errorf("list cgroup processes: %w", err)
	}
	return parsePids(string(data)), nil
}

// OOMKills is how many processes the kernel's OOM killer has killed in the
// cgroup (the oom_kill line of v1 memory.oom_control, v2 memory.events).
func (c Cgroup) OOMKills() (int, error) {
	var file string
	switch {
	case c.Version == 2 && c.dir("memory") != "":
		file = filepath.Join(c.dir("memory"), "memory.events")
	case c.Version == 1 && c.dir("memory") != "":
		file = filepath.Join(c.dir("memory"), "memory.oom_control")
	default:
		return 0, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, fmt.Errorf("read OOM kills: %w", err)
	}
	return parseOOMKills(string(data)), nil
}

// killAll sends SIGKILL to every process in the cgroup but except, until it
// is empty of them (processes may fork meanwhile) or timeout passes.
func (c Cgroup) killAll(except int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pids, err := c.Procs()
		if err != nil {
			return err
		}
		left := 0
		for _, pid := range pids {
			if pid != except {
				left++
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kill container processes: %d still in cgroup %s after %v", left, c.procsDir(), timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// remove deletes the directories. Processes that just died may keep a
// cgroup busy for a moment, so EBUSY is retried briefly.
func (c Cgroup) remove() error {
	var errs []error
	for _, d := range c.AllDirs() {
		if err := rmdirRetry(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func rmdirRetry(dir string) error {
	deadline := time.Now().Add(2 * time.Second)
	for {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup %s: %w", dir, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cgroupLayout is where container cgroups go: the hierarchy's version and,
// per v1 controller (or "unified"), the base directory CgroupParent is
// relative to.
type cgroupLayout struct {
	version int
	bases   map[string]string
}

// detectCgroups picks v2 when root is a cgroup2 mount delegating cpu and
// memory, else the v1 controllers mounted under root. With nest, bases are
// the calling process's own cgroups (from selfCgroup, /proc/self/cgroup's
// content) instead of the hierarchy roots.
func detectCgroups(root string, nest bool, selfCgroup string) cgroupLayout {
	own := parseProcCgroup(selfCgroup)
	var st unix.Statfs_t
	if unix.Statfs(root, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		ctl, _ := os.ReadFile(filepath.Join(root, "cgroup.subtree_control"))
		if hasControllers(string(ctl), "cpu", "memory") {
			base := root
			if nest {
				base = filepath.Join(root, own[""])
			}
			return cgroupLayout{version: 2, bases: map[string]string{v2Unified: base}}
		}
	}
	l := cgroupLayout{version: 1, bases: map[string]string{}}
	for _, ctrl := range v1Controllers {
		dir := filepath.Join(root, ctrl)
		if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err != nil {
			continue
		}
		if nest {
			dir = filepath.Join(dir, own[ctrl])
		}
		l.bases[ctrl] = dir
	}
	if len(l.bases) == 0 {
		l.version = 0
	}
	return l
}

// create makes the container's cgroup at <base>/<parent>/<leaf> in every
// hierarchy and applies the limits. Limits it cannot apply become warnings;
// only a cgroup it cannot create at all is an error.
func (l cgroupLayout) create(parent, leaf string, cpuMilli, memoryBytes int64) (Cgroup, []string, error) {
	cg := Cgroup{Version: l.version, Dirs: map[string]string{}}
	var warnings []string
	for key, base := range l.bases {
		dir := filepath.Join(base, parent, leaf)
		if l.version == 2 {
			warnings = append(warnings, enableV2Controllers(base, filepath.Join(parent, leaf))...)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return cg, warnings, fmt.Errorf("create cgroup %s: %w", dir, err)
		}
		cg.Dirs[key] = dir
	}
	for _, w := range cg.limitWrites(cpuMilli, memoryBytes) {
		if err := os.WriteFile(w.file, []byte(w.value), 0); err != nil {
			warnings = append(warnings, fmt.Sprintf("cannot apply %s limit (%s=%s): %v", w.what, filepath.Base(w.file), w.value, err))
		}
	}
	return cg, warnings, nil
}

// enableV2Controllers writes +cpu +memory +pids to subtree_control from
// base down to rel's parent, so rel's directory gets those controllers.
func enableV2Controllers(base, rel string) []string {
	dirs := []string{base}
	if p := filepath.Dir(rel); p != "." {
		dir := base
		for _, part := range strings.Split(p, "/") {
			dir = filepath.Join(dir, part)
			dirs = append(dirs, dir)
		}
	}
	var warnings []string
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			warnings = append(warnings, fmt.Sprintf("create cgroup %s: %v", dir, err))
			continue
		}
		for _, c := range []string{"+cpu", "+memory", "+pids"} {
			if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(c), 0); err != nil {
				warnings = append(warnings, fmt.Sprintf("cannot enable controller %s in %s: %v", c[1:], dir, err))
			}
		}
	}
	return warnings
}

// limitWrite is one cgroup file write that applies a limit.
type limitWrite struct{ what, file, value string }

// limitWrites lists the writes for the limits, in order (v1 wants the CFS
// period before the quota). A missing controller yields a write to a file
// that does not exist, so it surfaces as a warning.
func (c Cgroup) limitWrites(cpuMilli, memoryBytes int64) []limitWrite {
	var ws []limitWrite
	if memoryBytes > 0 {
		if c.Version == 2 {
			ws = append(ws, limitWrite{"memory", filepath.Join(c.dir("memory"), "memory.max"), strconv.FormatInt(memoryBytes, 10)})
		} else {
			ws = append(ws, limitWrite{"memory", filepath.Join(c.dir("memory"), "memory.limit_in_bytes"), strconv.FormatInt(memoryBytes, 10)})
		}
	}
	if cpuMilli > 0 {
		quota := cpuQuotaUs(cpuMilli)
		if c.Version == 2 {
			ws = append(ws, limitWrite{"cpu", filepath.Join(c.dir("cpu"), "cpu.max"), fmt.Sprintf("%d %d", quota, cfsPeriodUs)})
		} else {
			ws = append(ws,
				limitWrite{"cpu", filepath.Join(c.dir("cpu"), "cpu.cfs_period_us"), strconv.Itoa(cfsPeriodUs)},
				limitWrite{"cpu", filepath.Join(c.dir("cpu"), "cpu.cfs_quota_us"), strconv.FormatInt(quota, 10)})
		}
	}
	return ws
}

// cpuQuotaUs is the CFS quota per 100ms period for a limit in millicores,
// at least the kernel's minimum of 1ms (kubelet's MilliCPUToQuota).
func cpuQuotaUs(milli int64) int64 {
	q := milli * cfsPeriodUs / 1000
	if q < 1000 {
		q = 1000
	}
	return q
}

// parseProcCgroup maps each v1 controller (and "" for v2) to the path in
// /proc/<pid>/cgroup content.
func parseProcCgroup(content string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(content))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, ctrl := range strings.Split(parts[1], ",") {
			out[ctrl] = parts[2]
		}
	}
	return out
}

func hasControllers(list string, want ...string) bool {
	have := map[string]bool{}
	for _, f := range strings.Fields(list) {
		have[f] = true
	}
	for _, w := range want {
		if !have[w] {
			return false
		}
	}
	return true
}

// parseOOMKills reads the "oom_kill N" line of memory.oom_control or
// memory.events.
func parseOOMKills(content string) int {
	for _, line := range strings.Split(content, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "oom_kill" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

func parsePids(content string) []int {
	var pids []int
	for _, f := range strings.Fields(content) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// RemoveCgroupParent removes the (empty) parent cgroup directory of a pod,
// <base>/<parent> in every hierarchy, once all its containers are removed.
// A parent that does not exist is not an error.
func (r *Runtime) RemoveCgroupParent(parent string) error {
	if parent == "" || filepath.Clean("/"+parent) == "/" {
		return fmt.Errorf("remove cgroup parent: empty path")
	}
	var errs []error
	for _, base := range r.cgroupLayout().bases {
		if err := rmdirRetry(filepath.Join(base, filepath.Clean("/"+parent))); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
