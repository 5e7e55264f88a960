package initproc

import (
	"bytes"
	"io"
	"sync"
	"time"
)

// maxLogLine is the longest line the log holds in one record; longer ones
// are split into partial (P) records, as containerd's CRI plugin does with
// its 16 KiB buffer.
const maxLogLine = 16 * 1024

// criLog writes CRI-format log records,
// `<RFC3339Nano time> <stream> <F|P> <content>\n`, from several streams to
// one file, a record at a time.
type criLog struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// record writes one record; partial marks a piece of a longer line.
func (l *criLog) record(stream string, partial bool, line []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := l.w.Write(formatCRI(l.now(), stream, partial, line))
	return err
}

// formatCRI is one record.
func formatCRI(ts time.Time, stream string, partial bool, line []byte) []byte {
	tag := "F"
	if partial {
		tag = "P"
	}
	var b bytes.Buffer
	b.WriteString(ts.UTC().Format(time.RFC3339Nano))
	b.WriteByte(' ')
	b.WriteString(stream)
	b.WriteByte(' ')
	b.WriteString(tag)
	b.WriteByte(' ')
	b.Write(line)
	b.WriteByte('\n')
	return b.Bytes()
}

// streamLog turns one stream's bytes into records: a full record per line,
// partial records for every maxLogLine bytes of a line without its end.
type streamLog struct {
	log    *criLog
	stream string
	buf    []byte
}

// Write implements io.Writer. Errors writing the log are returned but the
// bytes count as consumed, so the container is never blocked by its log.
func (s *streamLog) Write(p []byte) (int, error) {
	s.buf = append(s.buf, p...)
	var err error
	for {
		i := bytes.IndexByte(s.buf, '\n')
		switch {
		case i >= 0 && i <= maxLogLine:
			err = firstErr(err, s.log.record(s.stream, false, s.buf[:i]))
			s.buf = s.buf[i+1:]
		case len(s.buf) >= maxLogLine && (i < 0 || i > maxLogLine):
			err = firstErr(err, s.log.record(s.stream, true, s.buf[:maxLogLine]))
			s.buf = s.buf[maxLogLine:]
		default:
			s.buf = append([]byte(nil), s.buf...) // drop the consumed prefix's memory
			return len(p), err
		}
	}
}

// Flush writes what remains of an unterminated last line as a full record.
func (s *streamLog) Flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	err := s.log.record(s.stream, false, s.buf)
	s.buf = nil
	return err
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
