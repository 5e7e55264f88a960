package endpoints

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"hash"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/dump"
)

// RepackSubsets is upstream's pkg/api/v1/endpoints.RepackSubsets: it expands
// subsets to one (address, port) pair each and packs them again so that
// addresses offering the same set of ports share one subset (an address is
// not ready for a port if any input says so), then sorts the result
// (SortSubsets). The same input always gives the same output, so a
// comparison with the stored object is a comparison of content.
func RepackSubsets(subsets []corev1.EndpointSubset) []corev1.EndpointSubset {
	allAddrs := map[addressKey]*corev1.EndpointAddress{}
	portToAddrReady := map[corev1.EndpointPort]addressSet{}
	for i := range subsets {
		if len(subsets[i].Ports) == 0 {
			// Keep endpoints without ports under a sentinel port.
			mapAddressesByPort(&subsets[i], corev1.EndpointPort{Port: -1}, allAddrs, portToAddrReady)
			continue
		}
		for _, port := range subsets[i].Ports {
			mapAddressesByPort(&subsets[i], port, allAddrs, portToAddrReady)
		}
	}

	keyToAddrReady := map[string]addressSet{}
	keyToPorts := map[string][]corev1.EndpointPort{}
	for port, addrs := range portToAddrReady {
		key := hashAddresses(addrs)
		keyToAddrReady[key] = addrs
		if port.Port > 0 {
			keyToPorts[key] = append(keyToPorts[key], port)
		} else if _, ok := keyToPorts[key]; !ok {
			keyToPorts[key] = nil
		}
	}

	final := []corev1.EndpointSubset{}
	for key, ports := range keyToPorts {
		var ready, notReady []corev1.EndpointAddress
		for addr, r := range keyToAddrReady[key] {
			if r {
				ready = append(ready, *addr)
			} else {
				notReady = append(notReady, *addr)
			}
		}
		final = append(final, corev1.EndpointSubset{Addresses: ready, NotReadyAddresses: notReady, Ports: ports})
	}
	return SortSubsets(final)
}

// addressKey de-duplicates addresses by IP and target UID.
type addressKey struct {
	ip  string
	uid types.UID
}

type addressSet map[*corev1.EndpointAddress]bool

func mapAddressesByPort(subset *corev1.EndpointSubset, port corev1.EndpointPort, all map[addressKey]*corev1.EndpointAddress, m map[corev1.EndpointPort]addressSet) {
	for k := range subset.Addresses {
		mapAddressByPort(&subset.Addresses[k], port, true, all, m)
	}
	for k := range subset.NotReadyAddresses {
		mapAddressByPort(&subset.NotReadyAddresses[k], port, false, all, m)
	}
}

func mapAddressByPort(addr *corev1.EndpointAddress, port corev1.EndpointPort, ready bool, all map[addressKey]*corev1.EndpointAddress, m map[corev1.EndpointPort]addressSet) {
	key := addressKey{ip: addr.IP}
	if addr.TargetRef != nil {
		key.uid = addr.TargetRef.UID
	}
	existing := all[key]
	if existing == nil {
		cp := *addr
		existing = &cp
		all[key] = existing
	}
	if _, ok := m[port]; !ok {
		m[port] = addressSet{}
	}
	// Not ready wins over ready.
	if wasReady, found := m[port][existing]; !found || wasReady {
		m[port][existing] = ready
	}
}

type addrReady struct {
	addr  *corev1.EndpointAddress
	ready bool
}

func hashAddresses(addrs addressSet) string {
	s := make([]addrReady, 0, len(addrs))
	for a, r := range addrs {
		s = append(s, addrReady{a, r})
	}
	sort.Slice(s, func(i, j int) bool { return LessEndpointAddress(s[i].addr, s[j].addr) })
	h := md5.New()
	deepHash(h, s)
	return hex.EncodeToString(h.Sum(nil))
}

// deepHash is upstream's hashutil.DeepHashObject.
func deepHash(h hash.Hash, obj interface{}) {
	h.Reset()
	fmt.Fprintf(h, "%v", dump.ForHash(obj))
}

func hashOf(obj interface{}) []byte {
	h := md5.New()
	deepHash(h, obj)
	return h.Sum(nil)
}

// LessEndpointAddress orders addresses by IP, then by target UID.
func LessEndpointAddress(a, b *corev1.EndpointAddress) bool {
	if c := bytes.Compare([]byte(a.IP), []byte(b.IP)); c != 0 {
		return c < 0
	}
	if b.TargetRef == nil {
		return false
	}
	if a.TargetRef == nil {
		return true
	}
	return a.TargetRef.UID < b.TargetRef.UID
}

// SortSubsets sorts addresses by IP and UID, ports and subsets by their
// hash, as upstream.
func SortSubsets(subsets []corev1.EndpointSubset) []corev1.EndpointSubset {
	for i := range subsets {
		ss := &subsets[i]
		sort.Slice(ss.Addresses, func(a, b int) bool { return LessEndpointAddress(&ss.Addresses[a], &ss.Addresses[b]) })
		sort.Slice(ss.NotReadyAddresses, func(a, b int) bool {
			return LessEndpointAddress(&ss.NotReadyAddresses[a], &ss.NotReadyAddresses[b])
		})
		sortByHash(len(ss.Ports), func(k int) interface{} { return ss.Ports[k] },
			func(a, b int) { ss.Ports[a], ss.Ports[b] = ss.Ports[b], ss.Ports[a] })
	}
	sortByHash(len(subsets), func(k int) interface{} { return subsets[k] },
		func(a, b int) { subsets[a], subsets[b] = subsets[b], subsets[a] })
	return subsets
}

// sortByHash sorts n elements by the md5 of their dump, hashing each once.
func sortByHash(n int, get func(int) interface{}, swap func(a, b int)) {
	if n < 2 {
		return
	}
	hs := make([][]byte, n)
	for i := range hs {
		hs[i] = hashOf(get(i))
	}
	sort.Sort(&hashSorter{hs: hs, swap: swap})
}

type hashSorter struct {
	hs   [][]byte
	swap func(a, b int)
}

func (s *hashSorter) Len() int           { return len(s.hs) }
func (s *hashSorter) Less(i, j int) bool { return bytes.Compare(s.hs[i], s.hs[j]) < 0 }
func (s *hashSorter) Swap(i, j int) {
	s.hs[i], s.hs[j] = s.hs[j], s.hs[i]
	s.swap(i, j)
}
