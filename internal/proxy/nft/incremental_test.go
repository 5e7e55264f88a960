package nft

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/wharf-io/wharf/internal/proxy/model"
)

// fakeClock is a settable Proxier clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestProxier(fake *knftables.Fake) (*Proxier, *fakeClock) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	p := New(fake, testCfg)
	p.now = clk.now
	return p, clk
}

func sortedDump(f *knftables.Fake) string {
	lines := strings.Split(strings.TrimSpace(f.Dump()), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// fullDump is what a fresh Proxier's full sync of st produces.
func fullDump(t *testing.T, st *model.State) string {
	t.Helper()
	fake := knftables.NewFake(knftables.IPv4Family, DefaultTable)
	syncOK(t, New(fake, testCfg), st, true)
	return sortedDump(fake)
}

// step is one change to the world.
type step struct {
	name  string
	apply func(w *world)
}

func steps() []step {
	web, webEps := sampleService()
	return []step{
		{"add endpoint", func(w *world) {
			w.add(web, eps(web, 8080, "10.244.0.5@node1", "10.244.1.7@node2", "10.244.2.2@node3"))
		}},
		{"remove all endpoints", func(w *world) { w.tr.DeleteSlice(model.SliceKey{Namespace: "ns1", Name: "web-1"}) }},
		{"endpoints back", func(w *world) { w.add(web, webEps) }},
		{"affinity timeout changed", func(w *world) {
			s := *web
			s.AffinityTimeout = 60 * time.Second
			w.add(&s, nil)
		}},
		{"affinity off", func(w *world) {
			s := *web
			s.AffinityTimeout = 0
			w.add(&s, nil)
		}},
		{"new service", func(w *world) {
			s := svc("new", "10.96.0.90", model.TCP, 8000, 0)
			w.add(s, eps(s, 8000, "10.244.0.11@node1"))
		}},
		{"delete local service", func(w *world) { w.tr.DeleteService(model.ServiceKey{Namespace: "ns1", Name: "local"}) }},
		{"external local loses its local endpoint", func(w *world) {
			s := svc("local", "10.96.0.70", model.TCP, 443, 30443, func(s *model.Service) { s.ExternalPolicyLocal = true })
			w.add(s, eps(s, 8443, "10.244.1.9@node2"))
		}},
		{"node port removed", func(w *world) {
			s := *web
			s.Ports = []model.PortSpec{{Name: "p80", Protocol: model.TCP, Port: 80}}
			w.add(&s, nil)
		}},
	}
}

// TestPartialSyncsConvergeOnFullSync replays the steps in several orders:
// after every step, the table built incrementally must equal the table a
// full sync of the same state builds (once stale objects are deleted).
func TestPartialSyncsConvergeOnFullSync(t *testing.T) {
	all := steps()
	orders := [][]int{{0, 1, 2, 3, 4, 5, 6, 7, 8}, {8, 7, 6, 5, 4, 3, 2, 1, 0}, {1, 6, 2, 8, 0, 5, 4, 7, 3}, {5, 3, 7, 1, 8, 0, 6, 2, 4}}
	for _, order := range orders {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			fake := knftables.NewFake(knftables.IPv4Family, DefaultTable)
			p, clk := newTestProxier(fake)
			w := allShapes()
			syncOK(t, p, w.tr.State(), true)
			for _, i := range order {
				all[i].apply(w)
				st := w.tr.State()
				syncOK(t, p, st, false)
				clk.t = clk.t.Add(2 * staleDeleteDelay)
				if res := syncOK(t, p, st, false); res.Changed != 0 || res.ResyncAfter != 0 {
					t.Fatalf("after %q: second sync of the same state: %+v", all[i].name, res)
				}
				if got, want := sortedDump(fake), fullDump(t, st); got != want {
					t.Fatalf("after %q: incremental table differs from full sync:\n%s", all[i].name, lineDiff(want, got))
				}
			}
		})
	}
}

