package apiserver

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/wharf-io/wharf/internal/pki"
)

// AdminUser is the admin identity written into admin.kubeconfig; it is in
// group system:masters, which is allowed everything.
const AdminUser = "wharf-admin"

// servingNames returns the DNS names and IPs the serving certificate covers:
// loopback, the host's names and addresses, the first service IP, the
// kubernetes service's names, and any extra SANs.
func servingNames(c *Config) ([]string, []net.IP) {
	dns := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc." + c.ClusterDomain}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback}
	if h, err := os.Hostname(); err == nil {
		dns = append(dns, h)
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
				ips = append(ips, ipn.IP)
			}
		}
	}
	if ip := c.firstServiceIP(); ip != nil {
		ips = append(ips, ip)
	}
	if ip := net.ParseIP(c.AdvertiseAddress); ip != nil {
		ips = append(ips, ip)
	}
	for _, san := range c.TLSSANs {
		if ip := net.ParseIP(san); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, san)
		}
	}
	return dns, ips
}

// writeServingCert signs this server's serving certificate and writes it,
// with the CA, into <data-dir>/tls.
func writeServingCert(c *Config, ca *pki.CA) (certFile, keyFile string, err error) {
	dir := filepath.Join(c.DataDir, "tls")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	dns, ips := servingNames(c)
	certPEM, keyPEM, err := ca.Sign(pki.Request{CommonName: "wharf-apiserver", DNSNames: dns, IPs: ips, Server: true})
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, "serving.crt"), filepath.Join(dir, "serving.key")
	for name, data := range map[string][]byte{certFile: certPEM, keyFile: keyPEM, filepath.Join(dir, "ca.crt"): ca.CertPEM} {
		if err := writeFileAtomic(name, data, 0o600); err != nil {
			return "", "", err
		}
	}
	return certFile, keyFile, nil
}

// KubeletClientUser and KubeletClientGroup are the API server's identity
// towards node agents, as kubeadm's apiserver-kubelet-client certificate;
// agents serve no one else (package kubeletserver).
const (
	KubeletClientUser  = "kube-apiserver-kubelet-client"
	KubeletClientGroup = "system:masters"
)

// writeKubeletClientCert signs the certificate the API server presents to
// node agents and writes it into <data-dir>/tls beside the serving one.
func writeKubeletClientCert(c *Config, ca *pki.CA) (certPEM, keyPEM []byte, err error) {
	certPEM, keyPEM, err = ca.Sign(pki.Request{CommonName: KubeletClientUser, Organization: []string{KubeletClientGroup}})
	if err != nil {
		return nil, nil, err
	}
	dir := filepath.Join(c.DataDir, "tls")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	for name, data := range map[string][]byte{"kubelet-client.crt": certPEM, "kubelet-client.key": keyPEM} {
		if err := writeFileAtomic(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, nil, err
		}
	}
	return certPEM, keyPEM, nil
}

// newKubeletTransport returns the transport to node agents: the
// kubelet-client certificate, and agents' serving certificates verified
// against the cluster CA. HTTP/1.1 only, as upgrades need.
func newKubeletTransport(caPEM, certPEM, keyPEM []byte) (*http.Transport, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("kubelet client certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("kubelet client: no certificate in the cluster CA")
	}
	return &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 25,
		IdleConnTimeout:     90 * time.Second,
	}, nil
}

// writeAdminKubeconfig writes <data-dir>/admin.kubeconfig: the cluster's CA,
// the server's address and a client certificate for the admin.
func writeAdminKubeconfig(c *Config, ca *pki.CA) (string, error) {
	certPEM, keyPEM, err := ca.Sign(pki.Request{CommonName: AdminUser, Organization: []string{"system:masters"},
		Validity: 10 * 365 * 24 * time.Hour})
	if err != nil {
		return "", err
	}
	host := c.AdvertiseAddress
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["wharf"] = &clientcmdapi.Cluster{
		Server:                   fmt.Sprintf("https://%s", net.JoinHostPort(host, fmt.Sprint(c.SecurePort))),
		CertificateAuthorityData: ca.CertPEM,
	}
	cfg.AuthInfos[AdminUser] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	cfg.Contexts["wharf"] = &clientcmdapi.Context{Cluster: "wharf", AuthInfo: AdminUser, Namespace: "default"}
	cfg.CurrentContext = "wharf"
	path := filepath.Join(c.DataDir, "admin.kubeconfig")
	if existing, err := clientcmd.LoadFromFile(path); err == nil {
		// Keep what the user changed (kubectl config set-context ...), but
		// refresh the credentials and the address of our own entries.
		if ctx, ok := existing.Contexts["wharf"]; ok {
			cfg.Contexts["wharf"].Namespace = ctx.Namespace
		}
		for k, v := range existing.Contexts {
			if _, ours := cfg.Contexts[k]; !ours {
				cfg.Contexts[k] = v
			}
		}
		if existing.CurrentContext != "" {
			cfg.CurrentContext = existing.CurrentContext
		}
	}
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return "", err
	}
	return path, writeFileAtomic(path, data, 0o600)
}

// writeFileAtomic writes through a temporary file and a rename, so a crash
// never leaves half a file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
