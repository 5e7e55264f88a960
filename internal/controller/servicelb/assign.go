// Package servicelb gives LoadBalancer services their external addresses.
// Without a pool (the default) a service is served on the nodes' own
// addresses, as k3s's ServiceLB does: its status lists the Ready nodes'
// InternalIPs, unless another LoadBalancer service (the older one wins) or
// the ingress controller already holds one of its ports there, in which
// case it stays pending with an event naming the holder. With a pool
// (--lb-pool) each service gets a dedicated address from it, as MetalLB's
// IPAddressPool does: the one it asks for (spec.loadBalancerIP or the
// MetalLB annotations) when free, else the first free one. Services with a
// loadBalancerClass belong to another implementation and are left alone.
package servicelb

import (
	"fmt"
	"math/big"
	"net"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Annotations users of MetalLB put a requested address in.
var requestAnnotations = []string{"metallb.universe.tf/loadBalancerIPs", "metallb.io/loadBalancerIPs"}

// Pool is a set of address ranges.
type Pool struct {
	ranges []ipRange
}

type ipRange struct{ first, last *big.Int }

// ParsePool reads ranges written as CIDRs or "first-last".
func ParsePool(specs []string) (*Pool, error) {
	p := &Pool{}
	for _, s := range specs {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if _, n, err := net.ParseCIDR(s); err == nil {
			first := ipInt(n.IP)
			ones, bits := n.Mask.Size()
			last := new(big.Int).Add(first, new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(bits-ones)), big.NewInt(1)))
			p.ranges = append(p.ranges, ipRange{first, last})
			continue
		}
		a, b, ok := strings.Cut(s, "-")
		ipa, ipb := net.ParseIP(strings.TrimSpace(a)), net.ParseIP(strings.TrimSpace(b))
		if !ok || ipa == nil || ipb == nil || ipInt(ipa).Cmp(ipInt(ipb)) > 0 {
			return nil, fmt.Errorf("LoadBalancer pool range %q: want a CIDR or first-last", s)
		}
		p.ranges = append(p.ranges, ipRange{ipInt(ipa), ipInt(ipb)})
	}
	return p, nil
}

func ipInt(ip net.IP) *big.Int {
	if v4 := ip.To4(); v4 != nil {
		return new(big.Int).SetBytes(v4)
	}
	return new(big.Int).SetBytes(ip.To16())
}

func intIP(v *big.Int, v4 bool) string {
	n := 16
	if v4 {
		n = 4
	}
	b := v.Bytes()
	ip := make(net.IP, n)
	copy(ip[n-len(b):], b)
	return ip.String()
}

// Empty reports whether the pool has no ranges (node-address mode).
func (p *Pool) Empty() bool { return len(p.ranges) == 0 }

// Contains reports whether ip is in the pool.
func (p *Pool) Contains(ip string) bool {
	parsed := net.ParseIP(ip)
	if parsed == nil {
		return false
	}
	v := ipInt(parsed)
	for _, r := range p.ranges {
		if v.Cmp(r.first) >= 0 && v.Cmp(r.last) <= 0 {
			return true
		}
	}
	return false
}

// firstFree returns the lowest address not in used.
func (p *Pool) firstFree(used map[string]bool) string {
	for _, r := range p.ranges {
		v4 := len(r.first.Bytes()) <= 4
		for v := new(big.Int).Set(r.first); v.Cmp(r.last) <= 0; v.Add(v, big.NewInt(1)) {
			if ip := intIP(v, v4); !used[ip] {
				return ip
			}
		}
	}
	return ""
}

// Decision is what one service should show.
type Decision struct {
	// IPs is status.loadBalancer.ingress; empty means pending.
	IPs []string
	// Pending says why there are none (an event's message).
	Pending string
}

// Input is the cluster state assignments are computed from.
type Input struct {
	Services []*corev1.Service
	// NodeIPs are the Ready nodes' InternalIPs.
	NodeIPs []string
	// ReservedPorts are held on the node addresses by the ingress
	// controller ("TCP/80").
	ReservedPorts []string
	Pool          *Pool
}

