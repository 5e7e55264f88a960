// Package admission holds Wharf's admission plugins that upstream keeps in
// k8s.io/kubernetes (not importable): DefaultIngressClass and LimitRanger.
// NamespaceLifecycle and ResourceQuota come from k8s.io/apiserver as they
// are. The server chains them in upstream's order.
package admission

import (
	"context"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apiserver/pkg/admission"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
)

// legacyClassAnnotation is the pre-IngressClass way of naming a class; an
// Ingress that uses it is left alone, as upstream does.
const legacyClassAnnotation = "kubernetes.io/ingress.class"

// DefaultIngressClass gives an Ingress created without a class the
// IngressClass marked default (ingressclass.kubernetes.io/is-default-class),
// the newest one when several are marked.
type DefaultIngressClass struct {
	*admission.Handler
	Classes networkinglisters.IngressClassLister
}

// NewDefaultIngressClass returns the plugin reading classes from lister.
func NewDefaultIngressClass(lister networkinglisters.IngressClassLister) *DefaultIngressClass {
	return &DefaultIngressClass{Handler: admission.NewHandler(admission.Create), Classes: lister}
}

// Admit implements admission.MutationInterface.
func (p *DefaultIngressClass) Admit(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	if a.GetResource().Resource != "ingresses" || a.GetSubresource() != "" {
		return nil
	}
	ing, ok := a.GetObject().(*networkingv1.Ingress)
	if !ok || ing.Spec.IngressClassName != nil {
		return nil
	}
	if _, ok := ing.Annotations[legacyClassAnnotation]; ok {
		return nil
	}
	def, err := DefaultClass(p.Classes)
	if err != nil || def == nil {
		return err
	}
	name := def.Name
	ing.Spec.IngressClassName = &name
	return nil
}

// DefaultClass returns the IngressClass marked default, the newest of them
// when there are several, or nil.
func DefaultClass(lister networkinglisters.IngressClassLister) (*networkingv1.IngressClass, error) {
	classes, err := lister.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var best *networkingv1.IngressClass
	for _, c := range classes {
		if c.Annotations[networkingv1.AnnotationIsDefaultIngressClass] != "true" {
			continue
		}
		if best == nil || c.CreationTimestamp.After(best.CreationTimestamp.Time) ||
			(c.CreationTimestamp.Equal(&best.CreationTimestamp) && c.Name < best.Name) {
			best = c
		}
	}
	return best, nil
}

var _ admission.MutationInterface = (*DefaultIngressClass)(nil)
