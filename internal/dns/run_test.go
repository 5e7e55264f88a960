package dns

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

// poll asks q until check passes or timeout, returning how long it took.
func poll(t *testing.T, addr string, q query, timeout time.Duration, check func(*dns.Msg) bool) time.Duration {
	t.Helper()
	start := time.Now()
	c := &dns.Client{Net: q.net, Timeout: time.Second}
	for {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		r, _, err := c.Exchange(m, addr)
		if err == nil && check(r) {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s %s: no expected answer within %v (last %v, err %v)", q.name, dns.TypeToString[q.qtype], timeout, r, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func rcodeIs(rc int) func(*dns.Msg) bool { return func(m *dns.Msg) bool { return m.Rcode == rc } }

func answerIs(want string) func(*dns.Msg) bool {
	return func(m *dns.Msg) bool { return answers(m) == want }
}

// TestRunFollowsTheAPI runs the whole server against a fake clientset and
// checks that writes are answered within 100 ms.
func TestRunFollowsTheAPI(t *testing.T) {
	client := fake.NewClientset()
	up := startUpstream(t, upstreamAnswers())
	addr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Client: client, Listen: []string{addr}, Upstreams: []string{up.addr}, TTL: 7})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})

	// Synced (NXDOMAIN, no longer SERVFAIL) before the first write, since
	// the fake clientset drops writes between an informer's list and watch.
	const web = "web.default.svc.cluster.local."
	poll(t, addr, query{"udp", web, dns.TypeA, 0}, 5*time.Second, rcodeIs(dns.RcodeNameError))
	poll(t, addr, query{"udp", "example.com.", dns.TypeA, 0}, time.Second, answerIs("example.com. 60 IN A 192.0.2.1"))

	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec:       corev1.ServiceSpec{ClusterIP: "10.96.0.20", ClusterIPs: []string{"10.96.0.20"}},
	}
	api := client.CoreV1().Services("default")
	if _, err := api.Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := poll(t, addr, query{"udp", web, dns.TypeA, 0}, time.Second, answerIs(web+" 7 IN A 10.96.0.20")); d > 100*time.Millisecond {
		t.Errorf("service answered %v after its creation, want within 100ms", d)
	}

	svc.Spec.ClusterIP, svc.Spec.ClusterIPs = "10.96.0.21", []string{"10.96.0.21"}
	if _, err := api.Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := poll(t, addr, query{"udp", web, dns.TypeA, 0}, time.Second, answerIs(web+" 7 IN A 10.96.0.21")); d > 100*time.Millisecond {
		t.Errorf("update answered after %v, want within 100ms", d)
	}

	headless := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db"},
		Spec:       corev1.ServiceSpec{ClusterIP: "None"},
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "db-1", Labels: map[string]string{discoveryv1.LabelServiceName: "db"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.244.0.5"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
		},
	}
	if _, err := api.Create(ctx, headless, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sliceAPI := client.DiscoveryV1().EndpointSlices("default")
	if _, err := sliceAPI.Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const db = "db.default.svc.cluster.local."
	if d := poll(t, addr, query{"udp", db, dns.TypeA, 0}, time.Second, answerIs(db+" 7 IN A 10.244.0.5")); d > 100*time.Millisecond {
		t.Errorf("headless endpoint answered %v after the slice's creation, want within 100ms", d)
	}
	slice.Endpoints[0].Conditions.Ready = ptr.To(false)
	if _, err := sliceAPI.Update(ctx, slice, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := poll(t, addr, query{"udp", db, dns.TypeA, 0}, time.Second, rcodeIs(dns.RcodeNameError)); d > 100*time.Millisecond {
		t.Errorf("unready endpoint removed after %v, want within 100ms", d)
	}

	if err := api.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := poll(t, addr, query{"tcp", web, dns.TypeA, 0}, time.Second, rcodeIs(dns.RcodeNameError)); d > 100*time.Millisecond {
		t.Errorf("deletion answered after %v, want within 100ms", d)
	}
}

func TestConfigUpstreams(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(conf, []byte("nameserver 10.96.0.10\nnameserver 192.0.2.53\nnameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		c    Config
		want []string
	}{
		{"resolv.conf without our own address", Config{Listen: []string{"10.96.0.10:53"}, ResolvConf: conf},
			[]string{"192.0.2.53:53", "127.0.0.1:53"}},
		{"another port is not us", Config{Listen: []string{"10.96.0.10:5353"}, ResolvConf: conf},
			[]string{"10.96.0.10:53", "192.0.2.53:53", "127.0.0.1:53"}},
		{"unspecified listen address covers loopback", Config{Listen: []string{"0.0.0.0:53"}, ResolvConf: conf},
			[]string{"10.96.0.10:53", "192.0.2.53:53"}},
		{"explicit upstreams, port defaulted", Config{Listen: []string{"10.96.0.10:53"}, ResolvConf: conf, Upstreams: []string{"192.0.2.1", "192.0.2.2:5300", "2001:db8::1"}},
			[]string{"192.0.2.1:53", "192.0.2.2:5300", "[2001:db8::1]:53"}},
	}
	for _, c := range cases {
		got, err := c.c.upstreams()
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	if _, err := (&Config{ResolvConf: filepath.Join(t.TempDir(), "missing")}).upstreams(); err == nil {
		t.Error("missing resolv.conf: no error")
	}
	if _, err := (&Config{Upstreams: []string{"dns.example"}}).upstreams(); err == nil {
		t.Error("upstream host name accepted")
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{Client: fake.NewClientset()}
	if err := c.Defaults(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Listen, []string{"10.96.0.10:53"}) || c.Zone != "cluster.local" || c.TTL != 5 || c.ResolvConf != "/etc/resolv.conf" {
		t.Errorf("defaults: %+v", c)
	}
	if err := (&Config{}).Defaults(); err == nil {
		t.Error("no client: no error")
	}
	if err := (&Config{Client: fake.NewClientset(), Listen: []string{"10.96.0.10"}}).Defaults(); err == nil {
		t.Error("listen address without port: no error")
	}
}
