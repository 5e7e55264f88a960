package scheme

import (
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	extv1beta1 "k8s.io/api/extensions/v1beta1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// registerDefaults installs upstream's defaulting for the kinds the
// networking and the chapter use. Defaults run when an external object is
// decoded, as in kube-apiserver, so a stored object always has them.
func registerDefaults(s *runtime.Scheme) {
	s.AddTypeDefaultingFunc(&corev1.Service{}, func(o interface{}) { DefaultService(o.(*corev1.Service)) })
	s.AddTypeDefaultingFunc(&corev1.Pod{}, func(o interface{}) { DefaultPodSpec(&o.(*corev1.Pod).Spec) })
	s.AddTypeDefaultingFunc(&corev1.ReplicationController{}, func(o interface{}) {
		DefaultReplicationController(o.(*corev1.ReplicationController))
	})
	s.AddTypeDefaultingFunc(&corev1.Endpoints{}, func(o interface{}) { defaultEndpoints(o.(*corev1.Endpoints)) })
	s.AddTypeDefaultingFunc(&discoveryv1.EndpointSlice{}, func(o interface{}) {
		for i := range o.(*discoveryv1.EndpointSlice).Ports {
			p := &o.(*discoveryv1.EndpointSlice).Ports[i]
			if p.Protocol == nil {
				tcp := corev1.ProtocolTCP
				p.Protocol = &tcp
			}
		}
	})
	s.AddTypeDefaultingFunc(&appsv1.ReplicaSet{}, func(o interface{}) {
		rs := o.(*appsv1.ReplicaSet)
		defaultReplicas(&rs.Spec.Replicas)
		DefaultPodSpec(&rs.Spec.Template.Spec)
	})
	s.AddTypeDefaultingFunc(&appsv1.Deployment{}, func(o interface{}) { defaultDeployment(o.(*appsv1.Deployment)) })
	s.AddTypeDefaultingFunc(&extv1beta1.Ingress{}, func(o interface{}) { defaultV1beta1Ingress(o.(*extv1beta1.Ingress)) })
	s.AddTypeDefaultingFunc(&corev1.Namespace{}, func(o interface{}) {
		ns := o.(*corev1.Namespace)
		if ns.Status.Phase == "" {
			ns.Status.Phase = corev1.NamespaceActive
		}
	})
	s.AddTypeDefaultingFunc(&corev1.Secret{}, func(o interface{}) {
		if sec := o.(*corev1.Secret); sec.Type == "" {
			sec.Type = corev1.SecretTypeOpaque
		}
	})
}

// DefaultService applies upstream's Service defaults: type ClusterIP,
// sessionAffinity None (ClientIP gets a 10800 s timeout), protocol TCP,
// targetPort equal to port, internalTrafficPolicy Cluster, and
// externalTrafficPolicy Cluster for services reachable from outside.
func DefaultService(svc *corev1.Service) {
	sp := &svc.Spec
	if sp.Type == "" {
		sp.Type = corev1.ServiceTypeClusterIP
	}
	if sp.SessionAffinity == "" {
		sp.SessionAffinity = corev1.ServiceAffinityNone
	}
	if sp.SessionAffinity == corev1.ServiceAffinityClientIP && sp.SessionAffinityConfig == nil {
		timeout := int32(corev1.DefaultClientIPServiceAffinitySeconds)
		sp.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: &timeout}}
	}
	for i := range sp.Ports {
		p := &sp.Ports[i]
		if p.Protocol == "" {
			p.Protocol = corev1.ProtocolTCP
		}
		if p.TargetPort == intstr.FromInt32(0) || p.TargetPort == intstr.FromString("") {
			p.TargetPort = intstr.FromInt32(p.Port)
		}
	}
	if sp.Type != corev1.ServiceTypeExternalName && sp.InternalTrafficPolicy == nil {
		cluster := corev1.ServiceInternalTrafficPolicyCluster
		sp.InternalTrafficPolicy = &cluster
	}
	if (sp.Type == corev1.ServiceTypeNodePort || sp.Type == corev1.ServiceTypeLoadBalancer) && sp.ExternalTrafficPolicy == "" {
		sp.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	}
	if sp.Type == corev1.ServiceTypeLoadBalancer && sp.AllocateLoadBalancerNodePorts == nil {
		yes := true
		sp.AllocateLoadBalancerNodePorts = &yes
	}
}

// DefaultReplicationController takes the selector and labels from the pod
// template when absent (listing 3-7 has no selector) and sets replicas to 1.
func DefaultReplicationController(rc *corev1.ReplicationController) {
	var tmplLabels map[string]string
	if rc.Spec.Template != nil {
		tmplLabels = rc.Spec.Template.Labels
		DefaultPodSpec(&rc.Spec.Template.Spec)
	}
	if tmplLabels != nil {
		if len(rc.Spec.Selector) == 0 {
			rc.Spec.Selector = copyLabels(tmplLabels)
		}
		if len(rc.Labels) == 0 {
			rc.Labels = copyLabels(tmplLabels)
		}
	}
	defaultReplicas(&rc.Spec.Replicas)
}

