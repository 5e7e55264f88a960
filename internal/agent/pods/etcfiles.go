package pods

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// DNSConfig is what resolv.conf is made of for each dnsPolicy.
type DNSConfig struct {
	// ClusterDNS is the cluster DNS address (10.96.0.10); empty when the
	// cluster runs no DNS, and then ClusterFirst pods get the host's.
	ClusterDNS []string
	// ClusterDomain is the cluster's zone (cluster.local).
	ClusterDomain string
	// HostResolvConf is the node's resolv.conf (for dnsPolicy Default).
	HostResolvConf string
}

// resolvConf is a pod's /etc/resolv.conf as kubelet writes it, and whether
// ClusterFirst fell back to the host's (kubelet's MissingClusterDNS event).
func resolvConf(pod *corev1.Pod, c DNSConfig) (content string, missingClusterDNS bool) {
	host := parseResolvConf(c.HostResolvConf)
	var servers, search, options []string
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = corev1.DNSClusterFirst
	}
	clusterFirst := policy == corev1.DNSClusterFirst && !pod.Spec.HostNetwork ||
		policy == corev1.DNSClusterFirstWithHostNet
	switch {
	case policy == corev1.DNSNone:
	case clusterFirst && len(c.ClusterDNS) == 0:
		missingClusterDNS = true
		servers, search, options = host.servers, host.search, host.options
	case clusterFirst:
		servers = c.ClusterDNS
		ns := pod.Namespace
		search = []string{ns + ".svc." + c.ClusterDomain, "svc." + c.ClusterDomain, c.ClusterDomain}
		search = append(search, host.search...)
		options = []string{"ndots:5"}
	default: // Default, and ClusterFirst on the host network
		servers, search, options = host.servers, host.search, host.options
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		servers = appendNew(servers, dc.Nameservers...)
		search = appendNew(search, dc.Searches...)
		for _, o := range dc.Options {
			options = setOption(options, o)
		}
	}
	var b strings.Builder
	if len(search) > 0 {
		if len(search) > 32 {
			search = search[:32]
		}
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	for i, s := range servers {
		if i == 3 {
			break
		}
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	return b.String(), missingClusterDNS
}

type hostResolv struct{ servers, search, options []string }

func parseResolvConf(content string) hostResolv {
	var r hostResolv
	s := bufio.NewScanner(strings.NewReader(content))
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			r.servers = append(r.servers, f[1])
		case "search", "domain":
			r.search = f[1:]
		case "options":
			r.options = append(r.options, f[1:]...)
		}
	}
	return r
}

func appendNew(list []string, more ...string) []string {
	for _, m := range more {
		if !contains(list, m) {
			list = append(list, m)
		}
	}
	return list
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

// setOption sets a dnsConfig option, replacing one of the same name.
func setOption(options []string, o corev1.PodDNSConfigOption) []string {
	v := o.Name
	if o.Value != nil {
		v += ":" + *o.Value
	}
	for i, existing := range options {
		if name, _, _ := strings.Cut(existing, ":"); name == o.Name {
			options[i] = v
			return options
		}
	}
	return append(options, v)
}

// hostsFile is a pod's /etc/hosts as kubelet writes it: localhost, the
// pod's own name at its IPs (so `hostname -i` prints the pod IP), and
// hostAliases. Host-network pods get the node's /etc/hosts.
func hostsFile(pod *corev1.Pod, ips []string, nodeHosts []byte, domain string) []byte {
	if pod.Spec.HostNetwork {
		return nodeHosts
	}
	var b bytes.Buffer
	b.WriteString("# Kubernetes-managed hosts file.\n")
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
	name := hostname(pod)
	names := name
	if pod.Spec.Subdomain != "" {
		names = fmt.Sprintf("%s.%s.%s.svc.%s\t%s", name, pod.Spec.Subdomain, pod.Namespace, domain, name)
	}
	for _, ip := range ips {
		fmt.Fprintf(&b, "%s\t%s\n", ip, names)
	}
	if len(pod.Spec.HostAliases) > 0 {
		b.WriteString("\n# Entries added by HostAliases.\n")
		for _, a := range pod.Spec.HostAliases {
			fmt.Fprintf(&b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
		}
	}
	return b.Bytes()
}

// hostname is the pod's hostname: spec.hostname, else its name (cut to 63
// characters, as kubelet does).
func hostname(pod *corev1.Pod) string {
	h := pod.Spec.Hostname
	if h == "" {
		h = pod.Name
	}
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	return h
}

// nsswitch makes name lookups read /etc/hosts, then DNS.
const nsswitch = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n"

func readFileOr(path, fallback string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fallback
	}
	return string(data)
}
