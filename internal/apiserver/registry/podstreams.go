package registry

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/httpstream/wsstream"
	"k8s.io/apimachinery/pkg/util/proxy"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	genericrest "k8s.io/apiserver/pkg/registry/generic/rest"
	"k8s.io/apiserver/pkg/registry/rest"
	translator "k8s.io/apiserver/pkg/util/proxy"
)

// AddPodStreams adds pods/log, pods/exec, pods/attach and pods/portforward
// to storage built by Build; they reach node agents through transport: TLS
// with the API server's kubelet-client certificate, verifying the agents'
// serving certificates against the cluster CA. It must be an
// *http.Transport, whose TLS configuration the SPDY dialers reuse.
func AddPodStreams(s Storage, transport *http.Transport) error {
	core := s[corev1.SchemeGroupVersion]
	pods, ok := core["pods"].(*mainREST)
	if !ok {
		return fmt.Errorf("pod streams: no pods storage")
	}
	nodes, ok := core["nodes"].(*mainREST)
	if !ok {
		return fmt.Errorf("pod streams: no nodes storage")
	}
	l := &podLocator{pods: pods.Store, nodes: nodes.Store, transport: transport}
	core["pods/log"] = &logREST{l}
	core["pods/exec"] = &execREST{l}
	core["pods/attach"] = &attachREST{l}
	core["pods/portforward"] = &portForwardREST{l}
	return nil
}

// podLocator finds a pod's node agent.
type podLocator struct {
	pods, nodes rest.Getter
	transport   *http.Transport
}

func (l *podLocator) pod(ctx context.Context, name string) (*corev1.Pod, error) {
	obj, err := l.pods.Get(ctx, name, &metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, fmt.Errorf("unexpected object type %T for pod %s", obj, name)
	}
	return pod, nil
}

// host returns the agent's host:port on the named node.
func (l *podLocator) host(ctx context.Context, nodeName string) (string, error) {
	obj, err := l.nodes.Get(genericapirequest.WithNamespace(ctx, ""), nodeName, &metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	node, ok := obj.(*corev1.Node)
	if !ok {
		return "", fmt.Errorf("unexpected object type %T for node %s", obj, nodeName)
	}
	return kubeletHost(node)
}

// streamLocation is the agent URL of exec or attach (kind) for the pod's
// container.
func (l *podLocator) streamLocation(ctx context.Context, name, container, kind string, params url.Values) (*url.URL, error) {
	pod, err := l.pod(ctx, name)
	if err != nil {
		return nil, err
	}
	if container, err = podContainer(pod, container); err != nil {
		return nil, err
	}
	if pod.Spec.NodeName == "" {
		return nil, noHost(name)
	}
	host, err := l.host(ctx, pod.Spec.NodeName)
	if err != nil {
		return nil, err
	}
	return agentURL(host, params, kind, pod.Namespace, pod.Name, container), nil
}

// remoteCommandHandler proxies exec and attach: WebSocket v5 clients
// (kubectl 1.30+) through a translator that speaks SPDY to the agent, and
// SPDY clients straight through, as kube-apiserver does.
func remoteCommandHandler(loc *url.URL, transport *http.Transport, opts translator.Options, responder rest.Responder) http.Handler {
	upgrade := proxy.NewUpgradeAwareHandler(loc, transport, false, true, proxy.NewErrorResponder(responder))
	ws := translator.NewStreamTranslatorHandler(loc, transport, 0, opts)
	return translator.NewTranslatingHandler(upgrade, ws, wsstream.IsWebSocketRequestWithStreamCloseProtocol)
}

// upgradeMethods are the methods exec, attach and port-forward accept (GET
// for browsers' WebSockets).
var upgradeMethods = []string{http.MethodGet, http.MethodPost}

// logREST serves pods/log: the agent's log stream, as upstream's LogREST.
type logREST struct{ l *podLocator }

// New returns an empty Pod, as upstream.
func (r *logREST) New() runtime.Object { return &corev1.Pod{} }

// Destroy does nothing: the pods store owns the storage.
func (r *logREST) Destroy() {}

// ProducesMIMETypes says the log is text/plain.
func (r *logREST) ProducesMIMETypes(string) []string { return []string{"text/plain"} }

// ProducesObject says the log is a string (for OpenAPI).
func (r *logREST) ProducesObject(string) any { return "" }

// NewGetOptions returns the options the query decodes into.
func (r *logREST) NewGetOptions() (runtime.Object, bool, string) {
	return &corev1.PodLogOptions{}, false, ""
}

// Get validates the options and returns a stream of the agent's answer; a
// pod with no node has an empty log, as upstream.
func (r *logREST) Get(ctx context.Context, name string, options runtime.Object) (runtime.Object, error) {
	opts, ok := options.(*corev1.PodLogOptions)
	if !ok {
		return nil, fmt.Errorf("invalid options object: %#v", options)
	}
	if errs := validatePodLogOptions(opts); len(errs) > 0 {
		return nil, apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("PodLogOptions").GroupKind(), name, errs)
	}
	pod, err := r.l.pod(ctx, name)
	if err != nil {
		return nil, err
	}
	container, err := podContainer(pod, opts.Container)
	if err != nil {
		return nil, err
	}
	streamer := &genericrest.LocationStreamer{
		Transport:       r.l.transport,
		ContentType:     "text/plain",
		Flush:           opts.Follow,
		ResponseChecker: genericrest.NewGenericHttpResponseChecker(corev1.Resource("pods/log"), name),
		RedirectChecker: genericrest.PreventRedirects,
	}
	if pod.Spec.NodeName == "" {
		return streamer, nil
	}
	host, err := r.l.host(ctx, pod.Spec.NodeName)
	if err != nil {
		return nil, err
	}
	streamer.Location = logURL(host, pod, container, opts)
	return streamer, nil
}

