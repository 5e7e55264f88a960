package podnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

// Manager is the real pod network: named network namespaces attached by the
// CNI plugins of the node's conflist. Its methods may be called concurrently
// for different pods; calls for one pod must not overlap.
type Manager struct {
	cfg              Config
	cni              *libcni.CNIConfig
	enabledForward   bool
	installedPlugins []string
}

var _ Network = (*Manager)(nil)

// New prepares the node for pod networking: it installs the plugins found in
// PluginSource, creates the CNI directories, makes NetnsDir a shared mount
// when it is /run/netns (as iproute2 does), and enables IPv4 forwarding in
// the calling thread's network namespace.
func New(cfg Config) (*Manager, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	installed, err := installPlugins(cfg.PluginSource, cfg.pluginDir())
	if err != nil {
		return nil, err
	}
	dirs := []string{cfg.pluginDir(), cfg.cacheDir(), cfg.ipamDir(), cfg.NetnsDir}
	if cfg.ConfDir == "" {
		dirs = append(dirs, cfg.defaultConfDir())
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("podnet: create %s: %w", d, err)
		}
	}
	if filepath.Clean(cfg.NetnsDir) == DefaultNetnsDir {
		if err := ensureSharedMount(cfg.NetnsDir); err != nil {
			return nil, fmt.Errorf("podnet: %w", err)
		}
	}
	enabled, err := enableIPForward()
	if err != nil {
		return nil, fmt.Errorf("podnet: %w", err)
	}
	return &Manager{
		cfg:              cfg,
		cni:              libcni.NewCNIConfigWithCacheDir(cfg.pluginPath(), cfg.cacheDir(), nil),
		enabledForward:   enabled,
		installedPlugins: installed,
	}, nil
}

// EnabledIPForward reports whether New turned net.ipv4.ip_forward on (it
// was off), for the agent to log it.
func (m *Manager) EnabledIPForward() bool { return m.enabledForward }

// InstalledPlugins names the plugins New copied into <DataDir>/cni/bin
// because they were missing or differed.
func (m *Manager) InstalledPlugins() []string { return slices.Clone(m.installedPlugins) }

// NetnsPath is where pod's network namespace is mounted.
func (m *Manager) NetnsPath(pod PodRef) string {
	return filepath.Join(m.cfg.NetnsDir, NetnsName(m.cfg.NetnsPrefix, pod))
}

// WriteDefaultConfig writes <DataDir>/cni/net.d/10-wharf.conflist for the
// node's pod CIDR (see DefaultConflist), rewriting it only when its content
// changes. With Config.ConfDir set it writes nothing: that conflist belongs
// to the administrator.
func (m *Manager) WriteDefaultConfig(podCIDR string) error {
	if m.cfg.ConfDir != "" {
		return nil
	}
	data, err := DefaultConflist(ConflistParams{
		PodCIDR:        podCIDR,
		BridgeName:     m.cfg.BridgeName,
		IPAMDir:        m.cfg.ipamDir(),
		PortmapBackend: portmapBackend(),
	})
	if err != nil {
		return err
	}
	path := filepath.Join(m.cfg.defaultConfDir(), DefaultConfigFile)
	if have, err := os.ReadFile(path); err == nil && bytes.Equal(have, data) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create CNI config dir: %w", err)
	}
	if err := writeFileAtomic(path, data, 0o644); err != nil {
		return fmt.Errorf("write CNI config %s: %w", path, err)
	}
	return nil
}

// Setup creates pod's network namespace and runs CNI ADD for it. If ADD
// fails it runs DEL and removes the namespace, so nothing leaks. A pod that
// already has a namespace gets ErrSandboxExists: after an agent restart call
// Recover instead, never a second ADD.
func (m *Manager) Setup(ctx context.Context, pod PodRef, ports []PortMapping) (Sandbox, error) {
	if err := validatePod(pod); err != nil {
		return Sandbox{}, err
	}
	if err := validatePorts(ports); err != nil {
		return Sandbox{}, fmt.Errorf("pod %s: %w", pod, err)
	}
	list, err := m.networkList()
	if err != nil {
		return Sandbox{}, err
	}
	path := m.NetnsPath(pod)
	if _, err := os.Lstat(path); err == nil {
		return Sandbox{}, fmt.Errorf("set up network of pod %s: %s: %w", pod, path, ErrSandboxExists)
	}
	if err := createNetns(path); err != nil {
		return Sandbox{}, fmt.Errorf("set up network of pod %s: %w", pod, err)
	}
	rt := runtimeConf(pod, path, ports)
	res, err := m.cni.AddNetworkList(ctx, list, rt)
	var sb Sandbox
	if err == nil {
		sb, err = sandboxFromResult(path, res)
	}
	if err != nil {
		// The context may be what failed ADD; clean up regardless.
		_, delErr := m.del(context.WithoutCancel(ctx), list, rt)
		return Sandbox{}, errors.Join(
			fmt.Errorf("set up network of pod %s: CNI ADD: %w", pod, err),
			delErr,
			removeNetns(path))
	}
	return sb, nil
}

