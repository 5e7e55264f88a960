package kubeletserver

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// Provider is what the server needs from the node agent's pod runtime.
//
// Pod names: the streaming methods (ExecInContainer, AttachContainer,
// PortForward) receive the pod as "<namespace>/<name>" (see SplitPodName)
// and its UID when the caller gave one in the URL, else "".
//
// Errors: LogFile and CheckPod answer before any byte is streamed; an error
// made with NotFound or BadRequest is sent with that status and its text as
// the body, which kube-apiserver shows to kubectl as is (kubelet's wording:
// `container "app" in pod "web-1" is waiting to start: ContainerCreating`,
// `previous terminated container "app" in pod "web-1" not found`). Other
// errors are 500s.
//
// Exit codes: ExecInContainer must return an error implementing
// k8s.io/utils/exec.ExitError with Exited() true when the command ran and
// exited non-zero — k8s.io/utils/exec.CodeExitError{Err: err, Code: code}
// does — so that kubectl exits with the same code. Any other error is
// reported as "error executing command in container: ...".
type Provider interface {
	// LogFile returns the CRI-format log file of a container (previous: the
	// one of the instance before the last restart) and a function telling
	// whether that instance still runs (following stops once it does not
	// and the file is read to its end).
	LogFile(namespace, pod, container string, previous bool) (path string, running func() bool, err error)
	// CheckPod says, before a connection is upgraded, whether exec and
	// attach can reach container (running), or port-forward the pod
	// (container ""); uid is "" unless the URL named it.
	CheckPod(namespace, pod, uid, container string) error
	remotecommand.Executor
	remotecommand.Attacher
	portforward.PortForwarder
}

// SplitPodName splits the "<namespace>/<name>" the streaming methods receive.
func SplitPodName(name string) (namespace, pod string) {
	namespace, pod, _ = strings.Cut(name, "/")
	return namespace, pod
}

func podName(namespace, pod string) string { return namespace + "/" + pod }

// StatusError is an error the server answers with a given HTTP status.
type StatusError struct {
	Code int
	Err  error
}

func (e *StatusError) Error() string { return e.Err.Error() }

func (e *StatusError) Unwrap() error { return e.Err }

// NotFound makes an error answered with 404 Not Found.
func NotFound(format string, args ...any) error {
	return &StatusError{Code: http.StatusNotFound, Err: fmt.Errorf(format, args...)}
}

// BadRequest makes an error answered with 400 Bad Request.
func BadRequest(format string, args ...any) error {
	return &StatusError{Code: http.StatusBadRequest, Err: fmt.Errorf(format, args...)}
}

// statusOf returns the HTTP status an error is answered with.
func statusOf(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return http.StatusInternalServerError
}

// writeError answers with err's status and text, as kubelet does.
func writeError(w http.ResponseWriter, err error) {
	http.Error(w, err.Error(), statusOf(err))
}
