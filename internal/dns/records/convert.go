package records

import (
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// FromService converts an API Service. ok is false for a service that has
// no records yet: one whose cluster IP is not allocated.
func FromService(s *corev1.Service) (svc Service, ok bool) {
	svc = Service{
		Namespace:       s.Namespace,
		Name:            s.Name,
		PublishNotReady: s.Spec.PublishNotReadyAddresses,
	}
	for _, p := range s.Spec.Ports {
		svc.Ports = append(svc.Ports, Port{Name: strings.ToLower(p.Name), Protocol: strings.ToLower(string(p.Protocol)), Port: uint16(p.Port)})
	}
	switch {
	case s.Spec.Type == corev1.ServiceTypeExternalName:
		svc.Kind = ExternalName
		svc.ExternalName = strings.TrimSuffix(strings.ToLower(s.Spec.ExternalName), ".")
		return svc, svc.ExternalName != ""
	case s.Spec.ClusterIP == corev1.ClusterIPNone:
		svc.Kind = Headless
		return svc, true
	}
	ips := s.Spec.ClusterIPs
	if len(ips) == 0 && s.Spec.ClusterIP != "" {
		ips = []string{s.Spec.ClusterIP}
	}
	for _, ip := range ips {
		if a, err := netip.ParseAddr(ip); err == nil {
			svc.ClusterIPs = append(svc.ClusterIPs, a.Unmap())
		}
	}
	return svc, len(svc.ClusterIPs) > 0
}

// FromEndpointSlice converts an API EndpointSlice. ok is false for a slice
// that belongs to no service or holds FQDN addresses (deprecated, never
// answered).
func FromEndpointSlice(s *discoveryv1.EndpointSlice) (slice EndpointSlice, ok bool) {
	svcName := s.Labels[discoveryv1.LabelServiceName]
	if svcName == "" || s.AddressType == discoveryv1.AddressTypeFQDN {
		return EndpointSlice{}, false
	}
	slice = EndpointSlice{Namespace: s.Namespace, Name: s.Name, Service: svcName}
	for _, p := range s.Ports {
		if p.Port == nil {
			continue
		}
		port := Port{Protocol: "tcp", Port: uint16(*p.Port)}
		if p.Name != nil {
			port.Name = strings.ToLower(*p.Name)
		}
		if p.Protocol != nil {
			port.Protocol = strings.ToLower(string(*p.Protocol))
		}
		slice.Ports = append(slice.Ports, port)
	}
	for _, e := range s.Endpoints {
		ep := Endpoint{Ready: e.Conditions.Ready == nil || *e.Conditions.Ready}
		if e.Hostname != nil {
			ep.Hostname = strings.ToLower(*e.Hostname)
		}
		for _, a := range e.Addresses {
			if ip, err := netip.ParseAddr(a); err == nil {
				ep.Addresses = append(ep.Addresses, ip.Unmap())
			}
		}
		slice.Endpoints = append(slice.Endpoints, ep)
	}
	return slice, true
}
