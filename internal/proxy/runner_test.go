package proxy

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// recorder counts runs and can fail them.
type recorder struct {
	mu    sync.Mutex
	times []time.Time
	fail  int
	again time.Duration
}

func (r *recorder) fn(context.Context) (time.Duration, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.times = append(r.times, time.Now())
	if r.fail > 0 {
		r.fail--
		return 0, errors.New("boom")
	}
	return r.again, nil
}

func (r *recorder) runs() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.times...)
}

func startRunner(t *testing.T, rec *recorder, minInterval, maxInterval time.Duration) *runner {
	ctx, cancel := context.WithCancel(context.Background())
	r := newRunner(rec.fn, minInterval, maxInterval, nil)
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func TestRunnerCoalescesBurstsAndKeepsMinInterval(t *testing.T) {
	rec := &recorder{}
	r := startRunner(t, rec, 50*time.Millisecond, time.Hour)
	for i := 0; i < 100; i++ {
		r.Trigger()
		time.Sleep(time.Millisecond)
	}
	time.Sleep(150 * time.Millisecond)
	runs := rec.runs()
	if len(runs) < 2 || len(runs) > 4 {
		t.Fatalf("%d runs for a 100 ms burst with a 50 ms minimum interval", len(runs))
	}
	for i := 1; i < len(runs); i++ {
		if d := runs[i].Sub(runs[i-1]); d < 45*time.Millisecond {
			t.Errorf("runs %d and %d only %v apart", i-1, i, d)
		}
	}
}

func TestRunnerRetriesAfterFailure(t *testing.T) {
	rec := &recorder{fail: 2}
	r := startRunner(t, rec, 10*time.Millisecond, time.Hour)
	r.Trigger()
	waitFor(t, "two retries", func() bool { return len(rec.runs()) >= 3 })
}

func TestRunnerRunsAgainWhenAsked(t *testing.T) {
	rec := &recorder{again: 20 * time.Millisecond}
	r := startRunner(t, rec, 10*time.Millisecond, time.Hour)
	r.Trigger()
	waitFor(t, "a run without trigger", func() bool { return len(rec.runs()) >= 2 })
}

func TestRunnerRunsPeriodically(t *testing.T) {
	rec := &recorder{}
	startRunner(t, rec, time.Millisecond, 30*time.Millisecond)
	waitFor(t, "periodic runs", func() bool { return len(rec.runs()) >= 2 })
}
