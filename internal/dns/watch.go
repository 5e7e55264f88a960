package dns

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/wharf-io/wharf/internal/controller/manager"
	"github.com/wharf-io/wharf/internal/dns/records"
)

// watcher folds Service and EndpointSlice events of all namespaces into an
// Index. Event handlers write the index directly, so a change is answered
// as soon as the informer delivers it (no queue, no resync period).
type watcher struct {
	factory informers.SharedInformerFactory
	synced  []cache.InformerSynced
}

func newWatcher(client kubernetes.Interface, ix *records.Index) *watcher {
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(dropManagedFields))
	w := &watcher{factory: f}
	svc := f.Core().V1().Services().Informer()
	eps := f.Discovery().V1().EndpointSlices().Informer()
	w.synced = []cache.InformerSynced{svc.HasSynced, eps.HasSynced}
	setService := func(obj any) {
		if s, ok := obj.(*corev1.Service); ok {
			if r, ok := records.FromService(s); ok {
				ix.SetService(r)
			} else {
				ix.DeleteService(s.Namespace, s.Name)
			}
		}
	}
	setSlice := func(obj any) {
		if s, ok := obj.(*discoveryv1.EndpointSlice); ok {
			if r, ok := records.FromEndpointSlice(s); ok {
				ix.SetEndpointSlice(r)
			} else {
				ix.DeleteEndpointSlice(s.Namespace, s.Name)
			}
		}
	}
	mustAdd(svc.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    setService,
		UpdateFunc: func(_, obj any) { setService(obj) },
		DeleteFunc: func(obj any) {
			if s, ok := manager.Deleted[*corev1.Service](obj); ok {
				ix.DeleteService(s.Namespace, s.Name)
			}
		},
	}))
	mustAdd(eps.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    setSlice,
		UpdateFunc: func(_, obj any) { setSlice(obj) },
		DeleteFunc: func(obj any) {
			if s, ok := manager.Deleted[*discoveryv1.EndpointSlice](obj); ok {
				ix.DeleteEndpointSlice(s.Namespace, s.Name)
			}
		},
	}))
	return w
}

// mustAdd panics on an AddEventHandler error, which only happens when the
// informer has already stopped: a programming error here.
func mustAdd(_ cache.ResourceEventHandlerRegistration, err error) {
	if err != nil {
		panic(err)
	}
}

func (w *watcher) start(ctx context.Context) { w.factory.Start(ctx.Done()) }

// waitForSync reports whether the informers synced before ctx ended.
func (w *watcher) waitForSync(ctx context.Context) bool {
	if !cache.WaitForCacheSync(ctx.Done(), w.synced...) {
		return false
	}
	klog.V(2).Infof("wharf dns: services and endpoint slices synced")
	return true
}

// stop waits for the informers to end; ctx must be done.
func (w *watcher) stop() { w.factory.Shutdown() }

// dropManagedFields keeps informer memory down: DNS never reads them.
func dropManagedFields(obj any) (any, error) {
	if a, err := meta.Accessor(obj); err == nil {
		a.SetManagedFields(nil)
	}
	return obj, nil
}
