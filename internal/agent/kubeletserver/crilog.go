package kubeletserver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"
)

// The CRI log format (kubelet's pkg/kubelet/kuberuntime/logs): one line per
// write of the container, "<RFC3339Nano> <stdout|stderr> <F|P> <content>".
// Tag P marks a partial line whose content continues on the next line of the
// same stream; F ends it. This file is pure: it turns log bytes and query
// options into what kubelet answers, without touching files or the network.

// Streams named in a CRI log line.
const (
	streamStdout = "stdout"
	streamStderr = "stderr"
)

// Values of the "stream" query parameter (corev1.LogStreamStdout and
// friends), upstream's PodLogsQuerySplitStreams.
const (
	logStreamAll    = "All"
	logStreamStdout = "Stdout"
	logStreamStderr = "Stderr"
)

// LogLine is one physical line of a CRI log file.
type LogLine struct {
	Time   time.Time
	Stream string // "stdout" or "stderr"
	// Partial is tag P: the content goes on in the next line of the stream.
	Partial bool
	// Content is the line's text without the newline.
	Content []byte
}

// ParseLogLine parses one CRI log line (without its trailing newline).
func ParseLogLine(line []byte) (LogLine, error) {
	ts, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return LogLine{}, errors.New("CRI log line: no stream after the timestamp")
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return LogLine{}, fmt.Errorf("CRI log line: timestamp: %w", err)
	}
	stream, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		return LogLine{}, errors.New("CRI log line: no tag after the stream")
	}
	if s := string(stream); s != streamStdout && s != streamStderr {
		return LogLine{}, fmt.Errorf("CRI log line: unknown stream %q", s)
	}
	// The tag may carry more ":"-separated flags after P or F (CRI allows it);
	// only the first matters.
	tags, content, _ := bytes.Cut(rest, []byte{' '})
	first, _, _ := bytes.Cut(tags, []byte{':'})
	var partial bool
	switch string(first) {
	case "P":
		partial = true
	case "F":
	default:
		return LogLine{}, fmt.Errorf("CRI log line: unknown tag %q", first)
	}
	return LogLine{Time: t, Stream: string(stream), Partial: partial, Content: content}, nil
}

// LogEntry is one logical line: a full line joined with the partial lines of
// the same stream before it. Time is the first piece's, as kubelet prints it.
type LogEntry struct {
	Time   time.Time
	Stream string
	// Content ends in a newline unless the container stopped mid-line.
	Content []byte
}

// logAssembler joins partial lines, per stream (stdout and stderr pieces may
// interleave).
type logAssembler struct {
	pending map[string]*LogEntry
}

// add takes the next line and returns an entry when one is complete.
func (a *logAssembler) add(l LogLine) (LogEntry, bool) {
	e := a.pending[l.Stream]
	if e == nil {
		e = &LogEntry{Time: l.Time, Stream: l.Stream}
	}
	e.Content = append(e.Content, l.Content...)
	if l.Partial {
		if a.pending == nil {
			a.pending = map[string]*LogEntry{}
		}
		a.pending[l.Stream] = e
		return LogEntry{}, false
	}
	delete(a.pending, l.Stream)
	e.Content = append(e.Content, '\n')
	return *e, true
}

// flush returns the unfinished entries, oldest first.
func (a *logAssembler) flush() []LogEntry {
	var out []LogEntry
	for _, s := range []string{streamStdout, streamStderr} {
		if e := a.pending[s]; e != nil {
			out = append(out, *e)
		}
	}
	if len(out) == 2 && out[1].Time.Before(out[0].Time) {
		out[0], out[1] = out[1], out[0]
	}
	a.pending = nil
	return out
}

// LogOptions are the query parameters of /containerLogs, parsed.
type LogOptions struct {
	Follow, Previous, Timestamps bool
	// Since drops entries older than it; zero keeps everything.
	Since time.Time
	// TailLines keeps only the last lines; negative keeps all.
	TailLines int64
	// LimitBytes stops the output after this many bytes; 0 is no limit.
	LimitBytes int64
	// Stream is "All" (or empty), "Stdout" or "Stderr".
	Stream string
}

// ParseLogOptions reads kubelet's log query parameters: follow, previous,
// timestamps, sinceSeconds, sinceTime (RFC 3339), tailLines, limitBytes and
// stream. now turns sinceSeconds into a time.
func ParseLogOptions(q url.Values, now time.Time) (LogOptions, error) {
	o := LogOptions{TailLines: -1, Stream: q.Get("stream")}
	var err error
	for name, dst := range map[string]*bool{"follow": &o.Follow, "previous": &o.Previous, "timestamps": &o.Timestamps} {
		if v := q.Get(name); v != "" {
			if *dst, err = strconv.ParseBool(v); err != nil {
				return o, fmt.Errorf("query parameter %q: %q is not a boolean", name, v)
			}
		}
	}
	if o.TailLines, err = nonNegative(q, "tailLines", -1); err != nil {
		return o, err
	}
	if o.LimitBytes, err = nonNegative(q, "limitBytes", 0); err != nil {
		return o, err
	}
	secs, err := nonNegative(q, "sinceSeconds", 0)
	if err != nil {
		return o, err
	}
	if secs > 0 {
		o.Since = now.Add(-time.Duration(secs) * time.Second)
	}
	if v := q.Get("sinceTime"); v != "" {
		if o.Since, err = time.Parse(time.RFC3339, v); err != nil {
			return o, fmt.Errorf("query parameter \"sinceTime\": %q is not an RFC 3339 time", v)
		}
	}
	switch o.Stream {
	case "", logStreamAll, logStreamStdout, logStreamStderr:
	default:
		return o, fmt.Errorf("query parameter \"stream\": %q is not one of All, Stdout, Stderr", o.Stream)
	}
	return o, nil
}

