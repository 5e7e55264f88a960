// Package podenv computes a container's environment exactly as kubelet does:
// the service variables of the chapter's listing 3-13 (NODE_JS_SERVICE_HOST,
// NODE_JS_PORT_80_TCP_ADDR, ...), env and envFrom with configMap and secret
// references, the downward API (fieldRef, resourceFieldRef), and `$(VAR)`
// expansion with `$$` escaping in env values, command and args. It is pure:
// objects in, strings out; configMaps and secrets come through Lookup.
package podenv

import (
	"fmt"
	"math"
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
)

// Lookup reads the objects env references name.
type Lookup interface {
	ConfigMap(namespace, name string) (*corev1.ConfigMap, error)
	Secret(namespace, name string) (*corev1.Secret, error)
}

// EnvVarName turns a service or port name into an environment variable name
// part: upper case, dashes to underscores.
func EnvVarName(s string) string {
	return strings.ToUpper(strings.ReplaceAll(s, "-", "_"))
}

// ServiceVars returns the variables for services, in kubelet's order: for
// each service with a cluster IP, _SERVICE_HOST, _SERVICE_PORT, one
// _SERVICE_PORT_<NAME> per named port, then the Docker-link variables.
// services should be the pod's namespace's (when enableServiceLinks) plus
// the kubernetes service of the default namespace; a name in the pod's
// namespace wins over the same name elsewhere.
func ServiceVars(services []*corev1.Service, podNamespace string) []corev1.EnvVar {
	chosen := map[string]*corev1.Service{}
	for _, s := range services {
		if s.Spec.ClusterIP == "" || s.Spec.ClusterIP == corev1.ClusterIPNone || len(s.Spec.Ports) == 0 {
			continue
		}
		if cur, ok := chosen[s.Name]; ok && cur.Namespace == podNamespace {
			continue
		}
		chosen[s.Name] = s
	}
	names := make([]string, 0, len(chosen))
	for n := range chosen {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []corev1.EnvVar
	for _, n := range names {
		s := chosen[n]
		prefix := EnvVarName(s.Name)
		out = append(out, corev1.EnvVar{Name: prefix + "_SERVICE_HOST", Value: s.Spec.ClusterIP})
		out = append(out, corev1.EnvVar{Name: prefix + "_SERVICE_PORT", Value: strconv.Itoa(int(s.Spec.Ports[0].Port))})
		for _, p := range s.Spec.Ports {
			if p.Name != "" {
				out = append(out, corev1.EnvVar{Name: prefix + "_SERVICE_PORT_" + EnvVarName(p.Name), Value: strconv.Itoa(int(p.Port))})
			}
		}
		out = append(out, linkVars(s)...)
	}
	return out
}

// linkVars are Docker's link variables, first port special-cased.
func linkVars(s *corev1.Service) []corev1.EnvVar {
	prefix := EnvVarName(s.Name)
	var out []corev1.EnvVar
	for i, p := range s.Spec.Ports {
		proto := string(p.Protocol)
		if proto == "" {
			proto = string(corev1.ProtocolTCP)
		}
		lower := strings.ToLower(proto)
		hostPort := net.JoinHostPort(s.Spec.ClusterIP, strconv.Itoa(int(p.Port)))
		if i == 0 {
			out = append(out, corev1.EnvVar{Name: prefix + "_PORT", Value: lower + "://" + hostPort})
		}
		pp := fmt.Sprintf("%s_PORT_%d_%s", prefix, p.Port, strings.ToUpper(proto))
		out = append(out,
			corev1.EnvVar{Name: pp, Value: lower + "://" + hostPort},
			corev1.EnvVar{Name: pp + "_PROTO", Value: lower},
			corev1.EnvVar{Name: pp + "_PORT", Value: strconv.Itoa(int(p.Port))},
			corev1.EnvVar{Name: pp + "_ADDR", Value: s.Spec.ClusterIP},
		)
	}
	return out
}

// Expand replaces $(VAR) with mapping's value where VAR is defined, turns
// $$ into $, and leaves everything else as written (upstream's expansion).
func Expand(input string, mapping func(string) (string, bool)) string {
	var b strings.Builder
	for i := 0; i < len(input); i++ {
		if input[i] != '$' || i+1 >= len(input) {
			b.WriteByte(input[i])
			continue
		}
		switch input[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(input[i+2:], ')')
			if end < 0 {
				b.WriteString(input[i:])
				return b.String()
			}
			name := input[i+2 : i+2+end]
			if v, ok := mapping(name); ok && name != "" {
				b.WriteString(v)
			} else {
				b.WriteString(input[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// Container returns a container's environment (NAME=value, in kubelet's
// order: the container's env and envFrom, then the service variables it
// does not define) and its expanded command and args.
func Container(pod *corev1.Pod, c *corev1.Container, services []*corev1.Service, lookup Lookup) (env, command, args []string, err error) {
	values := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := values[k]; !ok {
			order = append(order, k)
		}
		values[k] = v
	}
	svcVars := ServiceVars(services, pod.Namespace)
	svcMap := map[string]string{}
	for _, v := range svcVars {
		svcMap[v.Name] = v.Value
	}
	mapping := func(name string) (string, bool) {
		if v, ok := values[name]; ok {
			return v, true
		}
		v, ok := svcMap[name]
		return v, ok
	}
	for _, from := range c.EnvFrom {
		kv, err := envFrom(pod.Namespace, from, lookup)
		if err != nil {
			return nil, nil, nil, err
		}
		for _, e := range kv {
			set(e.Name, e.Value)
		}
	}
	for _, e := range c.Env {
		v, err := value(pod, c, e, lookup, mapping)
		if err != nil {
			return nil, nil, nil, err
		}
		set(e.Name, v)
	}
	for _, v := range svcVars {
		if _, ok := values[v.Name]; !ok {
			set(v.Name, v.Value)
		}
	}
	for _, k := range order {
		env = append(env, k+"="+values[k])
	}
	for _, s := range c.Command {
		command = append(command, Expand(s, mapping))
	}
	for _, s := range c.Args {
		args = append(args, Expand(s, mapping))
	}
	return env, command, args, nil
}

func value(pod *corev1.Pod, c *corev1.Container, e corev1.EnvVar, lookup Lookup, mapping func(string) (string, bool)) (string, error) {
	if e.ValueFrom == nil {
		return Expand(e.Value, mapping), nil
	}
	vf := e.ValueFrom
	switch {
	case vf.FieldRef != nil:
		return FieldRef(pod, vf.FieldRef.FieldPath)
	case vf.ResourceFieldRef != nil:
		return resourceField(c, vf.ResourceFieldRef)
	case vf.ConfigMapKeyRef != nil:
		r := vf.ConfigMapKeyRef
		cm, err := lookup.ConfigMap(pod.Namespace, r.Name)
		if err != nil {
			return "", optional(r.Optional, fmt.Errorf("configmap %q not found", r.Name))
		}
		v, ok := cm.Data[r.Key]
		if !ok {
			if b, ok := cm.BinaryData[r.Key]; ok {
				return string(b), nil
			}
			return "", optional(r.Optional, fmt.Errorf("couldn't find key %s in ConfigMap %s/%s", r.Key, pod.Namespace, r.Name))
		}
		return v, nil
	case vf.SecretKeyRef != nil:
		r := vf.SecretKeyRef
		s, err := lookup.Secret(pod.Namespace, r.Name)
		if err != nil {
			return "", optional(r.Optional, fmt.Errorf("secret %q not found", r.Name))
		}
		v, ok := s.Data[r.Key]
		if !ok {
			return "", optional(r.Optional, fmt.Errorf("couldn't find key %s in Secret %s/%s", r.Key, pod.Namespace, r.Name))
		}
		return string(v), nil
	}
	return "", nil
}

// optional swallows err when the reference is optional.
func optional(opt *bool, err error) error {
	if opt != nil && *opt {
		return nil
	}
	return err
}

func envFrom(ns string, from corev1.EnvFromSource, lookup Lookup) ([]corev1.EnvVar, error) {
	data := map[string]string{}
	switch {
	case from.ConfigMapRef != nil:
		cm, err := lookup.ConfigMap(ns, from.ConfigMapRef.Name)
		if err != nil {
			return nil, optional(from.ConfigMapRef.Optional, fmt.Errorf("configmap %q not found", from.ConfigMapRef.Name))
		}
		for k, v := range cm.Data {
			data[k] = v
		}
	case from.SecretRef != nil:
		s, err := lookup.Secret(ns, from.SecretRef.Name)
		if err != nil {
			return nil, optional(from.SecretRef.Optional, fmt.Errorf("secret %q not found", from.SecretRef.Name))
		}
		for k, v := range s.Data {
			data[k] = string(v)
		}
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []corev1.EnvVar
	for _, k := range keys {
		name := from.Prefix + k
		if len(utilvalidation.IsEnvVarName(name)) > 0 {
			continue // upstream skips invalid names (and reports them in an event)
		}
		out = append(out, corev1.EnvVar{Name: name, Value: data[k]})
	}
	return out, nil
}

// FieldRef is the downward API: the value of a pod field path.
func FieldRef(pod *corev1.Pod, path string) (string, error) {
	if k, ok := subscript(path, "metadata.labels"); ok {
		return pod.Labels[k], nil
	}
	if k, ok := subscript(path, "metadata.annotations"); ok {
		return pod.Annotations[k], nil
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP":
		return pod.Status.HostIP, nil
	case "status.hostIPs":
		return joinIPs(pod.Status.HostIPs), nil
	case "status.podIP":
		return pod.Status.PodIP, nil
	case "status.podIPs":
		var ips []string
		for _, ip := range pod.Status.PodIPs {
			ips = append(ips, ip.IP)
		}
		return strings.Join(ips, ","), nil
	}
	return "", fmt.Errorf("unsupported fieldPath: %s", path)
}

func joinIPs(ips []corev1.HostIP) string {
	var out []string
	for _, ip := range ips {
		out = append(out, ip.IP)
	}
	return strings.Join(out, ",")
}

// subscript parses `prefix['key']`.
func subscript(path, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(path, prefix+"['")
	if !ok || !strings.HasSuffix(rest, "']") {
		return "", false
	}
	return strings.TrimSuffix(rest, "']"), true
}

// formatMap is the downward API's key="value" lines, sorted.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var lines []string
	for _, k := range keys {
		lines = append(lines, fmt.Sprintf("%s=%q", k, m[k]))
	}
	return strings.Join(lines, "\n")
}

// resourceField is resourceFieldRef: a container's request or limit in units
// of the divisor, rounded up as upstream (limits default to the node's
// capacity upstream; here to 0 when unset).
func resourceField(c *corev1.Container, r *corev1.ResourceFieldSelector) (string, error) {
	var q resource.Quantity
	switch r.Resource {
	case "limits.cpu":
		q = c.Resources.Limits[corev1.ResourceCPU]
	case "limits.memory":
		q = c.Resources.Limits[corev1.ResourceMemory]
	case "limits.ephemeral-storage":
		q = c.Resources.Limits[corev1.ResourceEphemeralStorage]
	case "requests.cpu":
		q = c.Resources.Requests[corev1.ResourceCPU]
	case "requests.memory":
		q = c.Resources.Requests[corev1.ResourceMemory]
	case "requests.ephemeral-storage":
		q = c.Resources.Requests[corev1.ResourceEphemeralStorage]
	default:
		return "", fmt.Errorf("unsupported container resource: %s", r.Resource)
	}
	divisor := r.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if strings.HasSuffix(r.Resource, "cpu") {
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10), nil
	}
	return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10), nil
}
