package node

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

func TestCIDRSetHandsOutSlashTwentyFours(t *testing.T) {
	s, err := NewCIDRSet("10.244.0.0/16", 24)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.At(0); got != "10.244.0.0/24" {
		t.Errorf("first: %s", got)
	}
	if got := s.At(255); got != "10.244.255.0/24" {
		t.Errorf("last: %s", got)
	}
	next, err := s.Next(map[string]bool{"10.244.0.0/24": true, "10.244.1.0/24": true})
	if err != nil || next != "10.244.2.0/24" {
		t.Errorf("next: %s %v", next, err)
	}
	full := map[string]bool{}
	for i := 0; i < 256; i++ {
		full[s.At(i)] = true
	}
	if _, err := s.Next(full); err == nil {
		t.Error("a full set handed out a CIDR")
	}
	if _, err := NewCIDRSet("10.244.0.0/16", 8); err == nil {
		t.Error("mask shorter than the cluster CIDR accepted")
	}
}

func TestExpired(t *testing.T) {
	now := time.Now()
	if Expired(now.Add(-10*time.Second), now, 40*time.Second) {
		t.Error("10 s old heartbeat expired")
	}
	if !Expired(now.Add(-41*time.Second), now, 40*time.Second) {
		t.Error("41 s old heartbeat not expired")
	}
}

// TestIPAMNeverGivesOneCIDRTwice: the second node is synced before the
// informer shows the first one's CIDR (the race an e2e test caught).
func TestIPAMNeverGivesOneCIDRTwice(t *testing.T) {
	set, _ := NewCIDRSet("10.244.0.0/16", 24)
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	var objs []runtime.Object
	for _, n := range []string{"n1", "n2"} {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}
		_ = indexer.Add(node)
		objs = append(objs, node)
	}
	client := fake.NewSimpleClientset(objs...)
	c := &IPAM{client: client, nodes: corelisters.NewNodeLister(indexer), set: set, assigned: map[string]string{},
		recorder: record.NewFakeRecorder(10)}
	for _, n := range []string{"n1", "n2"} {
		if err := c.sync(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := client.CoreV1().Nodes().Get(context.Background(), "n1", metav1.GetOptions{})
	b, _ := client.CoreV1().Nodes().Get(context.Background(), "n2", metav1.GetOptions{})
	if a.Spec.PodCIDR == "" || a.Spec.PodCIDR == b.Spec.PodCIDR {
		t.Fatalf("podCIDRs %q and %q", a.Spec.PodCIDR, b.Spec.PodCIDR)
	}
}
