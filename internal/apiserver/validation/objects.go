package validation

import (
	"fmt"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	unversionedvalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// endpointIP is upstream's check of an Endpoints or EndpointSlice address.
func endpointIP(ip string, path *field.Path) field.ErrorList {
	parsed := net.ParseIP(ip)
	switch {
	case parsed == nil:
		return field.ErrorList{field.Invalid(path, ip, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")}
	case parsed.IsUnspecified():
		return field.ErrorList{field.Invalid(path, ip, "may not be unspecified (0.0.0.0)")}
	case parsed.IsLoopback():
		return field.ErrorList{field.Invalid(path, ip, "may not be in the loopback range (127.0.0.0/8, ::1/128)")}
	case parsed.IsLinkLocalUnicast():
		return field.ErrorList{field.Invalid(path, ip, "may not be in the link-local range (169.254.0.0/16, fe80::/10)")}
	case parsed.IsLinkLocalMulticast():
		return field.ErrorList{field.Invalid(path, ip, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")}
	}
	return nil
}

// Endpoints validates hand-written and controller-written Endpoints.
func Endpoints(ep *corev1.Endpoints) field.ErrorList {
	var errs field.ErrorList
	for i, ss := range ep.Subsets {
		sp := field.NewPath("subsets").Index(i)
		for j, a := range ss.Addresses {
			errs = append(errs, endpointIP(a.IP, sp.Child("addresses").Index(j).Child("ip"))...)
		}
		for j, a := range ss.NotReadyAddresses {
			errs = append(errs, endpointIP(a.IP, sp.Child("notReadyAddresses").Index(j).Child("ip"))...)
		}
		names := sets.New[string]()
		for j, p := range ss.Ports {
			pp := sp.Child("ports").Index(j)
			if len(ss.Ports) > 1 && p.Name == "" {
				errs = append(errs, field.Required(pp.Child("name"), ""))
			} else if p.Name != "" {
				for _, msg := range utilvalidation.IsDNS1123Label(p.Name) {
					errs = append(errs, field.Invalid(pp.Child("name"), p.Name, msg))
				}
				if names.Has(p.Name) {
					errs = append(errs, field.Duplicate(pp.Child("name"), p.Name))
				}
				names.Insert(p.Name)
			}
			for _, msg := range utilvalidation.IsValidPortNum(int(p.Port)) {
				errs = append(errs, field.Invalid(pp.Child("port"), p.Port, msg))
			}
			if !sets.New(supportedProtocols...).Has(string(p.Protocol)) {
				errs = append(errs, field.NotSupported(pp.Child("protocol"), p.Protocol, supportedProtocols))
			}
		}
	}
	return errs
}

var supportedPathTypes = []string{string(networkingv1.PathTypeExact), string(networkingv1.PathTypeImplementationSpecific),
	string(networkingv1.PathTypePrefix)}

// Ingress validates a networking.k8s.io/v1 Ingress (extensions/v1beta1
// ones arrive here converted).
func Ingress(ing *networkingv1.Ingress) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	if len(ing.Spec.Rules) == 0 && ing.Spec.DefaultBackend == nil {
		errs = append(errs, field.Invalid(spec, ing.Spec, "either `defaultBackend` or `rules` must be specified"))
	}
	if ing.Spec.DefaultBackend != nil {
		errs = append(errs, ingressBackend(ing.Spec.DefaultBackend, spec.Child("defaultBackend"))...)
	}
	for i, r := range ing.Spec.Rules {
		rp := spec.Child("rules").Index(i)
		if r.Host != "" {
			errs = append(errs, ingressHost(r.Host, rp.Child("host"))...)
		}
		if r.HTTP == nil {
			continue
		}
		if len(r.HTTP.Paths) == 0 {
			errs = append(errs, field.Required(rp.Child("http", "paths"), ""))
		}
		for j, p := range r.HTTP.Paths {
			errs = append(errs, ingressPath(p, rp.Child("http", "paths").Index(j))...)
		}
	}
	for i, t := range ing.Spec.TLS {
		for j, h := range t.Hosts {
			errs = append(errs, ingressHost(h, spec.Child("tls").Index(i).Child("hosts").Index(j))...)
		}
	}
	return errs
}

func ingressHost(host string, path *field.Path) field.ErrorList {
	if net.ParseIP(host) != nil {
		return field.ErrorList{field.Invalid(path, host, "must be a DNS name, not an IP address")}
	}
	var msgs []string
	if strings.Contains(host, "*") {
		msgs = utilvalidation.IsWildcardDNS1123Subdomain(host)
	} else {
		msgs = utilvalidation.IsDNS1123Subdomain(host)
	}
	var errs field.ErrorList
	for _, msg := range msgs {
		errs = append(errs, field.Invalid(path, host, msg))
	}
	return errs
}

func ingressPath(p networkingv1.HTTPIngressPath, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case p.PathType == nil:
		errs = append(errs, field.Required(path.Child("pathType"), "pathType must be specified"))
	case !sets.New(supportedPathTypes...).Has(string(*p.PathType)):
		errs = append(errs, field.NotSupported(path.Child("pathType"), *p.PathType, supportedPathTypes))
	case *p.PathType != networkingv1.PathTypeImplementationSpecific || p.Path != "":
		if !strings.HasPrefix(p.Path, "/") {
			errs = append(errs, field.Invalid(path.Child("path"), p.Path, "must be an absolute path"))
		}
	}
	return append(errs, ingressBackend(&p.Backend, path.Child("backend"))...)
}

func ingressBackend(b *networkingv1.IngressBackend, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case b.Service != nil && b.Resource != nil:
		errs = append(errs, field.Invalid(path, "", "cannot set both resource and service backends"))
	case b.Service == nil && b.Resource == nil:
		errs = append(errs, field.Invalid(path, "", "resource or service backend is required"))
	case b.Service != nil:
		for _, msg := range utilvalidation.IsDNS1035Label(b.Service.Name) {
			errs = append(errs, field.Invalid(path.Child("service", "name"), b.Service.Name, msg))
		}
		port := path.Child("service", "port")
		switch {
		case b.Service.Port.Name != "" && b.Service.Port.Number != 0:
			errs = append(errs, field.Invalid(port, b.Service.Port, "cannot set both port name & port number"))
		case b.Service.Port.Name != "":
			for _, msg := range utilvalidation.IsValidPortName(b.Service.Port.Name) {
				errs = append(errs, field.Invalid(port.Child("name"), b.Service.Port.Name, msg))
			}
		default:
			for _, msg := range utilvalidation.IsValidPortNum(int(b.Service.Port.Number)) {
				errs = append(errs, field.Invalid(port.Child("number"), b.Service.Port.Number, msg))
			}
		}
	}
	return errs
}

// ResourceQuota validates the hard limits: known names, no negatives.
func ResourceQuota(q *corev1.ResourceQuota) field.ErrorList {
	var errs field.ErrorList
	hard := field.NewPath("spec", "hard")
	for name, v := range q.Spec.Hard {
		errs = append(errs, quantity(v, hard.Key(string(name)))...)
		for _, msg := range utilvalidation.IsQualifiedName(string(name)) {
			errs = append(errs, field.Invalid(hard.Key(string(name)), name, msg))
		}
	}
	return errs
}

func quantity(v resource.Quantity, path *field.Path) field.ErrorList {
	if v.Sign() < 0 {
		return field.ErrorList{field.Invalid(path, v.String(), "must be greater than or equal to 0")}
	}
	return nil
}

// LimitRange validates limit items: known types, non-negative values, and
// min <= defaultRequest <= default <= max per resource.
func LimitRange(lr *corev1.LimitRange) field.ErrorList {
	var errs field.ErrorList
	types := []string{string(corev1.LimitTypeContainer), string(corev1.LimitTypePersistentVolumeClaim), string(corev1.LimitTypePod)}
	for i, item := range lr.Spec.Limits {
		ip := field.NewPath("spec", "limits").Index(i)
		if !sets.New(types...).Has(string(item.Type)) {
			errs = append(errs, field.NotSupported(ip.Child("type"), item.Type, types))
		}
		for _, m := range []struct {
			name string
			list corev1.ResourceList
		}{{"max", item.Max}, {"min", item.Min}, {"default", item.Default}, {"defaultRequest", item.DefaultRequest}} {
			for res, v := range m.list {
				errs = append(errs, quantity(v, ip.Child(m.name).Key(string(res)))...)
			}
		}
		for res, min := range item.Min {
			if max, ok := item.Max[res]; ok && min.Cmp(max) > 0 {
				errs = append(errs, field.Invalid(ip.Child("min").Key(string(res)), min.String(),
					fmt.Sprintf("min value %s is greater than max value %s", min.String(), max.String())))
			}
		}
		for res, def := range item.Default {
			if max, ok := item.Max[res]; ok && def.Cmp(max) > 0 {
				errs = append(errs, field.Invalid(ip.Child("default").Key(string(res)), def.String(),
					fmt.Sprintf("default value %s is greater than max value %s", def.String(), max.String())))
			}
		}
		for res, req := range item.DefaultRequest {
			if def, ok := item.Default[res]; ok && req.Cmp(def) > 0 {
				errs = append(errs, field.Invalid(ip.Child("defaultRequest").Key(string(res)), req.String(),
					fmt.Sprintf("default request value %s is greater than default limit value %s", req.String(), def.String())))
			}
		}
	}
	return errs
}

// Pod validates what the networking depends on: containers with names,
// images and valid ports.
func Pod(p *corev1.Pod) field.ErrorList {
	return podSpec(&p.Spec, field.NewPath("spec"))
}

func podSpec(ps *corev1.PodSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(ps.Containers) == 0 {
		errs = append(errs, field.Required(path.Child("containers"), ""))
	}
	names := sets.New[string]()
	for i, c := range ps.Containers {
		cp := path.Child("containers").Index(i)
		if c.Name == "" {
			errs = append(errs, field.Required(cp.Child("name"), ""))
		} else {
			for _, msg := range utilvalidation.IsDNS1123Label(c.Name) {
				errs = append(errs, field.Invalid(cp.Child("name"), c.Name, msg))
			}
			if names.Has(c.Name) {
				errs = append(errs, field.Duplicate(cp.Child("name"), c.Name))
			}
			names.Insert(c.Name)
		}
		if strings.TrimSpace(c.Image) == "" {
			errs = append(errs, field.Required(cp.Child("image"), ""))
		}
		for j, port := range c.Ports {
			for _, msg := range utilvalidation.IsValidPortNum(int(port.ContainerPort)) {
				errs = append(errs, field.Invalid(cp.Child("ports").Index(j).Child("containerPort"), port.ContainerPort, msg))
			}
		}
	}
	restart := []string{string(corev1.RestartPolicyAlways), string(corev1.RestartPolicyNever), string(corev1.RestartPolicyOnFailure)}
	if !sets.New(restart...).Has(string(ps.RestartPolicy)) {
		errs = append(errs, field.NotSupported(path.Child("restartPolicy"), ps.RestartPolicy, restart))
	}
	return errs
}

// ReplicationController validates the replica count, that the selector
// selects the template's pods, and the template's pod spec.
func ReplicationController(rc *corev1.ReplicationController) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	if rc.Spec.Replicas != nil && *rc.Spec.Replicas < 0 {
		errs = append(errs, field.Invalid(spec.Child("replicas"), *rc.Spec.Replicas, "must be greater than or equal to 0"))
	}
	if len(rc.Spec.Selector) == 0 {
		errs = append(errs, field.Required(spec.Child("selector"), ""))
	}
	errs = append(errs, unversionedvalidation.ValidateLabels(rc.Spec.Selector, spec.Child("selector"))...)
	if rc.Spec.Template == nil {
		return append(errs, field.Required(spec.Child("template"), ""))
	}
	if !labels.SelectorFromSet(rc.Spec.Selector).Matches(labels.Set(rc.Spec.Template.Labels)) {
		errs = append(errs, field.Invalid(spec.Child("template", "metadata", "labels"), rc.Spec.Template.Labels,
			"`selector` does not match template `labels`"))
	}
	return append(errs, podSpec(&rc.Spec.Template.Spec, spec.Child("template", "spec"))...)
}
