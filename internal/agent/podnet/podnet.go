// Package podnet owns the network sandbox of every pod on a Wharf node: a
// named network namespace per pod (a bind mount in NetnsDir, as `ip netns`
// makes them, so `ip netns list` shows whose it is), given its interface and
// IP by CNI through libcni. It installs the reference CNI plugins the Makefile
// builds, writes the default bridge conflist for the node's pod CIDR, and
// runs ADD, CHECK, DEL and GC against it.
//
// The CNI plugins run in the network namespace of the thread that calls
// Manager's methods; in the agent that is the host's. Fake hands out IPs in
// memory for tests of the agent's pod manager that cannot be root.
package podnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// Network is what the agent's pod manager needs from the pod network. Manager
// is the real one, Fake the in-memory one.
type Network interface {
	// Setup creates the pod's sandbox and attaches it to the pod network.
	// It fails with ErrSandboxExists when the pod already has one.
	Setup(ctx context.Context, pod PodRef, ports []PortMapping) (Sandbox, error)
	// Recover finds the sandbox a previous agent made for pod; ok is false
	// when there is none to recover.
	Recover(ctx context.Context, pod PodRef) (sb Sandbox, ok bool, err error)
	// Teardown detaches the pod and removes its sandbox. It is idempotent.
	Teardown(ctx context.Context, pod PodRef) error
	// GC tears down every sandbox not in keep.
	GC(ctx context.Context, keep []PodRef) error
}

// ErrSandboxExists is returned by Setup for a pod that already has a sandbox.
var ErrSandboxExists = errors.New("pod network sandbox already exists")

// PodRef names a pod. UID is the CNI container ID.
type PodRef struct {
	Namespace, Name, UID string
}

// String returns namespace/name.
func (p PodRef) String() string { return p.Namespace + "/" + p.Name }

// PortMapping is a hostPort of a pod, passed to the portmap plugin as the
// portMappings capability.
type PortMapping struct {
	HostPort      int32
	ContainerPort int32
	Protocol      string // "tcp" or "udp"; empty means tcp
	HostIP        string // empty means every host address
}

// Sandbox is a pod's network namespace as CNI left it.
type Sandbox struct {
	NetnsPath string   // bind mount of the pod's network namespace
	IPs       []net.IP // addresses of Interface, in the order CNI returned them
	Interface string   // interface inside the namespace, "eth0"
}

// Config of the pod network. Zero values take the defaults named on each
// field; only DataDir is required.
type Config struct {
	// DataDir is the agent's data directory. The defaults below live in
	// <DataDir>/cni: net.d (conflists), bin (plugins), cache (libcni's
	// results cache) and ipam (host-local's reservations).
	DataDir string
	// ConfDir (--cni-conf-dir), when set, is where the conflist is read: the
	// first *.conflist, *.conf or *.json in lexical order that parses, as
	// kubelet and the CRI runtimes pick it. WriteDefaultConfig then writes
	// nothing.
	ConfDir string
	// BinDirs (--cni-bin-dir) are searched for plugins after <DataDir>/cni/bin.
	BinDirs []string
	// PluginSource holds the plugin binaries `make` builds; every file found
	// there is copied into <DataDir>/cni/bin when it differs. Default: the
	// environment variable WHARF_CNI_PLUGINS, else the directory "cni" beside
	// the running executable (bin/cni for bin/wharf). A missing source is not
	// an error: the plugins may be in BinDirs.
	PluginSource string
	// NetnsPrefix starts the name of every namespace this package makes;
	// default "wharf-". List and GC only look at names with this prefix.
	NetnsPrefix string
	// NetnsDir holds the namespaces' bind mounts; default /run/netns, where
	// iproute2 looks.
	NetnsDir string
	// BridgeName is the bridge of the default conflist; default "wharf0".
	BridgeName string
}

// Defaults.
const (
	DefaultNetnsPrefix = "wharf-"
	DefaultNetnsDir    = "/run/netns"
	DefaultBridgeName  = "wharf0"
	// PluginSourceEnv names the environment variable that overrides the
	// default PluginSource.
	PluginSourceEnv = "WHARF_CNI_PLUGINS"
	// NetworkName is the network name of the default conflist.
	NetworkName = "wharf"
	// DefaultConfigFile is the default conflist's file name in ConfDir.
	DefaultConfigFile = "10-wharf.conflist"
	// PodInterface is the interface name every pod gets.
	PodInterface = "eth0"
)

// withDefaults returns cfg with its zero fields filled in, or an error if it
// cannot be completed.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.DataDir == "" {
		return cfg, errors.New("podnet: Config.DataDir is required")
	}
	if cfg.NetnsPrefix == "" {
		cfg.NetnsPrefix = DefaultNetnsPrefix
	}
	if cfg.NetnsDir == "" {
		cfg.NetnsDir = DefaultNetnsDir
	}
	if cfg.BridgeName == "" {
		cfg.BridgeName = DefaultBridgeName
	}
	if len(cfg.BridgeName) > 15 {
		return cfg, fmt.Errorf("podnet: bridge name %q is longer than 15 characters (IFNAMSIZ)", cfg.BridgeName)
	}
	if cfg.PluginSource == "" {
		cfg.PluginSource = os.Getenv(PluginSourceEnv)
	}
	if cfg.PluginSource == "" {
		exe, err := os.Executable()
		if err != nil {
			return cfg, fmt.Errorf("podnet: locate CNI plugins beside the executable: %w", err)
		}
		cfg.PluginSource = filepath.Join(filepath.Dir(exe), "cni")
	}
	return cfg, nil
}

func (cfg Config) cniDir() string         { return filepath.Join(cfg.DataDir, "cni") }
func (cfg Config) pluginDir() string      { return filepath.Join(cfg.cniDir(), "bin") }
func (cfg Config) cacheDir() string       { return filepath.Join(cfg.cniDir(), "cache") }
func (cfg Config) ipamDir() string        { return filepath.Join(cfg.cniDir(), "ipam") }
func (cfg Config) defaultConfDir() string { return filepath.Join(cfg.cniDir(), "net.d") }

// confDir is where the conflist is read from.
func (cfg Config) confDir() string {
	if cfg.ConfDir != "" {
		return cfg.ConfDir
	}
	return cfg.defaultConfDir()
}

// pluginPath is libcni's search path: our installed plugins first.
func (cfg Config) pluginPath() []string {
	return append([]string{cfg.pluginDir()}, cfg.BinDirs...)
}
