package apiserver

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/wharf-io/wharf/internal/join"
	"github.com/wharf-io/wharf/internal/pki"
)

func TestServingCertJoin(t *testing.T) {
	ca, err := pki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	h := withJoin(http.NotFoundHandler(), ca, "s3cret")
	post := func(req join.Request) *httptest.ResponseRecorder {
		body, _ := json.Marshal(req)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, join.ServingPath, bytes.NewReader(body)))
		return rec
	}
	for _, tc := range []struct {
		name string
		req  join.Request
		want int
	}{
		{"wrong secret", join.Request{Secret: "nope", NodeName: "n1", CSR: csr, IPs: []string{"10.0.0.5"}}, http.StatusUnauthorized},
		{"no IPs", join.Request{Secret: "s3cret", NodeName: "n1", CSR: csr}, http.StatusBadRequest},
		{"bad IP", join.Request{Secret: "s3cret", NodeName: "n1", CSR: csr, IPs: []string{"ten"}}, http.StatusBadRequest},
	} {
		if rec := post(tc.req); rec.Code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, rec.Code, rec.Body, tc.want)
		}
	}
	rec := post(join.Request{Secret: "s3cret", NodeName: "n1", CSR: csr, IPs: []string{"10.0.0.5"}})
	if rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	var resp join.Response
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(resp.Certificate))
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "10.0.0.5", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("serving certificate does not verify for the node IP: %v", err)
	}
	if !slices.Contains(cert.DNSNames, "n1") || !cert.IPAddresses[0].Equal(net.ParseIP("10.0.0.5")) ||
		!cert.PublicKey.(*ecdsa.PublicKey).Equal(&key.PublicKey) {
		t.Errorf("certificate for %v %v, or not for the request's key", cert.DNSNames, cert.IPAddresses)
	}
}
