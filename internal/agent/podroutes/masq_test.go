package podroutes

import (
	"context"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/knftables"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func testMasqRanges(subnets ...string) masqRanges {
	var ps []netip.Prefix
	for _, s := range subnets {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return newMasqRanges(netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("10.96.0.0/12"), ps)
}

func TestMasqueradeTableGolden(t *testing.T) {
	fake := knftables.NewFake(knftables.IPv4Family, DefaultTableName)
	if err := replaceMasq(context.Background(), fake, testMasqRanges("192.168.1.0/24", "192.168.7.0/24")); err != nil {
		t.Fatal(err)
	}
	golden(t, "masq.golden", fake.Dump())
}

func TestMasqueradeTableReplacedWhole(t *testing.T) {
	ctx := context.Background()
	fake := knftables.NewFake(knftables.IPv4Family, DefaultTableName)
	if err := replaceMasq(ctx, fake, testMasqRanges("192.168.1.0/24", "192.168.7.0/24")); err != nil {
		t.Fatal(err)
	}
	if err := replaceMasq(ctx, fake, testMasqRanges("192.168.2.0/24")); err != nil {
		t.Fatal(err)
	}
	want := knftables.NewFake(knftables.IPv4Family, DefaultTableName)
	if err := replaceMasq(ctx, want, testMasqRanges("192.168.2.0/24")); err != nil {
		t.Fatal(err)
	}
	if fake.Dump() != want.Dump() {
		t.Errorf("after a node subnet change the table is\n%s\nwant\n%s", fake.Dump(), want.Dump())
	}
	if err := deleteMasq(ctx, fake); err != nil {
		t.Fatal(err)
	}
	if d := fake.Dump(); d != "" {
		t.Errorf("after delete the ruleset is %q, want empty", d)
	}
	if err := deleteMasq(ctx, fake); err != nil {
		t.Errorf("deleting an absent table: %v", err)
	}
}
