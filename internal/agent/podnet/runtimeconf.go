package podnet

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// containerIDPattern is libcni's rule for container IDs (pkg/utils), which
// the pod UID is.
var containerIDPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`)

// validatePod rejects a PodRef that cannot name a namespace file or a CNI
// container: empty parts, or a namespace or name with '/' or '_' (which
// Kubernetes names never contain; '_' separates the parts of NetnsName).
func validatePod(pod PodRef) error {
	for _, part := range []struct{ what, v string }{{"namespace", pod.Namespace}, {"name", pod.Name}} {
		if part.v == "" || part.v == "." || part.v == ".." || strings.ContainsAny(part.v, "/_") {
			return fmt.Errorf("pod %s: invalid %s %q", pod, part.what, part.v)
		}
	}
	if !containerIDPattern.MatchString(pod.UID) {
		return fmt.Errorf("pod %s: invalid UID %q", pod, pod.UID)
	}
	return nil
}

// validatePorts rejects port mappings portmap would refuse, before ADD.
func validatePorts(ports []PortMapping) error {
	for _, p := range ports {
		if p.HostPort < 1 || p.HostPort > 65535 || p.ContainerPort < 1 || p.ContainerPort > 65535 {
			return fmt.Errorf("port mapping %d->%d: ports must be 1-65535", p.HostPort, p.ContainerPort)
		}
		switch strings.ToLower(p.Protocol) {
		case "", "tcp", "udp", "sctp":
		default:
			return fmt.Errorf("port mapping %d->%d: unknown protocol %q", p.HostPort, p.ContainerPort, p.Protocol)
		}
		if p.HostIP != "" && net.ParseIP(p.HostIP) == nil {
			return fmt.Errorf("port mapping %d->%d: invalid host IP %q", p.HostPort, p.ContainerPort, p.HostIP)
		}
	}
	return nil
}

// portMapEntry is one entry of the portMappings capability, in the CNI
// conventions' spelling.
type portMapEntry struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

// runtimeConf is what libcni passes the plugins for pod: the pod UID as
// container ID, eth0, kubelet's CNI_ARGS and the port mappings.
func runtimeConf(pod PodRef, netnsPath string, ports []PortMapping) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{
		ContainerID: pod.UID,
		NetNS:       netnsPath,
		IfName:      PodInterface,
		Args: [][2]string{
			// Plugins that parse CNI_ARGS strictly would reject the K8S_ keys.
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", pod.Namespace},
			{"K8S_POD_NAME", pod.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", pod.UID},
			{"K8S_POD_UID", pod.UID},
		},
	}
	if len(ports) > 0 {
		entries := make([]portMapEntry, 0, len(ports))
		for _, p := range ports {
			proto := strings.ToLower(p.Protocol)
			if proto == "" {
				proto = "tcp"
			}
			entries = append(entries, portMapEntry{
				HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: proto, HostIP: p.HostIP,
			})
		}
		rt.CapabilityArgs = map[string]any{"portMappings": entries}
	}
	return rt
}

// onlyLoopback says whether a result gave the pod no address but
// loopback ones (the loopback plugin alone reports 127.0.0.1 on lo).
func onlyLoopback(r *types100.Result) bool {
	for _, ipc := range r.IPs {
		if !ipc.Address.IP.IsLoopback() {
			return false
		}
	}
	return true
}

// sandboxFromResult picks out of a CNI result the addresses of the pod's
// interface: those whose interface index names PodInterface inside a
// sandbox, or that name no interface. A result with no address at all is
// a pod without a network interface.
func sandboxFromResult(netnsPath string, res types.Result) (Sandbox, error) {
	if res == nil {
		return Sandbox{}, errors.New("CNI returned no result")
	}
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return Sandbox{}, fmt.Errorf("convert CNI result: %w", err)
	}
	sb := Sandbox{NetnsPath: netnsPath, Interface: PodInterface}
	for _, ipc := range r.IPs {
		if ipc.Interface != nil {
			i := *ipc.Interface
			if i < 0 || i >= len(r.Interfaces) || r.Interfaces[i].Name != PodInterface || r.Interfaces[i].Sandbox == "" {
				continue
			}
		}
		ip := ipc.Address.IP
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		sb.IPs = append(sb.IPs, append(net.IP(nil), ip...))
	}
	switch {
	case onlyLoopback(r):
		// A config of the loopback plugin alone (Docker's "none"): the
		// pod has lo and no address, as it asked.
		sb.Interface = ""
	case len(sb.IPs) == 0:
		return Sandbox{}, fmt.Errorf("CNI result has no address for %s", PodInterface)
	}
	return sb, nil
}