// execREST serves pods/exec.
type execREST struct{ l *podLocator }

// New returns an empty Pod, as upstream.
func (r *execREST) New() runtime.Object { return &corev1.Pod{} }

// Destroy does nothing: the pods store owns the storage.
func (r *execREST) Destroy() {}

// NewConnectOptions returns the options the query decodes into.
func (r *execREST) NewConnectOptions() (runtime.Object, bool, string) {
	return &corev1.PodExecOptions{}, false, ""
}

// ConnectMethods are GET and POST.
func (r *execREST) ConnectMethods() []string { return upgradeMethods }

// Connect proxies to the agent's /exec of the pod's container.
func (r *execREST) Connect(ctx context.Context, name string, options runtime.Object, responder rest.Responder) (http.Handler, error) {
	opts, ok := options.(*corev1.PodExecOptions)
	if !ok {
		return nil, fmt.Errorf("invalid options object: %#v", options)
	}
	params := remoteCommandParams(opts.Stdin, opts.Stdout, opts.Stderr, opts.TTY, opts.Command)
	loc, err := r.l.streamLocation(ctx, name, opts.Container, "exec", params)
	if err != nil {
		return nil, err
	}
	return remoteCommandHandler(loc, r.l.transport,
		translator.Options{Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr, Tty: opts.TTY}, responder), nil
}

// attachREST serves pods/attach.
type attachREST struct{ l *podLocator }

// New returns an empty Pod, as upstream.
func (r *attachREST) New() runtime.Object { return &corev1.Pod{} }

// Destroy does nothing: the pods store owns the storage.
func (r *attachREST) Destroy() {}

// NewConnectOptions returns the options the query decodes into.
func (r *attachREST) NewConnectOptions() (runtime.Object, bool, string) {
	return &corev1.PodAttachOptions{}, false, ""
}

// ConnectMethods are GET and POST.
func (r *attachREST) ConnectMethods() []string { return upgradeMethods }

// Connect proxies to the agent's /attach of the pod's container.
func (r *attachREST) Connect(ctx context.Context, name string, options runtime.Object, responder rest.Responder) (http.Handler, error) {
	opts, ok := options.(*corev1.PodAttachOptions)
	if !ok {
		return nil, fmt.Errorf("invalid options object: %#v", options)
	}
	params := remoteCommandParams(opts.Stdin, opts.Stdout, opts.Stderr, opts.TTY, nil)
	loc, err := r.l.streamLocation(ctx, name, opts.Container, "attach", params)
	if err != nil {
		return nil, err
	}
	return remoteCommandHandler(loc, r.l.transport,
		translator.Options{Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr, Tty: opts.TTY}, responder), nil
}

// portForwardREST serves pods/portforward.
type portForwardREST struct{ l *podLocator }

// New returns an empty Pod, as upstream.
func (r *portForwardREST) New() runtime.Object { return &corev1.Pod{} }

// Destroy does nothing: the pods store owns the storage.
func (r *portForwardREST) Destroy() {}

// NewConnectOptions returns the options the query decodes into.
func (r *portForwardREST) NewConnectOptions() (runtime.Object, bool, string) {
	return &corev1.PodPortForwardOptions{}, false, ""
}

// ConnectMethods are GET and POST.
func (r *portForwardREST) ConnectMethods() []string { return upgradeMethods }

// Connect proxies to the agent's /portForward of the pod.
func (r *portForwardREST) Connect(ctx context.Context, name string, options runtime.Object, responder rest.Responder) (http.Handler, error) {
	opts, ok := options.(*corev1.PodPortForwardOptions)
	if !ok {
		return nil, fmt.Errorf("invalid options object: %#v", options)
	}
	pod, err := r.l.pod(ctx, name)
	if err != nil {
		return nil, err
	}
	if pod.Spec.NodeName == "" {
		return nil, noHost(name)
	}
	host, err := r.l.host(ctx, pod.Spec.NodeName)
	if err != nil {
		return nil, err
	}
	loc := agentURL(host, portForwardParams(opts.Ports), "portForward", pod.Namespace, pod.Name)
	return portForwardHandler(loc, r.l.transport, responder), nil
}

// portForwardHandler proxies port-forward: SPDY straight through, and SPDY
// tunnelled in WebSocket (kubectl 1.31+) unwrapped first, as kube-apiserver
// does.
func portForwardHandler(loc *url.URL, transport *http.Transport, responder rest.Responder) http.Handler {
	upgrade := proxy.NewUpgradeAwareHandler(loc, transport, false, true, proxy.NewErrorResponder(responder))
	tunnel := translator.NewTunnelingHandler(upgrade)
	return translator.NewTranslatingHandler(upgrade, tunnel, wsstream.IsWebSocketRequestWithTunnelingProtocol)
}
