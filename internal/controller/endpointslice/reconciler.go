package endpointslice

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/wharf-io/wharf/internal/controller/endpoints"
)

// reconciler is upstream's k8s.io/endpointslice Reconciler: it turns a
// service's pods into EndpointSlices with as few writes as it can. Existing
// slices are updated in place (changed endpoints replaced, gone ones
// removed, new ones added to slices being written anyway, then to the
// unchanged slice that fits them best), new slices are created only for
// what does not fit, a create and a delete in one sync become one update,
// and a service with no endpoints keeps one empty placeholder slice.
type reconciler struct {
	client               kubernetes.Interface
	tracker              *sliceTracker
	nodes                corelisters.NodeLister // optional: zones
	maxEndpointsPerSlice int
	controllerName       string
}

// endpointMeta is what the slices of one port set share.
type endpointMeta struct {
	ports       []discoveryv1.EndpointPort
	addressType discoveryv1.AddressType
}

// writes is one sync's plan.
type writes struct {
	create, update, del []*discoveryv1.EndpointSlice
}

func (r *reconciler) reconcile(ctx context.Context, svc *corev1.Service, pods []*corev1.Pod, existing []*discoveryv1.EndpointSlice, trigger time.Time) error {
	supported := addressTypesForService(svc)
	var toDelete []*discoveryv1.EndpointSlice
	byType := map[discoveryv1.AddressType][]*discoveryv1.EndpointSlice{}
	for _, s := range existing {
		if !supported[s.AddressType] {
			toDelete = append(toDelete, s)
			continue
		}
		byType[s.AddressType] = append(byType[s.AddressType], s)
	}
	var errs []error
	for _, t := range []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6} {
		if !supported[t] {
			continue
		}
		if err := r.reconcileByAddressType(ctx, svc, pods, byType[t], trigger, t); err != nil {
			errs = append(errs, err)
		}
	}
	for _, s := range toDelete {
		if err := r.delete(ctx, s); err != nil {
			errs = append(errs, err)
		}
	}
	return utilerrors.NewAggregate(errs)
}

// addressTypesForService is upstream's getAddressTypesForService: the
// service's IP families, else the cluster IP's family, else (headless
// without families) both.
func addressTypesForService(svc *corev1.Service) map[discoveryv1.AddressType]bool {
	out := map[discoveryv1.AddressType]bool{}
	for _, f := range svc.Spec.IPFamilies {
		switch f {
		case corev1.IPv4Protocol:
			out[discoveryv1.AddressTypeIPv4] = true
		case corev1.IPv6Protocol:
			out[discoveryv1.AddressTypeIPv6] = true
		}
	}
	if len(out) > 0 {
		return out
	}
	if endpoints.IsServiceIPSet(svc) {
		if endpoints.IPFamilyOf(svc.Spec.ClusterIP) == corev1.IPv6Protocol {
			out[discoveryv1.AddressTypeIPv6] = true
		} else {
			out[discoveryv1.AddressTypeIPv4] = true
		}
		return out
	}
	out[discoveryv1.AddressTypeIPv4] = true
	out[discoveryv1.AddressTypeIPv6] = true
	return out
}

