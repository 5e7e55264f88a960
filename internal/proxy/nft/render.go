package nft

import (
	"net/netip"
	"strings"

	"sigs.k8s.io/knftables"

	"github.com/wharf-io/wharf/internal/proxy/model"
)

// chainSpec is one regular chain and its rules, in order.
type chainSpec struct {
	name  string
	rules []string
}

// setSpec is one ClientIP affinity set.
type setSpec struct {
	name    string
	timeout string // seconds, for comparison
	set     *knftables.Set
}

// objects are everything one service contributes to the table. They are
// a pure function of the service's state and the Config, so the previous
// objects of a service are recomputed from its previous state rather than
// remembered.
type objects struct {
	chains   []chainSpec
	sets     []setSpec
	elements []*knftables.Element
}

// renderer turns service states into objects for one Config.
type renderer struct {
	cfg *Config
}

// service renders every port of st (nil renders nothing).
func (r renderer) service(st *model.ServiceState) *objects {
	o := &objects{}
	if st == nil {
		return o
	}
	for i := range st.Ports {
		r.port(o, &st.Ports[i])
	}
	return o
}

// port follows kube-proxy's syncProxyRules for one service port: the
// dispatch map elements, the policy chains, the external chain and one
// chain per endpoint.
func (r renderer) port(o *objects, p *model.ServicePort) {
	n := namesFor(p)
	internal, external := p.InternalEndpoints(), p.ExternalEndpoints()
	internalChain, externalPolicyChain := n.cluster, n.cluster
	if p.InternalLocal {
		internalChain = n.local
	}
	if p.ExternalLocal {
		externalPolicyChain = n.local
	}
	usesExternalChain := p.HasEndpoints && p.ExternallyAccessible()
	internalVerdict, externalVerdict := noEndpointVerdicts(p, len(internal) > 0, len(external) > 0)
	comment := p.PortName()
	proto, port := string(p.Protocol), itoa(int(p.Port))

	for _, ip := range p.ClusterIPs {
		o.elem(&knftables.Element{Set: clusterIPsSet, Key: []string{ip.String()}, Comment: &comment})
		if len(internal) > 0 {
			o.elem(&knftables.Element{Map: serviceIPsMap, Key: []string{ip.String(), proto, port},
				Value: []string{"goto " + internalChain}, Comment: &comment})
		} else {
			o.elem(&knftables.Element{Map: noEndpointServicesMap, Key: []string{ip.String(), proto, port},
				Value: []string{internalVerdict}, Comment: &comment})
		}
	}
	for _, ip := range append(append([]netip.Addr(nil), p.ExternalIPs...), p.LoadBalancerIPs...) {
		if usesExternalChain {
			o.elem(&knftables.Element{Map: serviceIPsMap, Key: []string{ip.String(), proto, port},
				Value: []string{"goto " + n.external}, Comment: &comment})
		}
		if externalVerdict != "" {
			o.elem(&knftables.Element{Map: noEndpointServicesMap, Key: []string{ip.String(), proto, port},
				Value: []string{externalVerdict}, Comment: &comment})
		}
	}
	if p.NodePort != 0 {
		np := itoa(int(p.NodePort))
		if usesExternalChain {
			o.elem(&knftables.Element{Map: serviceNodePortsMap, Key: []string{proto, np},
				Value: []string{"goto " + n.external}, Comment: &comment})
		}
		if externalVerdict != "" {
			o.elem(&knftables.Element{Map: noEndpointNodePortsMap, Key: []string{proto, np},
				Value: []string{externalVerdict}, Comment: &comment})
		}
	}

	if usesExternalChain {
		o.chain(n.external, r.externalRules(p, internalChain, len(internal) > 0, externalPolicyChain, len(external) > 0))
	}
	if len(p.ClusterEndpoints) > 0 {
		o.chain(n.cluster, r.policyRules(p, p.ClusterEndpoints, internalChain == n.cluster))
	}
	if len(p.LocalEndpoints) > 0 {
		o.chain(n.local, r.policyRules(p, p.LocalEndpoints, internalChain == n.local))
	}
	for _, ep := range p.AllEndpoints() {
		r.endpoint(o, p, ep)
	}
}

