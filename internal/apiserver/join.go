package apiserver

import (
	"crypto/subtle"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
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
			serveJoin(w, r, ca, secret)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func serveJoin(w http.ResponseWriter, r *http.Request, ca *pki.CA, secret string) {
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
	block, _ := pem.Decode([]byte(req.CSR))
	if block == nil {
		http.Error(w, "no PEM certificate request", http.StatusBadRequest)
		return
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil || csr.CheckSignature() != nil {
		http.Error(w, "invalid certificate request", http.StatusBadRequest)
		return
	}
	certPEM, err := ca.SignKey(csr.PublicKey, pki.Request{CommonName: "system:node:" + req.NodeName,
		Organization: []string{"system:nodes"}})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(join.Response{Certificate: string(certPEM), CA: string(ca.CertPEM)})
}