func (r *reconciler) reconcileByAddressType(ctx context.Context, svc *corev1.Service, pods []*corev1.Pod,
	existing []*discoveryv1.EndpointSlice, trigger time.Time, addressType discoveryv1.AddressType) error {
	var w writes
	existingByPorts := map[string][]*discoveryv1.EndpointSlice{}
	for _, s := range existing {
		if ownedBy(s, svc) {
			k := portMapKey(s.Ports)
			existingByPorts[k] = append(existingByPorts[k], s)
		} else {
			w.del = append(w.del, s)
		}
	}

	desiredMeta := map[string]*endpointMeta{}
	desired := map[string]*endpointSet{}
	for _, pod := range pods {
		if !endpoints.ShouldPodBeInEndpoints(pod, true) {
			continue
		}
		ports := endpointPorts(svc, pod)
		k := portMapKey(ports)
		if desired[k] == nil {
			desired[k] = newEndpointSet()
			desiredMeta[k] = &endpointMeta{ports: ports, addressType: addressType}
		}
		ep := r.podToEndpoint(pod, svc, addressType)
		if len(ep.Addresses) > 0 {
			desired[k].insert(&ep)
		}
	}

	keys := make([]string, 0, len(desired))
	for k := range desired {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		pw := r.reconcileByPortMapping(svc, existingByPorts[k], desired[k], desiredMeta[k])
		w.create = append(w.create, pw.create...)
		w.update = append(w.update, pw.update...)
		w.del = append(w.del, pw.del...)
	}
	// Port sets no longer wanted.
	gone := make([]string, 0)
	for k := range existingByPorts {
		if _, ok := desired[k]; !ok {
			gone = append(gone, k)
		}
	}
	sort.Strings(gone)
	for _, k := range gone {
		w.del = append(w.del, existingByPorts[k]...)
	}

	// A service without endpoints keeps one empty placeholder slice.
	if len(existing) == len(w.del) && len(w.create) == 0 {
		placeholder := r.newSlice(svc, &endpointMeta{ports: []discoveryv1.EndpointPort{}, addressType: addressType})
		if len(w.del) == 1 && placeholderEqual(w.del[0], placeholder) {
			w.del = nil
		} else {
			w.create = append(w.create, placeholder)
		}
	}
	return r.finalize(ctx, svc, w, trigger)
}

// reconcileByPortMapping plans the writes of the slices of one port set.
func (r *reconciler) reconcileByPortMapping(svc *corev1.Service, existing []*discoveryv1.EndpointSlice,
	desired *endpointSet, meta *endpointMeta) writes {
	existing = append([]*discoveryv1.EndpointSlice(nil), existing...)
	sort.Slice(existing, func(i, j int) bool { return existing[i].Name < existing[j].Name })
	byName := map[string]*discoveryv1.EndpointSlice{}
	var unchanged, toUpdate, toDelete []string
	wantLabels := sliceLabels(svc, r.controllerName)

	// 1. Keep the endpoints still desired where they are, replacing
	//    changed ones and dropping the rest.
	for _, s := range existing {
		byName[s.Name] = s
		kept := make([]discoveryv1.Endpoint, 0, len(s.Endpoints))
		changed := false
		for i := range s.Endpoints {
			got := desired.get(&s.Endpoints[i])
			if got == nil {
				continue
			}
			kept = append(kept, *got)
			if !apiequality.Semantic.DeepEqual(*got, s.Endpoints[i]) {
				changed = true
			}
			desired.remove(&s.Endpoints[i])
		}
		labelsChanged := !labelsEqual(s.Labels, wantLabels)
		switch {
		case changed || len(kept) != len(s.Endpoints):
			if len(kept) == 0 {
				toDelete = append(toDelete, s.Name)
				continue
			}
			cp := s.DeepCopy()
			cp.Endpoints = kept
			cp.Labels = wantLabels
			byName[s.Name] = cp
			toUpdate = append(toUpdate, s.Name)
		case labelsChanged:
			cp := s.DeepCopy()
			cp.Labels = wantLabels
			byName[s.Name] = cp
			toUpdate = append(toUpdate, s.Name)
		default:
			unchanged = append(unchanged, s.Name)
		}
	}

	// 2. Add new endpoints to the slices written anyway, fullest first.
	if desired.len() > 0 && len(toUpdate) > 0 {
		slices := make([]*discoveryv1.EndpointSlice, 0, len(toUpdate))
		for _, n := range toUpdate {
			slices = append(slices, byName[n])
		}
		sort.SliceStable(slices, func(i, j int) bool { return len(slices[i].Endpoints) > len(slices[j].Endpoints) })
		for _, s := range slices {
			for desired.len() > 0 && len(s.Endpoints) < r.maxEndpointsPerSlice {
				s.Endpoints = append(s.Endpoints, *desired.pop())
			}
		}
	}

	// 3. Put what is left into the unchanged slice that fits it best, or
	//    into new slices.
	var toCreate []*discoveryv1.EndpointSlice
	for desired.len() > 0 {
		var fill *discoveryv1.EndpointSlice
		if desired.len() < r.maxEndpointsPerSlice && len(unchanged) > 0 {
			cands := make([]*discoveryv1.EndpointSlice, 0, len(unchanged))
			for _, n := range unchanged {
				cands = append(cands, byName[n])
			}
			fill = sliceToFill(cands, desired.len(), r.maxEndpointsPerSlice)
		}
		if fill == nil {
			fill = r.newSlice(svc, meta)
		} else {
			fill = fill.DeepCopy()
			byName[fill.Name] = fill
		}
		for desired.len() > 0 && len(fill.Endpoints) < r.maxEndpointsPerSlice {
			fill.Endpoints = append(fill.Endpoints, *desired.pop())
		}
		if fill.Name != "" {
			toUpdate = append(toUpdate, fill.Name)
			unchanged = removeString(unchanged, fill.Name)
		} else {
			toCreate = append(toCreate, fill)
		}
	}

	out := writes{create: toCreate}
	for _, n := range toUpdate {
		out.update = append(out.update, byName[n])
	}
	for _, n := range toDelete {
		out.del = append(out.del, byName[n])
	}
	return out
}

