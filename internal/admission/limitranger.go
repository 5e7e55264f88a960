package admission

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apiserver/pkg/admission"
	corelisters "k8s.io/client-go/listers/core/v1"
)

// LimitRanger applies a namespace's LimitRanges to pods (and claims): it
// fills in default requests and limits, then enforces min, max and
// maxLimitRequestRatio per container and per pod, with upstream's messages.
type LimitRanger struct {
	*admission.Handler
	Ranges corelisters.LimitRangeLister
}

// NewLimitRanger returns the plugin reading ranges from lister.
func NewLimitRanger(lister corelisters.LimitRangeLister) *LimitRanger {
	return &LimitRanger{Handler: admission.NewHandler(admission.Create, admission.Update), Ranges: lister}
}

func (l *LimitRanger) ranges(a admission.Attributes) ([]*corev1.LimitRange, bool) {
	if a.GetSubresource() != "" || a.GetOperation() != admission.Create {
		return nil, false
	}
	r := a.GetResource().Resource
	if r != "pods" && r != "persistentvolumeclaims" {
		return nil, false
	}
	items, err := l.Ranges.LimitRanges(a.GetNamespace()).List(labels.Everything())
	if err != nil || len(items) == 0 {
		return nil, false
	}
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	return items, true
}

// Admit fills in container defaults from the LimitRanges of type Container.
func (l *LimitRanger) Admit(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	items, ok := l.ranges(a)
	if !ok {
		return nil
	}
	pod, isPod := a.GetObject().(*corev1.Pod)
	if !isPod {
		return nil
	}
	for _, lr := range items {
		for _, item := range lr.Spec.Limits {
			if item.Type != corev1.LimitTypeContainer {
				continue
			}
			limits, requests := defaultsOf(item)
			for i := range pod.Spec.Containers {
				applyDefaults(&pod.Spec.Containers[i], limits, requests)
			}
			for i := range pod.Spec.InitContainers {
				applyDefaults(&pod.Spec.InitContainers[i], limits, requests)
			}
		}
	}
	return nil
}

// defaultsOf is upstream's LimitRange defaulting: a default limit falls
// back to max, a default request to the default limit, then to min.
func defaultsOf(item corev1.LimitRangeItem) (limits, requests corev1.ResourceList) {
	limits, requests = corev1.ResourceList{}, corev1.ResourceList{}
	for r, q := range item.Max {
		limits[r] = q
	}
	for r, q := range item.Default {
		limits[r] = q
	}
	for r, q := range limits {
		requests[r] = q
	}
	for r, q := range item.Min {
		if _, ok := requests[r]; !ok {
			requests[r] = q
		}
	}
	for r, q := range item.DefaultRequest {
		requests[r] = q
	}
	return limits, requests
}

func applyDefaults(c *corev1.Container, limits, requests corev1.ResourceList) {
	if c.Resources.Limits == nil && len(limits) > 0 {
		c.Resources.Limits = corev1.ResourceList{}
	}
	for r, q := range limits {
		if _, ok := c.Resources.Limits[r]; !ok {
			c.Resources.Limits[r] = q.DeepCopy()
		}
	}
	if c.Resources.Requests == nil && len(requests) > 0 {
		c.Resources.Requests = corev1.ResourceList{}
	}
	// A container that set its own limit already has it as its request
	// (pod defaulting); what is still missing comes from the range.
	for r, q := range requests {
		if _, ok := c.Resources.Requests[r]; !ok {
			c.Resources.Requests[r] = q.DeepCopy()
		}
	}
}

// Validate enforces min, max and maxLimitRequestRatio.
func (l *LimitRanger) Validate(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	items, ok := l.ranges(a)
	if !ok {
		return nil
	}
	var errs []error
	for _, lr := range items {
		for _, item := range lr.Spec.Limits {
			switch obj := a.GetObject().(type) {
			case *corev1.Pod:
				errs = append(errs, checkPod(obj, item)...)
			case *corev1.PersistentVolumeClaim:
				if item.Type == corev1.LimitTypePersistentVolumeClaim {
					errs = append(errs, checkValues(item, string(item.Type),
						obj.Spec.Resources.Requests, obj.Spec.Resources.Limits)...)
				}
			}
		}
	}
	if len(errs) > 0 {
		return admission.NewForbidden(a, utilerrors.NewAggregate(errs))
	}
	return nil
}

func checkPod(pod *corev1.Pod, item corev1.LimitRangeItem) []error {
	switch item.Type {
	case corev1.LimitTypeContainer:
		var errs []error
		for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
			errs = append(errs, checkValues(item, "Container", c.Resources.Requests, c.Resources.Limits)...)
		}
		return errs
	case corev1.LimitTypePod:
		req, lim := corev1.ResourceList{}, corev1.ResourceList{}
		for _, c := range pod.Spec.Containers {
			sum(req, c.Resources.Requests)
			sum(lim, c.Resources.Limits)
		}
		return checkValues(item, "Pod", req, lim)
	}
	return nil
}

func sum(into, add corev1.ResourceList) {
	for r, q := range add {
		cur := into[r]
		cur.Add(q)
		into[r] = cur
	}
}

// checkValues compares requests and limits with one LimitRange item, in
// upstream's words.
func checkValues(item corev1.LimitRangeItem, kind string, req, lim corev1.ResourceList) []error {
	var errs []error
	for _, r := range sortedNames(item.Min) {
		min := item.Min[r]
		q, ok := req[r]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("minimum %s usage per %s is %s.  No request is specified", r, kind, min.String()))
		case q.Cmp(min) < 0:
			errs = append(errs, fmt.Errorf("minimum %s usage per %s is %s, but request is %s", r, kind, min.String(), q.String()))
		}
	}
	for _, r := range sortedNames(item.Max) {
		max := item.Max[r]
		q, ok := lim[r]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("maximum %s usage per %s is %s.  No limit is specified", r, kind, max.String()))
		case q.Cmp(max) > 0:
			errs = append(errs, fmt.Errorf("maximum %s usage per %s is %s, but limit is %s", r, kind, max.String(), q.String()))
		}
	}
	for _, r := range sortedNames(item.MaxLimitRequestRatio) {
		ratio := item.MaxLimitRequestRatio[r]
		l, lok := lim[r]
		q, rok := req[r]
		if !lok || !rok || q.IsZero() {
			continue
		}
		got := float64(l.MilliValue()) / float64(q.MilliValue())
		if got > float64(ratio.MilliValue())/1000 {
			errs = append(errs, fmt.Errorf("%s max limit to request ratio per %s is %s, but provided ratio is %f", r, kind, ratio.String(), got))
		}
	}
	return errs
}

func sortedNames(l corev1.ResourceList) []corev1.ResourceName {
	out := make([]corev1.ResourceName, 0, len(l))
	for r := range l {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

var (
	_ admission.MutationInterface   = (*LimitRanger)(nil)
	_ admission.ValidationInterface = (*LimitRanger)(nil)
)
