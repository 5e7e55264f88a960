package apiserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"sort"
	"strconv"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The kubernetes service's endpoints list every live API server. Each server
// renews a Lease in kube-system (labelled apiserverLeaseLabel, address and
// port in annotations) and rewrites the Endpoints and EndpointSlice from the
// unexpired leases; a stopping server deletes its lease first. This is
// upstream's "lease" endpoint reconciler, on Lease objects instead of raw
// etcd keys.
const (
	apiserverLeaseLabel   = "wharf.io/apiserver"
	addressAnnotation     = "wharf.io/address"
	portAnnotation        = "wharf.io/port"
	peerLeaseDuration     = 15 * time.Second
	peerReconcileInterval = 5 * time.Second
)

// peers keeps this server's address in the kubernetes service's endpoints.
type peers struct {
	client  kubernetes.Interface
	address string
	port    int
	now     func() time.Time
}

func (p *peers) leaseName() string {
	sum := sha256.Sum256([]byte(net.JoinHostPort(p.address, strconv.Itoa(p.port))))
	return "wharf-apiserver-" + hex.EncodeToString(sum[:])[:12]
}

// run renews the lease and reconciles the endpoints until ctx ends.
func (p *peers) run(ctx context.Context) {
	t := time.NewTicker(peerReconcileInterval)
	defer t.Stop()
	for {
		if err := p.renew(ctx); err != nil && ctx.Err() == nil {
			fmt.Printf("wharf: renew apiserver lease: %v\n", err)
		} else if err := p.reconcile(ctx); err != nil && ctx.Err() == nil {
			fmt.Printf("wharf: kubernetes service endpoints: %v\n", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// stop removes this server from the endpoints (pre-shutdown).
func (p *peers) stop(ctx context.Context) error {
	err := p.client.CoordinationV1().Leases(metav1.NamespaceSystem).Delete(ctx, p.leaseName(), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return p.reconcile(ctx)
}

func (p *peers) renew(ctx context.Context) error {
	leases := p.client.CoordinationV1().Leases(metav1.NamespaceSystem)
	now := metav1.NewMicroTime(p.now())
	secs := int32(peerLeaseDuration / time.Second)
	holder := net.JoinHostPort(p.address, strconv.Itoa(p.port))
	lease, err := leases.Get(ctx, p.leaseName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: p.leaseName(), Labels: map[string]string{apiserverLeaseLabel: "true"},
				Annotations: map[string]string{addressAnnotation: p.address, portAnnotation: strconv.Itoa(p.port)}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now},
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	lease.Spec.RenewTime = &now
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	return err
}

// liveAddresses returns the address and port of every unexpired lease.
func liveAddresses(leases []coordinationv1.Lease, now time.Time) map[int][]string {
	out := map[int][]string{}
	for _, l := range leases {
		if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
			continue
		}
		expiry := l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second)
		port, err := strconv.Atoi(l.Annotations[portAnnotation])
		addr := l.Annotations[addressAnnotation]
		if err != nil || net.ParseIP(addr) == nil || now.After(expiry) {
			continue
		}
		out[port] = append(out[port], addr)
	}
	for _, a := range out {
		sort.Strings(a)
	}
	return out
}

func (p *peers) reconcile(ctx context.Context) error {
	list, err := p.client.CoordinationV1().Leases(metav1.NamespaceSystem).List(ctx,
		metav1.ListOptions{LabelSelector: apiserverLeaseLabel + "=true"})
	if err != nil {
		return err
	}
	live := liveAddresses(list.Items, p.now())
	if err := p.writeEndpoints(ctx, live); err != nil {
		return err
	}
	return p.writeSlice(ctx, live)
}

func (p *peers) writeEndpoints(ctx context.Context, live map[int][]string) error {
	var subsets []corev1.EndpointSubset
	for _, port := range sortedPorts(live) {
		ss := corev1.EndpointSubset{Ports: []corev1.EndpointPort{{Name: "https", Port: int32(port), Protocol: corev1.ProtocolTCP}}}
		for _, a := range live[port] {
			ss.Addresses = append(ss.Addresses, corev1.EndpointAddress{IP: a})
		}
		subsets = append(subsets, ss)
	}
	eps := p.client.CoreV1().Endpoints(metav1.NamespaceDefault)
	cur, err := eps.Get(ctx, "kubernetes", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = eps.Create(ctx, &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes",
			Labels: map[string]string{discoveryv1.LabelSkipMirror: "true"}}, Subsets: subsets}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	cur.Subsets = subsets
	_, err = eps.Update(ctx, cur, metav1.UpdateOptions{})
	return err
}

func (p *peers) writeSlice(ctx context.Context, live map[int][]string) error {
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Labels: map[string]string{
			discoveryv1.LabelServiceName: "kubernetes", discoveryv1.LabelManagedBy: "wharf-apiserver"}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	yes := true
	for _, port := range sortedPorts(live) {
		name, proto, pt := "https", corev1.ProtocolTCP, int32(port)
		slice.Ports = append(slice.Ports, discoveryv1.EndpointPort{Name: &name, Protocol: &proto, Port: &pt})
		for _, a := range live[port] {
			slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{Addresses: []string{a},
				Conditions: discoveryv1.EndpointConditions{Ready: &yes}})
		}
	}
	slices := p.client.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault)
	cur, err := slices.Get(ctx, "kubernetes", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = slices.Create(ctx, slice, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	cur.Ports, cur.Endpoints = slice.Ports, slice.Endpoints
	_, err = slices.Update(ctx, cur, metav1.UpdateOptions{})
	return err
}

func sortedPorts(live map[int][]string) []int {
	ports := make([]int, 0, len(live))
	for p := range live {
		ports = append(ports, p)
	}
	sort.Ints(ports)
	return ports
}
