package proxy

import (
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/wharf-io/wharf/internal/proxy/model"
)

// watch registers informer handlers that convert Services and
// EndpointSlices at the edge, feed the tracker and trigger a sync. It
// returns a function reporting whether both informers have listed once.
func watch(f informers.SharedInformerFactory, tr *model.Tracker, changed func()) (synced func() bool, err error) {
	svcs := f.Core().V1().Services().Informer()
	slices := f.Discovery().V1().EndpointSlices().Informer()
	r1, err := svcs.AddEventHandler(handler(func(obj any) {
		if s, ok := obj.(*v1.Service); ok {
			tr.SetService(serviceFromAPI(s))
		}
	}, func(ns, name string) { tr.DeleteService(model.ServiceKey{Namespace: ns, Name: name}) }, changed))
	if err != nil {
		return nil, err
	}
	r2, err := slices.AddEventHandler(handler(func(obj any) {
		s, ok := obj.(*discoveryv1.EndpointSlice)
		if !ok {
			return
		}
		key := model.SliceKey{Namespace: s.Namespace, Name: s.Name}
		if m, ok := sliceFromAPI(s); ok {
			tr.SetSlice(key, m)
		} else {
			tr.DeleteSlice(key)
		}
	}, func(ns, name string) { tr.DeleteSlice(model.SliceKey{Namespace: ns, Name: name}) }, changed))
	if err != nil {
		return nil, err
	}
	return func() bool { return r1.HasSynced() && r2.HasSynced() }, nil
}

// handler adapts set and remove callbacks to informer events.
func handler(set func(any), remove func(ns, name string), changed func()) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { set(obj); changed() },
		UpdateFunc: func(_, obj any) { set(obj); changed() },
		DeleteFunc: func(obj any) {
			key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
			if err != nil {
				klog.ErrorS(err, "Service proxy: deleted object without a key")
				return
			}
			ns, name, err := cache.SplitMetaNamespaceKey(key)
			if err != nil {
				klog.ErrorS(err, "Service proxy: bad key of deleted object", "key", key)
				return
			}
			remove(ns, name)
			changed()
		},
	}
}
