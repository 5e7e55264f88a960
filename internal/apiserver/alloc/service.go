package alloc

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/generic/registry"
)

// Services allocates and releases the cluster IPs and node ports of Service
// objects; its methods are the generic store's hooks for services.
type Services struct {
	IPs   *Allocator
	Ports *Allocator

	mu sync.Mutex
	// pending holds, per service UID, what a successful update frees.
	pending map[types.UID][]release
}

type release struct {
	a     *Allocator
	value string
}

// NewServices returns hooks allocating from ips and ports.
func NewServices(ips, ports *Allocator) *Services {
	return &Services{IPs: ips, Ports: ports, pending: map[types.UID][]release{}}
}

// Owner is the value an allocation key holds: namespace/name/uid.
func Owner(namespace, name string, uid types.UID) string {
	return namespace + "/" + name + "/" + string(uid)
}

func ownerOf(ctx context.Context, svc *corev1.Service) string {
	ns := svc.Namespace
	if ns == "" {
		ns = genericapirequest.NamespaceValue(ctx)
	}
	return Owner(ns, svc.Name, svc.UID)
}

// claims records what one request claimed, to undo it if the request fails.
type claims struct {
	owner string
	done  []release
}

func (c *claims) undo(ctx context.Context) {
	for _, r := range c.done {
		_ = r.a.Release(ctx, c.owner, r.value)
	}
}

// BeginCreate allocates a new service's cluster IP and node ports (the ones
// it asks for, or free ones) before it is stored, and releases them if the
// store fails.
func (s *Services) BeginCreate(ctx context.Context, obj runtime.Object, options *metav1.CreateOptions) (registry.FinishFunc, error) {
	svc := obj.(*corev1.Service)
	dry := len(options.DryRun) > 0
	c := &claims{owner: ownerOf(ctx, svc)}
	if err := s.allocate(ctx, svc, nil, c, dry); err != nil {
		c.undo(ctx)
		return nil, err
	}
	return func(ctx context.Context, success bool) {
		if !success && !dry {
			c.undo(ctx)
		}
	}, nil
}

// BeginUpdate keeps what the update does not mention (a PUT without
// clusterIP or nodePort keeps the allocated ones, as upstream), refuses a
// changed cluster IP, allocates what the update adds, and remembers what it
// drops so AfterUpdate can free it once the update is stored.
func (s *Services) BeginUpdate(ctx context.Context, obj, old runtime.Object, options *metav1.UpdateOptions) (registry.FinishFunc, error) {
	svc, prev := obj.(*corev1.Service), old.(*corev1.Service)
	dry := len(options.DryRun) > 0
	keepAllocated(svc, prev)
	if err := immutableClusterIP(svc, prev); err != nil {
		return nil, err
	}
	c := &claims{owner: Owner(prev.Namespace, prev.Name, prev.UID)}
	if err := s.allocate(ctx, svc, prev, c, dry); err != nil {
		c.undo(ctx)
		return nil, err
	}
	drops := s.dropped(svc, prev)
	return func(ctx context.Context, success bool) {
		if !success {
			if !dry {
				c.undo(ctx)
			}
			return
		}
		if !dry {
			s.mu.Lock()
			s.pending[prev.UID] = drops
			s.mu.Unlock()
		}
	}, nil
}

// AfterUpdate frees what the stored update dropped.
func (s *Services) AfterUpdate(obj runtime.Object, options *metav1.UpdateOptions) {
	svc := obj.(*corev1.Service)
	s.mu.Lock()
	drops := s.pending[svc.UID]
	delete(s.pending, svc.UID)
	s.mu.Unlock()
	owner := Owner(svc.Namespace, svc.Name, svc.UID)
	for _, r := range drops {
		_ = r.a.Release(context.Background(), owner, r.value)
	}
}

// AfterDelete frees everything the deleted service held.
func (s *Services) AfterDelete(obj runtime.Object, options *metav1.DeleteOptions) {
	svc := obj.(*corev1.Service)
	if len(options.DryRun) > 0 {
		return
	}
	owner := Owner(svc.Namespace, svc.Name, svc.UID)
	ctx := context.Background()
	for _, ip := range clusterIPs(svc) {
		_ = s.IPs.Release(ctx, owner, ip)
	}
	for _, p := range nodePorts(svc) {
		_ = s.Ports.Release(ctx, owner, strconv.Itoa(p))
	}
	s.mu.Lock()
	delete(s.pending, svc.UID)
	s.mu.Unlock()
}

