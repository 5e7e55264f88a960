package kubeletserver

import (
	"net/http"

	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// commandParam is kubelet's query parameter for exec's argv, repeated.
const commandParam = "command"

// streamTarget reads the pod, its optional UID and the container from the
// path and asks the provider whether they can be reached.
func (s *Server) streamTarget(w http.ResponseWriter, r *http.Request) (ns, pod, uid, container string, ok bool) {
	ns, pod, uid, container = r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("uid"), r.PathValue("container")
	if err := s.cfg.Provider.CheckPod(ns, pod, uid, container); err != nil {
		writeError(w, err)
		return "", "", "", "", false
	}
	return ns, pod, uid, container, true
}

// serveExec answers /exec/{namespace}/{pod}[/{uid}]/{container}.
func (s *Server) serveExec(w http.ResponseWriter, r *http.Request) {
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	cmd := r.URL.Query()[commandParam]
	if len(cmd) == 0 {
		http.Error(w, "you must specify at least one command for the container", http.StatusBadRequest)
		return
	}
	ns, pod, uid, container, ok := s.streamTarget(w, r)
	if !ok {
		return
	}
	remotecommand.ServeExec(w, r, s.cfg.Provider, podName(ns, pod), uid, container, cmd, opts,
		s.cfg.StreamIdleTimeout, remotecommand.DefaultStreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

// serveAttach answers /attach/{namespace}/{pod}[/{uid}]/{container}.
func (s *Server) serveAttach(w http.ResponseWriter, r *http.Request) {
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ns, pod, uid, container, ok := s.streamTarget(w, r)
	if !ok {
		return
	}
	remotecommand.ServeAttach(w, r, s.cfg.Provider, podName(ns, pod), uid, container, opts,
		s.cfg.StreamIdleTimeout, remotecommand.DefaultStreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

// servePortForward answers /portForward/{namespace}/{pod}[/{uid}].
func (s *Server) servePortForward(w http.ResponseWriter, r *http.Request) {
	opts, err := portforward.NewV4Options(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ns, pod, uid, _, ok := s.streamTarget(w, r)
	if !ok {
		return
	}
	portforward.ServePortForward(w, r, s.cfg.Provider, podName(ns, pod), uid, opts,
		s.cfg.StreamIdleTimeout, remotecommand.DefaultStreamCreationTimeout, portforward.SupportedProtocols)
}
