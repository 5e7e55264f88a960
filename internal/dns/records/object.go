// Package records answers the names of the cluster zone from Services and
// EndpointSlices, as the Kubernetes DNS-Based Service Discovery
// specification (schema 1.1.0, kubernetes/dns docs/specification.md) lays
// them out. It owns the records and nothing else: no sockets, no API
// watches. API objects are converted once, at the edge (convert.go), into
// the small types of this file, as CoreDNS's plugin/kubernetes/object does;
// an Index folds them in one at a time and answers Lookup from memory.
package records

import "net/netip"

// ServiceKind says which records a Service produces.
type ServiceKind int

const (
	// ClusterIP services (also NodePort and LoadBalancer) are answered with
	// their cluster IPs.
	ClusterIP ServiceKind = iota
	// Headless services (clusterIP None) are answered with their ready
	// endpoints' addresses.
	Headless
	// ExternalName services are answered with a CNAME.
	ExternalName
)

// Service is the part of a core/v1 Service that DNS answers from.
type Service struct {
	Namespace, Name string
	Kind            ServiceKind
	// ClusterIPs holds the cluster IPs of a ClusterIP service (one per
	// family).
	ClusterIPs []netip.Addr
	// ExternalName is the CNAME target of an ExternalName service, without
	// the trailing dot.
	ExternalName string
	// Ports are the service's ports; only named ones give SRV records.
	Ports []Port
	// PublishNotReady is spec.publishNotReadyAddresses: every endpoint
	// counts as ready.
	PublishNotReady bool
}

// Port is a named port: Name and Protocol are lower case ("http", "tcp").
type Port struct {
	Name     string
	Protocol string
	Port     uint16
}

// EndpointSlice is the part of a discovery/v1 EndpointSlice that DNS
// answers from.
type EndpointSlice struct {
	Namespace, Name string
	// Service is the kubernetes.io/service-name label: the slice's service.
	Service   string
	Ports     []Port
	Endpoints []Endpoint
}

// Endpoint is one endpoint of a slice.
type Endpoint struct {
	Addresses []netip.Addr
	// Hostname is the endpoint's hostname field; empty means the endpoint
	// is named after its address (1-2-3-4), as CoreDNS does.
	Hostname string
	// Ready is conditions.ready, with nil read as true (the API's contract).
	Ready bool
}
