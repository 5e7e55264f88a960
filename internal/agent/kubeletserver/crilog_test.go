package kubeletserver

import (
	"bytes"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseLogLine(t *testing.T) {
	ts := time.Date(2024, 1, 1, 0, 0, 1, 5, time.UTC)
	for _, tc := range []struct {
		line    string
		want    LogLine
		wantErr bool
	}{
		{line: "2024-01-01T00:00:01.000000005Z stdout F hello world", want: LogLine{Time: ts, Stream: "stdout", Content: []byte("hello world")}},
		{line: "2024-01-01T00:00:01.000000005Z stderr P part", want: LogLine{Time: ts, Stream: "stderr", Partial: true, Content: []byte("part")}},
		{line: "2024-01-01T00:00:01.000000005Z stdout F:x  two spaces", want: LogLine{Time: ts, Stream: "stdout", Content: []byte(" two spaces")}},
		{line: "2024-01-01T00:00:01.000000005Z stdout F ", want: LogLine{Time: ts, Stream: "stdout", Content: []byte{}}},
		{line: "2024-01-01T00:00:01.000000005Z stdout F", want: LogLine{Time: ts, Stream: "stdout"}},
		{line: "yesterday stdout F x", wantErr: true},
		{line: "2024-01-01T00:00:01Z stdin F x", wantErr: true},
		{line: "2024-01-01T00:00:01Z stdout X x", wantErr: true},
		{line: "2024-01-01T00:00:01Z", wantErr: true},
	} {
		got, err := ParseLogLine([]byte(tc.line))
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseLogLine(%q) error = %v, want error %v", tc.line, err, tc.wantErr)
			continue
		}
		if tc.wantErr {
			continue
		}
		if !got.Time.Equal(tc.want.Time) || got.Stream != tc.want.Stream || got.Partial != tc.want.Partial ||
			string(got.Content) != string(tc.want.Content) {
			t.Errorf("ParseLogLine(%q) = %+v, want %+v", tc.line, got, tc.want)
		}
	}
}

// sampleLog has a stderr line split in two pieces around a stdout line, and
// a malformed line that is skipped.
const sampleLog = `2024-01-01T00:00:01.000000001Z stdout F one
2024-01-01T00:00:02Z stderr P tw
2024-01-01T00:00:03Z stdout F three
2024-01-01T00:00:04Z stderr F o
not a CRI line
2024-01-01T00:00:05Z stdout F four
`

func TestLogRendererOptions(t *testing.T) {
	at := func(s int) time.Time { return time.Date(2024, 1, 1, 0, 0, s, 0, time.UTC) }
	for _, tc := range []struct {
		name string
		opts LogOptions
		want string
	}{
		{"everything, partials joined", LogOptions{TailLines: -1}, "one\nthree\ntwo\nfour\n"},
		{"tail 2", LogOptions{TailLines: 2}, "two\nfour\n"},
		{"tail 0", LogOptions{TailLines: 0}, ""},
		{"tail more than there is", LogOptions{TailLines: 10}, "one\nthree\ntwo\nfour\n"},
		{"since keeps entries at or after, by first piece", LogOptions{TailLines: -1, Since: at(3)}, "three\nfour\n"},
		{"since and tail", LogOptions{TailLines: 1, Since: at(2)}, "four\n"},
		{"stderr only", LogOptions{TailLines: -1, Stream: "Stderr"}, "two\n"},
		{"stdout only", LogOptions{TailLines: -1, Stream: "Stdout"}, "one\nthree\nfour\n"},
		{"timestamps", LogOptions{TailLines: 2, Timestamps: true},
			"2024-01-01T00:00:02Z two\n2024-01-01T00:00:05Z four\n"},
		{"timestamps keep nanoseconds", LogOptions{TailLines: -1, Timestamps: true, Stream: "Stdout", LimitBytes: 35},
			"2024-01-01T00:00:01.000000001Z one\n"},
		{"limit cuts mid-line", LogOptions{TailLines: -1, LimitBytes: 6}, "one\nth"},
		{"limit with tail", LogOptions{TailLines: 2, LimitBytes: 5}, "two\nf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunk := range []int{len(sampleLog), 1, 7} {
				var out bytes.Buffer
				r := NewLogRenderer(tc.opts, &out)
				err := feed(r, sampleLog, chunk)
				if err == nil {
					err = r.EndBacklog()
				}
				if err == nil {
					err = r.Close()
				}
				if err != nil && err != errLimitReached {
					t.Fatalf("chunks of %d: %v", chunk, err)
				}
				if tc.opts.LimitBytes > 0 && int64(out.Len()) == tc.opts.LimitBytes && err != errLimitReached {
					t.Errorf("chunks of %d: output reached the limit but no errLimitReached", chunk)
				}
				if out.String() != tc.want {
					t.Errorf("chunks of %d: got %q, want %q", chunk, out.String(), tc.want)
				}
			}
		})
	}
}

