package podnet

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func TestDefaultConflistGolden(t *testing.T) {
	got, err := DefaultConflist(ConflistParams{
		PodCIDR:        "10.244.1.0/24",
		BridgeName:     "wharf0",
		IPAMDir:        "/var/lib/wharf/cni/ipam",
		PortmapBackend: "nftables",
	})
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "10-wharf.conflist.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("DefaultConflist differs from %s:\n%s", golden, got)
	}
}

// TestDefaultConflistMeaning checks what libcni and the plugins read from
// the conflist, independent of formatting.
func TestDefaultConflistMeaning(t *testing.T) {
	data, err := DefaultConflist(ConflistParams{
		PodCIDR: "10.244.7.9/24", BridgeName: "br-x", IPAMDir: "/d/ipam", PortmapBackend: "iptables",
	})
	if err != nil {
		t.Fatal(err)
	}
	list, err := libcni.NetworkConfFromBytes(data)
	if err != nil {
		t.Fatalf("libcni cannot parse the default conflist: %v", err)
	}
	if list.Name != "wharf" || list.CNIVersion != "1.0.0" || len(list.Plugins) != 2 {
		t.Fatalf("list = name %q version %q %d plugins, want wharf 1.0.0 2", list.Name, list.CNIVersion, len(list.Plugins))
	}
	var bridge struct {
		Type, Bridge                   string
		IsGateway, HairpinMode, IPMasq bool
		IPAM                           struct {
			Type    string
			DataDir string
			Ranges  [][]struct{ Subnet string }
			Routes  []struct{ Dst string }
		}
	}
	if err := json.Unmarshal(list.Plugins[0].Bytes, &bridge); err != nil {
		t.Fatal(err)
	}
	if bridge.Type != "bridge" || bridge.Bridge != "br-x" || !bridge.IsGateway || !bridge.HairpinMode || bridge.IPMasq {
		t.Errorf("bridge plugin = %+v", bridge)
	}
	ipam := bridge.IPAM
	if ipam.Type != "host-local" || ipam.DataDir != "/d/ipam" || len(ipam.Ranges) != 1 || len(ipam.Ranges[0]) != 1 ||
		ipam.Ranges[0][0].Subnet != "10.244.7.0/24" || len(ipam.Routes) != 1 || ipam.Routes[0].Dst != "0.0.0.0/0" {
		t.Errorf("ipam = %+v; want host-local, subnet masked to 10.244.7.0/24, default route", ipam)
	}
	pm := list.Plugins[1].Network
	if pm.Type != "portmap" || !pm.Capabilities["portMappings"] {
		t.Errorf("portmap plugin = %+v", pm)
	}
	if !strings.Contains(string(list.Plugins[1].Bytes), `"backend":"iptables"`) {
		t.Errorf("portmap backend not set: %s", list.Plugins[1].Bytes)
	}
}

func TestDefaultConflistRejects(t *testing.T) {
	ok := ConflistParams{PodCIDR: "10.0.0.0/24", BridgeName: "b", IPAMDir: "/d", PortmapBackend: "nftables"}
	tests := []struct {
		name string
		edit func(*ConflistParams)
	}{
		{"not a CIDR", func(p *ConflistParams) { p.PodCIDR = "10.0.0.0" }},
		{"IPv6", func(p *ConflistParams) { p.PodCIDR = "fd00::/64" }},
		{"no bridge", func(p *ConflistParams) { p.BridgeName = "" }},
		{"no backend", func(p *ConflistParams) { p.PortmapBackend = "" }},
	}
	for _, tt := range tests {
		p := ok
		tt.edit(&p)
		if _, err := DefaultConflist(p); err == nil {
			t.Errorf("%s: DefaultConflist(%+v) succeeded, want error", tt.name, p)
		}
	}
}

func TestLoadNetworkListTakesFirstUsableInLexicalOrder(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := loadNetworkList(dir); err == nil {
		t.Fatal("empty dir: want error")
	}
	write("30-c.conflist", `{"cniVersion":"1.0.0","name":"c","plugins":[{"type":"bridge"}]}`)
	write("20-b.conf", `{"cniVersion":"1.0.0","name":"b","type":"ptp"}`)
	write("10-a.conflist", `{not json`)
	write("05-readme.txt", `ignored`)
	list, err := loadNetworkList(dir)
	if err != nil {
		t.Fatal(err)
	}
	if list.Name != "b" || len(list.Plugins) != 1 || list.Plugins[0].Network.Type != "ptp" {
		t.Fatalf("got network %q with %d plugins, want the single-plugin conf b (10-a is broken)", list.Name, len(list.Plugins))
	}
}

// TestWriteDefaultConfig checks the file is written where libcni reads
// it, rewritten only when its content changes, and never with ConfDir set.
func TestWriteDefaultConfig(t *testing.T) {
	cfg, err := Config{DataDir: t.TempDir(), PluginSource: "/nonexistent"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	m := &Manager{cfg: cfg}
	if err := m.WriteDefaultConfig("10.244.3.0/24"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cfg.DataDir, "cni", "net.d", "10-wharf.conflist")
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, past, past); err != nil {
		t.Fatal(err)
	}
	if err := m.WriteDefaultConfig("10.244.3.0/24"); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); !st.ModTime().Equal(past) || !os.SameFile(st, before) {
		t.Errorf("unchanged content was rewritten")
	}
	if err := m.WriteDefaultConfig("10.244.4.0/24"); err != nil {
		t.Fatal(err)
	}
	list, err := m.networkList()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(list.Plugins[0].Bytes), "10.244.4.0/24") {
		t.Errorf("new pod CIDR not written: %s", list.Plugins[0].Bytes)
	}

	own := t.TempDir()
	m2 := &Manager{cfg: cfg}
	m2.cfg.ConfDir = own
	m2.cfg.DataDir = t.TempDir()
	if err := m2.WriteDefaultConfig("10.244.3.0/24"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{own, m2.cfg.defaultConfDir()} {
		if entries, _ := os.ReadDir(d); len(entries) != 0 {
			t.Errorf("with ConfDir set, WriteDefaultConfig wrote into %s", d)
		}
	}
}
