package apiserver

import (
	"crypto"
	"crypto/subtle"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	utilvalidation "k8s.io/apimachinery/pkg/util/validation"

	"github.com/wharf-io/wharf/internal/join"
	"github.com/wharf-io/wharf/internal/pki"
)

// withJoin serves the join endpoints (package join) in front of the API.
func withJoin(next http.Handler, ca *pki.CA, secret string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case join.CACertsPath:
			w.Header().Set("Content-Type", "application/x-pem-file")
			_, _ = w.Write(ca.CertPEM)
		case join.Path:
			serveJoin(w, r, ca, secret, clientCertRequest)
		case join.ServingPath:
			serveJoin(w, r, ca, secret, servingCertRequest)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// clientCertRequest is what a node's client certificate says.
func clientCertRequest(req *join.Request) (pki.Request, error) {
	return pki.Request{CommonName: "system:node:" + req.NodeName, Organization: []string{"system:nodes"}}, nil
}

// servingCertRequest is what a node's kubelet serving certificate says: its
// name and addresses, as kubelet's own serving certificates.
func servingCertRequest(req *join.Request) (pki.Request, error) {
	out := pki.Request{CommonName: "system:node:" + req.NodeName, Organization: []string{"system:nodes"},
		DNSNames: []string{req.NodeName}, Server: true}
	if len(req.IPs) == 0 {
		return out, fmt.Errorf("a serving certificate needs the node's IPs")
	}
	for _, s := range req.IPs {
		ip := net.ParseIP(s)
		if ip == nil {
			return out, fmt.Errorf("invalid node IP %q", s)
		}
		out.IPs = append(out.IPs, ip)
	}
	return out, nil
}

// serveJoin checks the secret, the node name and the certificate request,
// and signs the request's key for what certFor says.
func serveJoin(w http.ResponseWriter, r *http.Request, ca *pki.CA, secret string, certFor func(*join.Request) (pki.Request, error)) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	var req join.Request
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		http.Error(w, "bad join request: "+err.Error(), http.StatusBadRequest)
		return
	}
	if subtle.ConstantTimeCompare([]byte(req.Secret), []byte(secret)) != 1 {
		http.Error(w, "invalid join token", http.StatusUnauthorized)
		return
	}
	if msgs := utilvalidation.IsDNS1123Subdomain(req.NodeName); len(msgs) > 0 {
		http.Error(w, fmt.Sprintf("invalid node name %q: %s", req.NodeName, strings.Join(msgs, "; ")), http.StatusBadRequest)
		return
	}
	pub, err := csrKey(req.CSR)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	what, err := certFor(&req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	certPEM, err := ca.SignKey(pub, what)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(join.Response{Certificate: string(certPEM), CA: string(ca.CertPEM)})
}

// csrKey returns the public key of a PEM certificate request whose
// signature checks.
func csrKey(csrPEM string) (crypto.PublicKey, error) {
	block, _ := pem.Decode([]byte(csrPEM))
	if block == nil {
		return nil, fmt.Errorf("no PEM certificate request")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil || csr.CheckSignature() != nil {
		return nil, fmt.Errorf("invalid certificate request")
	}
	return csr.PublicKey, nil
}