// sliceToFill returns the slice that numEndpoints more fill most closely
// without overflowing, or nil.
func sliceToFill(slices []*discoveryv1.EndpointSlice, numEndpoints, max int) *discoveryv1.EndpointSlice {
	closest := max
	var best *discoveryv1.EndpointSlice
	for _, s := range slices {
		diff := max - (numEndpoints + len(s.Endpoints))
		if diff >= 0 && diff < closest {
			closest, best = diff, s
			if diff == 0 {
				break
			}
		}
	}
	return best
}

func removeString(list []string, s string) []string {
	out := list[:0]
	for _, v := range list {
		if v != s {
			out = append(out, v)
		}
	}
	return out
}

// finalize turns create+delete pairs into updates, then writes.
func (r *reconciler) finalize(ctx context.Context, svc *corev1.Service, w writes, trigger time.Time) error {
	for i := 0; i < len(w.del); {
		if len(w.create) == 0 {
			break
		}
		d := w.del[i]
		s := w.create[len(w.create)-1]
		if d.AddressType == s.AddressType && ownedBy(d, svc) {
			s.Name = d.Name
			s.GenerateName = d.GenerateName
			s.ResourceVersion = d.ResourceVersion
			s.UID = d.UID
			w.create = w.create[:len(w.create)-1]
			w.update = append(w.update, s)
			w.del = append(w.del[:i], w.del[i+1:]...)
		} else {
			i++
		}
	}
	slices := r.client.DiscoveryV1().EndpointSlices(svc.Namespace)
	// No new slices for a service on its way out (the garbage collector
	// would race with them).
	if svc.DeletionTimestamp == nil {
		for _, s := range w.create {
			setTriggerTime(s, trigger)
			created, err := slices.Create(ctx, s, metav1.CreateOptions{})
			if err != nil {
				if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
					return nil
				}
				return fmt.Errorf("failed to create EndpointSlice for Service %s/%s: %w", svc.Namespace, svc.Name, err)
			}
			r.tracker.update(created)
		}
	}
	for _, s := range w.update {
		setTriggerTime(s, trigger)
		updated, err := slices.Update(ctx, s, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("failed to update %s EndpointSlice for Service %s/%s: %w", s.Name, svc.Namespace, svc.Name, err)
		}
		r.tracker.update(updated)
	}
	for _, s := range w.del {
		if err := r.delete(ctx, s); err != nil {
			return fmt.Errorf("failed to delete %s EndpointSlice for Service %s/%s: %w", s.Name, svc.Namespace, svc.Name, err)
		}
	}
	return nil
}