// allocate gives svc its cluster IP and node ports; prev is the stored
// service on update (nil on create). Claims are recorded in c.
func (s *Services) allocate(ctx context.Context, svc, prev *corev1.Service, c *claims, dry bool) error {
	var errs field.ErrorList
	if err := s.allocateIP(ctx, svc, prev, c, dry); err != nil {
		var fe *field.Error
		if !errors.As(err, &fe) {
			return err
		}
		errs = append(errs, fe)
	}
	portErrs, err := s.allocatePorts(ctx, svc, c, dry)
	if err != nil {
		return err
	}
	errs = append(errs, portErrs...)
	if len(errs) > 0 {
		return apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Service").GroupKind(), svc.Name, errs)
	}
	return nil
}

func (s *Services) allocateIP(ctx context.Context, svc, prev *corev1.Service, c *claims, dry bool) error {
	sp := &svc.Spec
	if sp.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	if sp.ClusterIP == "" && len(sp.ClusterIPs) > 0 {
		sp.ClusterIP = sp.ClusterIPs[0]
	}
	family := corev1.IPv4Protocol
	if r, ok := s.IPs.Range().(*IPRange); ok && r.cidr.IP.To4() == nil {
		family = corev1.IPv6Protocol
	}
	if len(sp.IPFamilies) == 0 {
		sp.IPFamilies = []corev1.IPFamily{family}
	}
	if sp.IPFamilyPolicy == nil {
		single := corev1.IPFamilyPolicySingleStack
		sp.IPFamilyPolicy = &single
	}
	if sp.ClusterIP == corev1.ClusterIPNone {
		sp.ClusterIPs = []string{corev1.ClusterIPNone}
		return nil
	}
	if prev != nil && prev.Spec.ClusterIP != "" && prev.Spec.ClusterIP == sp.ClusterIP {
		sp.ClusterIPs = []string{sp.ClusterIP}
		return nil
	}
	requested := sp.ClusterIP
	ip, err := s.IPs.Allocate(ctx, c.owner, requested, dry)
	switch {
	case err == nil:
	case errors.Is(err, ErrFull):
		return apierrors.NewInternalError(fmt.Errorf("failed to allocate a serviceIP: %v", err))
	case requested != "" && (errors.Is(err, ErrAllocated) || isOutOfRange(err)):
		return field.Invalid(field.NewPath("spec", "clusterIPs"), []string{requested},
			fmt.Sprintf("failed to allocate IP %s: %v", requested, err))
	default:
		return apierrors.NewInternalError(fmt.Errorf("failed to allocate a serviceIP: %v", err))
	}
	if !dry {
		c.done = append(c.done, release{s.IPs, ip})
	}
	sp.ClusterIP = ip
	sp.ClusterIPs = []string{ip}
	return nil
}

func isOutOfRange(err error) bool {
	var oor *OutOfRangeError
	return errors.As(err, &oor)
}

// needsNodePorts is upstream's rule: NodePort services, and LoadBalancer
// services unless allocateLoadBalancerNodePorts is false.
func needsNodePorts(svc *corev1.Service) bool {
	switch svc.Spec.Type {
	case corev1.ServiceTypeNodePort:
		return true
	case corev1.ServiceTypeLoadBalancer:
		return svc.Spec.AllocateLoadBalancerNodePorts == nil || *svc.Spec.AllocateLoadBalancerNodePorts
	}
	return false
}

// allocatePorts gives each port its node port (ports with the same number
// and different protocols share one, as upstream) and the health check port
// of externalTrafficPolicy=Local LoadBalancers.
func (s *Services) allocatePorts(ctx context.Context, svc *corev1.Service, c *claims, dry bool) (field.ErrorList, error) {
	var errs field.ErrorList
	if needsNodePorts(svc) {
		byPort := map[int32]int32{}
		for i := range svc.Spec.Ports {
			p := &svc.Spec.Ports[i]
			if p.NodePort == 0 {
				p.NodePort = byPort[p.Port]
			}
			got, fe, err := s.claimPort(ctx, p.NodePort, field.NewPath("spec", "ports").Index(i).Child("nodePort"), c, dry)
			if err != nil {
				return nil, err
			}
			if fe != nil {
				errs = append(errs, fe)
				continue
			}
			p.NodePort = got
			byPort[p.Port] = got
		}
	}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		got, fe, err := s.claimPort(ctx, svc.Spec.HealthCheckNodePort, field.NewPath("spec", "healthCheckNodePort"), c, dry)
		if err != nil {
			return nil, err
		}
		if fe != nil {
			errs = append(errs, fe)
		} else {
			svc.Spec.HealthCheckNodePort = got
		}
	}
	return errs, nil
}

func (s *Services) claimPort(ctx context.Context, want int32, path *field.Path, c *claims, dry bool) (int32, *field.Error, error) {
	requested := ""
	if want != 0 {
		requested = strconv.Itoa(int(want))
	}
	got, err := s.Ports.Allocate(ctx, c.owner, requested, dry)
	switch {
	case err == nil:
	case errors.Is(err, ErrFull):
		return 0, nil, apierrors.NewInternalError(fmt.Errorf("failed to allocate a nodePort: %v", err))
	case requested != "" && (errors.Is(err, errPortAllocated) || isOutOfRange(err)):
		return 0, field.Invalid(path, want, err.Error()), nil
	default:
		return 0, nil, apierrors.NewInternalError(fmt.Errorf("failed to allocate a nodePort: %v", err))
	}
	if !dry {
		c.done = append(c.done, release{s.Ports, got})
	}
	n, _ := strconv.Atoi(got)
	return int32(n), nil, nil
}

