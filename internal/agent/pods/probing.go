package pods

import (
	"context"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// startProbes starts an attempt's probes. With none, the container is
// ready and started once it runs; a startup probe holds back readiness
// and liveness until it succeeds.
func (w *podWorker) startProbes(ctx context.Context, pod *corev1.Pod, spec corev1.Container, c *ctr) {
	c.mu.Lock()
	c.ready = spec.ReadinessProbe == nil
	c.startupOK = spec.StartupProbe == nil
	c.mu.Unlock()
	if spec.ReadinessProbe == nil && spec.LivenessProbe == nil && spec.StartupProbe == nil {
		return
	}
	pctx, cancel := context.WithCancel(ctx)
	c.probeCancel = cancel
	c.probes = map[probeKind]*prober{}
	host := w.m.cfg.NodeIP
	if ips := w.podIPs(); len(ips) > 0 {
		host = ips[0]
	}
	id := c.id
	target := probeTarget{Host: host, Ports: spec.Ports, Exec: func(ctx context.Context, cmd []string) (int, string, error) {
		return w.m.cfg.Exec(ctx, id, cmd)
	}}
	started := c.st.StartedAt
	gate := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.startupOK
	}
	add := func(kind probeKind, p *corev1.Probe, g func() bool) {
		if p == nil {
			return
		}
		pr := &prober{kind: kind, probe: p, target: target, gate: g,
			changed: func(kind probeKind, ok bool) { w.probeChanged(c, id, kind, ok, p) },
			failed: func(kind probeKind, msg string) {
				w.event(w.latestPod(), corev1.EventTypeWarning, "Unhealthy", string(kind)+" probe failed: "+msg)
			}}
		c.probes[kind] = pr
		go pr.run(pctx, started)
	}
	add(startup, spec.StartupProbe, nil)
	add(readiness, spec.ReadinessProbe, gate)
	add(liveness, spec.LivenessProbe, gate)
}

// probeChanged records a result: readiness and startup feed the status; a
// failed liveness or startup probe kills the attempt (the restart policy
// then decides).
func (w *podWorker) probeChanged(c *ctr, id string, kind probeKind, ok bool, p *corev1.Probe) {
	c.mu.Lock()
	switch kind {
	case readiness:
		c.ready = ok
	case startup:
		c.startupOK = c.startupOK || ok
	}
	c.mu.Unlock()
	if !ok && (kind == liveness || kind == startup) {
		pod := w.latestPod()
		w.event(pod, corev1.EventTypeNormal, "Killing",
			"Container "+c.name+" failed "+string(kindLower(kind))+" probe, will be restarted")
		grace := 30 * time.Second
		if p.TerminationGracePeriodSeconds != nil {
			grace = time.Duration(*p.TerminationGracePeriodSeconds) * time.Second
		} else if pod != nil && pod.Spec.TerminationGracePeriodSeconds != nil {
			grace = time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
		}
		go w.m.cfg.Runtime.Stop(id, grace)
	}
	w.wakeUp()
}

func kindLower(k probeKind) string {
	switch k {
	case liveness:
		return "liveness"
	case startup:
		return "startup"
	}
	return "readiness"
}

func (w *podWorker) stopProbe(c *ctr) {
	if c.probeCancel != nil {
		c.probeCancel()
		c.probeCancel = nil
	}
	c.mu.Lock()
	c.ready = false
	c.mu.Unlock()
}

func (w *podWorker) stopProbes() {
	for _, c := range w.ctrs {
		w.stopProbe(c)
	}
}

// apiObjects reads configMaps and secrets and requests tokens from the API.
type apiObjects struct{ client kubernetes.Interface }

func (a *apiObjects) ConfigMap(ns, name string) (*corev1.ConfigMap, error) {
	return a.client.CoreV1().ConfigMaps(ns).Get(context.TODO(), name, metav1.GetOptions{})
}

func (a *apiObjects) Secret(ns, name string) (*corev1.Secret, error) {
	return a.client.CoreV1().Secrets(ns).Get(context.TODO(), name, metav1.GetOptions{})
}

func (a *apiObjects) Token(ctx context.Context, pod *corev1.Pod, sa, audience string, seconds int64) (string, time.Time, error) {
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: &seconds,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if audience != "" {
		req.Spec.Audiences = []string{audience}
	}
	out, err := a.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return "", time.Time{}, err
	}
	return out.Status.Token, out.Status.ExpirationTimestamp.Time, nil
}
