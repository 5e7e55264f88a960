package servicelb

import (
	"context"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/wharf-io/wharf/internal/controller/manager"
)

// Controller writes LoadBalancer services' status.loadBalancer.
type Controller struct {
	client   kubernetes.Interface
	services corelisters.ServiceLister
	nodes    corelisters.NodeLister
	synced   []cache.InformerSynced
	pool     *Pool
	reserved []string
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	// pending remembers the last reason reported per service, so an event
	// is recorded when it changes, not on every pass.
	pending map[string]string
}

const allKey = "all"

// New is the manager's constructor.
func New(c *manager.Context) (manager.Controller, error) {
	pool, err := ParsePool(c.Options.LBPool)
	if err != nil {
		return nil, err
	}
	si, ni := c.Informers.Core().V1().Services(), c.Informers.Core().V1().Nodes()
	ctl := &Controller{client: c.Client, services: si.Lister(), nodes: ni.Lister(), pool: pool,
		reserved: c.Options.IngressPorts, recorder: c.Recorder("service-lb-controller"), pending: map[string]string{},
		synced: []cache.InformerSynced{si.Informer().HasSynced, ni.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "servicelb"})}
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(interface{}) { ctl.queue.Add(allKey) },
		UpdateFunc: func(_, _ interface{}) { ctl.queue.Add(allKey) },
		DeleteFunc: func(interface{}) { ctl.queue.Add(allKey) },
	}
	if _, err := si.Informer().AddEventHandler(h); err != nil {
		return nil, err
	}
	if _, err := ni.Informer().AddEventHandler(h); err != nil {
		return nil, err
	}
	return ctl, nil
}

// Run reconciles until ctx ends.
func (c *Controller) Run(ctx context.Context, _ int) {
	defer utilruntime.HandleCrash()
	defer c.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return
	}
	go wait.UntilWithContext(ctx, func(ctx context.Context) {
		for {
			key, quit := c.queue.Get()
			if quit {
				return
			}
			if err := c.sync(ctx); err != nil {
				utilruntime.HandleError(err)
				c.queue.AddRateLimited(key)
			} else {
				c.queue.Forget(key)
			}
			c.queue.Done(key)
		}
	}, time.Second)
	<-ctx.Done()
}

func (c *Controller) nodeIPs() ([]string, error) {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var ips []string
	for _, n := range nodes {
		ready := false
		for _, cond := range n.Status.Conditions {
			ready = ready || (cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue)
		}
		if !ready {
			continue
		}
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				ips = append(ips, a.Address)
			}
		}
	}
	sort.Strings(ips)
	return ips, nil
}

func (c *Controller) sync(ctx context.Context) error {
	svcs, err := c.services.List(labels.Everything())
	if err != nil {
		return err
	}
	ips, err := c.nodeIPs()
	if err != nil {
		return err
	}
	decisions := Assign(Input{Services: svcs, NodeIPs: ips, ReservedPorts: c.reserved, Pool: c.pool})
	var firstErr error
	for _, s := range svcs {
		if s.Spec.LoadBalancerClass != nil {
			continue
		}
		var want []corev1.LoadBalancerIngress
		if d, ok := decisions[key(s)]; ok {
			for _, ip := range d.IPs {
				vip := corev1.LoadBalancerIPModeVIP
				want = append(want, corev1.LoadBalancerIngress{IP: ip, IPMode: &vip})
			}
			c.report(s, d.Pending)
		}
		if sameIngress(s.Status.LoadBalancer.Ingress, want) {
			continue
		}
		upd := s.DeepCopy()
		upd.Status.LoadBalancer.Ingress = want
		if _, err := c.client.CoreV1().Services(s.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil &&
			!apierrors.IsNotFound(err) && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// report records an event when a service's pending reason changes.
func (c *Controller) report(s *corev1.Service, reason string) {
	k := key(s)
	if c.pending[k] == reason {
		return
	}
	c.pending[k] = reason
	if reason != "" {
		c.recorder.Event(s, corev1.EventTypeWarning, "LoadBalancerPending", reason)
	}
}

func sameIngress(a, b []corev1.LoadBalancerIngress) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].IP != b[i].IP || a[i].Hostname != b[i].Hostname {
			return false
		}
	}
	return true
}