// noEndpointVerdicts are the verdicts of the no-endpoint maps: reject when
// the service has no usable endpoint anywhere, drop when it has some but
// not for this kind of traffic on this node (a Local policy), as
// kube-proxy. Empty means traffic is dispatched normally.
func noEndpointVerdicts(p *model.ServicePort, hasInternal, hasExternal bool) (internal, external string) {
	if !p.HasEndpoints {
		return "goto " + rejectChain, "goto " + rejectChain
	}
	if !hasInternal {
		internal = "drop"
	}
	if !hasExternal {
		external = "drop"
	}
	return internal, external
}

// externalRules are the external chain: masquerade and send to the Cluster
// policy, or for externalTrafficPolicy Local keep the client's address,
// except for pods and the node itself, which are sent to the internal
// policy as if they had used the cluster IP (kube-proxy's short-circuits).
func (r renderer) externalRules(p *model.ServicePort, internalChain string, hasInternal bool, policyChain string, hasExternal bool) []string {
	var rules []string
	if !p.ExternalLocal {
		rules = append(rules, "jump "+markMasqChain)
	} else {
		if r.cfg.ClusterCIDR.IsValid() && hasInternal {
			rules = append(rules, knftables.Concat("ip saddr", r.cfg.ClusterCIDR, "goto", internalChain))
		}
		rules = append(rules, "fib saddr type local jump "+markMasqChain)
		if hasInternal {
			rules = append(rules, "fib saddr type local goto "+internalChain)
		}
	}
	if hasExternal {
		rules = append(rules, "goto "+policyChain)
	}
	return rules
}

// policyRules choose an endpoint: affinity first, then numgen. A chain
// that serves cluster IP traffic first masquerades clients from outside
// the cluster CIDR (kube-proxy's rule when a local-traffic detector is
// configured): they may come through a static route via any node.
func (r renderer) policyRules(p *model.ServicePort, eps []netip.AddrPort, internal bool) []string {
	var rules []string
	if internal && r.cfg.ClusterCIDR.IsValid() {
		for _, ip := range p.ClusterIPs {
			rules = append(rules, knftables.Concat("ip daddr", ip, p.Protocol, "dport", p.Port,
				"ip saddr !=", r.cfg.ClusterCIDR, "jump", markMasqChain))
		}
	}
	if p.AffinityTimeout > 0 {
		for _, ep := range eps {
			rules = append(rules, knftables.Concat("ip saddr @"+affinitySetName(p, ep), "goto", endpointChainName(p, ep)))
		}
	}
	var vmap []string
	for i, ep := range eps {
		vmap = append(vmap, itoa(i)+" : goto "+endpointChainName(p, ep))
	}
	rules = append(rules, knftables.Concat("numgen random mod", len(eps), "vmap {", strings.Join(vmap, " , "), "}"))
	return rules
}

// endpoint renders an endpoint chain (hairpin masquerade, affinity record,
// DNAT) and its affinity set.
func (r renderer) endpoint(o *objects, p *model.ServicePort, ep netip.AddrPort) {
	rules := []string{knftables.Concat("ip saddr", ep.Addr(), "jump", markMasqChain)}
	if p.AffinityTimeout > 0 {
		name := affinitySetName(p, ep)
		timeout := p.AffinityTimeout
		o.sets = append(o.sets, setSpec{name: name, timeout: timeout.String(), set: &knftables.Set{
			Name: name, Type: "ipv4_addr", Flags: []knftables.SetFlag{knftables.DynamicFlag, knftables.TimeoutFlag},
			Timeout: &timeout,
		}})
		rules = append(rules, "update @"+name+" { ip saddr }")
	}
	rules = append(rules, knftables.Concat("meta l4proto", p.Protocol, "dnat to", ep))
	o.chain(endpointChainName(p, ep), rules)
}

func (o *objects) chain(name string, rules []string) {
	o.chains = append(o.chains, chainSpec{name: name, rules: rules})
}

func (o *objects) elem(e *knftables.Element) { o.elements = append(o.elements, e) }
