package agent

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/wharf-io/wharf/internal/join"
)

// servingCert returns the files of this node's kubelet endpoint
// (kubeletserver.Config's CertFile, KeyFile and ClientCAFile): a serving
// certificate for the node's name and IP signed by the cluster CA, and the
// CA. It keeps <data-dir>/agent/serving.{crt,key} while they are for this
// name and IP and valid for more than a day, and asks the server for new
// ones with the join token otherwise. Errors are permanentError when
// retrying cannot help (a wrong token).
func servingCert(c *Config) (certFile, keyFile, caFile string, err error) {
	dir := filepath.Join(c.DataDir, "agent")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", "", err
	}
	certFile, keyFile, caFile = filepath.Join(dir, "serving.crt"), filepath.Join(dir, "serving.key"), filepath.Join(dir, "ca.crt")
	certPEM, _ := os.ReadFile(certFile)
	caPEM, _ := os.ReadFile(caFile)
	if _, err := os.Stat(keyFile); err == nil && servingCertFits(certPEM, caPEM, c.NodeName, c.NodeIP, time.Now()) {
		return certFile, keyFile, caFile, nil
	}
	caPEM, err = fetchCA(c)
	if err != nil {
		return "", "", "", err
	}
	certPEM, keyPEM, err := requestCert(c, caPEM, join.ServingPath, []string{c.NodeIP})
	if err != nil {
		return "", "", "", fmt.Errorf("serving certificate: %w", err)
	}
	for name, data := range map[string][]byte{keyFile: keyPEM, certFile: certPEM, caFile: caPEM} {
		if err := writeFileAtomic(name, data); err != nil {
			return "", "", "", err
		}
	}
	return certFile, keyFile, caFile, nil
}

// servingCertFits says whether certPEM is a serving certificate signed by
// caPEM for the node's name and IP, valid for more than a day after now.
func servingCertFits(certPEM, caPEM []byte, node, ip string, now time.Time) bool {
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return false
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || now.After(cert.NotAfter.Add(-24*time.Hour)) {
		return false
	}
	want := net.ParseIP(ip)
	if !slices.Contains(cert.DNSNames, node) || !slices.ContainsFunc(cert.IPAddresses, want.Equal) {
		return false
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return false
	}
	_, err = cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err == nil
}

// writeFileAtomic writes a private file through a rename, so a crash never
// leaves half a key.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
