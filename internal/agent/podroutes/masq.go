package podroutes

import (
	"context"
	"fmt"
	"net/netip"

	"sigs.k8s.io/knftables"
)

// masqChain is the masquerade table's only chain.
const masqChain = "postrouting"

// masqRanges are the inputs of ip-masq-agent's rule: traffic from Pods to
// anywhere but NoMasq is masqueraded.
type masqRanges struct {
	// Pods is the cluster CIDR.
	Pods netip.Prefix
	// NoMasq are the destinations that see a pod's own address: the
	// cluster CIDR (pods on any node), the service CIDR (the proxy's rules
	// decide there) and the node subnets (nodes route pod addresses back).
	NoMasq []netip.Prefix
}

// masqRules writes the whole masquerade table into tx, replacing any
// earlier one atomically (add+delete+add in one transaction is knftables'
// idiom for "the table is exactly this"). The chain runs at srcnat, after
// the proxy's DNAT, so it sees the real destination of service traffic.
func masqRules(tx *knftables.Transaction, r masqRanges) {
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("wharf pod egress masquerade (ip-masq-agent's rule)")})
	tx.Add(&knftables.Chain{
		Name: masqChain, Type: knftables.PtrTo(knftables.NATType),
		Hook: knftables.PtrTo(knftables.PostroutingHook), Priority: knftables.PtrTo(knftables.SNATPriority),
	})
	tx.Add(&knftables.Rule{Chain: masqChain, Rule: knftables.Concat("ip saddr !=", r.Pods, "return")})
	for _, p := range r.NoMasq {
		tx.Add(&knftables.Rule{Chain: masqChain, Rule: knftables.Concat("ip daddr", p, "return")})
	}
	tx.Add(&knftables.Rule{Chain: masqChain, Rule: "masquerade", Comment: knftables.PtrTo("pod to outside the cluster")})
}

// replaceMasq makes nft's table the masquerade table for r.
func replaceMasq(ctx context.Context, nft knftables.Interface, r masqRanges) error {
	tx := nft.NewTransaction()
	masqRules(tx, r)
	if err := nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("write masquerade table: %w", err)
	}
	return nil
}

// deleteMasq removes nft's table if it exists.
func deleteMasq(ctx context.Context, nft knftables.Interface) error {
	tx := nft.NewTransaction()
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	if err := nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("delete masquerade table: %w", err)
	}
	return nil
}

// newMasqRanges is ip-masq-agent's non-masquerade list for this node.
func newMasqRanges(cluster, service netip.Prefix, nodeSubnets []netip.Prefix) masqRanges {
	return masqRanges{Pods: cluster, NoMasq: append([]netip.Prefix{cluster, service}, nodeSubnets...)}
}