// Recover returns the sandbox a previous agent set up for pod, after CNI
// CHECK confirms it, with the IPs libcni cached at ADD. ok is false when
// there is nothing to recover; half a sandbox (a namespace without a cached
// result or the reverse) is then torn down, so that Setup can start afresh.
// A failed CHECK is returned as an error with ok false; the caller should
// Teardown and Setup again.
func (m *Manager) Recover(ctx context.Context, pod PodRef) (Sandbox, bool, error) {
	if err := validatePod(pod); err != nil {
		return Sandbox{}, false, err
	}
	list, err := m.networkList()
	if err != nil {
		return Sandbox{}, false, err
	}
	path := m.NetnsPath(pod)
	rt := runtimeConf(pod, path, nil)
	cached, err := m.cni.GetNetworkListCachedResult(list, rt)
	if err != nil {
		return Sandbox{}, false, fmt.Errorf("recover network of pod %s: read CNI cache: %w", pod, err)
	}
	if cached == nil || !isNetns(path) {
		if _, statErr := os.Lstat(path); cached == nil && errors.Is(statErr, fs.ErrNotExist) {
			return Sandbox{}, false, nil
		}
		return Sandbox{}, false, m.Teardown(ctx, pod)
	}
	if err := m.cni.CheckNetworkList(ctx, list, m.cachedRuntimeConf(list, rt)); err != nil {
		return Sandbox{}, false, fmt.Errorf("recover network of pod %s: CNI CHECK: %w", pod, err)
	}
	sb, err := sandboxFromResult(path, cached)
	if err != nil {
		return Sandbox{}, false, fmt.Errorf("recover network of pod %s: %w", pod, err)
	}
	return sb, true, nil
}

// Teardown runs CNI DEL for pod and removes its network namespace. DEL gets
// the port mappings cached at ADD, and an empty netns path when the
// namespace is already gone (as the CRI runtimes do), in which case the
// plugins only release the IP. If DEL fails the namespace is kept for a
// retry, unless only portmap failed (see del): then the sandbox is removed
// and the error still returned. Teardown of a pod without a sandbox
// succeeds.
func (m *Manager) Teardown(ctx context.Context, pod PodRef) error {
	if err := validatePod(pod); err != nil {
		return err
	}
	list, err := m.networkList()
	if err != nil {
		return err
	}
	path := m.NetnsPath(pod)
	netns := ""
	if isNetns(path) {
		netns = path
	}
	released, err := m.del(ctx, list, m.cachedRuntimeConf(list, runtimeConf(pod, netns, nil)))
	if !released {
		return fmt.Errorf("tear down network of pod %s: %w", pod, err)
	}
	if rmErr := removeNetns(path); rmErr != nil {
		err = errors.Join(err, rmErr)
	}
	if err != nil {
		return fmt.Errorf("tear down network of pod %s: %w", pod, err)
	}
	return nil
}

// del runs CNI DEL; released reports whether the pod's interface and
// address were released. libcni runs DEL through the chain in reverse and
// stops at the first plugin that fails, so a portmap that cannot remove its
// rules (no iptables or nft binary, say) would keep bridge and host-local
// from releasing the veth and the IP for ever. When DEL with port mappings
// fails it is therefore repeated without them, which portmap skips; the
// first failure is still returned, as hostPort rules may remain.
func (m *Manager) del(ctx context.Context, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) (released bool, err error) {
	err = m.cni.DelNetworkList(ctx, list, rt)
	if err == nil {
		return true, nil
	}
	err = fmt.Errorf("CNI DEL: %w", err)
	if len(rt.CapabilityArgs) == 0 {
		return false, err
	}
	bare := *rt
	bare.CapabilityArgs = nil
	if err2 := m.cni.DelNetworkList(ctx, list, &bare); err2 != nil {
		return false, errors.Join(err, fmt.Errorf("CNI DEL without port mappings: %w", err2))
	}
	return true, err
}

// GC releases what no pod in keep uses: libcni DELs every cached attachment
// of our network whose container is not in keep (freeing its host-local IP),
// then the namespaces with our prefix that belong to no pod in keep are
// removed. All failures are returned, joined.
func (m *Manager) GC(ctx context.Context, keep []PodRef) error {
	list, err := m.networkList()
	if err != nil {
		return err
	}
	valid := make([]types.GCAttachment, 0, len(keep))
	keepNames := make(map[string]bool, len(keep))
	for _, p := range keep {
		valid = append(valid, types.GCAttachment{ContainerID: p.UID, IfName: PodInterface})
		keepNames[NetnsName(m.cfg.NetnsPrefix, p)] = true
	}
	var errs []error
	if err := m.cni.GCNetworkList(ctx, list, &libcni.GCArgs{ValidAttachments: valid}); err != nil {
		errs = append(errs, fmt.Errorf("CNI GC: %w", err))
	}
	names, err := m.List()
	if err != nil {
		errs = append(errs, err)
	}
	for _, name := range names {
		if !keepNames[name] {
			errs = append(errs, removeNetns(filepath.Join(m.cfg.NetnsDir, name)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("garbage-collect pod networks: %w", err)
	}
	return nil
}

// List returns the names of the network namespaces with our prefix, sorted.
func (m *Manager) List() ([]string, error) {
	return listNetns(m.cfg.NetnsDir, m.cfg.NetnsPrefix)
}

// networkList loads the conflist in use; it is read on every call so that
// one written after New (WriteDefaultConfig) or by the administrator is
// picked up.
func (m *Manager) networkList() (*libcni.NetworkConfigList, error) {
	list, err := loadNetworkList(m.cfg.confDir())
	if err != nil {
		return nil, fmt.Errorf("pod network: %w", err)
	}
	return list, nil
}

// cachedRuntimeConf returns rt with the CNI args and capability args (port
// mappings) libcni cached at ADD, which CHECK and DEL must repeat; rt
// itself when nothing is cached.
func (m *Manager) cachedRuntimeConf(list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) *libcni.RuntimeConf {
	_, cached, err := m.cni.GetNetworkListCachedConfig(list, rt)
	if err != nil || cached == nil {
		return rt
	}
	return cached
}
