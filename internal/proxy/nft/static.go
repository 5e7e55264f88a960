package nft

import (
	"strconv"

	"sigs.k8s.io/knftables"
)

func itoa(i int) string { return strconv.Itoa(i) }

// baseChain is a chain attached to a netfilter hook.
type baseChain struct {
	name     string
	typ      knftables.BaseChainType
	hook     knftables.BaseChainHook
	priority knftables.BaseChainPriority
}

// baseChains are kube-proxy's (filter chains run before DNAT so they see
// the service address; filter-output-post-dnat after it) plus the raw
// chains for the cluster DNS address.
var baseChains = []baseChain{
	{rawPreroutingChain, knftables.FilterType, knftables.PreroutingHook, knftables.RawPriority},
	{rawOutputChain, knftables.FilterType, knftables.OutputHook, knftables.RawPriority},
	{filterPreroutingChain, knftables.FilterType, knftables.PreroutingHook, knftables.DNATPriority + "-10"},
	{filterInputChain, knftables.FilterType, knftables.InputHook, knftables.DNATPriority + "-10"},
	{filterForwardChain, knftables.FilterType, knftables.ForwardHook, knftables.DNATPriority + "-10"},
	{filterOutputChain, knftables.FilterType, knftables.OutputHook, knftables.DNATPriority + "-10"},
	{filterOutputPostDNATChain, knftables.FilterType, knftables.OutputHook, knftables.DNATPriority + "+10"},
	{natPreroutingChain, knftables.NATType, knftables.PreroutingHook, knftables.DNATPriority},
	{natOutputChain, knftables.NATType, knftables.OutputHook, knftables.DNATPriority},
	{natPostroutingChain, knftables.NATType, knftables.PostroutingHook, knftables.SNATPriority},
}

// jump is a rule in a base chain sending packets to a regular chain.
type jump struct {
	from, to, match string
}

// jumps are kube-proxy's nftablesJumpChains without the firewall (no
// loadBalancerSourceRanges yet). The endpoint checks run before DNAT
// (filter priority dstnat-10), the cluster-ips check after it.
var jumps = []jump{
	{filterInputChain, nodePortEndpointsCheckChain, "ct state new"},
	{filterInputChain, serviceEndpointsCheckChain, "ct state new"},
	{filterForwardChain, serviceEndpointsCheckChain, "ct state new"},
	{filterOutputChain, serviceEndpointsCheckChain, "ct state new"},
	{natOutputChain, servicesChain, ""},
	{natPreroutingChain, servicesChain, ""},
	{natPostroutingChain, masqueradingChain, ""},
	{filterForwardChain, clusterIPsCheckChain, "ct state new"},
	{filterOutputPostDNATChain, clusterIPsCheckChain, "ct state new"},
}

// staticChains are the regular chains every table has.
var staticChains = []string{
	servicesChain, serviceEndpointsCheckChain, nodePortEndpointsCheckChain,
	rejectChain, clusterIPsCheckChain, markMasqChain, masqueradingChain,
}

// writeStatic adds the table's fixed part: base chains, jumps, dispatch
// maps (flushed: a full sync re-adds every element) and the guards.
func (p *Proxier) writeStatic(tx *knftables.Transaction) {
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("wharf service proxy")})
	for _, bc := range baseChains {
		c := &knftables.Chain{Name: bc.name, Type: knftables.PtrTo(bc.typ), Hook: knftables.PtrTo(bc.hook),
			Priority: knftables.PtrTo(bc.priority)}
		tx.Add(c)
		tx.Flush(c)
	}
	for _, name := range staticChains {
		tx.Add(&knftables.Chain{Name: name})
		tx.Flush(&knftables.Chain{Name: name})
	}
	for _, j := range jumps {
		tx.Add(&knftables.Rule{Chain: j.from, Rule: knftables.Concat(j.match, "jump", j.to)})
	}
	p.writeDNSRules(tx)
	p.writeMaps(tx)
	p.writeGuards(tx)
	tx.Add(&knftables.Rule{Chain: rejectChain, Rule: "reject"})
	tx.Add(&knftables.Rule{Chain: markMasqChain, Rule: "mark set mark or " + masqueradeMark})
	tx.Add(&knftables.Rule{Chain: masqueradingChain, Rule: "mark and " + masqueradeMark + " == 0 return"})
	tx.Add(&knftables.Rule{Chain: masqueradingChain, Rule: "mark set mark xor " + masqueradeMark})
	tx.Add(&knftables.Rule{Chain: masqueradingChain, Rule: "masquerade fully-random"})
}