func (r *reconciler) delete(ctx context.Context, s *discoveryv1.EndpointSlice) error {
	uid := s.UID
	opts := metav1.DeleteOptions{}
	if uid != "" {
		opts.Preconditions = &metav1.Preconditions{UID: &uid}
	}
	err := r.client.DiscoveryV1().EndpointSlices(s.Namespace).Delete(ctx, s.Name, opts)
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return err
	}
	r.tracker.expectDeletion(s)
	return nil
}

func setTriggerTime(s *discoveryv1.EndpointSlice, trigger time.Time) {
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	if !trigger.IsZero() {
		s.Annotations[corev1.EndpointsLastChangeTriggerTime] = trigger.UTC().Format(time.RFC3339Nano)
	} else {
		delete(s.Annotations, corev1.EndpointsLastChangeTriggerTime)
	}
}

var serviceGVK = schema.GroupVersionKind{Version: "v1", Kind: "Service"}

// newSlice is an empty slice of the service for meta, named by the API
// server from <service>-.
func (r *reconciler) newSlice(svc *corev1.Service, meta *endpointMeta) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    slicePrefix(svc.Name),
			Namespace:       svc.Namespace,
			Labels:          sliceLabels(svc, r.controllerName),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(svc, serviceGVK)},
		},
		Ports:       meta.ports,
		AddressType: meta.addressType,
		Endpoints:   []discoveryv1.Endpoint{},
	}
}

// slicePrefix is "<name>-" (upstream drops the dash only for names too long
// for it, which a service name never is).
func slicePrefix(name string) string { return name + "-" }

// sliceLabels are the service's labels (minus the reserved ones), the
// headless label for a headless service, the service name and managed-by.
func sliceLabels(svc *corev1.Service, controller string) map[string]string {
	l := make(map[string]string, len(svc.Labels)+3)
	for k, v := range svc.Labels {
		if k == discoveryv1.LabelServiceName || k == discoveryv1.LabelManagedBy || k == corev1.IsHeadlessService {
			continue
		}
		l[k] = v
	}
	if !endpoints.IsServiceIPSet(svc) {
		l[corev1.IsHeadlessService] = ""
	}
	l[discoveryv1.LabelServiceName] = svc.Name
	l[discoveryv1.LabelManagedBy] = controller
	return l
}

func labelsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// ownedBy reports whether the slice's owner is this incarnation of svc.
func ownedBy(s *discoveryv1.EndpointSlice, svc *corev1.Service) bool {
	for _, o := range s.OwnerReferences {
		if o.UID == svc.UID && o.Kind == "Service" && o.APIVersion == "v1" {
			return true
		}
	}
	return false
}

// placeholderEqual compares a stored slice with a placeholder: namespace,
// labels, owner, address type and no ports or endpoints.
func placeholderEqual(a, b *discoveryv1.EndpointSlice) bool {
	return a.Namespace == b.Namespace && labelsEqual(a.Labels, b.Labels) &&
		apiequality.Semantic.DeepEqual(a.OwnerReferences, b.OwnerReferences) &&
		a.AddressType == b.AddressType && len(a.Ports) == 0 && len(a.Endpoints) == 0
}

// endpointPorts resolves the service's ports on one pod; a named
// targetPort the pod lacks leaves that port out, so pods differing in
// their container ports land in different slices.
func endpointPorts(svc *corev1.Service, pod *corev1.Pod) []discoveryv1.EndpointPort {
	ports := []discoveryv1.EndpointPort{}
	if len(svc.Spec.Ports) == 0 && svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return ports
	}
	for i := range svc.Spec.Ports {
		sp := &svc.Spec.Ports[i]
		num, err := endpoints.FindPort(pod, sp)
		if err != nil {
			continue
		}
		name, proto := sp.Name, sp.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		ports = append(ports, discoveryv1.EndpointPort{Name: &name, Port: &num, Protocol: &proto, AppProtocol: sp.AppProtocol})
	}
	return ports
}

