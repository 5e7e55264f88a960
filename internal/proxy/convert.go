package proxy

import (
	"net/netip"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/wharf-io/wharf/internal/proxy/model"
)

// defaultAffinityTimeout is upstream's DefaultClientIPServiceAffinitySeconds.
const defaultAffinityTimeout = 10800 * time.Second

// serviceFromAPI converts a Service at the edge. Headless and ExternalName
// services convert with no cluster IPs, so the model gives them nothing.
func serviceFromAPI(s *v1.Service) *model.Service {
	out := &model.Service{
		Key:                 model.ServiceKey{Namespace: s.Namespace, Name: s.Name},
		ExternalIPs:         parseIPv4s(s.Spec.ExternalIPs),
		ExternalPolicyLocal: s.Spec.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal,
		InternalPolicyLocal: s.Spec.InternalTrafficPolicy != nil && *s.Spec.InternalTrafficPolicy == v1.ServiceInternalTrafficPolicyLocal,
	}
	if s.Spec.Type != v1.ServiceTypeExternalName {
		ips := s.Spec.ClusterIPs
		if len(ips) == 0 && s.Spec.ClusterIP != "" {
			ips = []string{s.Spec.ClusterIP}
		}
		out.ClusterIPs = parseIPv4s(ips) // "None" does not parse
	}
	for _, ing := range s.Status.LoadBalancer.Ingress {
		// ipMode Proxy: the load balancer delivers to the node itself, so
		// the proxy must not capture the address (KEP-1860).
		if ing.IPMode != nil && *ing.IPMode == v1.LoadBalancerIPModeProxy {
			continue
		}
		out.LoadBalancerIPs = append(out.LoadBalancerIPs, parseIPv4s([]string{ing.IP})...)
	}
	if s.Spec.SessionAffinity == v1.ServiceAffinityClientIP {
		out.AffinityTimeout = defaultAffinityTimeout
		if c := s.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			out.AffinityTimeout = time.Duration(*c.ClientIP.TimeoutSeconds) * time.Second
		}
	}
	for _, p := range s.Spec.Ports {
		out.Ports = append(out.Ports, model.PortSpec{Name: p.Name, Protocol: protocol(p.Protocol),
			Port: uint16(p.Port), NodePort: uint16(p.NodePort)})
	}
	return out
}

// sliceFromAPI converts an EndpointSlice at the edge; ok is false for
// slices the proxy ignores (not IPv4, or not owned by a service).
func sliceFromAPI(s *discoveryv1.EndpointSlice) (out *model.EndpointSlice, ok bool) {
	svc := s.Labels[discoveryv1.LabelServiceName]
	if svc == "" || s.AddressType != discoveryv1.AddressTypeIPv4 {
		return nil, false
	}
	out = &model.EndpointSlice{Service: model.ServiceKey{Namespace: s.Namespace, Name: svc}}
	for _, p := range s.Ports {
		if p.Port == nil {
			continue
		}
		ep := model.EndpointPort{Port: uint16(*p.Port), Protocol: model.TCP}
		if p.Name != nil {
			ep.Name = *p.Name
		}
		if p.Protocol != nil {
			ep.Protocol = protocol(*p.Protocol)
		}
		out.Ports = append(out.Ports, ep)
	}
	for _, e := range s.Endpoints {
		c := e.Conditions
		ready := c.Ready == nil || *c.Ready
		ep := model.Endpoint{
			Addrs:       parseIPv4s(e.Addresses),
			Ready:       ready,
			Serving:     ready,
			Terminating: c.Terminating != nil && *c.Terminating,
		}
		if c.Serving != nil {
			ep.Serving = *c.Serving
		}
		if e.NodeName != nil {
			ep.NodeName = *e.NodeName
		}
		out.Endpoints = append(out.Endpoints, ep)
	}
	return out, true
}

func protocol(p v1.Protocol) model.Protocol {
	if p == "" {
		return model.TCP
	}
	return model.Protocol(strings.ToLower(string(p)))
}

// parseIPv4s keeps the IPv4 addresses of ss (IPv6 is a later issue).
func parseIPv4s(ss []string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
			out = append(out, a)
		}
	}
	return out
}
