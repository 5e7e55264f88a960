package kubeletserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/client-go/util/exec"

	"github.com/wharf-io/wharf/internal/pki"
)

// testEnv is a server on loopback with a test CA, and the fake behind it.
type testEnv struct {
	ca   *pki.CA
	host string
	fake *Fake
	dir  string
}

func startServer(t *testing.T, fake *Fake) *testEnv {
	t.Helper()
	ca, err := pki.NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPEM, keyPEM, err := ca.Sign(pki.Request{CommonName: "system:node:test", Organization: []string{"system:nodes"},
		IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"serving.crt": certPEM, "serving.key": keyPEM, "ca.crt": ca.CertPEM}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err := New(Config{CertFile: filepath.Join(dir, "serving.crt"), KeyFile: filepath.Join(dir, "serving.key"),
		ClientCAFile: filepath.Join(dir, "ca.crt"), Provider: fake, LogPollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &testEnv{ca: ca, host: "https://" + ln.Addr().String(), fake: fake, dir: dir}
}

// config returns a client configuration for a certificate of the given
// identity signed by the test CA (no certificate when cn is "").
func (e *testEnv) config(t *testing.T, cn string, orgs ...string) *rest.Config {
	t.Helper()
	cfg := &rest.Config{Host: e.host, TLSClientConfig: rest.TLSClientConfig{CAData: e.ca.CertPEM}}
	if cn != "" {
		certPEM, keyPEM, err := e.ca.Sign(pki.Request{CommonName: cn, Organization: orgs})
		if err != nil {
			t.Fatal(err)
		}
		cfg.CertData, cfg.KeyData = certPEM, keyPEM
	}
	return cfg
}

func (e *testEnv) apiServer(t *testing.T) *rest.Config {
	return e.config(t, APIServerUser, APIServerGroup)
}

func (e *testEnv) get(t *testing.T, cfg *rest.Config, path string) *http.Response {
	t.Helper()
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: rt, Timeout: 10 * time.Second}).Get(e.host + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestOnlyTheAPIServerIdentityIsServed(t *testing.T) {
	env := startServer(t, &Fake{})
	for _, tc := range []struct {
		name                string
		cfg                 *rest.Config
		wantHealth, wantLog int
	}{
		{"no client certificate", env.config(t, ""), http.StatusUnauthorized, http.StatusUnauthorized},
		{"a node's certificate", env.config(t, "system:node:other", "system:nodes"), http.StatusForbidden, http.StatusForbidden},
		{"the right name without system:masters", env.config(t, APIServerUser), http.StatusForbidden, http.StatusForbidden},
		// The fake has no such container: the request got through to it.
		{"the API server", env.apiServer(t), http.StatusOK, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if resp := env.get(t, tc.cfg, "/healthz"); resp.StatusCode != tc.wantHealth {
				t.Errorf("GET /healthz: %s, want %d", resp.Status, tc.wantHealth)
			}
			if resp := env.get(t, tc.cfg, "/containerLogs/ns/pod/c"); resp.StatusCode != tc.wantLog {
				t.Errorf("GET /containerLogs: %s, want %d", resp.Status, tc.wantLog)
			}
		})
	}
}

func TestCertificateFromAnotherCAFailsTheHandshake(t *testing.T) {
	env := startServer(t, &Fake{})
	other, err := pki.NewCA("other")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := other.Sign(pki.Request{CommonName: APIServerUser, Organization: []string{APIServerGroup}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := env.config(t, "")
	cfg.CertData, cfg.KeyData = certPEM, keyPEM
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: rt, Timeout: 10 * time.Second}).Get(env.host + "/healthz")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("a certificate from another CA got %s", resp.Status)
	}
}

func writeLog(t *testing.T, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		if _, err := f.WriteString(l + "\n"); err != nil {
			t.Fatal(err)
		}
	}
}

func logFake(t *testing.T) (*Fake, *FakeLog) {
	dir := t.TempDir()
	l := &FakeLog{Path: filepath.Join(dir, "0.log")}
	l.Running.Store(true)
	writeLog(t, l.Path, "2024-01-01T00:00:01Z stdout F first", "2024-01-01T00:00:02Z stderr F second")
	return &Fake{Logs: map[string]*FakeLog{"ns/web/app": l}}, l
}

func TestLogs(t *testing.T) {
	fake, _ := logFake(t)
	env := startServer(t, fake)
	cfg := env.apiServer(t)
	for _, tc := range []struct {
		query    string
		status   int
		contains string
	}{
		{"", http.StatusOK, "first\nsecond\n"},
		{"?tailLines=1&timestamps=true", http.StatusOK, "2024-01-01T00:00:02Z second\n"},
		{"?limitBytes=3", http.StatusOK, "fir"},
		{"?tailLines=-2", http.StatusBadRequest, `"tailLines"`},
		{"?previous=true", http.StatusBadRequest, `previous terminated container "app" in pod "web" not found`},
	} {
		resp := env.get(t, cfg, "/containerLogs/ns/web/app"+tc.query)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.contains) {
			t.Errorf("%s: %s %q, want %d with %q", tc.query, resp.Status, body, tc.status, tc.contains)
		}
	}
	if resp := env.get(t, cfg, "/containerLogs/ns/web/nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown container: %s, want 404", resp.Status)
	}
}