func nonNegative(q url.Values, name string, unset int64) (int64, error) {
	v := q.Get(name)
	if v == "" {
		return unset, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("query parameter %q: %q is not a non-negative integer", name, v)
	}
	return n, nil
}

// keep says whether an entry passes the since and stream filters.
func (o *LogOptions) keep(e LogEntry) bool {
	if !o.Since.IsZero() && e.Time.Before(o.Since) {
		return false
	}
	switch o.Stream {
	case logStreamStdout:
		return e.Stream == streamStdout
	case logStreamStderr:
		return e.Stream == streamStderr
	}
	return true
}

// format renders an entry as kubelet does: with timestamps, the first
// piece's time in RFC3339Nano and a space before the content.
func (o *LogOptions) format(e LogEntry) []byte {
	if !o.Timestamps {
		return e.Content
	}
	b := make([]byte, 0, len(time.RFC3339Nano)+1+len(e.Content))
	b = e.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, ' ')
	return append(b, e.Content...)
}

// errLimitReached ends the output once limitBytes are written.
var errLimitReached = errors.New("log limit reached")

// LogRenderer turns the bytes of a CRI log file, fed in order through
// Write, into the text kubelet sends. With TailLines it holds the entries of
// the file's existing content (the backlog) until EndBacklog; later entries
// go straight out. Malformed lines are skipped, as kubelet does. Write and
// EndBacklog return errLimitReached once LimitBytes are written.
type LogRenderer struct {
	opts    LogOptions
	out     io.Writer
	written int64
	asm     logAssembler
	partial []byte     // the file's last line, not yet ended by a newline
	tail    []LogEntry // the backlog's last TailLines entries
	backlog bool
}

// NewLogRenderer returns a renderer writing to out.
func NewLogRenderer(opts LogOptions, out io.Writer) *LogRenderer {
	return &LogRenderer{opts: opts, out: out, backlog: opts.TailLines >= 0}
}

// Write feeds the next bytes of the log file.
func (r *LogRenderer) Write(p []byte) (int, error) {
	n := len(p)
	data := p
	if len(r.partial) > 0 {
		data = append(r.partial, p...)
		r.partial = nil
	}
	for {
		line, rest, ok := bytes.Cut(data, []byte{'\n'})
		if !ok {
			r.partial = append([]byte(nil), data...)
			return n, nil
		}
		data = rest
		l, err := ParseLogLine(line)
		if err != nil {
			continue
		}
		if e, ok := r.asm.add(l); ok {
			if err := r.emit(e); err != nil {
				return n, err
			}
		}
	}
}

// EndBacklog says the file's content at the start has been read: the tail
// is written out and later entries are written as they come.
func (r *LogRenderer) EndBacklog() error {
	if !r.backlog {
		return nil
	}
	r.backlog = false
	tail := r.tail
	r.tail = nil
	for _, e := range tail {
		if err := r.send(e); err != nil {
			return err
		}
	}
	return nil
}

// Close writes what is left of lines the container never finished.
func (r *LogRenderer) Close() error {
	if len(r.partial) > 0 {
		if l, err := ParseLogLine(r.partial); err == nil {
			l.Partial = true
			r.asm.add(l)
		}
		r.partial = nil
	}
	for _, e := range r.asm.flush() {
		if err := r.emit(e); err != nil {
			return err
		}
	}
	return r.EndBacklog()
}

func (r *LogRenderer) emit(e LogEntry) error {
	if !r.opts.keep(e) {
		return nil
	}
	if r.backlog {
		if r.opts.TailLines == 0 {
			return nil
		}
		if int64(len(r.tail)) == r.opts.TailLines {
			copy(r.tail, r.tail[1:])
			r.tail = r.tail[:len(r.tail)-1]
		}
		r.tail = append(r.tail, e)
		return nil
	}
	return r.send(e)
}

func (r *LogRenderer) send(e LogEntry) error {
	b := r.opts.format(e)
	if r.opts.LimitBytes > 0 {
		left := r.opts.LimitBytes - r.written
		if left <= 0 {
			return errLimitReached
		}
		if int64(len(b)) >= left {
			_, err := r.out.Write(b[:left])
			r.written += left
			if err != nil {
				return err
			}
			return errLimitReached
		}
	}
	n, err := r.out.Write(b)
	r.written += int64(n)
	return err
}
