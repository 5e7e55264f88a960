package namespace

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/klog/v2"
)

// finalizerEstimateSeconds is how long to wait for content whose finalizers
// keep it alive (upstream: 15 s).
const finalizerEstimateSeconds int64 = 15

// ResourcesRemainingError says content is still going away; the controller
// looks again after about half the estimate.
type ResourcesRemainingError struct {
	Estimate int64
}

func (e *ResourcesRemainingError) Error() string {
	return fmt.Sprintf("some content remains in the namespace, estimate %d seconds before it is removed", e.Estimate)
}

// Deleter empties a namespace that is being deleted and then removes its
// "kubernetes" finalizer: upstream's namespacedResourcesDeleter.
type Deleter struct {
	nsClient typedcorev1.NamespaceInterface
	pods     typedcorev1.PodsGetter
	metadata metadata.Interface
	// discover lists the server's preferred namespaced resources
	// (discovery's ServerPreferredNamespacedResources).
	discover       func() ([]*metav1.APIResourceList, error)
	finalizerToken corev1.FinalizerName

	mu sync.RWMutex
	// notSupported remembers operations a resource does not serve, from
	// discovery's verbs and from 404/405 answers.
	notSupported map[opKey]bool
}

type operation string

const (
	opList             operation = "list"
	opDeleteCollection operation = "deletecollection"
)

type opKey struct {
	op  operation
	gvr schema.GroupVersionResource
}

// NewDeleter returns a deleter that reads namespaces and pods through client
// and lists and deletes content through md.
func NewDeleter(client kubernetes.Interface, md metadata.Interface, discover func() ([]*metav1.APIResourceList, error)) *Deleter {
	return &Deleter{
		nsClient:       client.CoreV1().Namespaces(),
		pods:           client.CoreV1(),
		metadata:       md,
		discover:       discover,
		finalizerToken: corev1.FinalizerKubernetes,
		notSupported:   map[opKey]bool{},
	}
}

func (d *Deleter) supported(op operation, gvr schema.GroupVersionResource) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return !d.notSupported[opKey{op, gvr}]
}

func (d *Deleter) setSupported(op operation, gvr schema.GroupVersionResource, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ok {
		delete(d.notSupported, opKey{op, gvr})
	} else {
		d.notSupported[opKey{op, gvr}] = true
	}
}