// portMapKey identifies a set of ports regardless of order.
func portMapKey(ports []discoveryv1.EndpointPort) string {
	parts := make([]string, 0, len(ports))
	for _, p := range ports {
		name, proto, num, app := "", string(corev1.ProtocolTCP), int32(0), ""
		if p.Name != nil {
			name = *p.Name
		}
		if p.Protocol != nil && *p.Protocol != "" {
			proto = string(*p.Protocol)
		}
		if p.Port != nil {
			num = *p.Port
		}
		if p.AppProtocol != nil {
			app = *p.AppProtocol
		}
		parts = append(parts, name+"/"+proto+"/"+strconv.Itoa(int(num))+"/"+app)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// podToEndpoint is upstream's: serving is the Ready condition, terminating
// is a deletionTimestamp, and ready is serving and not terminating (always
// true with publishNotReadyAddresses).
func (r *reconciler) podToEndpoint(pod *corev1.Pod, svc *corev1.Service, addressType discoveryv1.AddressType) discoveryv1.Endpoint {
	serving := endpoints.IsPodReady(pod)
	terminating := pod.DeletionTimestamp != nil
	ready := svc.Spec.PublishNotReadyAddresses || (serving && !terminating)
	ep := discoveryv1.Endpoint{
		Addresses:  addressesOfType(pod, addressType),
		Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
	}
	if pod.Spec.NodeName != "" {
		node := pod.Spec.NodeName
		ep.NodeName = &node
		if r.nodes != nil {
			if n, err := r.nodes.Get(node); err == nil {
				if zone := n.Labels[corev1.LabelTopologyZone]; zone != "" {
					ep.Zone = &zone
				}
			}
		}
	}
	if endpoints.ShouldSetHostname(pod, svc) {
		h := pod.Spec.Hostname
		ep.Hostname = &h
	}
	return ep
}

func addressesOfType(pod *corev1.Pod, t discoveryv1.AddressType) []string {
	out := []string{}
	for _, ip := range endpoints.PodIPs(pod) {
		v6 := endpoints.IPFamilyOf(ip) == corev1.IPv6Protocol
		if v6 == (t == discoveryv1.AddressTypeIPv6) {
			out = append(out, ip)
		}
	}
	return out
}

// endpointSet holds desired endpoints keyed by identity (addresses,
// hostname, target); pop returns them in key order so that slices come out
// the same for the same input.
type endpointSet struct {
	m     map[string]*discoveryv1.Endpoint
	order []string
	built bool
}

func newEndpointSet() *endpointSet { return &endpointSet{m: map[string]*discoveryv1.Endpoint{}} }

func endpointKey(ep *discoveryv1.Endpoint) string {
	addrs := append([]string(nil), ep.Addresses...)
	sort.Strings(addrs)
	var b strings.Builder
	b.WriteString(strings.Join(addrs, ","))
	b.WriteByte('|')
	if ep.Hostname != nil {
		b.WriteString(*ep.Hostname)
	}
	b.WriteByte('|')
	if ep.TargetRef != nil {
		b.WriteString(ep.TargetRef.Namespace)
		b.WriteByte('/')
		b.WriteString(ep.TargetRef.Name)
	}
	return b.String()
}

func (s *endpointSet) insert(ep *discoveryv1.Endpoint) { s.m[endpointKey(ep)] = ep }
func (s *endpointSet) get(ep *discoveryv1.Endpoint) *discoveryv1.Endpoint {
	return s.m[endpointKey(ep)]
}
func (s *endpointSet) remove(ep *discoveryv1.Endpoint) { delete(s.m, endpointKey(ep)) }
func (s *endpointSet) len() int                        { return len(s.m) }

func (s *endpointSet) pop() *discoveryv1.Endpoint {
	if !s.built {
		s.order = make([]string, 0, len(s.m))
		for k := range s.m {
			s.order = append(s.order, k)
		}
		sort.Strings(s.order)
		s.built = true
	}
	for len(s.order) > 0 {
		k := s.order[0]
		s.order = s.order[1:]
		if ep, ok := s.m[k]; ok {
			delete(s.m, k)
			return ep
		}
	}
	return nil
}
