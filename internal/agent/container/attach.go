package container

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// Frame kinds of the attach protocol, spoken over AttachSocket: each frame
// is a kind byte, a big-endian uint32 length and the payload. Init sends
// stdout and stderr frames (only stdout for a TTY) and closes the
// connection when the container exits; the client sends stdin, stdin-close
// and resize frames.
const (
	FrameStdin      byte = 0
	FrameStdout     byte = 1
	FrameStderr     byte = 2
	FrameResize     byte = 3 // payload: width, height as big-endian uint16s
	FrameStdinClose byte = 4
)

// maxFrame bounds a frame's payload.
const maxFrame = 1 << 20

// WriteFrame writes one frame.
func WriteFrame(w io.Writer, kind byte, payload []byte) error {
	if len(payload) > maxFrame {
		return fmt.Errorf("attach frame of %d bytes exceeds %d", len(payload), maxFrame)
	}
	buf := make([]byte, 5+len(payload))
	buf[0] = kind
	binary.BigEndian.PutUint32(buf[1:5], uint32(len(payload)))
	copy(buf[5:], payload)
	_, err := w.Write(buf)
	return err
}

// ReadFrame reads one frame; io.EOF means the peer closed cleanly.
func ReadFrame(r io.Reader) (kind byte, payload []byte, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:5])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("attach frame of %d bytes exceeds %d", n, maxFrame)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, fmt.Errorf("read attach frame: %w", io.ErrUnexpectedEOF)
	}
	return hdr[0], payload, nil
}

// EncodeTermSize is a resize frame's payload.
func EncodeTermSize(sz TermSize) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint16(b[0:2], sz.Width)
	binary.BigEndian.PutUint16(b[2:4], sz.Height)
	return b
}

// DecodeTermSize reads a resize frame's payload.
func DecodeTermSize(b []byte) (TermSize, error) {
	if len(b) != 4 {
		return TermSize{}, fmt.Errorf("resize frame of %d bytes, want 4", len(b))
	}
	return TermSize{Width: binary.BigEndian.Uint16(b[0:2]), Height: binary.BigEndian.Uint16(b[2:4])}, nil
}

// Attach connects to the running container: its output from now on goes
// to stdout and stderr, stdin (when the container was started with
// Spec.Stdin) to its input, and resizes to its terminal. It returns when
// the container exits or ctx is done.
func (r *Runtime) Attach(ctx context.Context, id string, stdin io.Reader, stdout, stderr io.Writer, tty bool, resize <-chan TermSize) error {
	st, err := r.State(id)
	if err != nil {
		return err
	}
	if !st.Running {
		return fmt.Errorf("attach to container %s: it is not running", id)
	}
	conn, err := dialAttach(r.dir(id))
	if err != nil {
		return fmt.Errorf("attach to container %s: %w", id, err)
	}
	defer conn.Close()
	var mu sync.Mutex
	send := func(kind byte, p []byte) error {
		mu.Lock()
		defer mu.Unlock()
		return WriteFrame(conn, kind, p)
	}
	done := make(chan struct{})
	defer close(done)
	if stdin != nil {
		go sendInput(stdin, send)
	}
	if resize != nil {
		go sendResizes(resize, send, done)
	}
	if tty {
		stderr = stdout
	}
	result := make(chan error, 1)
	go func() { result <- receiveOutput(conn, stdout, stderr) }()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case err := <-result:
		if err != nil {
			return fmt.Errorf("attach to container %s: %w", id, err)
		}
		return nil
	}
}

func sendInput(stdin io.Reader, send func(byte, []byte) error) {
	buf := make([]byte, 32*1024)
	for {
		n, err := stdin.Read(buf)
		if n > 0 {
			if send(FrameStdin, buf[:n]) != nil {
				return
			}
		}
		if err != nil {
			_ = send(FrameStdinClose, nil)
			return
		}
	}
}

func sendResizes(resize <-chan TermSize, send func(byte, []byte) error, done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case sz, ok := <-resize:
			if !ok || send(FrameResize, EncodeTermSize(sz)) != nil {
				return
			}
		}
	}
}

// receiveOutput copies output frames until init closes the connection.
func receiveOutput(conn io.Reader, stdout, stderr io.Writer) error {
	for {
		kind, p, err := ReadFrame(conn)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var w io.Writer
		switch kind {
		case FrameStdout:
			w = stdout
		case FrameStderr:
			w = stderr
		}
		if w != nil {
			if _, err := w.Write(p); err != nil {
				return fmt.Errorf("write attached output: %w", err)
			}
		}
	}
}

// dialAttach connects to the state directory's attach socket. A unix
// socket path is limited to 107 bytes, so a long one is reached through
// /proc/self/fd/<dirfd>/.
func dialAttach(dir string) (net.Conn, error) {
	path := filepath.Join(dir, AttachSocket)
	if len(path) < 100 {
		return net.Dial("unix", path)
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	return net.Dial("unix", "/proc/self/fd/"+strconv.Itoa(fd)+"/"+AttachSocket)
}
