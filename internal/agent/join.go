package agent

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/keyutil"

	"github.com/wharf-io/wharf/internal/join"
)

// credentials returns the path of a kubeconfig holding this node's client
// certificate, joining the cluster with the token when there is none yet (or
// the one there is for another server or name).
func credentials(c *Config) (string, error) {
	dir := filepath.Join(c.DataDir, "agent")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "node.kubeconfig")
	if cfg, err := clientcmd.LoadFromFile(path); err == nil {
		if cl, ok := cfg.Clusters["wharf"]; ok && cl.Server == c.Server {
			if ai, ok := cfg.AuthInfos["node"]; ok && certIsFor(ai.ClientCertificateData, c.NodeName) {
				return path, nil
			}
		}
	}
	caPEM, err := fetchCA(c)
	if err != nil {
		return "", err
	}
	certPEM, keyPEM, err := requestCert(c, caPEM, join.Path, nil)
	if err != nil {
		return "", err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["wharf"] = &clientcmdapi.Cluster{Server: c.Server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos["node"] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	cfg.Contexts["node"] = &clientcmdapi.Context{Cluster: "wharf", AuthInfo: "node"}
	cfg.CurrentContext = "node"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return "", err
	}
	return path, nil
}

func certIsFor(certPEM []byte, node string) bool {
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return false
	}
	c, err := x509.ParseCertificate(block.Bytes)
	return err == nil && c.Subject.CommonName == "system:node:"+node && time.Now().Before(c.NotAfter.Add(-24*time.Hour))
}

// fetchCA gets the cluster CA and checks it against the token's hash, so
// the first contact cannot be intercepted.
func fetchCA(c *Config) ([]byte, error) {
	hash, _ := join.ParseToken(c.Token)
	insecure := &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // #nosec: verified by hash below
	resp, err := insecure.Get(strings.TrimSuffix(c.Server, "/") + join.CACertsPath)
	if err != nil {
		return nil, fmt.Errorf("fetch the cluster CA from %s: %w", c.Server, err)
	}
	defer resp.Body.Close()
	caPEM, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch the cluster CA from %s: %s %v", c.Server, resp.Status, err)
	}
	if hash == "" {
		return nil, permanent(fmt.Errorf("the join token carries no CA hash (want K10<hash>::<secret>, as in the server's <data-dir>/token)"))
	}
	if join.CAHash(caPEM) != hash {
		return nil, permanent(fmt.Errorf("the server at %s presents a CA that does not match the join token", c.Server))
	}
	return caPEM, nil
}

// requestCert sends the secret and a certificate request to path (the
// client or the serving certificate's, with the node's ips); it returns the
// signed certificate and the new key.
func requestCert(c *Config, caPEM []byte, path string, ips []string) ([]byte, []byte, error) {
	_, secret := join.ParseToken(c.Token)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "system:node:" + c.NodeName, Organization: []string{"system:nodes"}}}, key)
	if err != nil {
		return nil, nil, err
	}
	body, _ := json.Marshal(join.Request{Secret: secret, NodeName: c.NodeName, IPs: ips,
		CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Post(strings.TrimSuffix(c.Server, "/")+path, "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, nil, fmt.Errorf("join %s: %w", c.Server, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("join %s: %s: %s", c.Server, resp.Status, strings.TrimSpace(string(data)))
		if resp.StatusCode < 500 {
			err = permanent(err)
		}
		return nil, nil, err
	}
	var jr join.Response
	if err := json.Unmarshal(data, &jr); err != nil {
		return nil, nil, fmt.Errorf("join %s: %w", c.Server, err)
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return []byte(jr.Certificate), keyPEM, nil
}

// permanentError is a join failure that retrying cannot fix (a wrong token).
type permanentError struct{ error }

func permanent(err error) error { return permanentError{err} }

func (p permanentError) Unwrap() error { return p.error }
