package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/wharf-io/wharf/test/e2e/framework"
)

// TestChapterServicesGetTheirAddressesAndPorts: the NodePort listings get
// the ports they ask for, a taken port is refused with upstream's message,
// the chapter's clusterIP 10.0.125.105 works in the chapter's own range
// (C16), and the kubernetes and kube-dns services hold the first and tenth
// addresses.
func TestChapterServicesGetTheirAddressesAndPorts(t *testing.T) {
	s := framework.Start(t, framework.Options{Extra: []string{"--service-cidr=10.0.0.0/16"}})
	for _, f := range []string{"listing-3-02-nodejs-service-nodeport.yaml", "listing-3-08-whale-svcs.yaml"} {
		s.MustKubectl("create", "-f", "../../examples/chapter3/"+f)
	}
	out := s.MustKubectl("get", "svc", "-A")
	for _, want := range []string{"80:30001/TCP", "80:30301/TCP", "80:30284/TCP", "80:30302/TCP"} {
		if !strings.Contains(out, want) {
			t.Errorf("get svc lacks %s:\n%s", want, out)
		}
	}
	for _, want := range []string{`kubernetes\s+ClusterIP\s+10\.0\.0\.1\s`, `kube-dns\s+ClusterIP\s+10\.0\.0\.10\s`} {
		if !matches(want, out) {
			t.Errorf("get svc -A: no %q:\n%s", want, out)
		}
	}
	taken := strings.Replace(readFile(t, "../../examples/chapter3/listing-3-02-nodejs-service-nodeport.yaml"), "name: node-js-nodeport", "name: another", 1)
	out, err := s.KubectlIn(taken, "create", "-f", "-")
	want := `The Service "another" is invalid: spec.ports[0].nodePort: Invalid value: 30001: provided port is already allocated`
	if err == nil || !strings.Contains(out, want) {
		t.Errorf("taken node port: %v %s", err, out)
	}
	fixed := "apiVersion: v1\nkind: Service\nmetadata:\n  name: fixed\nspec:\n  clusterIP: 10.0.125.105\n  ports:\n  - port: 80\n"
	s.MustKubectl("create", "-f", writeTemp(t, fixed))
	if out := s.MustKubectl("get", "svc", "fixed"); !matches(`fixed\s+ClusterIP\s+10\.0\.125\.105\s`, out) {
		t.Errorf("requested cluster IP:\n%s", out)
	}
	out, err = s.KubectlIn(strings.Replace(fixed, "name: fixed", "name: fixed2", 1), "create", "-f", "-")
	if err == nil || !strings.Contains(out, `spec.clusterIPs: Invalid value: ["10.0.125.105"]: failed to allocate IP 10.0.125.105: provided IP is already allocated`) {
		t.Errorf("taken cluster IP: %v %s", err, out)
	}
	// Changing an allocated cluster IP is refused.
	out, err = s.Kubectl("patch", "svc", "fixed", "-p", `{"spec":{"clusterIP":"10.0.125.106","clusterIPs":["10.0.125.106"]}}`)
	if err == nil || !strings.Contains(out, "may not change once set") {
		t.Errorf("changing clusterIP: %v %s", err, out)
	}
	// Deleting frees the port for someone else.
	s.MustKubectl("delete", "svc", "node-js-nodeport")
	s.MustKubectl("create", "-f", writeTemp(t, taken))
}

func TestDefaultRangeRefusesTheChaptersAddress(t *testing.T) {
	s := framework.Start(t, framework.Options{})
	fixed := "apiVersion: v1\nkind: Service\nmetadata:\n  name: fixed\nspec:\n  clusterIP: 10.0.125.105\n  ports:\n  - port: 80\n"
	out, err := s.KubectlIn(fixed, "create", "-f", "-")
	want := `spec.clusterIPs: Invalid value: ["10.0.125.105"]: failed to allocate IP 10.0.125.105: the provided IP (10.0.125.105) is not in the valid range. The range of valid IPs is 10.96.0.0/12`
	if err == nil || !strings.Contains(out, want) {
		t.Errorf("out of range: %v %s", err, out)
	}
}

// TestSmallRangeFillsUpAndFrees: a /28 holds 14 addresses, two of which the
// kubernetes and kube-dns services take.
func TestSmallRangeFillsUpAndFrees(t *testing.T) {
	s := framework.Start(t, framework.Options{Extra: []string{"--service-cidr=10.96.0.0/28", "--cluster-dns=10.96.0.10"}})
	client := s.Client()
	ctx := context.Background()
	for i := 0; i < 12; i++ {
		if _, err := client.CoreV1().Services("default").Create(ctx, service(fmt.Sprintf("s%d", i)), metav1.CreateOptions{}); err != nil {
			t.Fatalf("service %d of 12: %v", i, err)
		}
	}
	_, err := client.CoreV1().Services("default").Create(ctx, service("one-too-many"), metav1.CreateOptions{})
	if !apierrors.IsInternalError(err) || !strings.Contains(err.Error(), "failed to allocate a serviceIP: range is full") {
		t.Fatalf("13th service: %v", err)
	}
	if err := client.CoreV1().Services("default").Delete(ctx, "s3", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Services("default").Create(ctx, service("one-too-many"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("after a delete: %v", err)
	}
}

// TestTwoServersNeverShareAnAddressOrPort: 200 parallel NodePort service
// creates spread over two servers on one etcd.
func TestTwoServersNeverShareAnAddressOrPort(t *testing.T) {
	a := framework.Start(t, framework.Options{Extra: []string{"--service-cidr=10.96.0.0/24", "--service-node-port-range=30000-30299"}})
	b := framework.Start(t, framework.Options{Command: "server", EtcdServers: a.EtcdURL,
		Extra: []string{"--service-cidr=10.96.0.0/24", "--service-node-port-range=30000-30299"}})
	clients := []kubernetes.Interface{a.Client(), b.Client()}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			svc := service(fmt.Sprintf("par-%d", i))
			svc.Spec.Type = corev1.ServiceTypeNodePort
			if _, err := clients[i%2].CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("create: %v", err)
	}
	list, err := a.Client().CoreV1().Services("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ips, ports := map[string]string{}, map[int32]string{}
	for _, svc := range list.Items {
		if prev, dup := ips[svc.Spec.ClusterIP]; dup {
			t.Errorf("%s and %s share %s", prev, svc.Name, svc.Spec.ClusterIP)
		}
		ips[svc.Spec.ClusterIP] = svc.Name
		for _, p := range svc.Spec.Ports {
			if p.NodePort == 0 {
				continue
			}
			if prev, dup := ports[p.NodePort]; dup {
				t.Errorf("%s and %s share node port %d", prev, svc.Name, p.NodePort)
			}
			ports[p.NodePort] = svc.Name
		}
	}
	if len(ports) != 200 {
		t.Errorf("%d node ports for 200 services", len(ports))
	}
}

func matches(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "obj.yaml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
