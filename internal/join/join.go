// Package join is the contract between a joining agent and the server, as
// k3s does it: the token a server writes to <data-dir>/token is
// "K10<sha256 of the CA certificate>::<secret>". An agent fetches the CA
// from CACertsPath (anonymous), checks its hash against the token, and then
// trusts the server; it posts the secret, its node name and a certificate
// request to Path and gets back a client certificate for
// system:node:<name> in group system:nodes, never admin credentials. With
// the same secret, ServingPath signs the serving certificate of the node's
// kubelet endpoint (package kubeletserver) for its name and IPs.
package join

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

const (
	// CACertsPath serves the cluster CA (public).
	CACertsPath = "/cacerts"
	// Path signs a node's certificate for the join secret.
	Path = "/v1-wharf/join"
	// ServingPath signs a node's serving certificate for the join secret.
	ServingPath = "/v1-wharf/serving-cert"
)

// Token is the token an agent needs: the CA's hash and the secret.
func Token(caPEM []byte, secret string) string {
	return "K10" + CAHash(caPEM) + "::" + secret
}

// CAHash is the hex SHA-256 of the CA certificate as served.
func CAHash(caPEM []byte) string {
	sum := sha256.Sum256(caPEM)
	return hex.EncodeToString(sum[:])
}

// ParseToken splits a token into the CA hash and the secret. A bare secret
// gives an empty hash.
func ParseToken(token string) (caHash, secret string) {
	token = strings.TrimSpace(token)
	if strings.HasPrefix(token, "K10") {
		if h, s, ok := strings.Cut(token[3:], "::"); ok {
			return h, s
		}
	}
	return "", token
}

// Request is what an agent posts.
type Request struct {
	Secret   string `json:"secret"`
	NodeName string `json:"nodeName"`
	// CSR is a PEM certificate request; only its public key is used.
	CSR string `json:"csr"`
	// IPs are the node's addresses, for ServingPath only: the serving
	// certificate is for NodeName and these.
	IPs []string `json:"ips,omitempty"`
}

// Response carries the node's certificate (client or serving) and the CA.
type Response struct {
	Certificate string `json:"certificate"`
	CA          string `json:"ca"`
}
