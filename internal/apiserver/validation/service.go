// Package validation checks objects as kube-apiserver's validation does, with
// the same field paths and messages, so a refused request reads the way a
// Kubernetes user knows (`Service "x" is invalid: spec.ports[0].port:
// Invalid value: 0: must be between 1 and 65535, inclusive`). It is pure:
// objects in, field errors out.
package validation

import (
	"fmt"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	unversionedvalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var supportedProtocols = []string{string(corev1.ProtocolSCTP), string(corev1.ProtocolTCP), string(corev1.ProtocolUDP)}

var supportedServiceTypes = []string{string(corev1.ServiceTypeClusterIP), string(corev1.ServiceTypeExternalName),
	string(corev1.ServiceTypeLoadBalancer), string(corev1.ServiceTypeNodePort)}

// Service validates a Service's spec.
func Service(svc *corev1.Service) field.ErrorList {
	var errs field.ErrorList
	sp := &svc.Spec
	specPath := field.NewPath("spec")
	if !sets.New(supportedServiceTypes...).Has(string(sp.Type)) {
		errs = append(errs, field.NotSupported(specPath.Child("type"), sp.Type, supportedServiceTypes))
	}
	headless := sp.ClusterIP == corev1.ClusterIPNone
	if len(sp.Ports) == 0 && !headless && sp.Type != corev1.ServiceTypeExternalName {
		errs = append(errs, field.Required(specPath.Child("ports"), ""))
	}
	errs = append(errs, servicePorts(svc, specPath.Child("ports"))...)
	errs = append(errs, clusterIPRules(svc, specPath)...)
	if sp.Type == corev1.ServiceTypeExternalName {
		if sp.ExternalName == "" {
			errs = append(errs, field.Required(specPath.Child("externalName"), ""))
		} else {
			for _, msg := range utilvalidation.IsDNS1123Subdomain(strings.TrimSuffix(sp.ExternalName, ".")) {
				errs = append(errs, field.Invalid(specPath.Child("externalName"), sp.ExternalName, msg))
			}
		}
	}
	errs = append(errs, unversionedvalidation.ValidateLabels(sp.Selector, specPath.Child("selector"))...)
	errs = append(errs, sessionAffinity(sp, specPath)...)
	for i, ip := range sp.ExternalIPs {
		if net.ParseIP(ip) == nil {
			errs = append(errs, field.Invalid(specPath.Child("externalIPs").Index(i), ip, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
		}
	}
	if sp.ExternalTrafficPolicy != "" && sp.Type != corev1.ServiceTypeNodePort && sp.Type != corev1.ServiceTypeLoadBalancer {
		errs = append(errs, field.Invalid(specPath.Child("externalTrafficPolicy"), sp.ExternalTrafficPolicy,
			"may only be set for externally-accessible services"))
	}
	return errs
}

func servicePorts(svc *corev1.Service, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := sets.New[string]()
	type key struct {
		port  int32
		proto corev1.Protocol
	}
	seen := map[key]bool{}
	for i, p := range svc.Spec.Ports {
		pp := path.Index(i)
		if len(svc.Spec.Ports) > 1 && p.Name == "" {
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
		errs = append(errs, targetPort(p.TargetPort, pp.Child("targetPort"))...)
		if p.NodePort != 0 && svc.Spec.Type != corev1.ServiceTypeNodePort && svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
			errs = append(errs, field.Forbidden(pp.Child("nodePort"), fmt.Sprintf("may not be used when `type` is '%s'", svc.Spec.Type)))
		}
		k := key{p.Port, p.Protocol}
		if seen[k] {
			errs = append(errs, field.Duplicate(pp, fmt.Sprintf("%d/%s", p.Port, p.Protocol)))
		}
		seen[k] = true
	}
	return errs
}

func targetPort(tp intstr.IntOrString, path *field.Path) field.ErrorList {
	if tp.Type == intstr.String {
		var errs field.ErrorList
		for _, msg := range utilvalidation.IsValidPortName(tp.StrVal) {
			errs = append(errs, field.Invalid(path, tp.StrVal, msg))
		}
		return errs
	}
	var errs field.ErrorList
	for _, msg := range utilvalidation.IsValidPortNum(int(tp.IntVal)) {
		errs = append(errs, field.Invalid(path, tp.IntVal, msg))
	}
	return errs
}

func clusterIPRules(svc *corev1.Service, specPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	sp := &svc.Spec
	ipsPath := specPath.Child("clusterIPs")
	if sp.Type == corev1.ServiceTypeExternalName {
		if sp.ClusterIP != "" {
			errs = append(errs, field.Forbidden(ipsPath, "may not be set for ExternalName services"))
		}
		return errs
	}
	if sp.ClusterIP == corev1.ClusterIPNone {
		switch sp.Type {
		case corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
			errs = append(errs, field.Invalid(ipsPath.Index(0), sp.ClusterIP,
				fmt.Sprintf("may not be set to 'None' for %s services", sp.Type)))
		}
		return errs
	}
	if sp.ClusterIP != "" && net.ParseIP(sp.ClusterIP) == nil {
		errs = append(errs, field.Invalid(ipsPath.Index(0), sp.ClusterIP, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
	}
	if len(sp.ClusterIPs) > 0 && sp.ClusterIP != "" && sp.ClusterIPs[0] != sp.ClusterIP {
		errs = append(errs, field.Invalid(ipsPath, sp.ClusterIPs, "element [0] must match clusterIP"))
	}
	return errs
}

func sessionAffinity(sp *corev1.ServiceSpec, specPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	supported := []string{string(corev1.ServiceAffinityClientIP), string(corev1.ServiceAffinityNone)}
	if !sets.New(supported...).Has(string(sp.SessionAffinity)) {
		errs = append(errs, field.NotSupported(specPath.Child("sessionAffinity"), sp.SessionAffinity, supported))
	}
	if sp.SessionAffinity == corev1.ServiceAffinityClientIP && sp.SessionAffinityConfig != nil &&
		sp.SessionAffinityConfig.ClientIP != nil && sp.SessionAffinityConfig.ClientIP.TimeoutSeconds != nil {
		t := *sp.SessionAffinityConfig.ClientIP.TimeoutSeconds
		if t <= 0 || t > maxClientIPAffinitySeconds {
			errs = append(errs, field.Invalid(specPath.Child("sessionAffinityConfig").Child("clientIP").Child("timeoutSeconds"), t,
				fmt.Sprintf("must be greater than 0 and less than %d", maxClientIPAffinitySeconds)))
		}
	}
	return errs
}

// maxClientIPAffinitySeconds is upstream's limit on the ClientIP affinity
// timeout (one day).
const maxClientIPAffinitySeconds = 86400