// writeDNSRules NOTRACKs DNS to the node-local cluster DNS address, and on
// output its answers, so that DNS never creates conntrack entries (no
// insert races, kubernetes#56903, and no stale UDP entries).
func (p *Proxier) writeDNSRules(tx *knftables.Transaction) {
	if !p.cfg.ClusterDNS.IsValid() {
		return
	}
	dns := p.cfg.ClusterDNS
	to := knftables.Concat("ip daddr", dns, "meta l4proto { tcp, udp } th dport 53 notrack")
	tx.Add(&knftables.Rule{Chain: rawPreroutingChain, Rule: to})
	tx.Add(&knftables.Rule{Chain: rawOutputChain, Rule: to})
	tx.Add(&knftables.Rule{Chain: rawOutputChain,
		Rule: knftables.Concat("ip saddr", dns, "meta l4proto { tcp, udp } th sport 53 notrack")})
}

// writeMaps declares the dispatch maps and sets and the rules that use
// them. The per-packet cost is one map lookup whatever the number of
// services.
func (p *Proxier) writeMaps(tx *knftables.Transaction) {
	ipTuple := "ipv4_addr . inet_proto . inet_service : verdict"
	portTuple := "inet_proto . inet_service : verdict"
	for _, m := range []*knftables.Map{
		{Name: serviceIPsMap, Type: ipTuple, Comment: knftables.PtrTo("ClusterIP, ExternalIP and LoadBalancer IP traffic")},
		{Name: serviceNodePortsMap, Type: portTuple, Comment: knftables.PtrTo("NodePort traffic")},
		{Name: noEndpointServicesMap, Type: ipTuple, Comment: knftables.PtrTo("vmap to drop or reject packets to services with no endpoints")},
		{Name: noEndpointNodePortsMap, Type: portTuple, Comment: knftables.PtrTo("vmap to drop or reject packets to service nodeports with no endpoints")},
	} {
		tx.Add(m)
		tx.Flush(m)
	}
	for _, s := range []*knftables.Set{
		{Name: clusterIPsSet, Type: "ipv4_addr", Comment: knftables.PtrTo("Active ClusterIPs")},
		{Name: nodePortIPsSet, Type: "ipv4_addr", Comment: knftables.PtrTo("IPs that accept NodePort traffic")},
	} {
		tx.Add(s)
		tx.Flush(s)
	}
	for _, ip := range p.cfg.NodePortAddresses {
		tx.Add(&knftables.Element{Set: nodePortIPsSet, Key: []string{ip.String()}})
	}
	nodePortMatch := "ip daddr @" + nodePortIPsSet
	if p.cfg.NodePortAllLocal {
		nodePortMatch = "fib daddr type local ip daddr != 127.0.0.0/8"
	}
	tx.Add(&knftables.Rule{Chain: servicesChain, Rule: "ip daddr . meta l4proto . th dport vmap @" + serviceIPsMap})
	tx.Add(&knftables.Rule{Chain: servicesChain, Rule: nodePortMatch + " meta l4proto . th dport vmap @" + serviceNodePortsMap})
	tx.Add(&knftables.Rule{Chain: serviceEndpointsCheckChain, Rule: "ip daddr . meta l4proto . th dport vmap @" + noEndpointServicesMap})
	tx.Add(&knftables.Rule{Chain: nodePortEndpointsCheckChain, Rule: nodePortMatch + " meta l4proto . th dport vmap @" + noEndpointNodePortsMap})
}

// writeGuards fill cluster-ips-check, which runs after DNAT: a packet
// still addressed to a cluster IP was not DNATed, so its port is not
// served (reject); one to another address of the service range was never
// allocated (drop). The cluster DNS address, served on lo, is exempt.
// These are rules, never unreachable or blackhole routes: connect() from
// the node looks its route up before OUTPUT DNAT, so such routes would
// break every ClusterIP connection made from the node.
func (p *Proxier) writeGuards(tx *knftables.Transaction) {
	if p.cfg.ClusterDNS.IsValid() {
		tx.Add(&knftables.Rule{Chain: clusterIPsCheckChain, Rule: knftables.Concat("ip daddr", p.cfg.ClusterDNS, "return"),
			Comment: knftables.PtrTo("node-local cluster DNS")})
	}
	tx.Add(&knftables.Rule{Chain: clusterIPsCheckChain, Rule: "ip daddr @" + clusterIPsSet + " reject",
		Comment: knftables.PtrTo("Reject traffic to invalid ports of ClusterIPs")})
	if p.cfg.ServiceCIDR.IsValid() {
		tx.Add(&knftables.Rule{Chain: clusterIPsCheckChain, Rule: knftables.Concat("ip daddr", p.cfg.ServiceCIDR, "drop"),
			Comment: knftables.PtrTo("Drop traffic to unallocated ClusterIPs")})
	}
}
