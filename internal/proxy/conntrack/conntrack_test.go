package conntrack

import (
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/wharf-io/wharf/internal/proxy/model"
)

func flow(proto uint8, src, dst string, sport, dport uint16, rsrc string, rsport uint16) *netlink.ConntrackFlow {
	f := &netlink.ConntrackFlow{}
	f.Forward.Protocol, f.Reverse.Protocol = proto, proto
	f.Forward.SrcIP, f.Forward.DstIP = net.ParseIP(src), net.ParseIP(dst)
	f.Forward.SrcPort, f.Forward.DstPort = sport, dport
	f.Reverse.SrcIP, f.Reverse.SrcPort = net.ParseIP(rsrc), rsport
	f.Reverse.DstIP, f.Reverse.DstPort = net.ParseIP(src), sport
	return f
}

func TestFiltersMatchWhatKubeProxyDeletes(t *testing.T) {
	a := netip.MustParseAddr
	stale := model.StaleConntrack{
		Destinations: []model.Flow{{Protocol: model.UDP, Addr: a("10.96.0.20"), Port: 53}, {Protocol: model.UDP, Port: 30053}},
		ReplySources: []model.Flow{{Protocol: model.UDP, Addr: a("10.244.0.5"), Port: 5353}},
	}
	tests := []struct {
		name string
		flow *netlink.ConntrackFlow
		want bool
	}{
		{"to the cluster IP and port", flow(17, "10.244.1.1", "10.96.0.20", 4000, 53, "10.96.0.20", 53), true},
		{"to the cluster IP, other port", flow(17, "10.244.1.1", "10.96.0.20", 4000, 54, "10.96.0.20", 54), false},
		{"TCP to the cluster IP", flow(6, "10.244.1.1", "10.96.0.20", 4000, 53, "10.244.0.9", 53), false},
		{"to the node port on any address", flow(17, "192.168.1.1", "192.168.1.10", 4000, 30053, "10.244.0.9", 5353), true},
		{"answered by the removed endpoint", flow(17, "10.244.1.1", "10.96.0.21", 4000, 53, "10.244.0.5", 5353), true},
		{"answered by the removed endpoint's address on another port", flow(17, "10.244.1.1", "10.96.0.21", 4000, 53, "10.244.0.5", 53), false},
		{"answered by another endpoint", flow(17, "10.244.1.1", "10.96.0.21", 4000, 53, "10.244.0.6", 5353), false},
	}
	filters := Filters(stale)
	for _, tt := range tests {
		got := false
		for _, f := range filters {
			got = got || f.MatchConntrackFlow(tt.flow)
		}
		if got != tt.want {
			t.Errorf("%s: matched %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNothingStaleTouchesNothing(t *testing.T) {
	if n, err := New(nil).Clear(model.StaleConntrack{}); n != 0 || err != nil {
		t.Errorf("got %d, %v", n, err)
	}
}
