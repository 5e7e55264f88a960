package kubeletserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"time"
)

// serveLogs answers GET /containerLogs/{namespace}/{pod}/{container}.
func (s *Server) serveLogs(w http.ResponseWriter, r *http.Request) {
	ns, pod, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	opts, err := ParseLogOptions(r.URL.Query(), time.Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	path, running, err := s.cfg.Provider.LogFile(ns, pod, container, opts.Previous)
	if err != nil {
		writeError(w, err)
		return
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		writeError(w, NotFound("no log file for container %q in pod %q", container, podName(ns, pod)))
		return
	}
	if err != nil {
		writeError(w, fmt.Errorf("open the log of container %q in pod %q: %w", container, podName(ns, pod), err))
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	out := &flushWriter{w: w, rc: http.NewResponseController(w)}
	_ = out.rc.Flush() // a follower waits for the headers before any line comes
	render := NewLogRenderer(opts, out)
	if err := copyLog(r.Context(), f, render, opts.Follow, running, s.cfg.LogPollInterval); err != nil &&
		!errors.Is(err, errLimitReached) && r.Context().Err() == nil {
		// Headers are sent: all that is left is to end the stream.
		fmt.Fprintf(os.Stderr, "kubelet server: log of %s/%s: %v\n", podName(ns, pod), container, err)
	}
}

// copyLog feeds the log file to render: what is there, then with follow
// what the container appends until it stops running (and its last lines are
// read) or ctx ends.
func copyLog(ctx context.Context, f io.Reader, render *LogRenderer, follow bool, running func() bool, poll time.Duration) error {
	if _, err := io.Copy(render, f); err != nil {
		return err
	}
	if err := render.EndBacklog(); err != nil {
		return err
	}
	if !follow {
		return render.Close()
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		// Ask before reading: lines written before the container stopped
		// are in the file by then, so one more read gets them all.
		alive := running == nil || running()
		if _, err := io.Copy(render, f); err != nil {
			return err
		}
		if !alive {
			return render.Close()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// flushWriter flushes every write, so followed lines reach the client at
// once.
type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (f *flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err != nil {
		return n, err
	}
	return n, f.rc.Flush()
}
