package podnet

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

// ConflistParams are the node-specific parts of the default conflist.
type ConflistParams struct {
	PodCIDR    string // the node's pod CIDR, e.g. 10.244.1.0/24
	BridgeName string // e.g. wharf0
	IPAMDir    string // host-local's dataDir
	// PortmapBackend is "nftables" or "iptables"; see portmapBackend.
	PortmapBackend string
}

// The structs below fix the order of the conflist's keys so that the file
// only changes when its content does.
type conflist struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	Plugins    []any  `json:"plugins"`
}

type bridgeConf struct {
	Type        string        `json:"type"`
	Bridge      string        `json:"bridge"`
	IsGateway   bool          `json:"isGateway"`
	HairpinMode bool          `json:"hairpinMode"`
	IPMasq      bool          `json:"ipMasq"`
	IPAM        hostLocalIPAM `json:"ipam"`
}

type hostLocalIPAM struct {
	Type    string        `json:"type"`
	Ranges  [][]ipamRange `json:"ranges"`
	Routes  []ipamRoute   `json:"routes"`
	DataDir string        `json:"dataDir"`
}

type ipamRange struct {
	Subnet string `json:"subnet"`
}

type ipamRoute struct {
	Dst string `json:"dst"`
}

type portmapConf struct {
	Type         string          `json:"type"`
	Backend      string          `json:"backend"`
	SNAT         bool            `json:"snat"`
	Capabilities map[string]bool `json:"capabilities"`
}

// DefaultConflist renders the node's default conflist: a bridge with the
// gateway address of the pod CIDR and host-local IPAM, then portmap for
// hostPorts. ipMasq is off: masquerading traffic that leaves the cluster is
// the proxy's job, not each pod's. cniVersion is 1.0.0 so the conflist also
// works with older plugins from --cni-bin-dir (Debian ships 1.1.1); with
// 1.0.0 libcni's GC frees leaked IPs by DEL of the attachments it cached
// rather than by a GC call to host-local (which needs 1.1.0).
func DefaultConflist(p ConflistParams) ([]byte, error) {
	ip, ipnet, err := net.ParseCIDR(p.PodCIDR)
	if err != nil {
		return nil, fmt.Errorf("default conflist: pod CIDR: %w", err)
	}
	if ip.To4() == nil {
		return nil, fmt.Errorf("default conflist: pod CIDR %s is not IPv4; only IPv4 pod networks are supported", p.PodCIDR)
	}
	if p.BridgeName == "" || p.IPAMDir == "" || p.PortmapBackend == "" {
		return nil, errors.New("default conflist: BridgeName, IPAMDir and PortmapBackend are required")
	}
	list := conflist{
		CNIVersion: "1.0.0",
		Name:       NetworkName,
		Plugins: []any{
			bridgeConf{
				Type: "bridge", Bridge: p.BridgeName,
				IsGateway: true, HairpinMode: true, IPMasq: false,
				IPAM: hostLocalIPAM{
					Type:    "host-local",
					Ranges:  [][]ipamRange{{{Subnet: ipnet.String()}}},
					Routes:  []ipamRoute{{Dst: "0.0.0.0/0"}},
					DataDir: p.IPAMDir,
				},
			},
			portmapConf{
				Type: "portmap", Backend: p.PortmapBackend, SNAT: true,
				Capabilities: map[string]bool{"portMappings": true},
			},
		},
	}
	out, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("default conflist: %w", err)
	}
	return append(out, '\n'), nil
}

// portmapBackend picks portmap's backend (plugins >= 1.6 take "backend").
// nftables when the nft binary is in PATH, as knftables, which the plugin
// uses, runs it; else iptables, whose rules then live in the CNI-HOSTPORT-*
// chains of the `ip nat` table (iptables-nft or legacy, whichever the
// iptables binary is).
func portmapBackend() string {
	if _, err := exec.LookPath("nft"); err == nil {
		return "nftables"
	}
	return "iptables"
}

// confExtensions are the conflist file kinds, as kubelet and CRI read them.
var confExtensions = []string{".conf", ".conflist", ".json"}

// loadNetworkList reads the network configuration from dir: the first file
// in lexical order that parses and names at least one plugin. A *.conf or
// *.json holding a single plugin is turned into a list of one.
func loadNetworkList(dir string) (*libcni.NetworkConfigList, error) {
	files, err := libcni.ConfFiles(dir, confExtensions)
	if err != nil {
		return nil, fmt.Errorf("read CNI config dir %s: %w", dir, err)
	}
	var errs []error
	for _, f := range files {
		list, err := loadNetworkFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		return list, nil
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("no usable CNI config in %s: %w", dir, errors.Join(errs...))
	}
	return nil, fmt.Errorf("no CNI config in %s (*.conflist, *.conf, *.json)", dir)
}

// loadNetworkFile parses one conflist or single-plugin conf file.
func loadNetworkFile(path string) (*libcni.NetworkConfigList, error) {
	if strings.HasSuffix(path, ".conflist") {
		list, err := libcni.NetworkConfFromFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return list, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	list, err := confListFromSingle(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return list, nil
}

// confListFromSingle wraps a single-plugin conf (the pre-conflist format
// kubelet still reads) into a list of one, as libcni's deprecated
// ConfListFromConf does.
func confListFromSingle(data []byte) (*libcni.NetworkConfigList, error) {
	var plugin map[string]any
	if err := json.Unmarshal(data, &plugin); err != nil {
		return nil, err
	}
	list, err := json.Marshal(map[string]any{
		"name":       plugin["name"],
		"cniVersion": plugin["cniVersion"],
		"plugins":    []any{plugin},
	})
	if err != nil {
		return nil, err
	}
	return libcni.NetworkConfFromBytes(list)
}