func TestLogsFollowUntilTheContainerStops(t *testing.T) {
	fake, l := logFake(t)
	env := startServer(t, fake)
	resp := env.get(t, env.apiServer(t), "/containerLogs/ns/web/app?follow=true&tailLines=1")
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	next := func() string {
		select {
		case s := <-lines:
			return s
		case <-time.After(5 * time.Second):
			t.Fatal("no log line within 5s")
			return ""
		}
	}
	if got := next(); got != "second" {
		t.Fatalf("first line %q, want the tail %q", got, "second")
	}
	writeLog(t, l.Path, "2024-01-01T00:00:03Z stdout P thi", "2024-01-01T00:00:04Z stdout F rd")
	if got := next(); got != "third" {
		t.Fatalf("followed line %q, want %q", got, "third")
	}
	writeLog(t, l.Path, "2024-01-01T00:00:05Z stdout F last words")
	l.Running.Store(false)
	if got := next(); got != "last words" {
		t.Fatalf("line written before the stop %q, want %q", got, "last words")
	}
	select {
	case s, ok := <-lines:
		if ok {
			t.Fatalf("unexpected line %q after the container stopped", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end after the container stopped")
	}
}

func execFake() *Fake {
	return &Fake{
		Containers: map[string][]string{"ns/web": {"app"}},
		Exec: func(cmd []string, in io.Reader, out, errOut io.Writer) (int, error) {
			fmt.Fprintf(out, "ran %s\n", strings.Join(cmd, " "))
			if errOut != nil {
				fmt.Fprintln(errOut, "to stderr")
			}
			if cmd[0] == "fail" {
				return 7, nil
			}
			return 0, nil
		},
	}
}

func execURL(t *testing.T, env *testEnv, path string, cmd ...string) *url.URL {
	q := url.Values{"output": {"1"}, "error": {"1"}, "command": cmd}
	u, err := url.Parse(env.host + path + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestExecExitCodeReachesTheClient(t *testing.T) {
	env := startServer(t, execFake())
	cfg := env.apiServer(t)
	executors := map[string]func(u *url.URL) (remotecommand.Executor, error){
		"SPDY": func(u *url.URL) (remotecommand.Executor, error) { return remotecommand.NewSPDYExecutor(cfg, "POST", u) },
		"WebSocket v4": func(u *url.URL) (remotecommand.Executor, error) {
			return remotecommand.NewWebSocketExecutorForProtocols(cfg, "GET", u.String(), "v4.channel.k8s.io")
		},
	}
	for name, newExec := range executors {
		for _, path := range []string{"/exec/ns/web/app", "/exec/ns/web/some-uid/app"} {
			t.Run(name+path, func(t *testing.T) {
				for cmd, wantCode := range map[string]int{"ok": 0, "fail": 7} {
					ex, err := newExec(execURL(t, env, path, cmd, "arg"))
					if err != nil {
						t.Fatal(err)
					}
					var out, errOut bytes.Buffer
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out, Stderr: &errOut})
					cancel()
					code := 0
					var exitErr exec.ExitError
					if errors.As(err, &exitErr) {
						code = exitErr.ExitStatus()
					} else if err != nil {
						t.Fatalf("%s: %v", cmd, err)
					}
					if code != wantCode || out.String() != "ran "+cmd+" arg\n" || errOut.String() != "to stderr\n" {
						t.Errorf("%s: code %d stdout %q stderr %q, want code %d", cmd, code, out.String(), errOut.String(), wantCode)
					}
				}
			})
		}
	}
}

func TestExecIntoAMissingContainerFailsBeforeTheUpgrade(t *testing.T) {
	env := startServer(t, execFake())
	ex, err := remotecommand.NewSPDYExecutor(env.apiServer(t), "POST", execURL(t, env, "/exec/ns/web/nope", "ok"))
	if err != nil {
		t.Fatal(err)
	}
	err = ex.StreamWithContext(context.Background(), remotecommand.StreamOptions{Stdout: io.Discard})
	if err == nil || !strings.Contains(err.Error(), `container not found ("nope")`) {
		t.Fatalf("got %v, want the provider's not-found error", err)
	}
}

func TestAttachSPDY(t *testing.T) {
	env := startServer(t, execFake())
	u, _ := url.Parse(env.host + "/attach/ns/web/app?input=1&output=1")
	ex, err := remotecommand.NewSPDYExecutor(env.apiServer(t), "POST", u)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: strings.NewReader("ping\n"), Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "ping\n" {
		t.Fatalf("attach echoed %q, want %q", out.String(), "ping\n")
	}
}

// echoServer accepts loopback connections and writes back what it reads.
func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

func TestPortForwardSPDYToALoopbackEcho(t *testing.T) {
	fake := execFake()
	fake.Ports = map[int32]string{8080: echoServer(t)}
	env := startServer(t, fake)
	rt, upgrader, err := spdy.RoundTripperFor(env.apiServer(t))
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(env.host + "/portForward/ns/web")
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: rt}, "POST", u)
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
	for i := range 2 { // two connections over the same forwarding
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0].Local), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		msg := fmt.Sprintf("hello %d\n", i)
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		got, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || got != msg {
			t.Fatalf("connection %d: echo %q, %v; want %q", i, got, err, msg)
		}
	}
}
