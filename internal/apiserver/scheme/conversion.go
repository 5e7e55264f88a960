package scheme

import (
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	extv1beta1 "k8s.io/api/extensions/v1beta1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// registerIngressConversions converts extensions/v1beta1 Ingress to and from
// networking.k8s.io/v1, the version Wharf stores, with upstream's rules:
// serviceName/servicePort become service.name and service.port.number or
// .name, spec.backend becomes spec.defaultBackend.
func registerIngressConversions(s *runtime.Scheme) error {
	if err := s.AddConversionFunc((*extv1beta1.Ingress)(nil), (*networkingv1.Ingress)(nil),
		func(a, b interface{}, _ conversion.Scope) error {
			IngressToV1(a.(*extv1beta1.Ingress), b.(*networkingv1.Ingress))
			return nil
		}); err != nil {
		return err
	}
	if err := s.AddConversionFunc((*networkingv1.Ingress)(nil), (*extv1beta1.Ingress)(nil),
		func(a, b interface{}, _ conversion.Scope) error {
			IngressFromV1(a.(*networkingv1.Ingress), b.(*extv1beta1.Ingress))
			return nil
		}); err != nil {
		return err
	}
	if err := s.AddConversionFunc((*extv1beta1.IngressList)(nil), (*networkingv1.IngressList)(nil),
		func(a, b interface{}, _ conversion.Scope) error {
			in, out := a.(*extv1beta1.IngressList), b.(*networkingv1.IngressList)
			out.ListMeta = in.ListMeta
			out.Items = make([]networkingv1.Ingress, len(in.Items))
			for i := range in.Items {
				IngressToV1(&in.Items[i], &out.Items[i])
			}
			return nil
		}); err != nil {
		return err
	}
	return s.AddConversionFunc((*networkingv1.IngressList)(nil), (*extv1beta1.IngressList)(nil),
		func(a, b interface{}, _ conversion.Scope) error {
			in, out := a.(*networkingv1.IngressList), b.(*extv1beta1.IngressList)
			out.ListMeta = in.ListMeta
			out.Items = make([]extv1beta1.Ingress, len(in.Items))
			for i := range in.Items {
				IngressFromV1(&in.Items[i], &out.Items[i])
			}
			return nil
		})
}

// IngressToV1 converts an extensions/v1beta1 Ingress to networking.k8s.io/v1.
func IngressToV1(in *extv1beta1.Ingress, out *networkingv1.Ingress) {
	out.ObjectMeta = *in.ObjectMeta.DeepCopy()
	out.Spec = networkingv1.IngressSpec{IngressClassName: in.Spec.IngressClassName}
	if in.Spec.Backend != nil {
		out.Spec.DefaultBackend = backendToV1(in.Spec.Backend)
	}
	for _, t := range in.Spec.TLS {
		out.Spec.TLS = append(out.Spec.TLS, networkingv1.IngressTLS{Hosts: t.Hosts, SecretName: t.SecretName})
	}
	for _, r := range in.Spec.Rules {
		rule := networkingv1.IngressRule{Host: r.Host}
		if r.HTTP != nil {
			rule.HTTP = &networkingv1.HTTPIngressRuleValue{}
			for _, p := range r.HTTP.Paths {
				path := networkingv1.HTTPIngressPath{Path: p.Path, Backend: *backendToV1(&p.Backend)}
				if p.PathType != nil {
					pt := networkingv1.PathType(*p.PathType)
					path.PathType = &pt
				}
				rule.HTTP.Paths = append(rule.HTTP.Paths, path)
			}
		}
		out.Spec.Rules = append(out.Spec.Rules, rule)
	}
	out.Status = networkingv1.IngressStatus{}
	for _, lb := range in.Status.LoadBalancer.Ingress {
		e := networkingv1.IngressLoadBalancerIngress{IP: lb.IP, Hostname: lb.Hostname}
		for _, p := range lb.Ports {
			e.Ports = append(e.Ports, networkingv1.IngressPortStatus{Port: p.Port, Protocol: p.Protocol, Error: p.Error})
		}
		out.Status.LoadBalancer.Ingress = append(out.Status.LoadBalancer.Ingress, e)
	}
}

// IngressFromV1 converts a networking.k8s.io/v1 Ingress to extensions/v1beta1.
func IngressFromV1(in *networkingv1.Ingress, out *extv1beta1.Ingress) {
	out.ObjectMeta = *in.ObjectMeta.DeepCopy()
	out.Spec = extv1beta1.IngressSpec{IngressClassName: in.Spec.IngressClassName}
	if in.Spec.DefaultBackend != nil {
		out.Spec.Backend = backendFromV1(in.Spec.DefaultBackend)
	}
	for _, t := range in.Spec.TLS {
		out.Spec.TLS = append(out.Spec.TLS, extv1beta1.IngressTLS{Hosts: t.Hosts, SecretName: t.SecretName})
	}
	for _, r := range in.Spec.Rules {
		rule := extv1beta1.IngressRule{Host: r.Host}
		if r.HTTP != nil {
			rule.HTTP = &extv1beta1.HTTPIngressRuleValue{}
			for _, p := range r.HTTP.Paths {
				path := extv1beta1.HTTPIngressPath{Path: p.Path, Backend: *backendFromV1(&p.Backend)}
				if p.PathType != nil {
					pt := extv1beta1.PathType(*p.PathType)
					path.PathType = &pt
				}
				rule.HTTP.Paths = append(rule.HTTP.Paths, path)
			}
		}
		out.Spec.Rules = append(out.Spec.Rules, rule)
	}
	out.Status = extv1beta1.IngressStatus{}
	for _, lb := range in.Status.LoadBalancer.Ingress {
		e := extv1beta1.IngressLoadBalancerIngress{IP: lb.IP, Hostname: lb.Hostname}
		for _, p := range lb.Ports {
			e.Ports = append(e.Ports, extv1beta1.IngressPortStatus{Port: p.Port, Protocol: p.Protocol, Error: p.Error})
		}
		out.Status.LoadBalancer.Ingress = append(out.Status.LoadBalancer.Ingress, e)
	}
}

func backendToV1(in *extv1beta1.IngressBackend) *networkingv1.IngressBackend {
	out := &networkingv1.IngressBackend{Resource: in.Resource}
	if in.ServiceName != "" {
		svc := &networkingv1.IngressServiceBackend{Name: in.ServiceName}
		if in.ServicePort.Type == intstr.String {
			svc.Port.Name = in.ServicePort.StrVal
		} else {
			svc.Port.Number = in.ServicePort.IntVal
		}
		out.Service = svc
	}
	return out
}

func backendFromV1(in *networkingv1.IngressBackend) *extv1beta1.IngressBackend {
	out := &extv1beta1.IngressBackend{Resource: in.Resource}
	if in.Service != nil {
		out.ServiceName = in.Service.Name
		if in.Service.Port.Name != "" {
			out.ServicePort = intstr.FromString(in.Service.Port.Name)
		} else {
			out.ServicePort = intstr.FromInt32(in.Service.Port.Number)
		}
	}
	return out
}

// registerEventConversions serves events.k8s.io/v1 Events over the core/v1
// Event storage, field for field as upstream maps them.
func registerEventConversions(s *runtime.Scheme) error {
	if err := s.AddConversionFunc((*eventsv1.Event)(nil), (*corev1.Event)(nil),
		func(a, b interface{}, _ conversion.Scope) error {
			EventToCore(a.(*eventsv1.Event), b.(*corev1.Event))
			return nil
		}); err != nil {
		return err
	}
	if err := s.AddConversionFunc((*corev1.Event)(nil), (*eventsv1.Event)(nil),
		func(a, b interface{}, _ conversion.Scope) error {
			EventFromCore(a.(*corev1.Event), b.(*eventsv1.Event))
			return nil
		}); err != nil {
		return err
	}
	if err := s.AddConversionFunc((*eventsv1.EventList)(nil), (*corev1.EventList)(nil),
		func(a, b interface{}, _ conversion.Scope) error {
			in, out := a.(*eventsv1.EventList), b.(*corev1.EventList)
			out.ListMeta = in.ListMeta
			out.Items = make([]corev1.Event, len(in.Items))
			for i := range in.Items {
				EventToCore(&in.Items[i], &out.Items[i])
			}
			return nil
		}); err != nil {
		return err
	}
	return s.AddConversionFunc((*corev1.EventList)(nil), (*eventsv1.EventList)(nil),
		func(a, b interface{}, _ conversion.Scope) error {
			in, out := a.(*corev1.EventList), b.(*eventsv1.EventList)
			out.ListMeta = in.ListMeta
			out.Items = make([]eventsv1.Event, len(in.Items))
			for i := range in.Items {
				EventFromCore(&in.Items[i], &out.Items[i])
			}
			return nil
		})
}

// EventToCore converts an events.k8s.io/v1 Event to core/v1.
func EventToCore(in *eventsv1.Event, out *corev1.Event) {
	*out = corev1.Event{
		ObjectMeta:          *in.ObjectMeta.DeepCopy(),
		InvolvedObject:      in.Regarding,
		Reason:              in.Reason,
		Message:             in.Note,
		FirstTimestamp:      in.DeprecatedFirstTimestamp,
		LastTimestamp:       in.DeprecatedLastTimestamp,
		Count:               in.DeprecatedCount,
		Type:                in.Type,
		EventTime:           in.EventTime,
		Action:              in.Action,
		Related:             in.Related,
		ReportingController: in.ReportingController,
		ReportingInstance:   in.ReportingInstance,
	}
	out.Source = in.DeprecatedSource
	if in.Series != nil {
		out.Series = &corev1.EventSeries{Count: in.Series.Count, LastObservedTime: in.Series.LastObservedTime}
	}
}

// EventFromCore converts a core/v1 Event to events.k8s.io/v1.
func EventFromCore(in *corev1.Event, out *eventsv1.Event) {
	*out = eventsv1.Event{
		ObjectMeta:               *in.ObjectMeta.DeepCopy(),
		EventTime:                in.EventTime,
		ReportingController:      in.ReportingController,
		ReportingInstance:        in.ReportingInstance,
		DeprecatedSource:         in.Source,
		Action:                   in.Action,
		Reason:                   in.Reason,
		Regarding:                in.InvolvedObject,
		Related:                  in.Related,
		Note:                     in.Message,
		Type:                     in.Type,
		DeprecatedFirstTimestamp: in.FirstTimestamp,
		DeprecatedLastTimestamp:  in.LastTimestamp,
		DeprecatedCount:          in.Count,
	}
	if in.Series != nil {
		out.Series = &eventsv1.EventSeries{Count: in.Series.Count, LastObservedTime: in.Series.LastObservedTime}
	}
}
