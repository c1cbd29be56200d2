package model

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// limiter bounds the calls in flight to one endpoint, with a bounded wait queue.
type limiter struct {
	slots    chan struct{}
	maxQueue int64
	wait     time.Duration
	queued   atomic.Int64
	inFlight atomic.Int64
	gauge    prometheus.Gauge // queued calls, nil in tests
}

func newLimiter(maxConcurrent, maxQueue int, wait time.Duration) *limiter {
	return &limiter{slots: make(chan struct{}, maxConcurrent), maxQueue: int64(maxQueue), wait: wait}
}

// acquire takes a slot, waiting in the queue up to l.wait; the error is a
// *Error of kind overloaded, or the context's error.
func (l *limiter) acquire(ctx context.Context) error {
	select {
	case l.slots <- struct{}{}:
		l.inFlight.Add(1)
		return nil
	default:
	}
	if l.queued.Add(1) > l.maxQueue {
		l.queued.Add(-1)
		return &Error{Kind: KindOverloaded, Message: "cannot queue the call: max_concurrent calls are in flight and max_queue calls are waiting"}
	}
	defer l.queued.Add(-1)
	if l.gauge != nil {
		l.gauge.Inc()
		defer l.gauge.Dec()
	}
	t := time.NewTimer(l.wait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		l.inFlight.Add(1)
		return nil
	case <-t.C:
		return &Error{Kind: KindOverloaded, Message: "cannot get a call slot within queue_wait"}
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *limiter) release() {
	l.inFlight.Add(-1)
	<-l.slots
}
