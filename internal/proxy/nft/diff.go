package nft

import (
	"slices"
	"strings"

	"sigs.k8s.io/knftables"
)

// writeObjects adds to tx what turns old (nil: nothing known, write all)
// into cur: new and changed sets and chains, removed and changed map
// elements out, new and changed ones in. Chains whose rules did not change
// are left alone, so adding an endpoint writes its own chain and the
// service chain only. Objects that disappear are handled by the caller
// (flushed now, deleted later).
func (p *Proxier) writeObjects(tx *knftables.Transaction, cur, old *objects) {
	var oldChains map[string][]string
	var oldSets map[string]string
	var oldElems map[string]*knftables.Element
	if old != nil {
		oldChains, oldSets, oldElems = old.index()
	}
	// A set whose timeout changed is recreated (nft cannot be relied on to
	// update it in place), so every chain of the service that may refer to
	// it is flushed first and rewritten after.
	var addSets, delSets []setSpec
	rewriteAll := old == nil
	for _, s := range cur.sets {
		t, ok := oldSets[s.name]
		if !ok || old == nil {
			addSets = append(addSets, s)
		} else if t != s.timeout {
			addSets, delSets = append(addSets, s), append(delSets, s)
			rewriteAll = true
		}
	}
	var rewrite []chainSpec
	for _, c := range cur.chains {
		if rules, ok := oldChains[c.name]; !rewriteAll && ok && slices.Equal(rules, c.rules) {
			continue
		}
		// Declare every chain first: rules may jump to chains added later.
		tx.Add(&knftables.Chain{Name: c.name})
		rewrite = append(rewrite, c)
	}
	if old != nil {
		for _, c := range rewrite {
			tx.Flush(&knftables.Chain{Name: c.name})
		}
	}
	for _, s := range delSets {
		tx.Delete(&knftables.Set{Name: s.name})
	}
	for _, s := range addSets {
		tx.Add(s.set)
	}
	for _, c := range rewrite {
		for _, r := range c.rules {
			tx.Add(&knftables.Rule{Chain: c.name, Rule: r})
		}
	}
	curElems := map[string]*knftables.Element{}
	for _, e := range cur.elements {
		curElems[elemKey(e)] = e
	}
	for k, e := range oldElems {
		if n, ok := curElems[k]; !ok || !slices.Equal(n.Value, e.Value) {
			tx.Delete(&knftables.Element{Map: e.Map, Set: e.Set, Key: e.Key})
		}
	}
	for _, e := range cur.elements {
		if o, ok := oldElems[elemKey(e)]; old == nil || !ok || !slices.Equal(o.Value, e.Value) {
			tx.Add(e)
		}
	}
}

// index maps chain names to rules, set names to timeouts and element keys
// to elements.
func (o *objects) index() (map[string][]string, map[string]string, map[string]*knftables.Element) {
	chains := make(map[string][]string, len(o.chains))
	for _, c := range o.chains {
		chains[c.name] = c.rules
	}
	sets := make(map[string]string, len(o.sets))
	for _, s := range o.sets {
		sets[s.name] = s.timeout
	}
	elems := make(map[string]*knftables.Element, len(o.elements))
	for _, e := range o.elements {
		elems[elemKey(e)] = e
	}
	return chains, sets, elems
}

// names adds the chains and sets of o to into.
func (o *objects) names(into map[staleObject]bool) {
	for _, c := range o.chains {
		into[staleObject{name: c.name}] = true
	}
	for _, s := range o.sets {
		into[staleObject{set: true, name: s.name}] = true
	}
}

// gone adds to into the chains and sets of old that cur no longer has.
func gone(old, cur *objects, into map[staleObject]bool) {
	keep := map[staleObject]bool{}
	cur.names(keep)
	all := map[staleObject]bool{}
	old.names(all)
	for obj := range all {
		if !keep[obj] {
			into[obj] = true
		}
	}
}

// elemKey identifies an element by its container and key.
func elemKey(e *knftables.Element) string {
	return e.Map + "|" + e.Set + "|" + strings.Join(e.Key, " . ")
}
