package tables

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// Services prints NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE [SELECTOR].
var Services = &Printer{
	Columns: []Column{name, col("Type"), col("Cluster-IP"), col("External-IP"), col("Port(s)"), age, wide(col("Selector"))},
	Cells: func(o runtime.Object) []interface{} {
		s := o.(*corev1.Service)
		clusterIP := orNone(s.Spec.ClusterIP)
		return []interface{}{s.Name, string(s.Spec.Type), clusterIP, serviceExternalIP(s),
			servicePorts(s.Spec.Ports), Age(s.CreationTimestamp), selectorOrNone(s.Spec.Selector)}
	},
}

func serviceExternalIP(s *corev1.Service) string {
	switch s.Spec.Type {
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort:
		if len(s.Spec.ExternalIPs) > 0 {
			return strings.Join(s.Spec.ExternalIPs, ",")
		}
		return "<none>"
	case corev1.ServiceTypeLoadBalancer:
		var ips []string
		for _, in := range s.Status.LoadBalancer.Ingress {
			if in.IP != "" {
				ips = append(ips, in.IP)
			} else if in.Hostname != "" {
				ips = append(ips, in.Hostname)
			}
		}
		ips = append(ips, s.Spec.ExternalIPs...)
		if len(ips) == 0 {
			return "<pending>"
		}
		return strings.Join(ips, ",")
	case corev1.ServiceTypeExternalName:
		return s.Spec.ExternalName
	}
	return "<unknown>"
}

func servicePorts(ports []corev1.ServicePort) string {
	if len(ports) == 0 {
		return "<none>"
	}
	out := make([]string, 0, len(ports))
	for _, p := range ports {
		s := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		if p.NodePort > 0 {
			s = fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol)
		}
		out = append(out, s)
	}
	return strings.Join(out, ",")
}

func selectorOrNone(sel map[string]string) string {
	if len(sel) == 0 {
		return "<none>"
	}
	return labels.FormatLabels(sel)
}

// Endpoints prints NAME ENDPOINTS AGE, at most three addresses.
var Endpoints = &Printer{
	Columns: []Column{name, col("Endpoints"), age},
	Cells: func(o runtime.Object) []interface{} {
		e := o.(*corev1.Endpoints)
		return []interface{}{e.Name, formatEndpoints(e), Age(e.CreationTimestamp)}
	},
}

func formatEndpoints(e *corev1.Endpoints) string {
	if len(e.Subsets) == 0 {
		return "<none>"
	}
	var list []string
	for _, ss := range e.Subsets {
		if len(ss.Ports) == 0 {
			for _, a := range ss.Addresses {
				list = append(list, a.IP)
			}
			continue
		}
		for _, p := range ss.Ports {
			for _, a := range ss.Addresses {
				list = append(list, net.JoinHostPort(a.IP, strconv.Itoa(int(p.Port))))
			}
		}
	}
	if len(list) == 0 {
		return "<none>"
	}
	return moreList(list, 3, ",")
}

// Pods prints NAME READY STATUS RESTARTS AGE [IP NODE NOMINATED NODE
// READINESS GATES].
var Pods = &Printer{
	Columns: []Column{name, col("Ready"), col("Status"), col("Restarts"), age,
		wide(col("IP")), wide(col("Node")), wide(col("Nominated Node")), wide(col("Readiness Gates"))},
	Cells: func(o runtime.Object) []interface{} {
		p := o.(*corev1.Pod)
		ready, restarts := 0, int32(0)
		for _, c := range p.Status.ContainerStatuses {
			if c.Ready {
				ready++
			}
			restarts += c.RestartCount
		}
		gates := "<none>"
		if len(p.Spec.ReadinessGates) > 0 {
			gates = fmt.Sprintf("%d/%d", countTrueGates(p), len(p.Spec.ReadinessGates))
		}
		return []interface{}{p.Name, fmt.Sprintf("%d/%d", ready, len(p.Spec.Containers)), podStatus(p),
			strconv.Itoa(int(restarts)), Age(p.CreationTimestamp),
			orNone(p.Status.PodIP), orNone(p.Spec.NodeName), orNone(p.Status.NominatedNodeName), gates}
	},
}

// podStatus is upstream's STATUS column: a waiting or terminated container's
// reason, else the pod's reason or phase, Terminating once deletion started.
func podStatus(p *corev1.Pod) string {
	reason := string(p.Status.Phase)
	if p.Status.Reason != "" {
		reason = p.Status.Reason
	}
	for _, c := range p.Status.ContainerStatuses {
		switch {
		case c.State.Waiting != nil && c.State.Waiting.Reason != "":
			reason = c.State.Waiting.Reason
		case c.State.Terminated != nil && c.State.Terminated.Reason != "":
			reason = c.State.Terminated.Reason
		}
	}
	if p.DeletionTimestamp != nil {
		if p.Status.Reason == "NodeLost" {
			return "Unknown"
		}
		return "Terminating"
	}
	return reason
}