func feed(r *LogRenderer, s string, chunk int) error {
	for len(s) > 0 {
		n := min(chunk, len(s))
		if _, err := r.Write([]byte(s[:n])); err != nil {
			return err
		}
		s = s[n:]
	}
	return nil
}

func TestLogRendererFollowAfterBacklog(t *testing.T) {
	var out bytes.Buffer
	r := NewLogRenderer(LogOptions{TailLines: 1}, &out)
	if err := feed(r, sampleLog, 100); err != nil {
		t.Fatal(err)
	}
	if err := r.EndBacklog(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "four\n" {
		t.Fatalf("backlog: got %q, want %q", got, "four\n")
	}
	// New lines after the backlog go out as they come, not tailed; a line
	// written in two writes waits for its newline.
	_ = feed(r, "2024-01-01T00:00:06Z stdout F five\n2024-01-01T00:00:07Z std", 100)
	_ = feed(r, "out F six\n", 100)
	if got := out.String(); got != "four\nfive\nsix\n" {
		t.Fatalf("after backlog: got %q", got)
	}
}

func TestLogRendererCloseFlushesUnfinishedLines(t *testing.T) {
	var out bytes.Buffer
	r := NewLogRenderer(LogOptions{TailLines: -1}, &out)
	_ = feed(r, "2024-01-01T00:00:01Z stdout P abc\n2024-01-01T00:00:02Z stdout P def", 100)
	if out.Len() != 0 {
		t.Fatalf("partial lines written before Close: %q", out.String())
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "abcdef" {
		t.Fatalf("got %q, want %q", got, "abcdef")
	}
}

func TestParseLogOptions(t *testing.T) {
	now := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	o, err := ParseLogOptions(url.Values{"follow": {"true"}, "timestamps": {"1"}, "tailLines": {"10"},
		"limitBytes": {"500"}, "sinceSeconds": {"60"}, "stream": {"Stderr"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	want := LogOptions{Follow: true, Timestamps: true, TailLines: 10, LimitBytes: 500, Since: now.Add(-time.Minute), Stream: "Stderr"}
	if o != want {
		t.Errorf("got %+v, want %+v", o, want)
	}
	o, err = ParseLogOptions(url.Values{"sinceTime": {"2024-01-01T11:00:00Z"}, "previous": {"true"}}, now)
	if err != nil || !o.Since.Equal(now.Add(-time.Hour)) || !o.Previous || o.TailLines != -1 {
		t.Errorf("sinceTime: got %+v, %v", o, err)
	}
	for _, bad := range []url.Values{
		{"tailLines": {"-1"}}, {"limitBytes": {"x"}}, {"sinceSeconds": {"1.5"}},
		{"sinceTime": {"noon"}}, {"follow": {"yes please"}}, {"stream": {"stdin"}},
	} {
		if _, err := ParseLogOptions(bad, now); err == nil || !strings.Contains(err.Error(), "query parameter") {
			t.Errorf("ParseLogOptions(%v) error = %v, want a query parameter error", bad, err)
		}
	}
}
