package replication

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/tools/cache"
)

// statusUpdateRetries is how many times a failed status write is retried
// with a fresh read (upstream: 1).
const statusUpdateRetries = 1

// Sync reconciles the owner with key namespace/name once.
func (c *Controller) Sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return err
	}
	rs, err := c.kind.get(namespace, name)
	if apierrors.IsNotFound(err) {
		c.exp.Delete(key)
		return nil
	}
	if err != nil {
		return err
	}
	if rs.Spec.Replicas == nil {
		// Defaulting sets it; never trust the cache to have it.
		rs = rs.DeepCopy()
		one := int32(1)
		rs.Spec.Replicas = &one
	}
	needsSync := c.exp.Satisfied(key)
	selector, err := selectorOf(rs)
	if err != nil {
		utilruntime.HandleError(fmt.Errorf("error converting pod selector to selector for %s %v: %v", c.kind.gvk().Kind, key, err))
		return nil
	}

	// All pods of the namespace, so that orphans can be adopted and owned
	// pods that stopped matching released.
	all, err := c.podLister.Pods(namespace).List(labels.Everything())
	if err != nil {
		return err
	}
	active := FilterActivePods(all)
	filtered, err := c.claimPods(ctx, rs, selector, active)
	if err != nil {
		return err
	}

	var manageErr error
	if needsSync && rs.DeletionTimestamp == nil {
		manageErr = c.manageReplicas(ctx, filtered, rs)
	}

	status := calculateStatus(rs, filtered, manageErr, c.now())
	updated, err := c.updateStatus(ctx, rs, status)
	if err != nil {
		// Retried with the owner; the error above (if any) comes back too.
		return err
	}
	// Resync after minReadySeconds so that availableReplicas follows
	// (the pods do not change when they become available).
	if manageErr == nil && updated.Spec.MinReadySeconds > 0 &&
		updated.Status.ReadyReplicas == *updated.Spec.Replicas &&
		updated.Status.AvailableReplicas != *updated.Spec.Replicas {
		c.queue.AddAfter(key, time.Duration(updated.Spec.MinReadySeconds)*time.Second)
	}
	return manageErr
}

// claimPods adopts matching orphans and releases owned pods that no longer
// match; it returns the pods the owner now has.
func (c *Controller) claimPods(ctx context.Context, rs *appsv1.ReplicaSet, selector labels.Selector, pods []*corev1.Pod) ([]*corev1.Pod, error) {
	m := &RefManager{
		Controller: rs,
		CanAdopt: RecheckDeletion(rs.UID, func(ctx context.Context) (metav1.Object, error) {
			return c.kind.getLive(ctx, rs.Namespace, rs.Name)
		}),
	}
	ref := metav1.NewControllerRef(rs, c.kind.gvk())
	match := func(o metav1.Object) bool { return selector.Matches(labels.Set(o.GetLabels())) }
	adopt := func(ctx context.Context, o metav1.Object) error {
		_, err := c.client.CoreV1().Pods(o.GetNamespace()).Patch(ctx, o.GetName(), types.StrategicMergePatchType,
			AdoptPatch(*ref, o.GetUID()), metav1.PatchOptions{})
		return err
	}
	release := func(ctx context.Context, o metav1.Object) error {
		_, err := c.client.CoreV1().Pods(o.GetNamespace()).Patch(ctx, o.GetName(), types.StrategicMergePatchType,
			ReleasePatch(rs.UID, o.GetUID()), metav1.PatchOptions{})
		return IgnoreReleaseError(err)
	}
	var claimed []*corev1.Pod
	var errs []error
	for _, p := range pods {
		ok, err := m.Claim(ctx, p, match, adopt, release)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			claimed = append(claimed, p)
		}
	}
	if len(errs) > 0 {
		return claimed, errs[0]
	}
	return claimed, nil
}

// manageReplicas creates or deletes pods so that the owner has
// spec.replicas of them.
func (c *Controller) manageReplicas(ctx context.Context, filtered []*corev1.Pod, rs *appsv1.ReplicaSet) error {
	key := rs.Namespace + "/" + rs.Name
	diff := len(filtered) - int(*rs.Spec.Replicas)
	owner := c.kind.eventObject(rs)
	switch {
	case diff < 0:
		diff = -diff
		if diff > c.burst {
			diff = c.burst
		}
		// Expect the creations before making them: the informer may
		// report a pod before Create returns.
		c.exp.ExpectCreations(key, diff)
		ref := metav1.NewControllerRef(rs, c.kind.gvk())
		created, err := slowStartBatch(diff, 1, func() error {
			err := c.pods.createPod(ctx, rs.Namespace, &rs.Spec.Template, owner, rs.Name, ref)
			if err != nil && apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
				// Every create fails while the namespace goes away.
				return nil
			}
			return err
		})
		// The informer will never report the pods not created.
		for i := 0; i < diff-created; i++ {
			c.exp.CreationObserved(key)
		}
		return err
	case diff > 0:
		if diff > c.burst {
			diff = c.burst
		}
		victims := podsToDelete(filtered, c.relatedPods(rs), diff, c.now())
		keys := make([]string, 0, len(victims))
		for _, p := range victims {
			keys = append(keys, podKey(p))
		}
		c.exp.ExpectDeletions(key, keys)
		errCh := make(chan error, len(victims))
		var wg sync.WaitGroup
		for _, p := range victims {
			wg.Add(1)
			go func(p *corev1.Pod) {
				defer wg.Done()
				if err := c.pods.deletePod(ctx, rs.Namespace, p.Name, owner); err != nil {
					// The informer will not report this one.
					c.exp.DeletionObserved(key, podKey(p))
					if !apierrors.IsNotFound(err) {
						errCh <- err
					}
				}
			}(p)
		}
		wg.Wait()
		select {
		case err := <-errCh:
			return err
		default:
		}
	}
	return nil
}