func countTrueGates(p *corev1.Pod) int {
	n := 0
	for _, g := range p.Spec.ReadinessGates {
		for _, c := range p.Status.Conditions {
			if c.Type == g.ConditionType && c.Status == corev1.ConditionTrue {
				n++
			}
		}
	}
	return n
}

// ReplicationControllers prints NAME DESIRED CURRENT READY AGE [CONTAINERS
// IMAGES SELECTOR].
var ReplicationControllers = &Printer{
	Columns: []Column{name, intCol("Desired"), intCol("Current"), intCol("Ready"), age,
		wide(col("Containers")), wide(col("Images")), wide(col("Selector"))},
	Cells: func(o runtime.Object) []interface{} {
		rc := o.(*corev1.ReplicationController)
		var containers []corev1.Container
		if rc.Spec.Template != nil {
			containers = rc.Spec.Template.Spec.Containers
		}
		names, images := containerColumns(containers)
		return []interface{}{rc.Name, int64(deref(rc.Spec.Replicas)), int64(rc.Status.Replicas),
			int64(rc.Status.ReadyReplicas), Age(rc.CreationTimestamp), names, images, selectorOrNone(rc.Spec.Selector)}
	},
}

func containerColumns(cs []corev1.Container) (string, string) {
	names := make([]string, 0, len(cs))
	images := make([]string, 0, len(cs))
	for _, c := range cs {
		names = append(names, c.Name)
		images = append(images, c.Image)
	}
	return strings.Join(names, ","), strings.Join(images, ",")
}

// Namespaces prints NAME STATUS AGE.
var Namespaces = &Printer{
	Columns: []Column{name, col("Status"), age},
	Cells: func(o runtime.Object) []interface{} {
		n := o.(*corev1.Namespace)
		return []interface{}{n.Name, string(n.Status.Phase), Age(n.CreationTimestamp)}
	},
}

// Nodes prints NAME STATUS ROLES AGE VERSION [INTERNAL-IP EXTERNAL-IP
// OS-IMAGE KERNEL-VERSION CONTAINER-RUNTIME].
var Nodes = &Printer{
	Columns: []Column{name, col("Status"), col("Roles"), age, col("Version"), wide(col("Internal-IP")),
		wide(col("External-IP")), wide(col("OS-Image")), wide(col("Kernel-Version")), wide(col("Container-Runtime"))},
	Cells: func(o runtime.Object) []interface{} {
		n := o.(*corev1.Node)
		return []interface{}{n.Name, nodeStatus(n), nodeRoles(n), Age(n.CreationTimestamp), n.Status.NodeInfo.KubeletVersion,
			orNone(nodeAddress(n, corev1.NodeInternalIP)), orNone(nodeAddress(n, corev1.NodeExternalIP)),
			n.Status.NodeInfo.OSImage, n.Status.NodeInfo.KernelVersion, n.Status.NodeInfo.ContainerRuntimeVersion}
	},
}

func nodeStatus(n *corev1.Node) string {
	status := "Unknown"
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			status = "NotReady"
			if c.Status == corev1.ConditionTrue {
				status = "Ready"
			}
		}
	}
	if n.Spec.Unschedulable {
		status += ",SchedulingDisabled"
	}
	return status
}

func nodeRoles(n *corev1.Node) string {
	var roles []string
	for k := range n.Labels {
		if r, ok := strings.CutPrefix(k, "node-role.kubernetes.io/"); ok && r != "" {
			roles = append(roles, r)
		}
	}
	sort.Strings(roles)
	return orNone(strings.Join(roles, ","))
}

func nodeAddress(n *corev1.Node, t corev1.NodeAddressType) string {
	for _, a := range n.Status.Addresses {
		if a.Type == t {
			return a.Address
		}
	}
	return ""
}

