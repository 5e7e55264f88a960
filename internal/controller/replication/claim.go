package replication

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// RefManager adopts orphans and releases objects for one controller, as
// upstream's BaseControllerRefManager: an object owned by another
// controller is left alone; an orphan matching the selector is adopted
// (unless it or the controller is being deleted); an owned object that no
// longer matches is released (unless the controller is being deleted).
type RefManager struct {
	Controller metav1.Object
	// CanAdopt runs once, before the first adoption; an error fails every
	// adoption of this pass (upstream checks with a live read that the
	// controller still exists and is not being deleted).
	CanAdopt func(ctx context.Context) error

	once        sync.Once
	canAdoptErr error
}

func (m *RefManager) canAdopt(ctx context.Context) error {
	m.once.Do(func() {
		if m.CanAdopt != nil {
			m.canAdoptErr = m.CanAdopt(ctx)
		}
	})
	return m.canAdoptErr
}

// Claim decides whether obj belongs to the controller, adopting or
// releasing it on the way. A NotFound from adopt or release means the
// object is gone and is not an error.
func (m *RefManager) Claim(ctx context.Context, obj metav1.Object, match func(metav1.Object) bool,
	adopt, release func(context.Context, metav1.Object) error) (bool, error) {
	if ref := metav1.GetControllerOfNoCopy(obj); ref != nil {
		if ref.UID != m.Controller.GetUID() {
			return false, nil
		}
		if match(obj) {
			return true, nil
		}
		if m.Controller.GetDeletionTimestamp() != nil {
			return false, nil
		}
		if err := release(ctx, obj); err != nil {
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			return false, err
		}
		return false, nil
	}
	// An orphan.
	if m.Controller.GetDeletionTimestamp() != nil || !match(obj) {
		return false, nil
	}
	if obj.GetDeletionTimestamp() != nil {
		return false, nil
	}
	if m.Controller.GetNamespace() != "" && m.Controller.GetNamespace() != obj.GetNamespace() {
		return false, nil
	}
	if err := m.canAdopt(ctx); err != nil {
		return false, fmt.Errorf("can't adopt %s/%s: %v", obj.GetNamespace(), obj.GetName(), err)
	}
	if err := adopt(ctx, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// RecheckDeletion returns a CanAdopt that reads the controller live and
// refuses when it is gone, replaced (another UID) or being deleted.
func RecheckDeletion(uid types.UID, get func(ctx context.Context) (metav1.Object, error)) func(context.Context) error {
	return func(ctx context.Context) error {
		fresh, err := get(ctx)
		if err != nil {
			return err
		}
		if fresh.GetUID() != uid {
			return fmt.Errorf("original %s/%s is gone: got uid %v, wanted %v", fresh.GetNamespace(), fresh.GetName(), fresh.GetUID(), uid)
		}
		if fresh.GetDeletionTimestamp() != nil {
			return fmt.Errorf("%s/%s has just been deleted at %v", fresh.GetNamespace(), fresh.GetName(), fresh.GetDeletionTimestamp())
		}
		return nil
	}
}

// AdoptPatch is the strategic merge patch that adds the controller
// reference ref to the object with uid (the uid makes the patch fail on a
// re-created object of the same name).
func AdoptPatch(ref metav1.OwnerReference, uid types.UID) []byte {
	b, _ := json.Marshal(map[string]interface{}{
		"metadata": map[string]interface{}{
			"ownerReferences": []metav1.OwnerReference{ref},
			"uid":             uid,
		},
	})
	return b
}

// ReleasePatch is the strategic merge patch that removes the owner
// reference to ownerUID from the object with uid.
func ReleasePatch(ownerUID, uid types.UID) []byte {
	b, _ := json.Marshal(map[string]interface{}{
		"metadata": map[string]interface{}{
			"ownerReferences": []map[string]interface{}{{"$patch": "delete", "uid": ownerUID}},
			"uid":             uid,
		},
	})
	return b
}

// IgnoreReleaseError treats the answers upstream ignores when releasing as
// success: NotFound (gone) and Invalid (no such reference any more, or the
// object was re-created under the same name).
func IgnoreReleaseError(err error) error {
	if err == nil || apierrors.IsNotFound(err) || apierrors.IsInvalid(err) {
		return nil
	}
	return err
}