func TestPartialSyncTouchesOnlyTheChangedService(t *testing.T) {
	fake := knftables.NewFake(knftables.IPv4Family, DefaultTable)
	p, _ := newTestProxier(fake)
	w := allShapes()
	syncOK(t, p, w.tr.State(), true)
	all := steps()
	all[0].apply(w) // a third endpoint for ns1/web
	res := syncOK(t, p, w.tr.State(), false)
	if res.Changed != 1 {
		t.Errorf("changed %d services, want 1", res.Changed)
	}
	tx := fake.LastTransaction.String()
	for _, other := range []string{"ns1/local", "ns1/empty", "ns1/itp", "cluster-ips-check", "masquerading"} {
		if strings.Contains(tx, other) {
			t.Errorf("transaction touches %s:\n%s", other, tx)
		}
	}
	// Existing endpoint chains keep their rules: only the service chain and
	// the new endpoint's chain and set are written.
	if n := strings.Count(tx, "add rule"); n != 8 {
		t.Errorf("%d rules written, want 8 (5 in the service chain, 3 in the new endpoint's):\n%s", n, tx)
	}
}

func TestPartialSyncWithoutChangesRunsNothing(t *testing.T) {
	fake := knftables.NewFake(knftables.IPv4Family, DefaultTable)
	p, _ := newTestProxier(fake)
	st := allShapes().tr.State()
	syncOK(t, p, st, true)
	before := fake.LastTransaction
	if res := syncOK(t, p, st, false); res.Changed != 0 {
		t.Errorf("changed %d", res.Changed)
	}
	if fake.LastTransaction != before {
		t.Error("a transaction ran for an unchanged state")
	}
}

func TestFullSyncRemovesObjectsItDoesNotKnow(t *testing.T) {
	fake := knftables.NewFake(knftables.IPv4Family, DefaultTable)
	p, clk := newTestProxier(fake)
	tx := fake.NewTransaction()
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("wharf service proxy")})
	tx.Add(&knftables.Chain{Name: "service-OLD-ns1/gone/tcp/p1"})
	tx.Add(&knftables.Rule{Chain: "service-OLD-ns1/gone/tcp/p1", Rule: "drop"})
	tx.Add(&knftables.Set{Name: "affinity-OLD", Type: "ipv4_addr"})
	if err := fake.Run(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	st := allShapes().tr.State()
	if res := syncOK(t, p, st, true); res.ResyncAfter == 0 {
		t.Error("stale objects pending but no resync asked for")
	}
	if c := fake.Table.Chains["service-OLD-ns1/gone/tcp/p1"]; c == nil || len(c.Rules) != 0 {
		t.Errorf("stale chain not flushed at once: %+v", c)
	}
	clk.t = clk.t.Add(2 * staleDeleteDelay)
	syncOK(t, p, st, false)
	if got, want := sortedDump(fake), fullDump(t, st); got != want {
		t.Errorf("stale objects left:\n%s", lineDiff(want, got))
	}
}

func TestFailedFullSyncRecreatesTheTable(t *testing.T) {
	fake := knftables.NewFake(knftables.IPv4Family, DefaultTable)
	p, _ := newTestProxier(fake)
	// A map of ours with another type, as an older version might leave.
	tx := fake.NewTransaction()
	tx.Add(&knftables.Table{})
	tx.Add(&knftables.Set{Name: "stale-and-referenced", Type: "ipv4_addr"})
	tx.Add(&knftables.Chain{Name: "user"})
	tx.Add(&knftables.Rule{Chain: "user", Rule: "ip daddr @stale-and-referenced drop"})
	if err := fake.Run(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	p.recreate = true // as after a failed full sync
	st := allShapes().tr.State()
	syncOK(t, p, st, true)
	if got, want := sortedDump(fake), fullDump(t, st); got != want {
		t.Errorf("table not recreated:\n%s", lineDiff(want, got))
	}
}

func TestCleanupDeletesTheTable(t *testing.T) {
	fake := knftables.NewFake(knftables.IPv4Family, DefaultTable)
	p, _ := newTestProxier(fake)
	syncOK(t, p, allShapes().tr.State(), true)
	for i := 0; i < 2; i++ { // idempotent
		if err := p.Cleanup(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if d := fake.Dump(); d != "" {
		t.Errorf("left after cleanup:\n%s", d)
	}
}

func TestChainNamesMatchKubeProxy(t *testing.T) {
	// From kube-proxy's pkg/proxy/nftables tests.
	p := &model.ServicePort{Service: model.ServiceKey{Namespace: "ns1", Name: "svc1"}, Name: "p80", Protocol: model.TCP}
	if got := namesFor(p).cluster; got != "service-ULMVA6XW-ns1/svc1/tcp/p80" {
		t.Errorf("service chain %s", got)
	}
	if got := endpointChainName(p, mustAddrPort("10.180.0.1:80")); got != "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80" {
		t.Errorf("endpoint chain %s", got)
	}
}
