package podnet

import (
	"context"
	"errors"
	"testing"
)

func TestFakeAllocatesLikeHostLocal(t *testing.T) {
	ctx := context.Background()
	f, err := NewFake("10.244.9.0/29") // .2 to .6 usable
	if err != nil {
		t.Fatal(err)
	}
	pod := func(i byte) PodRef { return PodRef{"ns", "p" + string('a'+i), "uid-" + string('a'+i)} }
	var got []string
	for i := byte(0); i < 5; i++ {
		sb, err := f.Setup(ctx, pod(i), nil)
		if err != nil {
			t.Fatalf("setup %d: %v", i, err)
		}
		got = append(got, sb.IPs[0].String())
	}
	want := []string{"10.244.9.2", "10.244.9.3", "10.244.9.4", "10.244.9.5", "10.244.9.6"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("allocated %v, want %v", got, want)
		}
	}
	if _, err := f.Setup(ctx, pod(5), nil); err == nil {
		t.Fatal("setup beyond the CIDR succeeded")
	}
	if _, err := f.Setup(ctx, pod(0), nil); !errors.Is(err, ErrSandboxExists) {
		t.Fatalf("second setup of a pod: %v, want ErrSandboxExists", err)
	}

	if err := f.Teardown(ctx, pod(1)); err != nil {
		t.Fatal(err)
	}
	if err := f.Teardown(ctx, pod(1)); err != nil {
		t.Fatalf("teardown is not idempotent: %v", err)
	}
	if _, ok, _ := f.Recover(ctx, pod(1)); ok {
		t.Fatal("recovered a torn-down pod")
	}
	sb, err := f.Setup(ctx, pod(6), nil)
	if err != nil || sb.IPs[0].String() != "10.244.9.3" {
		t.Fatalf("setup after teardown = %v, %v; want the freed 10.244.9.3", sb.IPs, err)
	}
}

func TestFakeRecoverAndGC(t *testing.T) {
	ctx := context.Background()
	f, _ := NewFake("10.244.0.0/24")
	a, b := PodRef{"ns", "a", "ua"}, PodRef{"ns", "b", "ub"}
	sa, _ := f.Setup(ctx, a, []PortMapping{{HostPort: 8080, ContainerPort: 80}})
	if _, err := f.Setup(ctx, b, nil); err != nil {
		t.Fatal(err)
	}
	got, ok, err := f.Recover(ctx, a)
	if err != nil || !ok || !got.IPs[0].Equal(sa.IPs[0]) || got.Interface != "eth0" {
		t.Fatalf("Recover(a) = %+v, %v, %v; want %v", got, ok, err, sa.IPs)
	}
	if _, ports, _ := f.Sandbox(a); len(ports) != 1 || ports[0].HostPort != 8080 {
		t.Errorf("ports of a = %v", ports)
	}
	if err := f.GC(ctx, []PodRef{a}); err != nil {
		t.Fatal(err)
	}
	if pods := f.Pods(); len(pods) != 1 || pods[0] != a {
		t.Fatalf("after GC keeping a, pods = %v", pods)
	}
}

func TestFakeSetupErr(t *testing.T) {
	f, _ := NewFake("10.244.0.0/24")
	boom := errors.New("boom")
	f.SetupErr = boom
	if _, err := f.Setup(context.Background(), PodRef{"ns", "a", "ua"}, nil); !errors.Is(err, boom) {
		t.Fatalf("Setup = %v, want %v", err, boom)
	}
	if len(f.Pods()) != 0 {
		t.Fatal("failed setup allocated")
	}
	if _, err := NewFake("fd00::/64"); err == nil {
		t.Fatal("IPv6 CIDR accepted")
	}
}
