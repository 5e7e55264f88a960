package registry

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// This file builds the node agent URLs behind pods/log, pods/exec,
// pods/attach and pods/portforward, from the pod, its node and the request's
// options, with kube-apiserver's rules and messages
// (pkg/registry/core/pod/strategy.go: LogLocation, streamLocation,
// PortForwardLocation, validateContainer). It does no I/O.

// defaultKubeletPort is kubelet's port, used when a Node does not publish
// status.daemonEndpoints.kubeletEndpoint.port.
const defaultKubeletPort = 10250

// podContainer returns the container a request names, or the pod's only
// container when it names none.
func podContainer(pod *corev1.Pod, container string) (string, error) {
	if container == "" {
		switch len(pod.Spec.Containers) {
		case 1:
			return pod.Spec.Containers[0].Name, nil
		case 0:
			return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s", pod.Name))
		default:
			return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s, choose one of: %s",
				pod.Name, containerNames(pod)))
		}
	}
	for _, name := range containerNames(pod) {
		if name == container {
			return container, nil
		}
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", container, pod.Name))
}

// containerNames lists init, app and ephemeral containers, in
// podutil.VisitContainers' order.
func containerNames(pod *corev1.Pod) []string {
	var names []string
	for _, c := range pod.Spec.InitContainers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.EphemeralContainers {
		names = append(names, c.Name)
	}
	return names
}

// noHost is upstream's answer for exec, attach and port-forward to a pod
// that is not scheduled (logs of such a pod are empty instead).
func noHost(name string) error {
	return apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", name))
}

// kubeletHost returns host:port of a node's agent: its InternalIP (else
// ExternalIP) and the port it publishes in its status.
func kubeletHost(node *corev1.Node) (string, error) {
	port := node.Status.DaemonEndpoints.KubeletEndpoint.Port
	if port <= 0 {
		port = defaultKubeletPort
	}
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP} {
		for _, a := range node.Status.Addresses {
			if a.Type == t && a.Address != "" {
				return net.JoinHostPort(a.Address, strconv.Itoa(int(port))), nil
			}
		}
	}
	return "", fmt.Errorf("node %s: no preferred addresses found; known addresses: %v", node.Name, node.Status.Addresses)
}

// logURL is the agent's /containerLogs URL for the options.
func logURL(host string, pod *corev1.Pod, container string, opts *corev1.PodLogOptions) *url.URL {
	params := url.Values{}
	for name, on := range map[string]bool{"follow": opts.Follow, "previous": opts.Previous, "timestamps": opts.Timestamps} {
		if on {
			params.Add(name, "true")
		}
	}
	for name, v := range map[string]*int64{"sinceSeconds": opts.SinceSeconds, "tailLines": opts.TailLines, "limitBytes": opts.LimitBytes} {
		if v != nil {
			params.Add(name, strconv.FormatInt(*v, 10))
		}
	}
	if opts.SinceTime != nil {
		params.Add("sinceTime", opts.SinceTime.Format(time.RFC3339))
	}
	if opts.Stream != nil {
		params.Add("stream", *opts.Stream)
	}
	return agentURL(host, params, "containerLogs", pod.Namespace, pod.Name, container)
}

// remoteCommandParams are the agent's exec and attach query parameters
// (kubelet's input, output, error, tty and repeated command).
func remoteCommandParams(stdin, stdout, stderr, tty bool, command []string) url.Values {
	params := url.Values{}
	for name, on := range map[string]bool{"input": stdin, "output": stdout, "error": stderr, "tty": tty} {
		if on {
			params.Add(name, "1")
		}
	}
	for _, c := range command {
		params.Add("command", c)
	}
	return params
}

// portForwardParams passes the WebSocket ports as kubelet's "port".
func portForwardParams(ports []int32) url.Values {
	params := url.Values{}
	if len(ports) > 0 {
		s := make([]string, len(ports))
		for i, p := range ports {
			s[i] = strconv.Itoa(int(p))
		}
		params.Add("port", strings.Join(s, ","))
	}
	return params
}

// agentURL joins the path segments, escaped, onto https://host.
func agentURL(host string, params url.Values, segments ...string) *url.URL {
	escaped := make([]string, len(segments))
	for i, s := range segments {
		escaped[i] = url.PathEscape(s)
	}
	return &url.URL{Scheme: "https", Host: host, Path: "/" + strings.Join(segments, "/"),
		RawPath: "/" + strings.Join(escaped, "/"), RawQuery: params.Encode()}
}

// validatePodLogOptions is upstream's ValidatePodLogOptions, with its
// messages.
func validatePodLogOptions(opts *corev1.PodLogOptions) field.ErrorList {
	var errs field.ErrorList
	if opts.TailLines != nil && *opts.TailLines < 0 {
		errs = append(errs, field.Invalid(field.NewPath("tailLines"), *opts.TailLines, "must be greater than or equal to 0"))
	}
	if opts.LimitBytes != nil && *opts.LimitBytes < 1 {
		errs = append(errs, field.Invalid(field.NewPath("limitBytes"), *opts.LimitBytes, "must be greater than 0"))
	}
	switch {
	case opts.SinceSeconds != nil && opts.SinceTime != nil:
		errs = append(errs, field.Forbidden(field.NewPath(""), "at most one of `sinceTime` or `sinceSeconds` may be specified"))
	case opts.SinceSeconds != nil && *opts.SinceSeconds < 1:
		errs = append(errs, field.Invalid(field.NewPath("sinceSeconds"), *opts.SinceSeconds, "must be greater than 0"))
	}
	if opts.Stream != nil {
		valid := []string{corev1.LogStreamStdout, corev1.LogStreamStderr, corev1.LogStreamAll}
		if !slices.Contains(valid, *opts.Stream) {
			errs = append(errs, field.NotSupported(field.NewPath("stream"), *opts.Stream, valid))
		}
		if *opts.Stream != corev1.LogStreamAll && opts.TailLines != nil {
			errs = append(errs, field.Forbidden(field.NewPath(""), "`tailLines` and specific `stream` are mutually exclusive for now"))
		}
	}
	return errs
}
