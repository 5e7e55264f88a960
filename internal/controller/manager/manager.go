// Package manager runs Wharf's controllers inside `wharf server`: one shared
// informer factory, one event recorder per controller (client-go's
// tools/record, which deduplicates events and counts repeats as upstream),
// and client-go leader election, one Lease per controller group in
// kube-system, so that with several servers exactly one instance of each
// group acts and a survivor takes over within the lease duration after the
// leader dies.
package manager

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/wharf-io/wharf/internal/apiserver/scheme"
)

// Controller is one control loop. New* constructors register the informers
// they need with Context.Informers; Run starts after the informers do, and
// returns when ctx ends.
type Controller interface {
	Run(ctx context.Context, workers int)
}

// Options are the cluster settings controllers need.
type Options struct {
	// ClusterCIDR is the pod range nodes get their podCIDRs from.
	ClusterCIDR string
	// NodeCIDRMaskSize is the prefix length of each node's podCIDR (24).
	NodeCIDRMaskSize int
	// LBPool are the LoadBalancer address ranges ("a.b.c.d-e.f.g.h" or
	// CIDRs); empty means node addresses (ServiceLB style).
	LBPool []string
	// IngressPorts are the ports ("TCP/80") the ingress controller holds on
	// the node addresses; node-address LoadBalancers cannot take them.
	IngressPorts []string
	// RootCAPEM is the cluster CA, published in every namespace.
	RootCAPEM []byte
	// NodeMonitorGracePeriod is how long a node may miss heartbeats before
	// it is NotReady (40 s, upstream's default).
	NodeMonitorGracePeriod time.Duration
}

// Context is what every controller gets.
type Context struct {
	Client kubernetes.Interface
	// Config is the client configuration Client was made from.
	Config    *rest.Config
	Informers informers.SharedInformerFactory
	Options   Options
	// Recorder returns an event recorder reporting as component.
	Recorder func(component string) record.EventRecorder
}

// Constructor makes a controller from the context; a nil controller and
// nil error mean there is nothing to run.
type Constructor func(*Context) (Controller, error)

// Group is a set of controllers that share one leader Lease.
type Group struct {
	// Name is the Lease's name in kube-system.
	Name        string
	Controllers map[string]Constructor
	// Workers per controller.
	Workers int
}

// Timing of leader election: a new leader acts within LeaseDuration (plus a
// RetryPeriod) of the old one's death.
var (
	LeaseDuration = 8 * time.Second
	RenewDeadline = 5 * time.Second
	RetryPeriod   = time.Second
)

// Run runs each group under its own leader election until ctx ends. cfg is
// the loopback client configuration of the server.
func Run(ctx context.Context, cfg *rest.Config, opts Options, groups []Group) error {
	id, err := os.Hostname()
	if err != nil {
		id = "wharf"
	}
	id = id + "_" + string(uuid.NewUUID())
	var wg sync.WaitGroup
	for _, g := range groups {
		groupCfg := rest.AddUserAgent(rest.CopyConfig(cfg), g.Name)
		client, err := kubernetes.NewForConfig(groupCfg)
		if err != nil {
			return err
		}
		lock := &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: metav1.NamespaceSystem, Name: g.Name},
			Client:     client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: id},
		}
		group := g
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
					Lock: lock, LeaseDuration: LeaseDuration, RenewDeadline: RenewDeadline, RetryPeriod: RetryPeriod,
					ReleaseOnCancel: true, Name: group.Name,
					Callbacks: leaderelection.LeaderCallbacks{
						OnStartedLeading: func(lctx context.Context) {
							if err := runGroup(lctx, groupCfg, client, opts, group); err != nil {
								klog.Errorf("controllers %s: %v", group.Name, err)
							}
						},
						OnStoppedLeading: func() {},
					},
				})
			}
		}()
	}
	wg.Wait()
	return nil
}

// runGroup builds the group's controllers on a fresh informer factory and
// runs them while this instance leads.
func runGroup(ctx context.Context, cfg *rest.Config, client kubernetes.Interface, opts Options, g Group) error {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(stripManagedFields))
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	c := &Context{Client: client, Config: cfg, Informers: factory, Options: opts,
		Recorder: func(component string) record.EventRecorder {
			return broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component})
		}}
	running := map[string]Controller{}
	for name, newFn := range g.Controllers {
		ctl, err := newFn(c)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if ctl != nil {
			running[name] = ctl
		}
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	workers := g.Workers
	if workers == 0 {
		workers = 2
	}
	var wg sync.WaitGroup
	for _, ctl := range running {
		wg.Add(1)
		go func(ctl Controller) {
			defer wg.Done()
			ctl.Run(ctx, workers)
		}(ctl)
	}
	wg.Wait()
	return nil
}

// MetadataClient returns a metadata-only client (object metadata of any
// resource, as the garbage collector and namespace controller need).
func (c *Context) MetadataClient(agent string) (metadata.Interface, error) {
	cfg := rest.AddUserAgent(rest.CopyConfig(c.Config), agent)
	cfg.QPS, cfg.Burst = 100, 200
	return metadata.NewForConfig(cfg)
}

// stripManagedFields drops managedFields from objects the controllers cache:
// no controller reads them, they are often the larger part of a small
// object, and a write that omits them leaves the stored ones as they are.
func stripManagedFields(obj interface{}) (interface{}, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	return obj, nil
}
