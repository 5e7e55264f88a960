package namespace

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
)

// The namespace conditions the deleter maintains, with upstream's reasons
// and messages (pkg/controller/namespace/deletion/status_condition_utils.go).
var (
	conditionTypes = []corev1.NamespaceConditionType{
		corev1.NamespaceDeletionDiscoveryFailure,
		corev1.NamespaceDeletionGVParsingFailure,
		corev1.NamespaceDeletionContentFailure,
		corev1.NamespaceContentRemaining,
		corev1.NamespaceFinalizersRemaining,
	}
	okMessages = map[corev1.NamespaceConditionType]string{
		corev1.NamespaceDeletionDiscoveryFailure: "All resources successfully discovered",
		corev1.NamespaceDeletionGVParsingFailure: "All legacy kube types successfully parsed",
		corev1.NamespaceDeletionContentFailure:   "All content successfully deleted, may be waiting on finalization",
		corev1.NamespaceContentRemaining:         "All content successfully removed",
		corev1.NamespaceFinalizersRemaining:      "All content-preserving finalizers finished",
	}
	okReasons = map[corev1.NamespaceConditionType]string{
		corev1.NamespaceDeletionDiscoveryFailure: "ResourcesDiscovered",
		corev1.NamespaceDeletionGVParsingFailure: "ParsedGroupVersions",
		corev1.NamespaceDeletionContentFailure:   "ContentDeleted",
		corev1.NamespaceContentRemaining:         "ContentRemoved",
		corev1.NamespaceFinalizersRemaining:      "ContentHasNoFinalizers",
	}
)

// contentTotals is what remains in a namespace after a deletion pass.
type contentTotals struct {
	gvrToNumRemaining        map[schema.GroupVersionResource]int
	finalizersToNumRemaining map[string]int
}

// conditionUpdater collects a deletion pass's failures and turns them into
// namespace conditions.
type conditionUpdater struct {
	newConditions       []corev1.NamespaceCondition
	deleteContentErrors []error
}

func (u *conditionUpdater) processContentTotals(t contentTotals) {
	if len(t.gvrToNumRemaining) != 0 {
		var remaining []string
		for gvr, n := range t.gvrToNumRemaining {
			if n == 0 {
				continue
			}
			remaining = append(remaining, fmt.Sprintf("%s.%s has %d resource instances", gvr.Resource, gvr.Group, n))
		}
		sort.Strings(remaining)
		u.newConditions = append(u.newConditions, corev1.NamespaceCondition{
			Type:               corev1.NamespaceContentRemaining,
			Status:             corev1.ConditionTrue,
			LastTransitionTime: metav1.Now(),
			Reason:             "SomeResourcesRemain",
			Message:            fmt.Sprintf("Some resources are remaining: %s", strings.Join(remaining, ", ")),
		})
	}
	if len(t.finalizersToNumRemaining) != 0 {
		var remaining []string
		for f, n := range t.finalizersToNumRemaining {
			if n == 0 {
				continue
			}
			remaining = append(remaining, fmt.Sprintf("%s in %d resource instances", f, n))
		}
		sort.Strings(remaining)
		u.newConditions = append(u.newConditions, corev1.NamespaceCondition{
			Type:               corev1.NamespaceFinalizersRemaining,
			Status:             corev1.ConditionTrue,
			LastTransitionTime: metav1.Now(),
			Reason:             "SomeFinalizersRemain",
			Message:            fmt.Sprintf("Some content in the namespace has finalizers remaining: %s", strings.Join(remaining, ", ")),
		})
	}
}

func (u *conditionUpdater) processDiscoverResourcesErr(err error) {
	msg := err.Error()
	var derr *discovery.ErrGroupDiscoveryFailed
	if errors.As(err, &derr) {
		msg = fmt.Sprintf("Discovery failed for some groups, %d failing: %v", len(derr.Groups), err)
	}
	u.newConditions = append(u.newConditions, corev1.NamespaceCondition{
		Type:               corev1.NamespaceDeletionDiscoveryFailure,
		Status:             corev1.ConditionTrue,
		LastTransitionTime: metav1.Now(),
		Reason:             "DiscoveryFailed",
		Message:            msg,
	})
}

func (u *conditionUpdater) processGroupVersionErr(err error) {
	u.newConditions = append(u.newConditions, corev1.NamespaceCondition{
		Type:               corev1.NamespaceDeletionGVParsingFailure,
		Status:             corev1.ConditionTrue,
		LastTransitionTime: metav1.Now(),
		Reason:             "GroupVersionParsingFailed",
		Message:            err.Error(),
	})
}

func (u *conditionUpdater) processDeleteContentErr(err error) {
	u.deleteContentErrors = append(u.deleteContentErrors, err)
}

// update writes the collected conditions into ns, the successful variant of
// every condition that did not fail; it reports whether anything changed.
func (u *conditionUpdater) update(ns *corev1.Namespace) bool {
	if getCondition(u.newConditions, corev1.NamespaceDeletionContentFailure) == nil {
		if c := makeDeleteContentCondition(u.deleteContentErrors); c != nil {
			u.newConditions = append(u.newConditions, *c)
		}
	}
	return updateConditions(&ns.Status, u.newConditions)
}

func makeDeleteContentCondition(errs []error) *corev1.NamespaceCondition {
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, 0, len(errs))
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	sort.Strings(msgs)
	return &corev1.NamespaceCondition{
		Type:               corev1.NamespaceDeletionContentFailure,
		Status:             corev1.ConditionTrue,
		LastTransitionTime: metav1.Now(),
		Reason:             "ContentDeletionFailed",
		Message:            fmt.Sprintf("Failed to delete all resource types, %d remaining: %v", len(errs), strings.Join(msgs, ", ")),
	}
}

func updateConditions(status *corev1.NamespaceStatus, newConditions []corev1.NamespaceCondition) (changed bool) {
	for _, t := range conditionTypes {
		nc := getCondition(newConditions, t)
		if nc == nil {
			nc = &corev1.NamespaceCondition{
				Type:               t,
				Status:             corev1.ConditionFalse,
				LastTransitionTime: metav1.Now(),
				Reason:             okReasons[t],
				Message:            okMessages[t],
			}
		}
		oc := getCondition(status.Conditions, t)
		switch {
		case oc == nil:
			status.Conditions = append(status.Conditions, *nc)
			changed = true
		case oc.Status != nc.Status || oc.Message != nc.Message || oc.Reason != nc.Reason:
			if oc.Status != nc.Status {
				oc.LastTransitionTime = metav1.Now()
			}
			oc.Status, oc.Reason, oc.Message = nc.Status, nc.Reason, nc.Message
			changed = true
		}
	}
	return changed
}

func getCondition(conditions []corev1.NamespaceCondition, t corev1.NamespaceConditionType) *corev1.NamespaceCondition {
	for i := range conditions {
		if conditions[i].Type == t {
			return &conditions[i]
		}
	}
	return nil
}
