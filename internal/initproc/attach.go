package initproc

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	"github.com/creack/pty"

	"github.com/wharf-io/wharf/internal/agent/container"
)

// clientQueue is how many output frames an attached client may lag behind
// before it is disconnected: a slow client must not stall the container.
const clientQueue = 256

type frame struct {
	kind    byte
	payload []byte
}

// attachServer serves container.AttachSocket: it fans the container's
// output out to every attached client and feeds their input to the
// container.
type attachServer struct {
	ln      net.Listener
	mu      sync.Mutex
	clients map[chan frame]struct{}
	closed  bool
	// input is the container's stdin (a pipe or the pty master), nil when
	// the container has none.
	input     io.WriteCloser
	inputMu   sync.Mutex
	stdinOnce bool
	// resize applies a terminal size, nil without a TTY.
	resize func(container.TermSize) error
}

// listenAttach listens on the attach socket in the current directory (the
// state directory; a relative name avoids the unix socket path limit).
func listenAttach(s *attachServer) error {
	_ = os.Remove(container.AttachSocket)
	ln, err := net.Listen("unix", container.AttachSocket)
	if err != nil {
		return fmt.Errorf("listen on attach socket: %w", err)
	}
	s.ln = ln
	s.clients = map[chan frame]struct{}{}
	go s.serve()
	return nil
}

func (s *attachServer) serve() {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		out := make(chan frame, clientQueue)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			conn.Close()
			return
		}
		s.clients[out] = struct{}{}
		s.mu.Unlock()
		go s.writeTo(conn, out)
		go s.readFrom(conn, out)
	}
}

// writeTo sends queued output to a client until its queue is closed.
func (s *attachServer) writeTo(conn net.Conn, out chan frame) {
	defer conn.Close()
	for f := range out {
		if err := container.WriteFrame(conn, f.kind, f.payload); err != nil {
			s.drop(out)
			for range out { // drain until drop closed it
			}
			return
		}
	}
}

// readFrom applies a client's input and resize frames.
func (s *attachServer) readFrom(conn net.Conn, out chan frame) {
	for {
		kind, p, err := container.ReadFrame(conn)
		if err != nil {
			s.drop(out)
			return
		}
		switch kind {
		case container.FrameStdin:
			s.writeInput(p)
		case container.FrameStdinClose:
			if s.stdinOnce {
				s.closeInput()
			}
		case container.FrameResize:
			if sz, err := container.DecodeTermSize(p); err == nil && s.resize != nil {
				_ = s.resize(sz)
			}
		}
	}
}

func (s *attachServer) writeInput(p []byte) {
	s.inputMu.Lock()
	defer s.inputMu.Unlock()
	if s.input != nil {
		if _, err := s.input.Write(p); err != nil {
			fmt.Fprintf(os.Stderr, "wharf init: write container stdin: %v\n", err)
		}
	}
}

func (s *attachServer) closeInput() {
	s.inputMu.Lock()
	defer s.inputMu.Unlock()
	if s.input != nil {
		_ = s.input.Close()
		s.input = nil
	}
}

// drop disconnects a client.
func (s *attachServer) drop(out chan frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[out]; ok {
		delete(s.clients, out)
		close(out)
	}
}

// broadcast queues output for every client, dropping those that lag.
func (s *attachServer) broadcast(kind byte, p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.clients) == 0 {
		return
	}
	f := frame{kind: kind, payload: append([]byte(nil), p...)}
	for out := range s.clients {
		select {
		case out <- f:
		default:
			delete(s.clients, out)
			close(out)
		}
	}
}

// close stops accepting and ends every client's connection once its queue
// is sent.
func (s *attachServer) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	_ = s.ln.Close()
	for out := range s.clients {
		close(out)
	}
	s.clients = nil
}

// outputWriter is an io.Writer that broadcasts as kind.
type outputWriter struct {
	s    *attachServer
	kind byte
}

func (w outputWriter) Write(p []byte) (int, error) {
	w.s.broadcast(w.kind, p)
	return len(p), nil
}

// setTermSize resizes the terminal whose master is ptmx.
func setTermSize(ptmx *os.File, sz container.TermSize) error {
	return pty.Setsize(ptmx, &pty.Winsize{Cols: sz.Width, Rows: sz.Height})
}
