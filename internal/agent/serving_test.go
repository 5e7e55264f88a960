package agent

import (
	"net"
	"testing"
	"time"

	"github.com/wharf-io/wharf/internal/pki"
)

func TestServingCertFits(t *testing.T) {
	ca, err := pki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCA("other")
	if err != nil {
		t.Fatal(err)
	}
	sign := func(ca *pki.CA, server bool, name, ip string) []byte {
		c, _, err := ca.Sign(pki.Request{CommonName: "system:node:" + name, DNSNames: []string{name},
			IPs: []net.IP{net.ParseIP(ip)}, Server: server})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	now := time.Now()
	good := sign(ca, true, "n1", "10.0.0.5")
	for _, tc := range []struct {
		name     string
		cert, ca []byte
		node, ip string
		now      time.Time
		want     bool
	}{
		{"fits", good, ca.CertPEM, "n1", "10.0.0.5", now, true},
		{"another node name", good, ca.CertPEM, "n2", "10.0.0.5", now, false},
		{"the node IP changed", good, ca.CertPEM, "n1", "10.0.0.6", now, false},
		{"another CA", sign(other, true, "n1", "10.0.0.5"), ca.CertPEM, "n1", "10.0.0.5", now, false},
		{"a client certificate", sign(ca, false, "n1", "10.0.0.5"), ca.CertPEM, "n1", "10.0.0.5", now, false},
		{"expires within a day", good, ca.CertPEM, "n1", "10.0.0.5", now.Add(365*24*time.Hour - time.Hour), false},
		{"no certificate", nil, ca.CertPEM, "n1", "10.0.0.5", now, false},
	} {
		if got := servingCertFits(tc.cert, tc.ca, tc.node, tc.ip, tc.now); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}
