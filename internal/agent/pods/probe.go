package pods

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// probeKind is readiness, liveness or startup.
type probeKind string

const (
	readiness probeKind = "Readiness"
	liveness  probeKind = "Liveness"
	startup   probeKind = "Startup"
)

// probeTarget is where a container's probes go.
type probeTarget struct {
	// Host is the pod IP (or the node IP on the host network).
	Host string
	// Ports are the container's ports, for named probe ports.
	Ports []corev1.ContainerPort
	// Exec runs a command in the container and returns its exit code and
	// output.
	Exec func(ctx context.Context, cmd []string) (int, string, error)
}

// probeOnce runs p once: success, and a message on failure in kubelet's
// words ("HTTP probe failed with statuscode: 404").
func probeOnce(ctx context.Context, p *corev1.Probe, t probeTarget) (bool, string) {
	timeout := time.Duration(p.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case p.HTTPGet != nil:
		return httpProbe(ctx, p.HTTPGet, t)
	case p.TCPSocket != nil:
		port, err := resolvePort(p.TCPSocket.Port, t.Ports)
		if err != nil {
			return false, err.Error()
		}
		host := p.TCPSocket.Host
		if host == "" {
			host = t.Host
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return false, fmt.Sprintf("dial tcp %s: %v", net.JoinHostPort(host, strconv.Itoa(port)), err)
		}
		conn.Close()
		return true, ""
	case p.Exec != nil:
		code, out, err := t.Exec(ctx, p.Exec.Command)
		if err != nil {
			return false, err.Error()
		}
		if code != 0 {
			return false, fmt.Sprintf("command %q exited with %d: %s", strings.Join(p.Exec.Command, " "), code, out)
		}
		return true, ""
	case p.GRPC != nil:
		return false, "gRPC probes are not supported by this node"
	}
	return false, "probe has no handler"
}

func httpProbe(ctx context.Context, h *corev1.HTTPGetAction, t probeTarget) (bool, string) {
	port, err := resolvePort(h.Port, t.Ports)
	if err != nil {
		return false, err.Error()
	}
	host := h.Host
	if host == "" {
		host = t.Host
	}
	scheme := strings.ToLower(string(h.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := h.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u := &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port))}
	u, err = u.Parse(path)
	if err != nil {
		return false, err.Error()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("User-Agent", "kube-probe/1.37")
	req.Header.Set("Accept", "*/*")
	for _, hd := range h.HTTPHeaders {
		if strings.EqualFold(hd.Name, "host") {
			req.Host = hd.Value
			continue
		}
		req.Header.Add(hd.Name, hd.Value)
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return false, fmt.Sprintf("Get %q: %v", u.String(), unwrapURLError(err))
	}
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return true, ""
	}
	return false, fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode)
}

var probeClient = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return http.ErrUseLastResponse
		}
		return nil
	},
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

func resolvePort(p intstr.IntOrString, ports []corev1.ContainerPort) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("couldn't find port: %s", p.StrVal)
}

// prober runs one probe of one container attempt until stopped, reporting
// each change of its result.
type prober struct {
	kind   probeKind
	probe  *corev1.Probe
	target probeTarget
	// gate, when set, must be true before the probe runs (startup gates
	// readiness and liveness).
	gate func() bool
	// changed reports a change of the result; failed reports each failed
	// attempt (kubelet's Unhealthy event).
	changed func(kind probeKind, ok bool)
	failed  func(kind probeKind, msg string)

	mu     sync.Mutex
	result *bool
}

// run probes until ctx ends, applying initialDelaySeconds, periodSeconds
// and the success and failure thresholds.
func (p *prober) run(ctx context.Context, started time.Time) {
	period := time.Duration(p.probe.PeriodSeconds) * time.Second
	if period <= 0 {
		period = 10 * time.Second
	}
	delay := time.Until(started.Add(time.Duration(p.probe.InitialDelaySeconds) * time.Second))
	if !sleep(ctx, delay) {
		return
	}
	succ, fail := threshold(p.probe.SuccessThreshold), threshold(p.probe.FailureThreshold)
	if p.kind != readiness {
		succ = 1
	}
	okRun, badRun := 0, 0
	for {
		if p.gate == nil || p.gate() {
			ok, msg := probeOnce(ctx, p.probe, p.target)
			if ctx.Err() != nil {
				return
			}
			if ok {
				okRun, badRun = okRun+1, 0
			} else {
				okRun, badRun = 0, badRun+1
				p.failed(p.kind, msg)
			}
			switch {
			case okRun >= succ:
				p.set(true)
			case badRun >= fail:
				p.set(false)
			}
		}
		if !sleep(ctx, period) {
			return
		}
	}
}

// set records the result, reporting it when it changed.
func (p *prober) set(ok bool) {
	p.mu.Lock()
	changed := p.result == nil || *p.result != ok
	p.result = &ok
	p.mu.Unlock()
	if changed {
		p.changed(p.kind, ok)
	}
}

// Result is the last result: ok and known.
func (p *prober) Result() (ok, known bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.result == nil {
		return false, false
	}
	return *p.result, true
}

func threshold(t int32) int {
	if t <= 0 {
		return 1
	}
	return int(t)
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
