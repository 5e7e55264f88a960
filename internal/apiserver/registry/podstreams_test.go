package registry

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	translator "k8s.io/apiserver/pkg/util/proxy"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/util/exec"

	"github.com/wharf-io/wharf/internal/agent/kubeletserver"
	"github.com/wharf-io/wharf/internal/pki"
)

// agentFixture runs a kubeletserver on loopback with a fake provider, and
// returns the host and the API server's transport to it.
func agentFixture(t *testing.T, fake *kubeletserver.Fake) (string, *http.Transport) {
	t.Helper()
	ca, err := pki.NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	servingPEM, servingKey, err := ca.Sign(pki.Request{CommonName: "system:node:n1", IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"s.crt": servingPEM, "s.key": servingKey, "ca.crt": ca.CertPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := kubeletserver.New(kubeletserver.Config{CertFile: filepath.Join(dir, "s.crt"), KeyFile: filepath.Join(dir, "s.key"),
		ClientCAFile: filepath.Join(dir, "ca.crt"), Provider: fake})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	clientPEM, clientKey, err := ca.Sign(pki.Request{CommonName: kubeletserver.APIServerUser, Organization: []string{kubeletserver.APIServerGroup}})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(clientPEM, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	return ln.Addr().String(), &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool}}
}

// errResponder is the generic server's responder, reduced to errors.
type errResponder struct{ w http.ResponseWriter }

func (r errResponder) Object(code int, _ runtime.Object) { r.w.WriteHeader(code) }
func (r errResponder) Error(err error)                   { http.Error(r.w, err.Error(), http.StatusBadGateway) }

// frontend stands in for the API server's connect handler: each request
// gets the handler Connect would return for the agent URL.
func frontend(t *testing.T, handler func(w http.ResponseWriter, r *http.Request) http.Handler) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler(w, r).ServeHTTP(w, r) }))
	t.Cleanup(s.Close)
	return s
}

func TestExecThroughTheAPIServerBridge(t *testing.T) {
	fake := &kubeletserver.Fake{Containers: map[string][]string{"ns/web": {"app"}},
		Exec: func(cmd []string, _ io.Reader, out, _ io.Writer) (int, error) {
			fmt.Fprintf(out, "ran %s\n", strings.Join(cmd, " "))
			if cmd[0] == "fail" {
				return 3, nil
			}
			return 0, nil
		}}
	host, transport := agentFixture(t, fake)
	front := frontend(t, func(w http.ResponseWriter, r *http.Request) http.Handler {
		loc := agentURL(host, remoteCommandParams(false, true, false, false, r.URL.Query()["command"]), "exec", "ns", "web", "app")
		return remoteCommandHandler(loc, transport, translator.Options{Stdout: true}, errResponder{w})
	})
	cfg := &rest.Config{Host: front.URL}
	executors := map[string]func(u *url.URL) (remotecommand.Executor, error){
		// kubectl 1.30+: WebSocket v5, translated to SPDY towards the agent.
		"WebSocket v5": func(u *url.URL) (remotecommand.Executor, error) {
			return remotecommand.NewWebSocketExecutor(cfg, "GET", u.String())
		},
		// KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false: SPDY passed through.
		"SPDY": func(u *url.URL) (remotecommand.Executor, error) { return remotecommand.NewSPDYExecutor(cfg, "POST", u) },
	}
	for name, newExec := range executors {
		for cmd, wantCode := range map[string]int{"ok": 0, "fail": 3} {
			u, _ := url.Parse(front.URL + "/exec?command=" + cmd + "&stdout=true")
			ex, err := newExec(u)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out})
			cancel()
			code := 0
			var exitErr exec.ExitError
			if errors.As(err, &exitErr) {
				code = exitErr.ExitStatus()
			} else if err != nil {
				t.Fatalf("%s %s: %v", name, cmd, err)
			}
			if code != wantCode || out.String() != "ran "+cmd+"\n" {
				t.Errorf("%s %s: code %d, stdout %q; want code %d", name, cmd, code, out.String(), wantCode)
			}
		}
	}
}

func TestPortForwardThroughTheAPIServerTunnel(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { echo.Close() })
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	fake := &kubeletserver.Fake{Containers: map[string][]string{"ns/web": {"app"}},
		Ports: map[int32]string{8080: echo.Addr().String()}}
	host, transport := agentFixture(t, fake)
	front := frontend(t, func(w http.ResponseWriter, r *http.Request) http.Handler {
		return portForwardHandler(agentURL(host, nil, "portForward", "ns", "web"), transport, errResponder{w})
	})
	u, _ := url.Parse(front.URL + "/portforward")
	// kubectl 1.31+: SPDY tunnelled through WebSocket, falling back to SPDY.
	dialer, err := portforward.NewSPDYOverWebsocketDialer(u, &rest.Config{Host: front.URL})
	if err != nil {
		t.Fatal(err)
	}
	stop, ready := make(chan struct{}), make(chan struct{})
	pf, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:8080"}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- pf.ForwardPorts() }()
	t.Cleanup(func() { close(stop); <-errc })
	select {
	case <-ready:
	case err := <-errc:
		t.Fatalf("port-forward: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("port-forward not ready within 10s")
	}
	ports, err := pf.GetPorts()
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0].Local), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("through the tunnel\n")); err != nil {
		t.Fatal(err)
	}
	if got, err := bufio.NewReader(c).ReadString('\n'); err != nil || got != "through the tunnel\n" {
		t.Fatalf("echo %q, %v", got, err)
	}
}
