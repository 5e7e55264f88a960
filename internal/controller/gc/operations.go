package gc

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
)

func isNotFound(err error) bool { return err != nil && apierrors.IsNotFound(err) }

// apiResource maps an apiVersion and kind to the resource to call, and
// whether it is namespaced.
func (gc *GarbageCollector) apiResource(apiVersion, kind string) (schema.GroupVersionResource, bool, error) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return schema.GroupVersionResource{}, false, fmt.Errorf("parse apiVersion %q: %w", apiVersion, err)
	}
	m, err := gc.mapper.RESTMapping(gv.WithKind(kind).GroupKind(), gv.Version)
	if err != nil {
		return schema.GroupVersionResource{}, false, fmt.Errorf("unable to get REST mapping for %s/%s: %w", apiVersion, kind, err)
	}
	return m.Resource, m.Scope.Name() == "namespace", nil
}

func namespaceFor(namespaced bool, ns string) string {
	if namespaced {
		return ns
	}
	return ""
}

// getObject reads the object's metadata from the server.
func (gc *GarbageCollector) getObject(ctx context.Context, ref objectReference) (*metav1.PartialObjectMetadata, error) {
	gvr, namespaced, err := gc.apiResource(ref.APIVersion, ref.Kind)
	if err != nil {
		return nil, err
	}
	return gc.metadata.Resource(gvr).Namespace(namespaceFor(namespaced, ref.Namespace)).Get(ctx, ref.Name, metav1.GetOptions{})
}

func (gc *GarbageCollector) patchObject(ctx context.Context, ref objectReference, patch []byte) error {
	gvr, namespaced, err := gc.apiResource(ref.APIVersion, ref.Kind)
	if err != nil {
		return err
	}
	_, err = gc.metadata.Resource(gvr).Namespace(namespaceFor(namespaced, ref.Namespace)).
		Patch(ctx, ref.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

// deleteObject deletes the object with UID and resourceVersion
// preconditions. A conflict that left the ownerReferences as they were is
// retried without the resourceVersion, so that unrelated updates cannot
// starve the collector.
func (gc *GarbageCollector) deleteObject(ctx context.Context, ref objectReference, resourceVersion string,
	owners []metav1.OwnerReference, policy *metav1.DeletionPropagation) error {
	gvr, namespaced, err := gc.apiResource(ref.APIVersion, ref.Kind)
	if err != nil {
		return err
	}
	client := gc.metadata.Resource(gvr).Namespace(namespaceFor(namespaced, ref.Namespace))
	uid := ref.UID
	opts := metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}, PropagationPolicy: policy}
	if resourceVersion != "" {
		opts.Preconditions.ResourceVersion = &resourceVersion
	}
	err = client.Delete(ctx, ref.Name, opts)
	if apierrors.IsConflict(err) && resourceVersion != "" {
		live, liveErr := client.Get(ctx, ref.Name, metav1.GetOptions{})
		if isNotFound(liveErr) {
			return nil
		}
		if liveErr == nil && live.UID == ref.UID && live.ResourceVersion != resourceVersion &&
			reflect.DeepEqual(live.OwnerReferences, owners) {
			return gc.deleteObject(ctx, ref, "", nil, policy)
		}
	}
	if isNotFound(err) {
		return nil
	}
	return err
}

// metadataPatch is a JSON merge patch of metadata, guarded by the
// resourceVersion it was computed from. OwnerReferences and Finalizers
// have no omitempty: an empty list is sent as null, which removes it.
type ownerRefsPatch struct {
	Metadata struct {
		ResourceVersion string                  `json:"resourceVersion"`
		UID             types.UID               `json:"uid"`
		OwnerReferences []metav1.OwnerReference `json:"ownerReferences"`
	} `json:"metadata"`
}

type finalizersPatch struct {
	Metadata struct {
		ResourceVersion string    `json:"resourceVersion"`
		UID             types.UID `json:"uid"`
		Finalizers      []string  `json:"finalizers"`
	} `json:"metadata"`
}

