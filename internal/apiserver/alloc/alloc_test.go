package alloc

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
)

func newServices(t *testing.T, cidr, ports string) (*Services, *MemKV) {
	t.Helper()
	kv := NewMemKV()
	r, err := NewIPRange(cidr)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := ParsePortRange(ports)
	if err != nil {
		t.Fatal(err)
	}
	return NewServices(NewIPAllocator(kv, r), NewPortAllocator(kv, pr)), kv
}

func TestIPRangeExcludesNetworkAndBroadcast(t *testing.T) {
	r, err := NewIPRange("10.96.0.0/28")
	if err != nil {
		t.Fatal(err)
	}
	if r.Size() != 14 || r.At(0) != "10.96.0.1" || r.At(13) != "10.96.0.14" {
		t.Fatalf("size %d first %s last %s", r.Size(), r.At(0), r.At(13))
	}
	for ip, want := range map[string]bool{"10.96.0.0": false, "10.96.0.1": true, "10.96.0.14": true, "10.96.0.15": false, "10.0.125.105": false} {
		if r.Contains(ip) != want {
			t.Errorf("Contains(%s) = %v", ip, !want)
		}
	}
}

func TestAllocatorFillsUpAndFrees(t *testing.T) {
	kv := NewMemKV()
	r, _ := NewIPRange("10.96.0.0/28")
	a := NewIPAllocator(kv, r)
	ctx := context.Background()
	seen := map[string]bool{}
	for i := 0; i < 14; i++ {
		ip, err := a.Allocate(ctx, "o"+string(rune('a'+i)), "", false)
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		if seen[ip] {
			t.Fatalf("%s handed out twice", ip)
		}
		seen[ip] = true
	}
	if _, err := a.Allocate(ctx, "late", "", false); !errors.Is(err, ErrFull) {
		t.Fatalf("15th allocation: %v, want range is full", err)
	}
	if err := a.Release(ctx, "oa", mustOwned(t, a, "oa")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Allocate(ctx, "late", "", false); err != nil {
		t.Fatalf("after a release: %v", err)
	}
}

func mustOwned(t *testing.T, a *Allocator, owner string) string {
	owned, _ := a.Owned(context.Background())
	for v, o := range owned {
		if o == owner {
			return v
		}
	}
	t.Fatalf("%s owns nothing", owner)
	return ""
}

func TestParallelAllocationsNeverCollide(t *testing.T) {
	kv := NewMemKV()
	r, _ := NewIPRange("10.96.0.0/24")
	a := NewIPAllocator(kv, r)
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[string]int{}
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ip, err := a.Allocate(context.Background(), "o"+strings.Repeat("x", i), "", false)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				got[ip]++
			}
		}(i)
	}
	wg.Wait()
	if len(got) != 200 {
		t.Fatalf("%d distinct addresses for 200 services", len(got))
	}
}

func svcCtx() context.Context {
	return genericapirequest.WithNamespace(context.Background(), "default")
}

func TestServiceRequestedAddressAndPorts(t *testing.T) {
	s, _ := newServices(t, "10.0.0.0/16", "30000-32767")
	ctx := svcCtx()
	mk := func(name, ip string, nodePort int32) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(name + "-uid")},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: ip,
				Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP, NodePort: nodePort}}}}
	}
	a := mk("a", "10.0.125.105", 30001)
	finish, err := s.BeginCreate(ctx, a, &metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	finish(ctx, true)
	if a.Spec.ClusterIP != "10.0.125.105" || a.Spec.Ports[0].NodePort != 30001 {
		t.Fatalf("got %s %d", a.Spec.ClusterIP, a.Spec.Ports[0].NodePort)
	}
	cases := []struct {
		svc  *corev1.Service
		want string
	}{
		{mk("b", "10.0.125.105", 0), `spec.clusterIPs: Invalid value: ["10.0.125.105"]: failed to allocate IP 10.0.125.105: provided IP is already allocated`},
		{mk("c", "", 30001), `spec.ports[0].nodePort: Invalid value: 30001: provided port is already allocated`},
		{mk("d", "10.1.0.1", 0), `failed to allocate IP 10.1.0.1: the provided IP (10.1.0.1) is not in the valid range. The range of valid IPs is 10.0.0.0/16`},
		{mk("e", "", 80), `spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767`},
	}
	for _, c := range cases {
		_, err := s.BeginCreate(ctx, c.svc, &metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v\nwant %s", c.svc.Name, err, c.want)
		}
	}
}

func TestFailedCreateReleasesAndDeleteFrees(t *testing.T) {
	s, kv := newServices(t, "10.96.0.0/12", "30000-32767")
	ctx := svcCtx()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "x", UID: "u1"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			Ports: []corev1.ServicePort{{Port: 53, Protocol: corev1.ProtocolUDP}, {Port: 53, Protocol: corev1.ProtocolTCP}}}}
	finish, err := s.BeginCreate(ctx, svc, &metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.Ports[0].NodePort == 0 || svc.Spec.Ports[0].NodePort != svc.Spec.Ports[1].NodePort {
		t.Errorf("UDP and TCP 53 should share a node port: %v", svc.Spec.Ports)
	}
	if svc.Spec.HealthCheckNodePort == 0 {
		t.Error("no healthCheckNodePort for an eTP=Local LoadBalancer")
	}
	if n := len(kv.Keys()); n != 3 {
		t.Fatalf("%d keys, want ip + node port + health port: %v", n, kv.Keys())
	}
	finish(ctx, false)
	if n := len(kv.Keys()); n != 0 {
		t.Fatalf("failed create left %v", kv.Keys())
	}
	svc.Spec.ClusterIP, svc.Spec.ClusterIPs = "", nil
	finish, err = s.BeginCreate(ctx, svc, &metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	finish(ctx, true)
	s.AfterDelete(svc, &metav1.DeleteOptions{})
	if n := len(kv.Keys()); n != 0 {
		t.Fatalf("delete left %v", kv.Keys())
	}
}

func TestRepairReleasesOrphansOnSecondSight(t *testing.T) {
	s, kv := newServices(t, "10.96.0.0/12", "30000-32767")
	ctx := context.Background()
	_, _, _ = kv.Create(ctx, ipPrefix+"10.96.0.50", Owner("default", "gone", "u9"))
	live := corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "live", UID: "u1"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.60", Type: corev1.ServiceTypeNodePort,
			Ports: []corev1.ServicePort{{Port: 80, NodePort: 30500}}}}
	r := &Repair{Services: s}
	released, reclaimed, err := r.Run(ctx, []corev1.Service{live})
	if err != nil {
		t.Fatal(err)
	}
	if len(released) != 0 || len(reclaimed) != 2 {
		t.Fatalf("first run: released %v reclaimed %v", released, reclaimed)
	}
	released, _, _ = r.Run(ctx, []corev1.Service{live})
	if len(released) != 1 || released[0] != "10.96.0.50" {
		t.Fatalf("second run released %v", released)
	}
}
