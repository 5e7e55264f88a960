package proxy

import (
	"go/parser"
	"go/token"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/wharf-io/wharf/internal/proxy/model"
)

func TestServiceFromAPI(t *testing.T) {
	local := v1.ServiceInternalTrafficPolicyLocal
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "lb"},
		Spec: v1.ServiceSpec{
			Type: v1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.96.0.5", "fd00::5"},
			ExternalIPs: []string{"192.168.9.9"}, ExternalTrafficPolicy: v1.ServiceExternalTrafficPolicyLocal,
			InternalTrafficPolicy: &local, SessionAffinity: v1.ServiceAffinityClientIP,
			SessionAffinityConfig: &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](10)}},
			Ports:                 []v1.ServicePort{{Name: "dns", Protocol: v1.ProtocolUDP, Port: 53, NodePort: 30053}, {Port: 80}},
		},
		Status: v1.ServiceStatus{LoadBalancer: v1.LoadBalancerStatus{Ingress: []v1.LoadBalancerIngress{
			{IP: "192.168.5.1"}, {IP: "192.168.5.2", IPMode: ptr.To(v1.LoadBalancerIPModeProxy)}, {Hostname: "lb.example"}}}},
	}
	want := &model.Service{
		Key: model.ServiceKey{Namespace: "ns", Name: "lb"}, ClusterIPs: []netip.Addr{mustAddr("10.96.0.5")},
		ExternalIPs: []netip.Addr{mustAddr("192.168.9.9")}, LoadBalancerIPs: []netip.Addr{mustAddr("192.168.5.1")},
		AffinityTimeout: 10 * time.Second, ExternalPolicyLocal: true, InternalPolicyLocal: true,
		Ports: []model.PortSpec{{Name: "dns", Protocol: model.UDP, Port: 53, NodePort: 30053}, {Protocol: model.TCP, Port: 80}},
	}
	if got := serviceFromAPI(s); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	for _, mod := range []func(*v1.Service){
		func(s *v1.Service) { s.Spec.ClusterIPs, s.Spec.ClusterIP = []string{"None"}, "None" },
		func(s *v1.Service) {
			s.Spec.Type, s.Spec.ClusterIPs, s.Spec.ExternalName = v1.ServiceTypeExternalName, nil, "example.com"
		},
	} {
		c := s.DeepCopy()
		mod(c)
		if got := serviceFromAPI(c); len(got.ClusterIPs) != 0 {
			t.Errorf("headless/ExternalName converted with cluster IPs %v", got.ClusterIPs)
		}
	}
}

func TestSliceFromAPI(t *testing.T) {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}, {Name: ptr.To("none")}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.244.0.5"}, NodeName: ptr.To("node1")},
			{Addresses: []string{"10.244.0.6"}, Conditions: discoveryv1.EndpointConditions{
				Ready: ptr.To(false), Serving: ptr.To(true), Terminating: ptr.To(true)}},
		},
	}
	got, ok := sliceFromAPI(s)
	want := &model.EndpointSlice{
		Service: model.ServiceKey{Namespace: "ns", Name: "web"},
		Ports:   []model.EndpointPort{{Name: "http", Protocol: model.TCP, Port: 8080}},
		Endpoints: []model.Endpoint{
			{Addrs: []netip.Addr{mustAddr("10.244.0.5")}, Ready: true, Serving: true, NodeName: "node1"},
			{Addrs: []netip.Addr{mustAddr("10.244.0.6")}, Serving: true, Terminating: true},
		},
	}
	if !ok || !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	s.AddressType = discoveryv1.AddressTypeIPv6
	if _, ok := sliceFromAPI(s); ok {
		t.Error("IPv6 slice converted")
	}
}

// TestModelAndBackendsDoNotImportTheAPI guards the edge: API objects are
// converted in this package only.
func TestModelAndBackendsDoNotImportTheAPI(t *testing.T) {
	for _, dir := range []string{"model", "nft", "conntrack"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range parsed.Imports {
				if p := strings.Trim(imp.Path.Value, `"`); strings.HasPrefix(p, "k8s.io/") {
					t.Errorf("%s imports %s", f, p)
				}
			}
		}
	}
}
