// Package netexec is Wharf's test and demo server, in the manner of
// Kubernetes' agnhost netexec: it answers HTTP on one or more ports and UDP
// echo, and tells the caller who answered (hostname, which is the pod name
// inside a pod), from which address the request came (the client IP a
// service preserved or not), and what it was asked. The chapter's demo
// images (jonbaier/node-express-info and friends) map to it.
package netexec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config says what to serve.
type Config struct {
	// HTTPPorts to serve HTTP on (all addresses).
	HTTPPorts []int
	// UDPPort, if set, echoes datagrams prefixed by the hostname.
	UDPPort int
	// Message is returned by / in the body (the whalesay image's text).
	Message string
	// Hostname overrides os.Hostname (tests).
	Hostname string
}

// Reply is what / answers as JSON when asked for it (Accept:
// application/json or ?format=json).
type Reply struct {
	Hostname   string `json:"hostname"`
	ClientIP   string `json:"clientIP"`
	ServerAddr string `json:"serverAddr"`
	Path       string `json:"path"`
	Message    string `json:"message,omitempty"`
}

// maxBytes caps /bytes.
const maxBytes = 1 << 30

// serveBytes answers /bytes?n=N with N zero bytes (at most 1 GiB), for
// throughput measurements.
func serveBytes(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
	if err != nil || n < 0 || n > maxBytes {
		http.Error(w, fmt.Sprintf("n must be a byte count from 0 to %d", maxBytes), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	buf := make([]byte, 64<<10)
	for n > 0 {
		chunk := min(n, int64(len(buf)))
		if _, err := w.Write(buf[:chunk]); err != nil {
			return
		}
		n -= chunk
	}
}

// Handler returns the HTTP handler: / (who answered), /hostname,
// /clientip, /echo?msg=..., /bytes?n=N and /healthz.
func Handler(c Config) http.Handler {
	host := c.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/hostname", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, host) })
	mux.HandleFunc("/clientip", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.RemoteAddr) })
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.URL.Query().Get("msg")) })
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	mux.HandleFunc("/bytes", serveBytes)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		clientIP, _, _ := net.SplitHostPort(r.RemoteAddr)
		local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		rep := Reply{Hostname: host, ClientIP: clientIP, Path: r.URL.Path, Message: c.Message}
		if local != nil {
			rep.ServerAddr = local.String()
		}
		if strings.Contains(r.Header.Get("Accept"), "application/json") || r.URL.Query().Get("format") == "json" {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(rep)
			return
		}
		if c.Message != "" {
			fmt.Fprintf(w, "%s\n", c.Message)
		}
		fmt.Fprintf(w, "hostname: %s\nclient: %s\nserver: %s\n", rep.Hostname, rep.ClientIP, rep.ServerAddr)
	})
	return mux
}

// Run serves until ctx ends.
func Run(ctx context.Context, c Config) error {
	if len(c.HTTPPorts) == 0 && c.UDPPort == 0 {
		c.HTTPPorts = []int{8080}
	}
	errs := make(chan error, len(c.HTTPPorts)+1)
	var wg sync.WaitGroup
	var servers []*http.Server
	for _, p := range c.HTTPPorts {
		l, err := net.Listen("tcp", ":"+strconv.Itoa(p))
		if err != nil {
			return fmt.Errorf("listen on %d: %w", p, err)
		}
		srv := &http.Server{Handler: Handler(c), ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		fmt.Fprintf(os.Stderr, "netexec: serving HTTP on port %d\n", p)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- err
			}
		}()
	}
	if c.UDPPort != 0 {
		pc, err := net.ListenPacket("udp", ":"+strconv.Itoa(c.UDPPort))
		if err != nil {
			return fmt.Errorf("listen on udp %d: %w", c.UDPPort, err)
		}
		go func() { <-ctx.Done(); pc.Close() }()
		go udpEcho(pc, c.Hostname)
	}
	select {
	case <-ctx.Done():
	case err := <-errs:
		return err
	}
	for _, s := range servers {
		_ = s.Close()
	}
	wg.Wait()
	return nil
}

// udpEcho answers each datagram with "<hostname> <datagram>".
func udpEcho(pc net.PacketConn, host string) {
	if host == "" {
		host, _ = os.Hostname()
	}
	buf := make([]byte, 64<<10)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		_, _ = pc.WriteTo(append([]byte(host+" "), buf[:n]...), addr)
	}
}