// Events prints LAST SEEN TYPE REASON OBJECT MESSAGE (and more with -o wide).
var Events = &Printer{
	Columns: []Column{col("Last Seen"), col("Type"), col("Reason"), col("Object"), wide(col("Subobject")),
		wide(col("Source")), col("Message"), wide(col("First Seen")), wide(intCol("Count")), wide(name)},
	Cells: func(o runtime.Object) []interface{} {
		e := o.(*corev1.Event)
		last := e.LastTimestamp
		if last.IsZero() {
			last = e.FirstTimestamp
		}
		if last.IsZero() && !e.EventTime.IsZero() {
			last.Time = e.EventTime.Time
		}
		if last.IsZero() {
			last = e.CreationTimestamp
		}
		obj := strings.ToLower(e.InvolvedObject.Kind) + "/" + e.InvolvedObject.Name
		source := e.Source.Component
		if source == "" {
			source = e.ReportingController
		}
		if e.Source.Host != "" {
			source += ", " + e.Source.Host
		}
		return []interface{}{Age(last), e.Type, e.Reason, obj, e.InvolvedObject.FieldPath, source,
			strings.TrimSpace(e.Message), Age(e.FirstTimestamp), int64(e.Count), e.Name}
	},
}

// ConfigMaps prints NAME DATA AGE.
var ConfigMaps = &Printer{
	Columns: []Column{name, intCol("Data"), age},
	Cells: func(o runtime.Object) []interface{} {
		c := o.(*corev1.ConfigMap)
		return []interface{}{c.Name, int64(len(c.Data) + len(c.BinaryData)), Age(c.CreationTimestamp)}
	},
}

// Secrets prints NAME TYPE DATA AGE.
var Secrets = &Printer{
	Columns: []Column{name, col("Type"), intCol("Data"), age},
	Cells: func(o runtime.Object) []interface{} {
		s := o.(*corev1.Secret)
		return []interface{}{s.Name, string(s.Type), int64(len(s.Data)), Age(s.CreationTimestamp)}
	},
}

// ServiceAccounts prints NAME SECRETS AGE.
var ServiceAccounts = &Printer{
	Columns: []Column{name, intCol("Secrets"), age},
	Cells: func(o runtime.Object) []interface{} {
		s := o.(*corev1.ServiceAccount)
		return []interface{}{s.Name, int64(len(s.Secrets)), Age(s.CreationTimestamp)}
	},
}

// PersistentVolumeClaims prints upstream's claim columns.
var PersistentVolumeClaims = &Printer{
	Columns: []Column{name, col("Status"), col("Volume"), col("Capacity"), col("Access Modes"),
		col("StorageClass"), col("VolumeAttributesClass"), age, wide(col("VolumeMode"))},
	Cells: func(o runtime.Object) []interface{} {
		c := o.(*corev1.PersistentVolumeClaim)
		capacity := ""
		if q, ok := c.Status.Capacity[corev1.ResourceStorage]; ok {
			capacity = q.String()
		}
		var modes []string
		for _, m := range c.Status.AccessModes {
			modes = append(modes, accessModeShort(m))
		}
		class := ""
		if c.Spec.StorageClassName != nil {
			class = *c.Spec.StorageClassName
		}
		vac := "<unset>"
		if c.Spec.VolumeAttributesClassName != nil {
			vac = *c.Spec.VolumeAttributesClassName
		}
		mode := "<unset>"
		if c.Spec.VolumeMode != nil {
			mode = string(*c.Spec.VolumeMode)
		}
		return []interface{}{c.Name, string(c.Status.Phase), c.Spec.VolumeName, capacity,
			strings.Join(modes, ","), class, vac, Age(c.CreationTimestamp), mode}
	},
}

func accessModeShort(m corev1.PersistentVolumeAccessMode) string {
	switch m {
	case corev1.ReadWriteOnce:
		return "RWO"
	case corev1.ReadOnlyMany:
		return "ROX"
	case corev1.ReadWriteMany:
		return "RWX"
	case corev1.ReadWriteOncePod:
		return "RWOP"
	}
	return string(m)
}

// ResourceQuotas prints NAME AGE REQUEST LIMIT, each "resource: used/hard".
var ResourceQuotas = &Printer{
	Columns: []Column{name, age, col("Request"), col("Limit")},
	Cells: func(o runtime.Object) []interface{} {
		q := o.(*corev1.ResourceQuota)
		var keys []string
		for k := range q.Status.Hard {
			keys = append(keys, string(k))
		}
		sort.Strings(keys)
		var req, lim []string
		for _, k := range keys {
			hard := q.Status.Hard[corev1.ResourceName(k)]
			used := q.Status.Used[corev1.ResourceName(k)]
			entry := fmt.Sprintf("%s: %s/%s", k, used.String(), hard.String())
			if strings.HasPrefix(k, "limits.") {
				lim = append(lim, entry)
			} else {
				req = append(req, entry)
			}
		}
		return []interface{}{q.Name, Age(q.CreationTimestamp), strings.Join(req, ", "), strings.Join(lim, ", ")}
	},
}

func deref(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}
