package model

import (
	"cmp"
	"net/netip"
	"slices"
)

// BuildService computes the desired state of one service from the Service
// and the EndpointSlices labelled with its name. It returns nil for a
// service that gets no rules: headless, ExternalName, without ports, or
// whose only address is the cluster DNS address.
func BuildService(svc *Service, eps []*EndpointSlice, opts Options) *ServiceState {
	if svc == nil || len(svc.ClusterIPs) == 0 || len(svc.Ports) == 0 {
		return nil
	}
	st := &ServiceState{Key: svc.Key}
	clusterIPs := without(svc.ClusterIPs, opts.ClusterDNS)
	for _, ps := range svc.Ports {
		sp := ServicePort{
			Service:         svc.Key,
			Name:            ps.Name,
			Protocol:        ps.Protocol,
			Port:            ps.Port,
			ClusterIPs:      clusterIPs,
			ExternalIPs:     svc.ExternalIPs,
			LoadBalancerIPs: svc.LoadBalancerIPs,
			NodePort:        ps.NodePort,
			AffinityTimeout: svc.AffinityTimeout,
			InternalLocal:   svc.InternalPolicyLocal,
		}
		sp.ExternalLocal = svc.ExternalPolicyLocal && sp.ExternallyAccessible()
		if len(clusterIPs) == 0 && !sp.ExternallyAccessible() {
			continue // nothing reaches it (the cluster DNS address was its only one)
		}
		categorize(&sp, endpointsFor(ps, eps), opts.NodeName)
		st.Ports = append(st.Ports, sp)
	}
	if len(st.Ports) == 0 {
		return nil
	}
	return st
}

// candidate is one endpoint address of one port, with its conditions.
type candidate struct {
	addr                        netip.AddrPort
	ready, serving, terminating bool
	local                       bool
	node                        string
}

// endpointsFor collects the endpoints serving port ps (matched by port name
// and protocol, as upstream), deduplicated by address and port, sorted.
func endpointsFor(ps PortSpec, eps []*EndpointSlice) []candidate {
	seen := map[netip.AddrPort]bool{}
	var out []candidate
	for _, sl := range eps {
		for _, p := range sl.Ports {
			if p.Name != ps.Name || p.Protocol != ps.Protocol || p.Port == 0 {
				continue
			}
			for _, ep := range sl.Endpoints {
				if len(ep.Addrs) == 0 {
					continue
				}
				// Upstream uses only the first address of an endpoint.
				ap := netip.AddrPortFrom(ep.Addrs[0], p.Port)
				if seen[ap] {
					continue
				}
				seen[ap] = true
				out = append(out, candidate{addr: ap, ready: ep.Ready, serving: ep.Serving,
					terminating: ep.Terminating, node: ep.NodeName})
			}
		}
	}
	slices.SortFunc(out, func(a, b candidate) int { return a.addr.Compare(b.addr) })
	return out
}

// categorize fills the endpoint fields of sp as upstream's
// CategorizeEndpoints (pkg/proxy/topology.go, without topology hints):
// ready endpoints, falling back to serving-terminating ones (KEP-1669)
// separately for the cluster and the local set.
func categorize(sp *ServicePort, cands []candidate, node string) {
	for i := range cands {
		cands[i].local = node != "" && cands[i].node == node
	}
	usesCluster := !sp.InternalLocal || (sp.ExternallyAccessible() && !sp.ExternalLocal)
	usesLocal := sp.InternalLocal || sp.ExternalLocal
	if usesCluster {
		sp.ClusterEndpoints = pick(cands, func(c candidate) bool { return true })
	}
	if usesLocal {
		sp.LocalEndpoints = pick(cands, func(c candidate) bool { return c.local })
	}
	for _, c := range cands {
		if c.ready || (c.serving && c.terminating) {
			sp.HasEndpoints = true
		}
	}
}

// pick returns the ready candidates that pass keep, or, when there are
// none, the serving-terminating ones that pass keep.
func pick(cands []candidate, keep func(candidate) bool) []netip.AddrPort {
	var ready, terminating []netip.AddrPort
	for _, c := range cands {
		switch {
		case !keep(c):
		case c.ready:
			ready = append(ready, c.addr)
		case c.serving && c.terminating:
			terminating = append(terminating, c.addr)
		}
	}
	if len(ready) > 0 {
		return ready
	}
	return terminating
}

// without returns addrs minus a (a copy only when a is present).
func without(addrs []netip.Addr, a netip.Addr) []netip.Addr {
	if !a.IsValid() || !slices.Contains(addrs, a) {
		return addrs
	}
	var out []netip.Addr
	for _, x := range addrs {
		if x != a {
			out = append(out, x)
		}
	}
	return out
}

// union merges two sorted endpoint lists without duplicates.
func union(a, b []netip.AddrPort) []netip.AddrPort {
	out := slices.Concat(a, b)
	slices.SortFunc(out, netip.AddrPort.Compare)
	return slices.Compact(out)
}

// sortSlices orders eps by their keys in idx, so that duplicate endpoints
// across slices resolve the same way every time.
func sortSlices(eps []*EndpointSlice, idx map[SliceKey]*EndpointSlice) {
	keyOf := make(map[*EndpointSlice]SliceKey, len(idx))
	for k, s := range idx {
		keyOf[s] = k
	}
	slices.SortFunc(eps, func(a, b *EndpointSlice) int {
		ka, kb := keyOf[a], keyOf[b]
		return cmp.Or(cmp.Compare(ka.Namespace, kb.Namespace), cmp.Compare(ka.Name, kb.Name))
	})
}

// sortFlows orders flows by address, then port, then protocol.
func sortFlows(fs []Flow) {
	slices.SortFunc(fs, func(a, b Flow) int {
		return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port), cmp.Compare(a.Protocol, b.Protocol))
	})
}
