package proxy

import (
	"context"
	"time"
)

// runner calls fn when triggered, never more often than minInterval (so a
// burst of API events becomes one sync), at least every maxInterval, again
// after a failure with exponential backoff, and again when fn asks for it.
// It is kube-proxy's BoundedFrequencyRunner without the burst tokens.
type runner struct {
	fn          func(context.Context) (again time.Duration, err error)
	minInterval time.Duration
	maxInterval time.Duration
	maxBackoff  time.Duration
	onError     func(error)
	kick        chan struct{}
}

func newRunner(fn func(context.Context) (time.Duration, error), minInterval, maxInterval time.Duration, onError func(error)) *runner {
	return &runner{fn: fn, minInterval: minInterval, maxInterval: maxInterval, maxBackoff: 30 * time.Second,
		onError: onError, kick: make(chan struct{}, 1)}
}

// Trigger asks for a run; triggers before the run starts coalesce.
func (r *runner) Trigger() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run loops until ctx ends. The first run happens at the first Trigger.
func (r *runner) Run(ctx context.Context) {
	var last time.Time
	backoff := time.Duration(0)
	next := time.NewTimer(r.maxInterval)
	defer next.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-next.C:
		}
		if wait := r.minInterval - time.Since(last); !last.IsZero() && wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		// Triggers during the wait are served by this run.
		select {
		case <-r.kick:
		default:
		}
		last = time.Now()
		again, err := r.fn(ctx)
		delay := r.maxInterval
		if err != nil {
			backoff = min(max(2*backoff, r.minInterval, 100*time.Millisecond), r.maxBackoff)
			delay = backoff
			if r.onError != nil {
				r.onError(err)
			}
		} else {
			backoff = 0
			if again > 0 {
				delay = min(delay, again)
			}
		}
		next.Reset(delay)
	}
}
