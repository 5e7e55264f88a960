package podnet

import (
	"encoding/json"
	"net"
	"reflect"
	"testing"

	types100 "github.com/containernetworking/cni/pkg/types/100"
)

func TestValidatePod(t *testing.T) {
	tests := []struct {
		pod PodRef
		ok  bool
	}{
		{PodRef{"default", "web", "3f2a9c1e-7b7d"}, true},
		{PodRef{"", "web", "u1"}, false},
		{PodRef{"default", "", "u1"}, false},
		{PodRef{"default", "web", ""}, false},
		{PodRef{"..", "web", "u1"}, false},
		{PodRef{"default", "a/b", "u1"}, false},
		{PodRef{"default", "a_b", "u1"}, false},
		{PodRef{"default", "web", "-u1"}, false},
	}
	for _, tt := range tests {
		if err := validatePod(tt.pod); (err == nil) != tt.ok {
			t.Errorf("validatePod(%+v) = %v, want ok=%v", tt.pod, err, tt.ok)
		}
	}
}

func TestValidatePorts(t *testing.T) {
	tests := []struct {
		p  PortMapping
		ok bool
	}{
		{PortMapping{HostPort: 8080, ContainerPort: 80}, true},
		{PortMapping{HostPort: 53, ContainerPort: 53, Protocol: "UDP", HostIP: "127.0.0.1"}, true},
		{PortMapping{HostPort: 0, ContainerPort: 80}, false},
		{PortMapping{HostPort: 80, ContainerPort: 70000}, false},
		{PortMapping{HostPort: 80, ContainerPort: 80, Protocol: "icmp"}, false},
		{PortMapping{HostPort: 80, ContainerPort: 80, HostIP: "localhost"}, false},
	}
	for _, tt := range tests {
		if err := validatePorts([]PortMapping{tt.p}); (err == nil) != tt.ok {
			t.Errorf("validatePorts(%+v) = %v, want ok=%v", tt.p, err, tt.ok)
		}
	}
}

func TestRuntimeConf(t *testing.T) {
	pod := PodRef{"ns1", "web", "uid-1"}
	rt := runtimeConf(pod, "/run/netns/x", []PortMapping{{HostPort: 8080, ContainerPort: 80}, {HostPort: 53, ContainerPort: 5353, Protocol: "UDP", HostIP: "10.0.0.1"}})
	if rt.ContainerID != "uid-1" || rt.NetNS != "/run/netns/x" || rt.IfName != "eth0" {
		t.Errorf("rt = %+v", rt)
	}
	args := map[string]string{}
	for _, a := range rt.Args {
		args[a[0]] = a[1]
	}
	wantArgs := map[string]string{"IgnoreUnknown": "1", "K8S_POD_NAMESPACE": "ns1", "K8S_POD_NAME": "web",
		"K8S_POD_INFRA_CONTAINER_ID": "uid-1", "K8S_POD_UID": "uid-1"}
	if !reflect.DeepEqual(args, wantArgs) {
		t.Errorf("args = %v, want %v", args, wantArgs)
	}
	got, _ := json.Marshal(rt.CapabilityArgs)
	want := `{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"},{"hostPort":53,"containerPort":5353,"protocol":"udp","hostIP":"10.0.0.1"}]}`
	if string(got) != want {
		t.Errorf("capability args = %s, want %s", got, want)
	}
	if rt := runtimeConf(pod, "", nil); rt.CapabilityArgs != nil {
		t.Errorf("no ports: capability args = %v, want none", rt.CapabilityArgs)
	}
}

func TestSandboxFromResultPicksPodInterface(t *testing.T) {
	idx := func(i int) *int { return &i }
	cidr := func(s string) net.IPNet {
		ip, n, _ := net.ParseCIDR(s)
		n.IP = ip
		return *n
	}
	res := &types100.Result{
		CNIVersion: "1.0.0",
		Interfaces: []*types100.Interface{
			{Name: "wharf0"},
			{Name: "veth1234"},
			{Name: "eth0", Sandbox: "/run/netns/p"},
		},
		IPs: []*types100.IPConfig{
			{Interface: idx(0), Address: cidr("10.244.1.1/24")},
			{Interface: idx(2), Address: cidr("10.244.1.7/24")},
			{Address: cidr("fd00::7/64")},
		},
	}
	sb, err := sandboxFromResult("/run/netns/p", res)
	if err != nil {
		t.Fatal(err)
	}
	want := []net.IP{net.ParseIP("10.244.1.7").To4(), net.ParseIP("fd00::7")}
	if !reflect.DeepEqual(sb.IPs, want) || sb.Interface != "eth0" || sb.NetnsPath != "/run/netns/p" {
		t.Errorf("sandbox = %+v, want IPs %v on eth0", sb, want)
	}
	res.IPs = res.IPs[:1]
	if _, err := sandboxFromResult("/p", res); err == nil {
		t.Error("result with only the gateway address: want error")
	}
	res.IPs = []*types100.IPConfig{{Interface: idx(0), Address: cidr("127.0.0.1/8")}}
	if sb, err := sandboxFromResult("/p", res); err != nil || len(sb.IPs) != 0 || sb.Interface != "" {
		t.Errorf("loopback-only result: %+v, %v; want a sandbox without interface", sb, err)
	}
}