// relatedPods are the pods of every owner controlled by the same
// controller as rs (a Deployment's ReplicaSets); none for an owner without
// a controller.
func (c *Controller) relatedPods(rs *appsv1.ReplicaSet) []*corev1.Pod {
	ref := metav1.GetControllerOf(rs)
	if ref == nil {
		return nil
	}
	owners, err := c.kind.list(rs.Namespace)
	if err != nil {
		return nil
	}
	seen := map[types.UID]bool{}
	var out []*corev1.Pod
	for _, o := range owners {
		r := metav1.GetControllerOf(o)
		if r == nil || r.UID != ref.UID {
			continue
		}
		sel, err := selectorOf(o)
		if err != nil {
			continue
		}
		pods, err := c.podLister.Pods(o.Namespace).List(sel)
		if err != nil {
			continue
		}
		for _, p := range pods {
			if !seen[p.UID] {
				seen[p.UID] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// calculateStatus is the owner's status for its pods: counts, and the
// ReplicaFailure condition set when managing replicas failed (FailedCreate
// or FailedDelete with the error as message) and removed once it succeeds.
func calculateStatus(rs *appsv1.ReplicaSet, filtered []*corev1.Pod, manageErr error, now time.Time) appsv1.ReplicaSetStatus {
	st := *rs.Status.DeepCopy()
	var fully, ready, available int32
	tmpl := labels.SelectorFromSet(rs.Spec.Template.Labels)
	for _, p := range filtered {
		if tmpl.Matches(labels.Set(p.Labels)) {
			fully++
		}
		if IsPodReady(p) {
			ready++
			if IsPodAvailable(p, rs.Spec.MinReadySeconds, now) {
				available++
			}
		}
	}
	failure := getCondition(st, appsv1.ReplicaSetReplicaFailure)
	if manageErr != nil && failure == nil {
		reason := ""
		if diff := len(filtered) - int(*rs.Spec.Replicas); diff < 0 {
			reason = FailedCreatePodReason
		} else if diff > 0 {
			reason = FailedDeletePodReason
		}
		setCondition(&st, appsv1.ReplicaSetCondition{
			Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue,
			LastTransitionTime: metav1.NewTime(now), Reason: reason, Message: manageErr.Error(),
		})
	} else if manageErr == nil && failure != nil {
		removeCondition(&st, appsv1.ReplicaSetReplicaFailure)
	}
	st.Replicas = int32(len(filtered))
	st.FullyLabeledReplicas = fully
	st.ReadyReplicas = ready
	st.AvailableReplicas = available
	return st
}

func getCondition(st appsv1.ReplicaSetStatus, t appsv1.ReplicaSetConditionType) *appsv1.ReplicaSetCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

func setCondition(st *appsv1.ReplicaSetStatus, c appsv1.ReplicaSetCondition) {
	cur := getCondition(*st, c.Type)
	if cur != nil && cur.Status == c.Status && cur.Reason == c.Reason {
		return
	}
	removeCondition(st, c.Type)
	st.Conditions = append(st.Conditions, c)
}

func removeCondition(st *appsv1.ReplicaSetStatus, t appsv1.ReplicaSetConditionType) {
	var out []appsv1.ReplicaSetCondition
	for _, c := range st.Conditions {
		if c.Type != t {
			out = append(out, c)
		}
	}
	st.Conditions = out
}

// updateStatus writes status unless nothing changed and the generation was
// already observed; a failed write is retried once on a fresh read.
func (c *Controller) updateStatus(ctx context.Context, rs *appsv1.ReplicaSet, st appsv1.ReplicaSetStatus) (*appsv1.ReplicaSet, error) {
	if rs.Status.Replicas == st.Replicas &&
		rs.Status.FullyLabeledReplicas == st.FullyLabeledReplicas &&
		rs.Status.ReadyReplicas == st.ReadyReplicas &&
		rs.Status.AvailableReplicas == st.AvailableReplicas &&
		rs.Generation == rs.Status.ObservedGeneration &&
		reflect.DeepEqual(rs.Status.Conditions, st.Conditions) {
		return rs, nil
	}
	st.ObservedGeneration = rs.Generation
	cur := rs.DeepCopy()
	var err error
	for i := 0; ; i++ {
		cur.Status = st
		var updated *appsv1.ReplicaSet
		updated, err = c.kind.updateStatus(ctx, cur)
		if err == nil {
			return updated, nil
		}
		if i >= statusUpdateRetries {
			break
		}
		fresh, getErr := c.kind.getLive(ctx, rs.Namespace, rs.Name)
		if getErr != nil {
			return nil, getErr
		}
		cur = fresh
	}
	return nil, err
}