// Managed reports whether svc is a LoadBalancer this controller serves.
func Managed(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.LoadBalancerClass == nil
}

// Assign decides every managed service's addresses, oldest service first
// (so a newcomer never takes what an existing service has). It is pure.
func Assign(in Input) map[string]Decision {
	svcs := make([]*corev1.Service, 0, len(in.Services))
	for _, s := range in.Services {
		if Managed(s) {
			svcs = append(svcs, s)
		}
	}
	sort.Slice(svcs, func(i, j int) bool {
		a, b := svcs[i], svcs[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	out := map[string]Decision{}
	if in.Pool == nil || in.Pool.Empty() {
		assignNodes(in, svcs, out)
	} else {
		assignPool(in, svcs, out)
	}
	return out
}

func key(s *corev1.Service) string { return s.Namespace + "/" + s.Name }

func assignNodes(in Input, svcs []*corev1.Service, out map[string]Decision) {
	holders := map[string]string{}
	for _, p := range in.ReservedPorts {
		holders[p] = "the ingress controller"
	}
	for _, s := range svcs {
		conflict := ""
		for _, p := range s.Spec.Ports {
			pk := fmt.Sprintf("%s/%d", p.Protocol, p.Port)
			if h, ok := holders[pk]; ok {
				conflict = fmt.Sprintf("port %d/%s is already held on the node addresses by %s", p.Port, p.Protocol, h)
				break
			}
		}
		switch {
		case conflict != "":
			out[key(s)] = Decision{Pending: conflict}
		case len(in.NodeIPs) == 0:
			out[key(s)] = Decision{Pending: "no Ready node to serve it on"}
		default:
			for _, p := range s.Spec.Ports {
				holders[fmt.Sprintf("%s/%d", p.Protocol, p.Port)] = "service " + key(s)
			}
			out[key(s)] = Decision{IPs: append([]string(nil), in.NodeIPs...)}
		}
	}
}

// requested returns the address a service asks for, if any.
func requested(s *corev1.Service) string {
	for _, a := range requestAnnotations {
		if v := strings.TrimSpace(strings.Split(s.Annotations[a], ",")[0]); v != "" {
			return v
		}
	}
	return s.Spec.LoadBalancerIP
}

func assignPool(in Input, svcs []*corev1.Service, out map[string]Decision) {
	used := map[string]bool{}
	owner := map[string]string{}
	// Keep what services already have, oldest first.
	keep := map[string]string{}
	for _, s := range svcs {
		want := requested(s)
		for _, ing := range s.Status.LoadBalancer.Ingress {
			if in.Pool.Contains(ing.IP) && !used[ing.IP] && (want == "" || want == ing.IP) {
				used[ing.IP], owner[ing.IP], keep[key(s)] = true, key(s), ing.IP
				break
			}
		}
	}
	// Then the addresses services ask for, then free ones for the rest, so
	// an explicit request never loses to an automatic pick.
	var auto []*corev1.Service
	for _, s := range svcs {
		if ip, ok := keep[key(s)]; ok {
			out[key(s)] = Decision{IPs: []string{ip}}
			continue
		}
		want := requested(s)
		switch {
		case want == "":
			auto = append(auto, s)
		case !in.Pool.Contains(want):
			out[key(s)] = Decision{Pending: fmt.Sprintf("requested address %s is not in the LoadBalancer pool", want)}
		case used[want]:
			out[key(s)] = Decision{Pending: fmt.Sprintf("requested address %s is already used by service %s", want, owner[want])}
		default:
			used[want], owner[want] = true, key(s)
			out[key(s)] = Decision{IPs: []string{want}}
		}
	}
	for _, s := range auto {
		ip := in.Pool.firstFree(used)
		if ip == "" {
			out[key(s)] = Decision{Pending: "no available IPs in the LoadBalancer pool"}
			continue
		}
		used[ip], owner[ip] = true, key(s)
		out[key(s)] = Decision{IPs: []string{ip}}
	}
}
