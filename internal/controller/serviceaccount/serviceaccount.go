// Package serviceaccount keeps the objects every namespace has upstream: the
// "default" ServiceAccount (recreated if deleted) and the kube-root-ca.crt
// ConfigMap holding the cluster CA, which pods' service-account volumes
// carry as ca.crt.
package serviceaccount

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/wharf-io/wharf/internal/controller/manager"
)

// RootCAConfigMap is the name of the ConfigMap holding the cluster CA.
const RootCAConfigMap = "kube-root-ca.crt"

// Controller ensures each Active namespace's default objects.
type Controller struct {
	client     kubernetes.Interface
	namespaces corelisters.NamespaceLister
	accounts   corelisters.ServiceAccountLister
	configMaps corelisters.ConfigMapLister
	synced     []cache.InformerSynced
	rootCA     string
	queue      workqueue.TypedRateLimitingInterface[string]
}

// New is the manager's constructor.
func New(c *manager.Context) (manager.Controller, error) {
	ni := c.Informers.Core().V1().Namespaces()
	si := c.Informers.Core().V1().ServiceAccounts()
	ci := c.Informers.Core().V1().ConfigMaps()
	ctl := &Controller{client: c.Client, namespaces: ni.Lister(), accounts: si.Lister(), configMaps: ci.Lister(),
		rootCA: string(c.Options.RootCAPEM),
		synced: []cache.InformerSynced{ni.Informer().HasSynced, si.Informer().HasSynced, ci.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "serviceaccount"})}
	byNamespace := func(obj interface{}) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if m, ok := obj.(metav1.Object); ok {
			ns := m.GetNamespace()
			if ns == "" {
				ns = m.GetName()
			}
			ctl.queue.Add(ns)
		}
	}
	h := cache.ResourceEventHandlerFuncs{AddFunc: byNamespace, UpdateFunc: func(_, o interface{}) { byNamespace(o) }, DeleteFunc: byNamespace}
	for _, inf := range []cache.SharedIndexInformer{ni.Informer(), si.Informer(), ci.Informer()} {
		if _, err := inf.AddEventHandler(h); err != nil {
			return nil, err
		}
	}
	return ctl, nil
}

func (c *Controller) sync(ctx context.Context, name string) error {
	ns, err := c.namespaces.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ns.Status.Phase != corev1.NamespaceActive || ns.DeletionTimestamp != nil {
		return nil
	}
	if _, err := c.accounts.ServiceAccounts(name).Get("default"); apierrors.IsNotFound(err) {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
		if _, err := c.client.CoreV1().ServiceAccounts(name).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	if c.rootCA == "" {
		return nil
	}
	cm, err := c.configMaps.ConfigMaps(name).Get(RootCAConfigMap)
	switch {
	case apierrors.IsNotFound(err):
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: RootCAConfigMap,
			Annotations: map[string]string{"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
			Data: map[string]string{"ca.crt": c.rootCA}}
		_, err = c.client.CoreV1().ConfigMaps(name).Create(ctx, cm, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	case err != nil:
		return err
	case cm.Data["ca.crt"] != c.rootCA:
		upd := cm.DeepCopy()
		upd.Data = map[string]string{"ca.crt": c.rootCA}
		_, err = c.client.CoreV1().ConfigMaps(name).Update(ctx, upd, metav1.UpdateOptions{})
		return err
	}
	return nil
}

// Run reconciles namespaces until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	manager.Loop{Name: "serviceaccount", Queue: c.queue, Synced: c.synced, Sync: c.sync}.Run(ctx, workers)
}
