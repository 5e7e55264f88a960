// Package framework starts Wharf processes for end-to-end tests: it builds
// the wharf binary once per test binary, runs `wharf up` or `wharf server`
// in a temporary data dir on free loopback ports, runs `wharf kubectl`
// against it (each with its own discovery cache), and always stops what it
// started, by pid.
package framework

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// CNIPlugins are the reference plugins built beside the binary.
var CNIPlugins = []string{"main/bridge", "ipam/host-local", "main/loopback", "meta/portmap", "main/macvlan"}

// Binary returns the path of a wharf binary built from this checkout (or
// $WHARF_BIN if set), building it once.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("WHARF_BIN"); p != "" {
			binPath = p
			return
		}
		dir, err := os.MkdirTemp("", "wharf-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "wharf")
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..", "..")
		cmd := exec.Command("go", "build", "-ldflags", os.Getenv("WHARF_LDFLAGS"), "-o", binPath, "./cmd/wharf")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		// The small container init, where the agent looks for it.
		cmd = exec.Command("go", "build", "-o", filepath.Join(dir, "wharf-init"), "./cmd/wharf-init")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build wharf-init: %v\n%s", err, out)
			return
		}
		// The CNI reference plugins, where the agent looks for them.
		args := []string{"build", "-o", filepath.Join(dir, "cni") + "/"}
		for _, p := range CNIPlugins {
			args = append(args, "github.com/containernetworking/plugins/plugins/"+p)
		}
		cmd = exec.Command("go", args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build CNI plugins: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Server is one running wharf process.
type Server struct {
	t          testing.TB
	Bin        string
	DataDir    string
	Port       int
	EtcdURL    string
	Args       []string
	Kubeconfig string
	Netns      string
	cmd        *exec.Cmd
	log        *bytes.Buffer
	done       chan struct{}
	mu         sync.Mutex
}

// Options says how to start a server.
type Options struct {
	// Command is "up" (default) or "server".
	Command string
	// DataDir reuses a directory (restart tests); default a new temp dir.
	DataDir string
	// EtcdServers points at another server's etcd instead of embedding one.
	EtcdServers string
	// Agent runs this machine's node agent in `wharf up` (off by default:
	// API tests need no node, and agents belong in a sandbox).
	Agent bool
	// Extra flags.
	Extra []string
	// Netns runs wharf in this network namespace (a sandbox node's path);
	// the framework's clients and kubectl then reach it there too.
	Netns string
}

// Start starts wharf and waits for /readyz; the process is stopped when the
// test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Command == "" {
		o.Command = "up"
	}
	dir := o.DataDir
	if dir == "" {
		var err error
		dir, err = os.MkdirTemp(shmBase(), "wharf-e2e-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	s := &Server{t: t, Bin: Binary(t), DataDir: dir, Port: FreePort(t), Netns: o.Netns}
	s.Args = []string{o.Command, "--data-dir", dir, "--secure-port", fmt.Sprint(s.Port), "--bind-address", "127.0.0.1"}
	if o.EtcdServers != "" {
		s.Args = append(s.Args, "--etcd-servers", o.EtcdServers)
		s.EtcdURL = o.EtcdServers
	} else {
		s.EtcdURL = fmt.Sprintf("http://127.0.0.1:%d", FreePort(t))
		s.Args = append(s.Args, "--etcd-client-url", s.EtcdURL,
			"--etcd-peer-url", fmt.Sprintf("http://127.0.0.1:%d", FreePort(t)), "--etcd-unsafe-no-fsync")
	}
	if o.Command == "up" && !o.Agent {
		// The API tests need no node; agents run in sandboxes.
		s.Args = append(s.Args, "--disable=agent")
	}
	s.Args = append(s.Args, o.Extra...)
	s.Kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	s.launch()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) launch() {
	s.t.Helper()
	s.log = &bytes.Buffer{}
	s.cmd = s.command(s.Bin, s.Args...)
	s.cmd.Stdout = &lockedWriter{w: s.log, mu: &s.mu}
	s.cmd.Stderr = s.cmd.Stdout
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(s.cmd, s.done)
	if err := s.WaitReady(90 * time.Second); err != nil {
		s.Stop()
		s.t.Fatalf("wharf %s did not become ready: %v\n%s", strings.Join(s.Args, " "), err, s.Log())
	}
}

// PID is the process id of the running wharf process (0 if none).
func (s *Server) PID() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Log returns what the process printed so far.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// URL is the API server's address.
func (s *Server) URL() string { return fmt.Sprintf("https://127.0.0.1:%d", s.Port) }

// WaitReady polls /readyz (anonymous, which upstream allows) until it says ok.
func (s *Server) WaitReady(timeout time.Duration) error {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DialContext: s.DialContext}}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("process exited")
		default:
		}
		resp, err := c.Get(s.URL() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if _, err := os.Stat(s.Kubeconfig); err == nil {
					return nil
				}
			}
			last = fmt.Errorf("readyz: %s", resp.Status)
		} else {
			last = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return last
}

// Stop ends the process gracefully (SIGTERM, then SIGKILL after 20 s).
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Kill9 kills the process with SIGKILL, as a crash would.
func (s *Server) Kill9() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Restart starts the same command again (same data dir and ports).
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.launch()
}

// RestConfig returns a client config for the admin.
func (s *Server) RestConfig() *rest.Config {
	s.t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
	if err != nil {
		s.t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 500, 1000
	if s.Netns != "" {
		cfg.Dial = s.DialContext
	}
	return cfg
}

// Client returns an admin clientset.
func (s *Server) Client() kubernetes.Interface {
	s.t.Helper()
	c, err := kubernetes.NewForConfig(s.RestConfig())
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

// Kubectl runs `wharf kubectl` with the admin kubeconfig and a discovery
// cache of its own; it returns stdout+stderr and the error, if any.
func (s *Server) Kubectl(args ...string) (string, error) {
	return s.KubectlIn("", args...)
}

// KubectlIn is Kubectl with stdin.
func (s *Server) KubectlIn(stdin string, args ...string) (string, error) {
	cache := filepath.Join(s.DataDir, "kubectl-cache")
	full := append([]string{"kubectl", "--kubeconfig", s.Kubeconfig, "--cache-dir", cache}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := s.command(s.Bin, full...)
	stop := context.AfterFunc(ctx, func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	defer stop()
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), "HOME="+s.DataDir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// MustKubectlIn is KubectlIn that fails the test on error.
func (s *Server) MustKubectlIn(stdin string, args ...string) string {
	s.t.Helper()
	out, err := s.KubectlIn(stdin, args...)
	if err != nil {
		s.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// MustKubectl is Kubectl that fails the test on error.
func (s *Server) MustKubectl(args ...string) string {
	s.t.Helper()
	out, err := s.Kubectl(args...)
	if err != nil {
		s.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// command runs name in the server's network namespace (by nsenter --net,
// keeping the host's mount namespace), or plainly.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if s.Netns != "" {
		cmd = exec.Command("nsenter", append([]string{"--net=" + s.Netns, "--", name}, args...)...)
	} else {
		cmd = exec.Command(name, args...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd
}

// DialContext dials from the server's network namespace: the socket is
// made on a thread switched into it, which is then thrown away.
func (s *Server) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if s.Netns == "" {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	return DialIn(ctx, s.Netns, network, addr)
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
