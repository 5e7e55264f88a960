package podroutes

import (
	"net/netip"
	"strings"
	"testing"
)

func entry(what, prefix, link string) hostEntry {
	return hostEntry{What: what, Prefix: netip.MustParsePrefix(prefix), Link: link}
}

func TestFindOverlaps(t *testing.T) {
	base := []hostEntry{
		entry("address 192.168.1.11/24 on eth0", "192.168.1.0/24", "eth0"),
		entry("route 0.0.0.0/0 via 192.168.1.1", "0.0.0.0/0", "eth0"),
		entry("route 127.0.0.0/8 dev lo table 255", "127.0.0.0/8", "lo"),
		entry("address 172.17.0.1/16 on docker0", "172.17.0.0/16", "docker0"),
	}
	bridge := func(e hostEntry) hostEntry { e.Bridge = true; return e }
	ours := func(e hostEntry) hostEntry { e.Ours = true; return e }
	r := Ranges{ClusterCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12"}
	withPod := r
	withPod.PodCIDR = "10.244.1.0/24"
	tests := []struct {
		name   string
		ranges Ranges
		extra  []hostEntry
		want   []string // substrings of the error; none: no error
	}{
		{"clean host", r, nil, nil},
		{"our host-gw routes ignored", r, []hostEntry{ours(entry("route 10.244.2.0/24 via 192.168.1.12", "10.244.2.0/24", "eth0"))}, nil},
		{"CNI bridge inside cluster CIDR ignored", r, []hostEntry{
			bridge(entry("address 10.244.1.1/24 on wharf0", "10.244.1.0/24", "wharf0")),
			bridge(entry("route 10.244.1.0/24 dev wharf0", "10.244.1.0/24", "wharf0")),
			bridge(entry("route 10.244.1.255/32 dev wharf0 table 255", "10.244.1.255/32", "wharf0"))}, nil},
		{"CNI bridge inside this node's pod CIDR ignored", withPod, []hostEntry{
			bridge(entry("address 10.244.1.1/24 on wharf0", "10.244.1.0/24", "wharf0"))}, nil},
		{"bridge outside this node's pod CIDR refused", withPod, []hostEntry{
			bridge(entry("address 10.244.7.1/24 on br-x", "10.244.7.0/24", "br-x"))},
			[]string{"cluster CIDR 10.244.0.0/16 overlaps the host's address 10.244.7.1/24 on br-x"}},
		{"cluster DNS /32 on lo ignored", r, []hostEntry{
			entry("address 10.96.0.10/32 on lo", "10.96.0.10/32", "lo"),
			entry("route 10.96.0.10/32 dev lo table 255", "10.96.0.10/32", "lo")}, nil},
		{"address inside cluster CIDR on a plain link refused", r, []hostEntry{
			entry("address 10.244.5.1/24 on eth1", "10.244.5.0/24", "eth1")},
			[]string{"cluster CIDR 10.244.0.0/16 overlaps the host's address 10.244.5.1/24 on eth1"}},
		{"route covering the service CIDR refused", r, []hostEntry{
			entry("route 10.0.0.0/8 via 192.168.1.254 dev eth0 table 254", "10.0.0.0/8", "eth0")},
			[]string{"cluster CIDR 10.244.0.0/16 overlaps the host's route 10.0.0.0/8",
				"service CIDR 10.96.0.0/12 overlaps the host's route 10.0.0.0/8"}},
		{"service range address on lo wider than /32 refused", r, []hostEntry{
			entry("address 10.100.0.1/16 on lo", "10.100.0.0/16", "lo")},
			[]string{"service CIDR 10.96.0.0/12 overlaps the host's address 10.100.0.1/16 on lo"}},
		{"docker's network as cluster CIDR refused", Ranges{ClusterCIDR: "172.17.0.0/16", ServiceCIDR: "10.96.0.0/12"}, nil,
			[]string{"cluster CIDR 172.17.0.0/16 overlaps the host's address 172.17.0.1/16 on docker0"}},
		{"cluster and service overlapping each other refused", Ranges{ClusterCIDR: "10.0.0.0/8", ServiceCIDR: "10.96.0.0/12"}, nil,
			[]string{"cluster CIDR 10.0.0.0/8 overlaps service CIDR 10.96.0.0/12"}},
		{"bad cluster CIDR", Ranges{ClusterCIDR: "10.244.0.0", ServiceCIDR: "10.96.0.0/12"}, nil,
			[]string{`cluster CIDR "10.244.0.0" is not an IPv4 CIDR`}},
		{"IPv6 service CIDR", Ranges{ClusterCIDR: "10.244.0.0/16", ServiceCIDR: "fd00::/108"}, nil,
			[]string{`service CIDR "fd00::/108" is not an IPv4 CIDR`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := findOverlaps(tt.ranges, append(append([]hostEntry{}, base...), tt.extra...))
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("findOverlaps: %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("findOverlaps: nil, want an error with %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
