// Package node holds the node controllers: IPAM gives each node a podCIDR
// from the cluster CIDR (a /24 of 10.244.0.0/16 by default); Lifecycle marks
// a node whose heartbeat Lease expired NotReady (Unknown), taints it, and
// marks its pods not ready so their endpoints stop receiving traffic.
package node

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"net"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/wharf-io/wharf/internal/controller/manager"
)

// CIDRSet hands out equal subnets of a cluster CIDR. It is pure: the caller
// says which are in use.
type CIDRSet struct {
	cluster  *net.IPNet
	maskSize int
	count    int
}

// NewCIDRSet splits cidr into /maskSize subnets.
func NewCIDRSet(cidr string, maskSize int) (*CIDRSet, error) {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil, fmt.Errorf("cluster CIDR %q: %w", cidr, err)
	}
	ones, bits := n.Mask.Size()
	if maskSize < ones || maskSize > bits || maskSize-ones > 20 {
		return nil, fmt.Errorf("node CIDR mask size %d does not fit cluster CIDR %s", maskSize, cidr)
	}
	return &CIDRSet{cluster: n, maskSize: maskSize, count: 1 << (maskSize - ones)}, nil
}

// At returns subnet i.
func (s *CIDRSet) At(i int) string {
	_, bits := s.cluster.Mask.Size()
	base := new(big.Int).SetBytes(s.cluster.IP)
	base.Add(base, new(big.Int).Lsh(big.NewInt(int64(i)), uint(bits-s.maskSize)))
	b := base.Bytes()
	ip := make(net.IP, len(s.cluster.IP))
	copy(ip[len(ip)-len(b):], b)
	return fmt.Sprintf("%s/%d", ip, s.maskSize)
}

// Next returns the first subnet not in used, or an error when all are.
func (s *CIDRSet) Next(used map[string]bool) (string, error) {
	for i := 0; i < s.count; i++ {
		if c := s.At(i); !used[c] {
			return c, nil
		}
	}
	return "", fmt.Errorf("no pod CIDR left in %s (/%d per node)", s.cluster, s.maskSize)
}

// IPAM assigns podCIDRs to nodes that have none.
type IPAM struct {
	client   kubernetes.Interface
	nodes    corelisters.NodeLister
	synced   cache.InformerSynced
	set      *CIDRSet
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	// assigned are the CIDRs this instance handed out, by node: the node
	// lister may not show an assignment yet when the next node comes, and
	// a CIDR must never go to two nodes (upstream's allocator keeps the same
	// in-memory set).
	assigned map[string]string
}

// NewIPAM is the manager's constructor.
func NewIPAM(c *manager.Context) (manager.Controller, error) {
	set, err := NewCIDRSet(c.Options.ClusterCIDR, c.Options.NodeCIDRMaskSize)
	if err != nil {
		return nil, err
	}
	ni := c.Informers.Core().V1().Nodes()
	ctl := &IPAM{client: c.Client, nodes: ni.Lister(), synced: ni.Informer().HasSynced, set: set, assigned: map[string]string{},
		recorder: c.Recorder("node-ipam-controller"),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "nodeipam"})}
	_, err = ni.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o interface{}) { ctl.queue.Add(o.(*corev1.Node).Name) },
		UpdateFunc: func(_, o interface{}) { ctl.queue.Add(o.(*corev1.Node).Name) },
	})
	return ctl, err
}

func (c *IPAM) sync(ctx context.Context, name string) error {
	n, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) || (err == nil && n.Spec.PodCIDR != "") {
		return nil
	}
	if err != nil {
		return err
	}
	all, err := c.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	used := map[string]bool{}
	exists := map[string]bool{}
	for _, o := range all {
		exists[o.Name] = true
		for _, cidr := range append([]string{o.Spec.PodCIDR}, o.Spec.PodCIDRs...) {
			used[cidr] = true
		}
	}
	for cidr, owner := range c.assigned {
		if exists[owner] {
			used[cidr] = true
		} else {
			delete(c.assigned, cidr) // the node is gone: its CIDR is free again
		}
	}
	cidr, err := c.set.Next(used)
	if err != nil {
		c.recorder.Eventf(n, corev1.EventTypeWarning, "CIDRNotAvailable", "Node %s status is now: CIDRNotAvailable", name)
		return err
	}
	patch, _ := json.Marshal(map[string]interface{}{"spec": map[string]interface{}{"podCIDR": cidr, "podCIDRs": []string{cidr}}})
	_, err = c.client.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if err == nil {
		c.assigned[cidr] = name
		c.recorder.Eventf(n, corev1.EventTypeNormal, "CIDRAssignmentSucceeded", "Assigned podCIDR %s", cidr)
	}
	return err
}

// Run assigns until ctx ends; one worker, so two nodes never get one CIDR.
func (c *IPAM) Run(ctx context.Context, _ int) {
	manager.Loop{Name: "nodeipam", Queue: c.queue, Synced: []cache.InformerSynced{c.synced}, Sync: c.sync}.Run(ctx, 1)
}
