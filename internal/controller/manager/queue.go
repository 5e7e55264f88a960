package manager

import (
	"context"
	"fmt"
	"time"

	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Loop is the worker loop every queue-driven controller here runs: wait for
// the informers, then run workers that take keys off the queue and call
// Sync, retrying failures with the queue's rate limiter.
type Loop struct {
	// Name is used in logs and the cache-sync message.
	Name   string
	Queue  workqueue.TypedRateLimitingInterface[string]
	Synced []cache.InformerSynced
	// Sync reconciles one key.
	Sync func(ctx context.Context, key string) error
	// MaxRetries drops a key after that many failures in a row, as
	// upstream's controllers do (they rely on informer events and resyncs
	// to bring it back); 0 retries forever.
	MaxRetries int
	// Ignore says an error is not worth a retry (it is forgotten).
	Ignore func(error) bool
	// Started runs once the caches are synced and the workers run.
	Started func(ctx context.Context)
}

// Run runs workers until ctx ends, then shuts the queue down.
func (l Loop) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrash()
	defer l.Queue.ShutDown()
	if !cache.WaitForNamedCacheSync(l.Name, ctx.Done(), l.Synced...) {
		return
	}
	if workers < 1 {
		workers = 1
	}
	for i := 0; i < workers; i++ {
		go wait.UntilWithContext(ctx, func(ctx context.Context) {
			for l.next(ctx) {
			}
		}, time.Second)
	}
	if l.Started != nil {
		l.Started(ctx)
	}
	<-ctx.Done()
}

// next handles one key; it returns false when the queue shuts down.
func (l Loop) next(ctx context.Context) bool {
	key, quit := l.Queue.Get()
	if quit {
		return false
	}
	defer l.Queue.Done(key)
	err := l.Sync(ctx, key)
	switch {
	case err == nil || (l.Ignore != nil && l.Ignore(err)):
		l.Queue.Forget(key)
	case l.MaxRetries == 0 || l.Queue.NumRequeues(key) < l.MaxRetries:
		utilruntime.HandleError(fmt.Errorf("%s: sync %q: %w", l.Name, key, err))
		l.Queue.AddRateLimited(key)
	default:
		utilruntime.HandleError(fmt.Errorf("%s: dropping %q out of the queue: %w", l.Name, key, err))
		l.Queue.Forget(key)
	}
	return true
}

// Deleted returns the object of an informer's delete event, unwrapping the
// tombstone (cache.DeletedFinalStateUnknown) a relist leaves for an object
// whose deletion was missed; ok is false when it is not a T.
func Deleted[T any](obj interface{}) (T, bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	v, ok := obj.(T)
	return v, ok
}
