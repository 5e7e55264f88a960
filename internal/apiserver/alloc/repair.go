package alloc

import (
	"context"
	"strconv"

	corev1 "k8s.io/api/core/v1"
)

// Repair makes the allocation keys agree with the stored services: a key
// whose owner no longer holds it is released once it has been seen orphaned
// on two consecutive runs (so an allocation whose service is still being
// stored is never taken back), and a service's address or port that has no
// key gets one again. Run it at start and periodically.
type Repair struct {
	Services *Services
	// suspects are the orphans seen on the previous run.
	suspects map[string]bool
}

// Run does one pass over services (every Service in the cluster). It
// returns the values it released and re-claimed.
func (r *Repair) Run(ctx context.Context, services []corev1.Service) (released, reclaimed []string, err error) {
	held := map[string]string{} // allocator prefix+value -> owner
	for i := range services {
		svc := &services[i]
		owner := Owner(svc.Namespace, svc.Name, svc.UID)
		for _, ip := range clusterIPs(svc) {
			if r.Services.IPs.Range().Contains(ip) {
				held[ipPrefix+ip] = owner
			}
		}
		for _, p := range nodePorts(svc) {
			if r.Services.Ports.Range().Contains(strconv.Itoa(p)) {
				held[portPrefix+strconv.Itoa(p)] = owner
			}
		}
	}
	next := map[string]bool{}
	for _, a := range []*Allocator{r.Services.IPs, r.Services.Ports} {
		owned, err := a.Owned(ctx)
		if err != nil {
			return nil, nil, err
		}
		for value, owner := range owned {
			key := a.prefix + value
			if held[key] == owner {
				continue
			}
			if r.suspects[key+"="+owner] {
				if err := a.Release(ctx, owner, value); err != nil {
					return nil, nil, err
				}
				released = append(released, value)
				continue
			}
			next[key+"="+owner] = true
		}
		for key, owner := range held {
			if len(key) <= len(a.prefix) || key[:len(a.prefix)] != a.prefix {
				continue
			}
			value := key[len(a.prefix):]
			if _, ok := owned[value]; ok {
				continue
			}
			created, _, err := a.kv.Create(ctx, key, owner)
			if err != nil {
				return nil, nil, err
			}
			if created {
				reclaimed = append(reclaimed, value)
			}
		}
	}
	r.suspects = next
	return released, reclaimed, nil
}
