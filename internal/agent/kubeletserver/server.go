// Package kubeletserver is the node agent's HTTPS endpoint for the API
// server, on kubelet's port (10250) and with kubelet's routes: container
// logs, exec, attach and port-forward, which kube-apiserver's pods/log,
// pods/exec, pods/attach and pods/portforward subresources proxy to.
//
// Only the API server may call it: a client must present a certificate
// signed by the cluster CA for the API server's kubelet-client identity
// (CN kube-apiserver-kubelet-client in O system:masters, as kubeadm names
// it). No certificate is 401, another identity 403.
//
// The streaming protocols (SPDY remotecommand v1-v4 and portforward.k8s.io,
// and the legacy channel.k8s.io WebSocket protocols) are
// k8s.io/cri-streaming's, which kubelet's own streaming server uses; the API
// server translates kubectl's WebSocket v5 and tunnelled port-forward into
// SPDY. What runs the containers is a Provider.
package kubeletserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"time"
)

// DefaultPort is kubelet's port, which the API server dials when a Node's
// status.daemonEndpoints.kubeletEndpoint.port is not set.
const DefaultPort = 10250

// The API server's identity towards kubelets (kubeadm's
// apiserver-kubelet-client certificate).
const (
	APIServerUser  = "kube-apiserver-kubelet-client"
	APIServerGroup = "system:masters"
)

// Config configures the server.
type Config struct {
	// Address is where to listen: the node IP and the port ("10.0.0.5:10250").
	Address string
	// CertFile and KeyFile are the serving certificate, signed by the
	// cluster CA for the node's name and IP.
	CertFile, KeyFile string
	// ClientCAFile is the cluster CA, which signs the API server's client
	// certificate.
	ClientCAFile string
	// Provider reads logs and runs streams in containers.
	Provider Provider
	// StreamIdleTimeout closes an exec, attach or port-forward connection
	// idle that long (4 h, kubelet's streamingConnectionIdleTimeout).
	StreamIdleTimeout time.Duration
	// LogPollInterval is how often a followed log is read for new lines
	// (250 ms).
	LogPollInterval time.Duration
}

// Server is the agent's kubelet endpoint.
type Server struct {
	cfg Config
	tls *tls.Config
}

// New loads the certificates and prepares the server.
func New(cfg Config) (*Server, error) {
	if cfg.Provider == nil {
		return nil, errors.New("kubelet server: no provider")
	}
	if cfg.StreamIdleTimeout == 0 {
		cfg.StreamIdleTimeout = 4 * time.Hour
	}
	if cfg.LogPollInterval == 0 {
		cfg.LogPollInterval = 250 * time.Millisecond
	}
	cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("kubelet server: load serving certificate %s: %w", cfg.CertFile, err)
	}
	caPEM, err := os.ReadFile(cfg.ClientCAFile)
	if err != nil {
		return nil, fmt.Errorf("kubelet server: read client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("kubelet server: no certificate in client CA file %s", cfg.ClientCAFile)
	}
	return &Server{cfg: cfg, tls: &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		// A certificate the CA did not sign fails the handshake; none at all
		// gets to the handler, which answers 401.
		ClientAuth: tls.VerifyClientCertIfGiven,
		MinVersion: tls.VersionTLS12,
		// Upgrades (SPDY, WebSocket) need HTTP/1.1.
		NextProtos: []string{"http/1.1"},
	}}, nil
}

// Run listens on cfg.Address and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Address)
	if err != nil {
		return fmt.Errorf("kubelet server: listen on %s: %w", s.cfg.Address, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves HTTPS on ln until ctx ends; it closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         s.tls,
		ReadHeaderTimeout: 30 * time.Second,
		// An empty map turns HTTP/2 off.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		BaseContext:  func(net.Listener) context.Context { return ctx },
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			_ = srv.Close()
		case <-done:
		}
	}()
	err := srv.Serve(tls.NewListener(ln, s.tls))
	if errors.Is(err, http.ErrServerClosed) && ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("kubelet server: %w", err)
}

// Handler returns the routes behind the client certificate check; the
// request must have come over TLS with s's configuration.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", s.serveLogs)
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		mux.HandleFunc(m+" /exec/{namespace}/{pod}/{container}", s.serveExec)
		mux.HandleFunc(m+" /exec/{namespace}/{pod}/{uid}/{container}", s.serveExec)
		mux.HandleFunc(m+" /attach/{namespace}/{pod}/{container}", s.serveAttach)
		mux.HandleFunc(m+" /attach/{namespace}/{pod}/{uid}/{container}", s.serveAttach)
		mux.HandleFunc(m+" /portForward/{namespace}/{pod}", s.servePortForward)
		mux.HandleFunc(m+" /portForward/{namespace}/{pod}/{uid}", s.servePortForward)
	}
	return withAPIServerOnly(mux)
}

// withAPIServerOnly lets through requests whose verified client certificate
// is the API server's kubelet-client identity.
func withAPIServerOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		subject := r.TLS.VerifiedChains[0][0].Subject
		if subject.CommonName != APIServerUser || !slices.Contains(subject.Organization, APIServerGroup) {
			http.Error(w, fmt.Sprintf("Forbidden (user=%s, groups=%v, path=%s): only the API server may call this node",
				subject.CommonName, subject.Organization, r.URL.Path), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}