// updateOwnerReferences rewrites the object's ownerReferences with edit,
// retrying on conflicts; an object that is gone is fine.
func (gc *GarbageCollector) updateOwnerReferences(ctx context.Context, ref objectReference,
	edit func([]metav1.OwnerReference) ([]metav1.OwnerReference, bool)) error {
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		obj, err := gc.getObject(ctx, ref)
		if isNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if obj.UID != ref.UID {
			return nil
		}
		refs, changed := edit(obj.GetOwnerReferences())
		if !changed {
			return nil
		}
		var p ownerRefsPatch
		p.Metadata.ResourceVersion = obj.ResourceVersion
		p.Metadata.UID = obj.UID
		p.Metadata.OwnerReferences = refs
		data, err := json.Marshal(&p)
		if err != nil {
			return err
		}
		err = gc.patchObject(ctx, ref, data)
		if isNotFound(err) {
			return nil
		}
		return err
	})
}

// removeOwnerReferences drops the references to the given owners.
func (gc *GarbageCollector) removeOwnerReferences(ctx context.Context, ref objectReference, owners []types.UID) error {
	drop := map[types.UID]bool{}
	for _, u := range owners {
		drop[u] = true
	}
	return gc.updateOwnerReferences(ctx, ref, func(refs []metav1.OwnerReference) ([]metav1.OwnerReference, bool) {
		var out []metav1.OwnerReference
		for _, r := range refs {
			if !drop[r.UID] {
				out = append(out, r)
			}
		}
		return out, len(out) != len(refs)
	})
}

// unblockOwnerReferences sets blockOwnerDeletion false on every reference.
func (gc *GarbageCollector) unblockOwnerReferences(ctx context.Context, ref objectReference) error {
	return gc.updateOwnerReferences(ctx, ref, func(refs []metav1.OwnerReference) ([]metav1.OwnerReference, bool) {
		changed := false
		out := make([]metav1.OwnerReference, len(refs))
		for i, r := range refs {
			if r.BlockOwnerDeletion != nil && *r.BlockOwnerDeletion {
				f := false
				r.BlockOwnerDeletion = &f
				changed = true
			}
			out[i] = r
		}
		return out, changed
	})
}

// orphanDependents removes the owner's reference from each dependent.
func (gc *GarbageCollector) orphanDependents(ctx context.Context, owner objectReference, dependents []objectReference) error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	sem := make(chan struct{}, 8)
	for _, dep := range dependents {
		wg.Add(1)
		sem <- struct{}{}
		go func(dep objectReference) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := gc.removeOwnerReferences(ctx, dep, []types.UID{owner.UID}); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("orphaning %s: %w", dep, err))
				mu.Unlock()
			}
		}(dep)
	}
	wg.Wait()
	if len(errs) != 0 {
		return utilerrors.NewAggregate(errs)
	}
	klog.V(5).InfoS("Garbage collector: dependents orphaned", "owner", owner, "count", len(dependents))
	return nil
}

// removeFinalizer removes one finalizer from the object; the server
// deletes it when it was the last one of a deleting object.
func (gc *GarbageCollector) removeFinalizer(ctx context.Context, ref objectReference, finalizer string) error {
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		obj, err := gc.getObject(ctx, ref)
		if isNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if obj.UID != ref.UID {
			return nil
		}
		var keep []string
		found := false
		for _, f := range obj.Finalizers {
			if f == finalizer {
				found = true
				continue
			}
			keep = append(keep, f)
		}
		if !found {
			return nil
		}
		var p finalizersPatch
		p.Metadata.ResourceVersion = obj.ResourceVersion
		p.Metadata.UID = obj.UID
		p.Metadata.Finalizers = keep
		data, err := json.Marshal(&p)
		if err != nil {
			return err
		}
		err = gc.patchObject(ctx, ref, data)
		if isNotFound(err) {
			return nil
		}
		return err
	})
	if apierrors.IsConflict(err) {
		return fmt.Errorf("too many conflicts removing finalizer %s from %s; will retry later", finalizer, ref)
	}
	return err
}
