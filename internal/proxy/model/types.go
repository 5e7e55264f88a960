// Package model owns the service proxy's desired state: it turns Services
// and EndpointSlices, already converted at the edge into the small types of
// this package, into one ServicePort per (service, port) naming the
// addresses that reach it and the endpoints each traffic policy may use.
//
// Everything here is pure (no I/O, no client-go, no kernel) so that every
// backend (nftables now; iptables and userspace later) programs the same
// decisions, and those decisions are tested once, without root.
package model

import (
	"net/netip"
	"time"
)

// ServiceKey names a Service (namespace/name).
type ServiceKey struct {
	Namespace, Name string
}

// String returns "namespace/name".
func (k ServiceKey) String() string { return k.Namespace + "/" + k.Name }

// Protocol is a transport protocol in lower case, as nftables spells it:
// "tcp", "udp" or "sctp".
type Protocol string

// The protocols a Service port may use.
const (
	TCP  Protocol = "tcp"
	UDP  Protocol = "udp"
	SCTP Protocol = "sctp"
)

// Service is the part of a core/v1 Service the proxy needs.
type Service struct {
	Key ServiceKey
	// ClusterIPs are the IPv4 cluster IPs; empty for headless ("None")
	// and ExternalName services, which get no rules.
	ClusterIPs []netip.Addr
	// Ports are spec.ports.
	Ports []PortSpec
	// ExternalIPs are spec.externalIPs.
	ExternalIPs []netip.Addr
	// LoadBalancerIPs are status.loadBalancer.ingress[].ip.
	LoadBalancerIPs []netip.Addr
	// AffinityTimeout is sessionAffinityConfig.clientIP.timeoutSeconds when
	// sessionAffinity is ClientIP, zero for no affinity.
	AffinityTimeout time.Duration
	// ExternalPolicyLocal and InternalPolicyLocal are
	// externalTrafficPolicy and internalTrafficPolicy == Local.
	ExternalPolicyLocal, InternalPolicyLocal bool
}

// PortSpec is one entry of spec.ports.
type PortSpec struct {
	Name     string
	Protocol Protocol
	Port     uint16
	// NodePort is zero when the service has none.
	NodePort uint16
}

// SliceKey names an EndpointSlice (namespace/name).
type SliceKey struct {
	Namespace, Name string
}

// EndpointSlice is the part of a discovery/v1 EndpointSlice the proxy
// needs. Only IPv4 slices are converted.
type EndpointSlice struct {
	// Service is the slice's kubernetes.io/service-name label, in the
	// slice's namespace.
	Service   ServiceKey
	Ports     []EndpointPort
	Endpoints []Endpoint
}

// EndpointPort is one entry of an EndpointSlice's ports: the name of the
// Service port it serves and the target port, already resolved (named
// targetPorts included) by the EndpointSlice controller.
type EndpointPort struct {
	Name     string
	Protocol Protocol
	Port     uint16
}

// Endpoint is one entry of an EndpointSlice's endpoints. The conditions
// follow upstream's reading of nil: Ready nil means ready, Serving nil
// means the value of Ready, Terminating nil means not terminating.
type Endpoint struct {
	Addrs                       []netip.Addr
	Ready, Serving, Terminating bool
	NodeName                    string
}

// Options are the facts about this node the model needs.
type Options struct {
	// NodeName decides which endpoints are local (endpoint nodeName ==
	// NodeName) for the Local traffic policies.
	NodeName string
	// ClusterDNS is the node-local cluster DNS address: the model gives it
	// no service rules at all (no DNAT, reject or drop), whatever Service
	// claims it, because it is served on the node's lo.
	ClusterDNS netip.Addr
}

// ServicePort is the desired state of one port of one service: every
// address that reaches it and the endpoints each traffic policy uses.
// Backends must treat it as immutable.
type ServicePort struct {
	Service  ServiceKey
	Name     string
	Protocol Protocol
	Port     uint16
	// ClusterIPs never contain Options.ClusterDNS.
	ClusterIPs      []netip.Addr
	ExternalIPs     []netip.Addr
	LoadBalancerIPs []netip.Addr
	NodePort        uint16
	// AffinityTimeout is zero without ClientIP session affinity.
	AffinityTimeout time.Duration
	// InternalLocal and ExternalLocal are the Local traffic policies;
	// ExternalLocal is only set for an externally reachable port.
	InternalLocal, ExternalLocal bool
	// ClusterEndpoints are the endpoints of the Cluster policy: ready
	// ones, or serving-terminating ones when none is ready. Nil when no
	// policy of this port uses them.
	ClusterEndpoints []netip.AddrPort
	// LocalEndpoints are this node's endpoints for the Local policies:
	// ready local ones, or serving-terminating local ones when no local one
	// is ready. Nil when no policy of this port uses them.
	LocalEndpoints []netip.AddrPort
	// HasEndpoints is true when some usable endpoint exists anywhere, so a
	// Local policy without local endpoints drops rather than rejects.
	HasEndpoints bool
}

// PortName is upstream's ServicePortName string, "namespace/name:port"
// (with an empty port name for an unnamed port).
func (p *ServicePort) PortName() string { return p.Service.String() + ":" + p.Name }

// ExternallyAccessible reports whether anything but a cluster IP reaches
// the port.
func (p *ServicePort) ExternallyAccessible() bool {
	return p.NodePort != 0 || len(p.ExternalIPs) > 0 || len(p.LoadBalancerIPs) > 0
}

// InternalEndpoints are the endpoints for traffic to a cluster IP.
func (p *ServicePort) InternalEndpoints() []netip.AddrPort {
	if p.InternalLocal {
		return p.LocalEndpoints
	}
	return p.ClusterEndpoints
}

// ExternalEndpoints are the endpoints for traffic to a node port, external
// IP or LoadBalancer IP from outside the node and its pods.
func (p *ServicePort) ExternalEndpoints() []netip.AddrPort {
	if p.ExternalLocal {
		return p.LocalEndpoints
	}
	return p.ClusterEndpoints
}

// AllEndpoints is the union of the cluster and local endpoints, sorted.
func (p *ServicePort) AllEndpoints() []netip.AddrPort {
	return union(p.ClusterEndpoints, p.LocalEndpoints)
}

// ServiceState is the desired state of one service: its ports in spec
// order. Backends compare ServiceStates by pointer first: the Tracker only
// makes a new one when the service or its slices changed.
type ServiceState struct {
	Key   ServiceKey
	Ports []ServicePort
}

// State is the desired state of every service with rules.
type State struct {
	Services map[ServiceKey]*ServiceState
}
