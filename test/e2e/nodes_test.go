package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/wharf-io/wharf/test/e2e/framework"
)

// fakeNode registers a Node the way an agent does (no agent runs: the
// address is only written in its status, never contacted) and, if alive,
// keeps its heartbeat Lease fresh until the test ends.
func fakeNode(t *testing.T, client kubernetes.Interface, name, ip, cpu string, alive bool) {
	t.Helper()
	ctx := context.Background()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}}}
	n, err := client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Status = corev1.NodeStatus{
		Addresses:   []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}},
		Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourcePods: resource.MustParse("110")},
		Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourcePods: resource.MustParse("110")},
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
	}
	if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if !alive {
		return
	}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		leases := client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
		secs := int32(40)
		for {
			now := metav1.NewMicroTime(time.Now())
			l, err := leases.Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				_, _ = leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name},
					Spec: coordinationv1.LeaseSpec{HolderIdentity: &name, LeaseDurationSeconds: &secs, RenewTime: &now}}, metav1.CreateOptions{})
			} else if err == nil {
				l.Spec.RenewTime = &now
				_, _ = leases.Update(ctx, l, metav1.UpdateOptions{})
			}
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
}

// TestNodesSchedulingAndServiceLB: nodes get pod CIDRs, a silent node turns
// NotReady and tainted, pods are bound to the node that fits (or get
// upstream's FailedScheduling), and LoadBalancer services get the node
// addresses unless a port is taken.
func TestNodesSchedulingAndServiceLB(t *testing.T) {
	s := framework.Start(t, framework.Options{Extra: []string{"--node-monitor-grace-period=3s"}})
	client := s.Client()
	ctx := context.Background()
	fakeNode(t, client, "n1", "10.1.0.2", "2", true)
	fakeNode(t, client, "n2", "10.1.0.3", "8", false)

	waitFor(t, 30*time.Second, func() (bool, string) {
		a, _ := client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
		b, _ := client.CoreV1().Nodes().Get(ctx, "n2", metav1.GetOptions{})
		return a.Spec.PodCIDR != "" && b.Spec.PodCIDR != "" && a.Spec.PodCIDR != b.Spec.PodCIDR,
			fmt.Sprintf("podCIDRs %q %q", a.Spec.PodCIDR, b.Spec.PodCIDR)
	})
	waitFor(t, 30*time.Second, func() (bool, string) {
		out := s.MustKubectl("get", "nodes")
		return matches(`n2\s+NotReady`, out) && matches(`n1\s+Ready`, out), out
	})
	n2, _ := client.CoreV1().Nodes().Get(ctx, "n2", metav1.GetOptions{})
	if len(n2.Spec.Taints) == 0 || n2.Spec.Taints[0].Key != corev1.TaintNodeUnreachable {
		t.Errorf("silent node's taints: %v", n2.Spec.Taints)
	}

	if _, err := client.CoreV1().Pods("default").Create(ctx, pod("fits"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, func() (bool, string) {
		p, err := client.CoreV1().Pods("default").Get(ctx, "fits", metav1.GetOptions{})
		return err == nil && p.Spec.NodeName == "n1", fmt.Sprint(p.Spec.NodeName, err)
	})
	big := pod("big")
	big.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3")}
	if _, err := client.CoreV1().Pods("default").Create(ctx, big, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }."
	waitFor(t, 20*time.Second, func() (bool, string) {
		out := s.MustKubectl("describe", "pod", "big")
		return strings.Contains(out, "FailedScheduling") && strings.Contains(out, want), out
	})

	// ServiceLB: the node addresses, first come first served per port; the
	// ingress holds 80 and 443.
	s.MustKubectl("create", "-f", chapter+"listing-3-04-nodejs-customPort-service.yaml")
	s.MustKubectl("create", "-f", chapter+"listing-3-06-nodejs-multi-service.yaml")
	waitFor(t, 20*time.Second, func() (bool, string) {
		out := s.MustKubectl("get", "svc")
		return matches(`node-js-90\s+LoadBalancer\s+\S+\s+10\.1\.0\.2\s+90:`, out) &&
			matches(`node-js-multi\s+LoadBalancer\s+\S+\s+<pending>`, out), out
	})
	waitFor(t, 20*time.Second, func() (bool, string) {
		out := s.MustKubectl("describe", "svc", "node-js-90")
		return matches(`LoadBalancer Ingress:\s+10\.1\.0\.2`, out), out
	})
	waitFor(t, 20*time.Second, func() (bool, string) {
		out := s.MustKubectl("describe", "svc", "node-js-multi")
		return strings.Contains(out, "port 80/TCP is already held on the node addresses by the ingress controller"), out
	})
}

// TestLoadBalancerPool: with --lb-pool each service gets its own address;
// an exhausted pool leaves the next pending until one is freed.
func TestLoadBalancerPool(t *testing.T) {
	s := framework.Start(t, framework.Options{Extra: []string{"--lb-pool=192.0.2.10-192.0.2.11"}})
	for _, name := range []string{"lb-a", "lb-b", "lb-c"} {
		svc := fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata:\n  name: %s\nspec:\n  type: LoadBalancer\n  ports:\n  - port: 80\n", name)
		s.MustKubectl("create", "-f", writeTemp(t, svc))
		time.Sleep(1100 * time.Millisecond) // distinct creation times: oldest first
	}
	waitFor(t, 20*time.Second, func() (bool, string) {
		out := s.MustKubectl("get", "svc")
		return matches(`lb-a\s+LoadBalancer\s+\S+\s+192\.0\.2\.10\s`, out) && matches(`lb-b\s+LoadBalancer\s+\S+\s+192\.0\.2\.11\s`, out) &&
			matches(`lb-c\s+LoadBalancer\s+\S+\s+<pending>`, out), out
	})
	s.MustKubectl("delete", "svc", "lb-a")
	waitFor(t, 20*time.Second, func() (bool, string) {
		out := s.MustKubectl("get", "svc")
		return matches(`lb-c\s+LoadBalancer\s+\S+\s+192\.0\.2\.10\s`, out), out
	})
}
