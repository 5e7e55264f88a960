package podroutes

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/knftables"
)

// runner is Run with its OS dependencies injectable.
type runner struct {
	s        *settings
	client   kubernetes.Interface
	router   Router
	host     host
	nft      knftables.Interface
	iptables iptablesRunner // nil: no iptables binary
	now      func() time.Time
	logf     func(format string, args ...any)

	nodeSubnets []netip.Prefix // in the masquerade table now
	skipped     map[string]string
}

// run is Run in ModeHostGW.
func (r *runner) run(ctx context.Context) error {
	if err := r.openForward(); err != nil {
		return err
	}
	if err := r.syncMasq(ctx); err != nil {
		return err
	}
	defer r.stopMasq()

	factory := informers.NewSharedInformerFactory(r.client, 0)
	nodes := factory.Core().V1().Nodes()
	changed := make(chan struct{}, 1)
	poke := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	if _, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { poke() }, UpdateFunc: func(any, any) { poke() }, DeleteFunc: func(any) { poke() },
	}); err != nil {
		return fmt.Errorf("pod network: watch nodes: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	// Routes are only set from a complete node list: from an empty cache
	// Set would remove every route a restarted agent's pods use.
	if !cache.WaitForCacheSync(ctx.Done(), nodes.Informer().HasSynced) {
		return nil // ctx ended
	}
	r.logf("routing pod CIDRs of other nodes (mode %s, grace period %s)", r.s.mode, r.s.grace)
	tick := time.NewTicker(r.s.interval)
	defer tick.Stop()
	for {
		r.syncRoutes(nodes.Lister())
		if err := r.syncMasq(ctx); err != nil && ctx.Err() == nil {
			r.logf("%v (retrying)", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-tick.C:
		}
	}
}

// syncRoutes computes the desired routes and hands them to the router.
func (r *runner) syncRoutes(lister listersv1.NodeLister) {
	list, err := lister.List(labels.Everything())
	if err != nil {
		r.logf("list nodes: %v", err)
		return
	}
	connected, err := r.host.Connected()
	if err != nil {
		r.logf("%v (retrying)", err)
		return
	}
	routes, skipped := desiredRoutes(convertNodes(list), routeInput{
		Self: r.s.self, Now: r.now(), Grace: r.s.grace, Connected: connected,
	})
	r.logSkipped(skipped)
	if err := r.router.Set(routes); err != nil {
		r.logf("set routes: %v (retrying)", err)
	}
}

// logSkipped logs each node that cannot be routed when it starts or stops
// being skipped (or its reason changes), not at every sync.
func (r *runner) logSkipped(skipped []skippedNode) {
	now := map[string]string{}
	for _, s := range skipped {
		now[s.Node] = s.Reason
		if r.skipped[s.Node] != s.Reason {
			r.logf("ERROR: cannot route pods of node %s: %s", s.Node, s.Reason)
		}
	}
	for node := range r.skipped {
		if _, ok := now[node]; !ok {
			r.logf("node %s is no longer skipped", node)
		}
	}
	r.skipped = now
}

// syncMasq (re)writes the masquerade table when the node subnets differ
// from those in it (always, the first time).
func (r *runner) syncMasq(ctx context.Context) error {
	subnets, err := r.host.NodeSubnets(r.s.nodeIP)
	if err != nil {
		return fmt.Errorf("pod network: node subnets: %w", err)
	}
	if r.nodeSubnets != nil && slices.Equal(subnets, r.nodeSubnets) {
		return nil
	}
	if err := replaceMasq(ctx, r.nft, newMasqRanges(r.s.cluster, r.s.svc, subnets)); err != nil {
		return fmt.Errorf("pod network: %w", err)
	}
	r.logf("masquerading traffic from %s except to %s, %s and node subnets %v (table ip %s)",
		r.s.cluster, r.s.cluster, r.s.svc, subnets, r.s.table)
	r.nodeSubnets = subnets
	return nil
}

// stopMasq deletes the masquerade table at a clean stop: the agent owns
// pod egress only while it runs. ctx has ended, hence a fresh one.
func (r *runner) stopMasq() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := deleteMasq(ctx, r.nft); err != nil {
		r.logf("%v", err)
		return
	}
	r.logf("removed the masquerade table ip %s; pods have no outside access until the agent runs again", r.s.table)
}

// openForward adds the FORWARD accepts if the policy is DROP.
func (r *runner) openForward() error {
	if r.iptables == nil {
		return nil
	}
	changed, err := ensureForward(r.iptables, r.s.cluster, r.s.svc)
	if errors.As(err, &policyUnreadableError{}) {
		r.logf("%v; going on as if FORWARD accepted", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("pod network: %w", err)
	}
	if changed {
		r.logf("the iptables FORWARD policy is DROP: inserted accepts for %s and %s (comment %q)",
			r.s.cluster, r.s.svc, forwardComment)
	}
	return nil
}

// cleanupNone is Run in ModeNone: the user routes pods, so routes and the
// masquerade table of an earlier host-gw run go.
func (r *runner) cleanupNone(ctx context.Context) error {
	if err := r.router.Cleanup(); err != nil {
		return fmt.Errorf("pod network: mode none: remove host-gw routes: %w", err)
	}
	if err := deleteMasq(ctx, r.nft); err != nil {
		return fmt.Errorf("pod network: mode none: %w", err)
	}
	r.logf("mode none: pod routing and masquerade are left to the installed CNI")
	return nil
}

func convertNodes(list []*corev1.Node) []nodeState {
	out := make([]nodeState, 0, len(list))
	for _, n := range list {
		out = append(out, nodeFromAPI(n))
	}
	return out
}
