package nft

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"

	"sigs.k8s.io/knftables"

	"github.com/wharf-io/wharf/internal/proxy/model"
)

// Names of the table's fixed objects, as kube-proxy's nftables mode
// (pkg/proxy/nftables/proxier.go) names them, so that operators who know
// `nft list table ip kube-proxy` can read ours.
const (
	filterPreroutingChain     = "filter-prerouting"
	filterInputChain          = "filter-input"
	filterForwardChain        = "filter-forward"
	filterOutputChain         = "filter-output"
	filterOutputPostDNATChain = "filter-output-post-dnat"
	natPreroutingChain        = "nat-prerouting"
	natOutputChain            = "nat-output"
	natPostroutingChain       = "nat-postrouting"
	// Wharf's own: the cluster DNS address is NOTRACKed (NodeLocal
	// DNSCache's contract), at raw priority, before conntrack.
	rawPreroutingChain = "raw-prerouting"
	rawOutputChain     = "raw-output"

	servicesChain               = "services"
	serviceIPsMap               = "service-ips"
	serviceNodePortsMap         = "service-nodeports"
	nodePortIPsSet              = "nodeport-ips"
	clusterIPsSet               = "cluster-ips"
	serviceEndpointsCheckChain  = "service-endpoints-check"
	nodePortEndpointsCheckChain = "nodeport-endpoints-check"
	noEndpointServicesMap       = "no-endpoint-services"
	noEndpointNodePortsMap      = "no-endpoint-nodeports"
	rejectChain                 = "reject-chain"
	clusterIPsCheckChain        = "cluster-ips-check"
	markMasqChain               = "mark-for-masquerade"
	masqueradingChain           = "masquerading"
)

// masqueradeMark is kube-proxy's default masqueradeBit 14.
const masqueradeMark = "0x4000"

// chainNameBaseLengthMax leaves room for a prefix within nft's limit.
const chainNameBaseLengthMax = knftables.NameLengthMax - 16

// portBase is kube-proxy's servicePortChainNameBase: "/" separates parts
// because no namespace, service, protocol or port name may contain it.
func portBase(p *model.ServicePort) string {
	return p.Service.Namespace + "/" + p.Service.Name + "/" + string(p.Protocol) + "/" + p.Name
}

// endpointBase is kube-proxy's servicePortEndpointChainNameBase.
func endpointBase(p *model.ServicePort, ep netip.AddrPort) string {
	return fmt.Sprintf("%s__%s/%d", portBase(p), ep.Addr(), ep.Port())
}

// hashAndTruncate prefixes name with 8 characters of its hash (so names
// stay unique when truncated) and truncates it to fit nft's limit, as
// kube-proxy does.
func hashAndTruncate(name string) string {
	hash := sha256.Sum256([]byte(name))
	name = base32.StdEncoding.EncodeToString(hash[:])[:8] + "-" + name
	if len(name) > chainNameBaseLengthMax {
		name = name[:chainNameBaseLengthMax-3] + "..."
	}
	return name
}

// portNames are the per-service-port object names.
type portNames struct {
	cluster, local, external string
}

func namesFor(p *model.ServicePort) portNames {
	h := hashAndTruncate(portBase(p))
	return portNames{cluster: "service-" + h, local: "local-" + h, external: "external-" + h}
}

func endpointChainName(p *model.ServicePort, ep netip.AddrPort) string {
	return "endpoint-" + hashAndTruncate(endpointBase(p, ep))
}

func affinitySetName(p *model.ServicePort, ep netip.AddrPort) string {
	return "affinity-" + hashAndTruncate(endpointBase(p, ep))
}