// Delete empties the namespace if it is being deleted, and finalizes it once
// nothing is left. It returns a *ResourcesRemainingError while content is
// still going away; the caller calls again until it returns nil.
func (d *Deleter) Delete(ctx context.Context, name string) error {
	ns, err := d.nsClient.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ns.DeletionTimestamp == nil {
		return nil
	}
	ns, err = d.retryOnConflict(ctx, ns, d.updateNamespaceStatus)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ns.DeletionTimestamp.IsZero() {
		return nil
	}
	if finalized(ns) {
		return nil
	}
	estimate, err := d.deleteAllContent(ctx, ns)
	if err != nil {
		return err
	}
	if estimate > 0 {
		return &ResourcesRemainingError{estimate}
	}
	_, err = d.retryOnConflict(ctx, ns, d.finalizeNamespace)
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// retryOnConflict runs fn on the latest namespace until it does not
// conflict; the namespace must keep its UID.
func (d *Deleter) retryOnConflict(ctx context.Context, ns *corev1.Namespace,
	fn func(context.Context, *corev1.Namespace) (*corev1.Namespace, error)) (*corev1.Namespace, error) {
	latest := ns
	for {
		result, err := fn(ctx, latest)
		if err == nil {
			return result, nil
		}
		if !apierrors.IsConflict(err) {
			return nil, err
		}
		prev := latest
		latest, err = d.nsClient.Get(ctx, prev.Name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		if prev.UID != latest.UID {
			return nil, fmt.Errorf("namespace uid has changed across retries")
		}
	}
}

// updateNamespaceStatus makes sure a deleting namespace says Terminating.
func (d *Deleter) updateNamespaceStatus(ctx context.Context, ns *corev1.Namespace) (*corev1.Namespace, error) {
	if ns.DeletionTimestamp.IsZero() || ns.Status.Phase == corev1.NamespaceTerminating {
		return ns, nil
	}
	n := ns.DeepCopy()
	n.Status.Phase = corev1.NamespaceTerminating
	return d.nsClient.UpdateStatus(ctx, n, metav1.UpdateOptions{})
}

func finalized(ns *corev1.Namespace) bool { return len(ns.Spec.Finalizers) == 0 }

// finalizeNamespace removes the deleter's finalizer through
// namespaces/finalize; the server deletes the namespace when none is left.
func (d *Deleter) finalizeNamespace(ctx context.Context, ns *corev1.Namespace) (*corev1.Namespace, error) {
	n := &corev1.Namespace{ObjectMeta: *ns.ObjectMeta.DeepCopy(), Spec: *ns.Spec.DeepCopy()}
	keep := sets.New[string]()
	for _, f := range ns.Spec.Finalizers {
		if f != d.finalizerToken {
			keep.Insert(string(f))
		}
	}
	n.Spec.Finalizers = make([]corev1.FinalizerName, 0, keep.Len())
	for _, f := range sets.List(keep) {
		n.Spec.Finalizers = append(n.Spec.Finalizers, corev1.FinalizerName(f))
	}
	out, err := d.nsClient.Finalize(ctx, n, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return out, nil
	}
	return out, err
}

// deletableResources returns the namespaced resources that can be deleted,
// sorted, and records which of them serve list and deletecollection.
func (d *Deleter) deletableResources(lists []*metav1.APIResourceList, conds *conditionUpdater) ([]schema.GroupVersionResource, []error) {
	var errs []error
	seen := map[schema.GroupVersionResource]bool{}
	var out []schema.GroupVersionResource
	for _, rl := range lists {
		if rl == nil {
			continue
		}
		gv, err := schema.ParseGroupVersion(rl.GroupVersion)
		if err != nil {
			errs = append(errs, err)
			conds.processGroupVersionErr(err)
			continue
		}
		for _, r := range rl.APIResources {
			if strings.Contains(r.Name, "/") || !r.Namespaced {
				continue
			}
			verbs := sets.New[string](r.Verbs...)
			if !verbs.Has("delete") {
				continue
			}
			gvr := gv.WithResource(r.Name)
			if seen[gvr] {
				continue
			}
			seen[gvr] = true
			d.setSupported(opList, gvr, verbs.Has("list"))
			d.setSupported(opDeleteCollection, gvr, verbs.Has("deletecollection"))
			out = append(out, gvr)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, errs
}

// deleteAllContent deletes every object in the namespace, writes the
// deletion conditions, and returns how many seconds the remaining content
// is expected to take.
func (d *Deleter) deleteAllContent(ctx context.Context, ns *corev1.Namespace) (int64, error) {
	var errs []error
	conds := &conditionUpdater{}
	estimate := int64(0)

	lists, err := d.discover()
	if err != nil {
		// Partial discovery still names most resources: go on with them.
		errs = append(errs, err)
		conds.processDiscoverResourcesErr(err)
	}
	gvrs, gvErrs := d.deletableResources(lists, conds)
	errs = append(errs, gvErrs...)

	totals := contentTotals{
		gvrToNumRemaining:        map[schema.GroupVersionResource]int{},
		finalizersToNumRemaining: map[string]int{},
	}
	for _, gvr := range gvrs {
		res, err := d.deleteAllContentFor(ctx, gvr, ns)
		if err != nil {
			errs = append(errs, err)
			conds.processDeleteContentErr(err)
		}
		if res.estimate > estimate {
			estimate = res.estimate
		}
		if res.remaining > 0 {
			totals.gvrToNumRemaining[gvr] = res.remaining
			for f, n := range res.finalizers {
				if n > 0 {
					totals.finalizersToNumRemaining[f] += n
				}
			}
		}
	}
	conds.processContentTotals(totals)

	// Always write the conditions: a failure of the last pass that is gone
	// now must read as such.
	if conds.update(ns) {
		if _, err := d.nsClient.UpdateStatus(ctx, ns, metav1.UpdateOptions{}); err != nil {
			utilruntime.HandleError(fmt.Errorf("couldn't update status condition for namespace %q: %w", ns.Name, err))
		}
	}
	err = utilerrors.NewAggregate(errs)
	klog.V(4).InfoS("namespace controller - deleteAllContent", "namespace", ns.Name, "estimate", estimate, "err", err)
	return estimate, err
}

// gvrResult is what one resource left in the namespace.
type gvrResult struct {
	estimate   int64
	remaining  int
	finalizers map[string]int
}

// deleteAllContentFor deletes one resource's objects in the namespace and
// reports what is left.
func (d *Deleter) deleteAllContentFor(ctx context.Context, gvr schema.GroupVersionResource, ns *corev1.Namespace) (gvrResult, error) {
	estimate, err := d.estimateGracefulTermination(ctx, gvr, ns)
	if err != nil {
		return gvrResult{}, err
	}
	supported, err := d.deleteCollection(ctx, gvr, ns.Name)
	if err != nil {
		return gvrResult{estimate: estimate}, err
	}
	if !supported {
		if err := d.deleteEachItem(ctx, gvr, ns.Name); err != nil {
			return gvrResult{estimate: estimate}, err
		}
	}
	list, listSupported, err := d.listCollection(ctx, gvr, ns.Name)
	if err != nil {
		return gvrResult{estimate: estimate}, err
	}
	if !listSupported {
		return gvrResult{estimate: estimate}, nil
	}
	if len(list.Items) == 0 {
		return gvrResult{}, nil
	}
	finalizers := map[string]int{}
	for _, item := range list.Items {
		for _, f := range item.GetFinalizers() {
			finalizers[f]++
		}
	}
	res := gvrResult{estimate: estimate, remaining: len(list.Items), finalizers: finalizers}
	if estimate != 0 {
		return res, nil
	}
	if len(finalizers) > 0 {
		res.estimate = finalizerEstimateSeconds
		return res, nil
	}
	// Nothing holds them, yet they are there: something went wrong.
	return gvrResult{remaining: len(list.Items)},
		fmt.Errorf("unexpected items still remain in namespace: %s for gvr: %v", ns.Name, gvr)
}

// deleteCollection deletes the resource's objects in one request; it
// reports false when the resource does not serve deletecollection.
func (d *Deleter) deleteCollection(ctx context.Context, gvr schema.GroupVersionResource, namespace string) (bool, error) {
	if !d.supported(opDeleteCollection, gvr) {
		return false, nil
	}
	// Background: the garbage collector must not orphan the dependents of
	// what goes, and the namespace waits for everything anyway.
	background := metav1.DeletePropagationBackground
	err := d.metadata.Resource(gvr).Namespace(namespace).DeleteCollection(ctx,
		metav1.DeleteOptions{PropagationPolicy: &background}, metav1.ListOptions{})
	if err == nil {
		return true, nil
	}
	if apierrors.IsMethodNotSupported(err) || apierrors.IsNotFound(err) {
		d.setSupported(opDeleteCollection, gvr, false)
		return false, nil
	}
	return true, err
}

// listCollection lists the resource's objects in the namespace; it reports
// false when the resource does not serve list.
func (d *Deleter) listCollection(ctx context.Context, gvr schema.GroupVersionResource, namespace string) (*metav1.PartialObjectMetadataList, bool, error) {
	if !d.supported(opList, gvr) {
		return nil, false, nil
	}
	list, err := d.metadata.Resource(gvr).Namespace(namespace).List(ctx, metav1.ListOptions{})
	if err == nil {
		return list, true, nil
	}
	if apierrors.IsMethodNotSupported(err) || apierrors.IsNotFound(err) {
		d.setSupported(opList, gvr, false)
		return nil, false, nil
	}
	return nil, true, err
}

// deleteEachItem lists the resource's objects and deletes them one by one.
func (d *Deleter) deleteEachItem(ctx context.Context, gvr schema.GroupVersionResource, namespace string) error {
	list, supported, err := d.listCollection(ctx, gvr, namespace)
	if err != nil || !supported {
		return err
	}
	background := metav1.DeletePropagationBackground
	for _, item := range list.Items {
		err := d.metadata.Resource(gvr).Namespace(namespace).Delete(ctx, item.GetName(),
			metav1.DeleteOptions{PropagationPolicy: &background})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsMethodNotSupported(err) {
			return err
		}
	}
	return nil
}

// estimateGracefulTermination is how long the resource's objects may take
// to go: the longest grace period of the namespace's running pods, counted
// from the namespace's deletion; zero for other resources.
func (d *Deleter) estimateGracefulTermination(ctx context.Context, gvr schema.GroupVersionResource, ns *corev1.Namespace) (int64, error) {
	if gvr.Group != "" || gvr.Resource != "pods" {
		return 0, nil
	}
	pods, err := d.pods.Pods(ns.Name).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, err
	}
	estimate := int64(0)
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		if p.Spec.TerminationGracePeriodSeconds != nil && *p.Spec.TerminationGracePeriodSeconds > estimate {
			estimate = *p.Spec.TerminationGracePeriodSeconds
		}
	}
	if ns.DeletionTimestamp != nil && time.Since(ns.DeletionTimestamp.Time) >= time.Duration(estimate)*time.Second {
		estimate = 0
	}
	return estimate, nil
}