// DefaultPodSpec applies upstream's pod defaults: restartPolicy Always,
// dnsPolicy ClusterFirst, terminationGracePeriodSeconds 30, the default
// scheduler, service links on, and per container imagePullPolicy by tag,
// TCP ports and the termination message path.
func DefaultPodSpec(ps *corev1.PodSpec) {
	if ps.RestartPolicy == "" {
		ps.RestartPolicy = corev1.RestartPolicyAlways
	}
	if ps.DNSPolicy == "" {
		ps.DNSPolicy = corev1.DNSClusterFirst
	}
	if ps.TerminationGracePeriodSeconds == nil {
		grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
		ps.TerminationGracePeriodSeconds = &grace
	}
	if ps.SchedulerName == "" {
		ps.SchedulerName = corev1.DefaultSchedulerName
	}
	if ps.SecurityContext == nil {
		ps.SecurityContext = &corev1.PodSecurityContext{}
	}
	if ps.EnableServiceLinks == nil {
		yes := true
		ps.EnableServiceLinks = &yes
	}
	for i := range ps.InitContainers {
		defaultContainer(&ps.InitContainers[i])
	}
	for i := range ps.Containers {
		defaultContainer(&ps.Containers[i])
	}
}

func defaultContainer(c *corev1.Container) {
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = pullPolicyFor(c.Image)
	}
	if c.TerminationMessagePath == "" {
		c.TerminationMessagePath = corev1.TerminationMessagePathDefault
	}
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	}
	// A limit without a request is also the request (upstream's pod
	// defaulting).
	for r, q := range c.Resources.Limits {
		if _, ok := c.Resources.Requests[r]; !ok {
			if c.Resources.Requests == nil {
				c.Resources.Requests = corev1.ResourceList{}
			}
			c.Resources.Requests[r] = q.DeepCopy()
		}
	}
	for i := range c.Ports {
		if c.Ports[i].Protocol == "" {
			c.Ports[i].Protocol = corev1.ProtocolTCP
		}
	}
}

// pullPolicyFor is upstream's rule: Always for :latest or no tag (unless a
// digest pins the image), IfNotPresent otherwise.
func pullPolicyFor(image string) corev1.PullPolicy {
	if strings.Contains(image, "@") {
		return corev1.PullIfNotPresent
	}
	name := image[strings.LastIndex(image, "/")+1:]
	i := strings.LastIndex(name, ":")
	if i < 0 || name[i+1:] == "latest" {
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
}

func defaultDeployment(d *appsv1.Deployment) {
	defaultReplicas(&d.Spec.Replicas)
	DefaultPodSpec(&d.Spec.Template.Spec)
	if d.Spec.Strategy.Type == "" {
		d.Spec.Strategy.Type = appsv1.RollingUpdateDeploymentStrategyType
	}
	if d.Spec.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType {
		if d.Spec.Strategy.RollingUpdate == nil {
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{}
		}
		quarter := intstr.FromString("25%")
		if d.Spec.Strategy.RollingUpdate.MaxUnavailable == nil {
			d.Spec.Strategy.RollingUpdate.MaxUnavailable = &quarter
		}
		if d.Spec.Strategy.RollingUpdate.MaxSurge == nil {
			surge := quarter
			d.Spec.Strategy.RollingUpdate.MaxSurge = &surge
		}
	}
	if d.Spec.RevisionHistoryLimit == nil {
		ten := int32(10)
		d.Spec.RevisionHistoryLimit = &ten
	}
	if d.Spec.ProgressDeadlineSeconds == nil {
		six := int32(600)
		d.Spec.ProgressDeadlineSeconds = &six
	}
}

func defaultEndpoints(ep *corev1.Endpoints) {
	for i := range ep.Subsets {
		for j := range ep.Subsets[i].Ports {
			if ep.Subsets[i].Ports[j].Protocol == "" {
				ep.Subsets[i].Ports[j].Protocol = corev1.ProtocolTCP
			}
		}
	}
}

// defaultV1beta1Ingress gives paths without a pathType ImplementationSpecific,
// as upstream's extensions/v1beta1 defaulting does.
func defaultV1beta1Ingress(ing *extv1beta1.Ingress) {
	for i := range ing.Spec.Rules {
		if ing.Spec.Rules[i].HTTP == nil {
			continue
		}
		for j := range ing.Spec.Rules[i].HTTP.Paths {
			p := &ing.Spec.Rules[i].HTTP.Paths[j]
			if p.PathType == nil {
				pt := extv1beta1.PathTypeImplementationSpecific
				p.PathType = &pt
			}
		}
	}
}

func defaultReplicas(r **int32) {
	if *r == nil {
		one := int32(1)
		*r = &one
	}
}

func copyLabels(in map[string]string) map[string]string {
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}
