package model

import (
	"net/netip"
	"slices"
)

// Flow names conntrack entries by protocol, address and port. An invalid
// Addr matches any address (a node port).
type Flow struct {
	Protocol Protocol
	Addr     netip.Addr
	Port     uint16
}

// StaleConntrack is what must leave the conntrack table once a new State
// is live, exactly what kube-proxy deletes (for UDP only: TCP entries
// end with their connections, and this kernel has no SCTP).
type StaleConntrack struct {
	// Destinations match entries by original destination: a UDP service
	// port that went from no endpoints to some, whose earlier packets
	// created entries that would otherwise keep being rejected
	// (kubernetes#48370).
	Destinations []Flow
	// ReplySources match entries by reply source: an endpoint that left a
	// UDP service port; a client with a fixed source port would otherwise
	// keep sending to it until the entry times out.
	ReplySources []Flow
}

// Empty reports whether nothing is stale.
func (s StaleConntrack) Empty() bool { return len(s.Destinations) == 0 && len(s.ReplySources) == 0 }

// portID identifies a service port across states.
type portID struct {
	svc      ServiceKey
	name     string
	protocol Protocol
}

// StaleUDP compares the previously applied state with the new one.
// A nil old state (nothing applied yet) yields only destinations of ports
// that have endpoints: at start kube-proxy cannot know what was live.
func StaleUDP(old, cur *State) StaleConntrack {
	before := indexPorts(old)
	after := indexPorts(cur)
	var out StaleConntrack
	for id, p := range after {
		if p.Protocol != UDP || len(p.AllEndpoints()) == 0 {
			continue
		}
		if prev, ok := before[id]; ok && len(prev.AllEndpoints()) > 0 {
			continue
		}
		out.Destinations = append(out.Destinations, destinations(p)...)
	}
	for id, p := range before {
		if p.Protocol != UDP {
			continue
		}
		var keep []netip.AddrPort
		if now, ok := after[id]; ok {
			keep = now.AllEndpoints()
		}
		for _, ep := range p.AllEndpoints() {
			if !slices.Contains(keep, ep) {
				out.ReplySources = append(out.ReplySources, Flow{Protocol: UDP, Addr: ep.Addr(), Port: ep.Port()})
			}
		}
	}
	sortFlows(out.Destinations)
	sortFlows(out.ReplySources)
	return out
}

// destinations lists every address:port (and the node port) of p.
func destinations(p *ServicePort) []Flow {
	var out []Flow
	for _, list := range [][]netip.Addr{p.ClusterIPs, p.ExternalIPs, p.LoadBalancerIPs} {
		for _, a := range list {
			out = append(out, Flow{Protocol: p.Protocol, Addr: a, Port: p.Port})
		}
	}
	if p.NodePort != 0 {
		out = append(out, Flow{Protocol: p.Protocol, Port: p.NodePort})
	}
	return out
}

func indexPorts(s *State) map[portID]*ServicePort {
	out := map[portID]*ServicePort{}
	if s == nil {
		return out
	}
	for _, st := range s.Services {
		for i := range st.Ports {
			p := &st.Ports[i]
			out[portID{p.Service, p.Name, p.Protocol}] = p
		}
	}
	return out
}