// keepAllocated copies the stored cluster IP and node ports into an update
// that leaves them out, as upstream does for PUTs from `kubectl apply` and
// `replace`.
func keepAllocated(svc, prev *corev1.Service) {
	if svc.Spec.Type != corev1.ServiceTypeExternalName && svc.Spec.ClusterIP == "" && len(svc.Spec.ClusterIPs) == 0 &&
		prev.Spec.ClusterIP != "" {
		svc.Spec.ClusterIP = prev.Spec.ClusterIP
		svc.Spec.ClusterIPs = prev.Spec.ClusterIPs
	}
	if len(svc.Spec.IPFamilies) == 0 {
		svc.Spec.IPFamilies = prev.Spec.IPFamilies
	}
	if svc.Spec.IPFamilyPolicy == nil {
		svc.Spec.IPFamilyPolicy = prev.Spec.IPFamilyPolicy
	}
	if needsNodePorts(svc) {
		for i := range svc.Spec.Ports {
			p := &svc.Spec.Ports[i]
			if p.NodePort != 0 {
				continue
			}
			for _, o := range prev.Spec.Ports {
				if o.Port == p.Port && o.Protocol == p.Protocol && o.NodePort != 0 {
					p.NodePort = o.NodePort
					break
				}
			}
		}
	}
	if !needsNodePorts(svc) {
		// Dropped with the type that needed them (upstream's
		// dropTypeDependentFields).
		for i := range svc.Spec.Ports {
			for _, o := range prev.Spec.Ports {
				if svc.Spec.Ports[i].NodePort != 0 && o.NodePort == svc.Spec.Ports[i].NodePort {
					svc.Spec.Ports[i].NodePort = 0
				}
			}
		}
	}
	if svc.Spec.HealthCheckNodePort == 0 && svc.Spec.Type == corev1.ServiceTypeLoadBalancer &&
		svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		svc.Spec.HealthCheckNodePort = prev.Spec.HealthCheckNodePort
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = "", nil
		svc.Spec.IPFamilies, svc.Spec.IPFamilyPolicy = nil, nil
	}
}

// immutableClusterIP refuses to change an allocated cluster IP, with
// upstream's message.
func immutableClusterIP(svc, prev *corev1.Service) error {
	if prev.Spec.ClusterIP == "" || svc.Spec.Type == corev1.ServiceTypeExternalName ||
		prev.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	if svc.Spec.ClusterIP != prev.Spec.ClusterIP {
		return apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Service").GroupKind(), svc.Name, field.ErrorList{
			field.Invalid(field.NewPath("spec", "clusterIPs").Index(0), []string{svc.Spec.ClusterIP}, "may not change once set")})
	}
	return nil
}

// dropped lists what prev held that svc no longer does.
func (s *Services) dropped(svc, prev *corev1.Service) []release {
	var out []release
	keepIPs := map[string]bool{}
	for _, ip := range clusterIPs(svc) {
		keepIPs[ip] = true
	}
	for _, ip := range clusterIPs(prev) {
		if !keepIPs[ip] {
			out = append(out, release{s.IPs, ip})
		}
	}
	keepPorts := map[int]bool{}
	for _, p := range nodePorts(svc) {
		keepPorts[p] = true
	}
	for _, p := range nodePorts(prev) {
		if !keepPorts[p] {
			out = append(out, release{s.Ports, strconv.Itoa(p)})
		}
	}
	return out
}

// clusterIPs returns the allocated cluster IPs of svc (none for headless
// and ExternalName services).
func clusterIPs(svc *corev1.Service) []string {
	var out []string
	for _, ip := range append([]string{svc.Spec.ClusterIP}, svc.Spec.ClusterIPs...) {
		if ip == "" || strings.EqualFold(ip, corev1.ClusterIPNone) {
			continue
		}
		dup := false
		for _, o := range out {
			dup = dup || o == ip
		}
		if !dup {
			out = append(out, ip)
		}
	}
	return out
}

// nodePorts returns every node port svc holds, health check port included.
func nodePorts(svc *corev1.Service) []int {
	var out []int
	seen := map[int]bool{}
	add := func(p int32) {
		if p != 0 && !seen[int(p)] {
			seen[int(p)] = true
			out = append(out, int(p))
		}
	}
	for _, p := range svc.Spec.Ports {
		add(p.NodePort)
	}
	add(svc.Spec.HealthCheckNodePort)
	return out
}
