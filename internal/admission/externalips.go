package admission

import (
	"context"
	"fmt"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/admission"
)

// ExternalIPs refuses service externalIPs outside the allowed ranges
// (--allowed-external-ip-cidrs; none by default, as upstream's
// DenyServiceExternalIPs), because an external IP captures traffic for that
// address from every pod and node, another tenant's included
// (CVE-2020-8554). Addresses a service already had stay allowed.
type ExternalIPs struct {
	*admission.Handler
	Allowed []*net.IPNet
}

// NewExternalIPs parses the allowed CIDRs.
func NewExternalIPs(cidrs []string) (*ExternalIPs, error) {
	p := &ExternalIPs{Handler: admission.NewHandler(admission.Create, admission.Update)}
	for _, c := range cidrs {
		if strings.TrimSpace(c) == "" {
			continue
		}
		_, n, err := net.ParseCIDR(strings.TrimSpace(c))
		if err != nil {
			return nil, fmt.Errorf("--allowed-external-ip-cidrs: %w", err)
		}
		p.Allowed = append(p.Allowed, n)
	}
	return p, nil
}

// Validate implements admission.ValidationInterface.
func (p *ExternalIPs) Validate(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	if a.GetResource().Resource != "services" || a.GetSubresource() != "" {
		return nil
	}
	svc, ok := a.GetObject().(*corev1.Service)
	if !ok || len(svc.Spec.ExternalIPs) == 0 {
		return nil
	}
	had := map[string]bool{}
	if old, ok := a.GetOldObject().(*corev1.Service); ok {
		for _, ip := range old.Spec.ExternalIPs {
			had[ip] = true
		}
	}
	var errs field.ErrorList
	for i, ip := range svc.Spec.ExternalIPs {
		if had[ip] || p.allowed(ip) {
			continue
		}
		path := field.NewPath("spec", "externalIPs").Index(i)
		if len(p.Allowed) == 0 {
			errs = append(errs, field.Forbidden(path, "use of external IPs is denied by admission control"))
		} else {
			errs = append(errs, field.Forbidden(path, fmt.Sprintf("%s is not in the allowed external IP ranges %s", ip, p.ranges())))
		}
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Service").GroupKind(), svc.Name, errs)
	}
	return nil
}

func (p *ExternalIPs) allowed(ip string) bool {
	parsed := net.ParseIP(ip)
	for _, n := range p.Allowed {
		if parsed != nil && n.Contains(parsed) {
			return true
		}
	}
	return false
}

func (p *ExternalIPs) ranges() string {
	var out []string
	for _, n := range p.Allowed {
		out = append(out, n.String())
	}
	return strings.Join(out, ", ")
}

var _ admission.ValidationInterface = (*ExternalIPs)(nil)
