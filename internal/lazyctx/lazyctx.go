// Package lazyctx makes deadline contexts whose timer starts only once something waits on them.
//
// context.WithDeadline starts a runtime timer at once and registers with a cancellable parent.
// A result-cache miss that is a plain upstream round trip never waits on Done (the upstream
// client takes its deadline from Deadline), yet its request, pipeline and fill contexts made
// three timers, five contexts and 26 allocations: about as much as the rest of the proxy's
// own work for that request. A context from this package reports its deadline and error at
// once and becomes a real context.WithDeadline the first time Done is called.
package lazyctx

import (
	"context"
	"sync"
	"time"
)

// Ctx is context.WithDeadline(parent, deadline), made by the first Done. parent is never
// cancelled (its Done is nil) or is another Ctx; under any other parent the real context is
// made at once (Init). Its maker ends it with Cancel.
type Ctx struct {
	parent   context.Context
	deadline time.Time

	mu       sync.Mutex
	real     context.Context    // nil until Done
	stop     context.CancelFunc // real's
	canceled bool               // the CancelFunc ran before real was made
}

// WithDeadline is context.WithDeadline, except that under a parent that is never cancelled
// (Background, WithoutCancel) or that comes from this package no timer, channel or
// registration is made until Done is called. Under any other parent it is
// context.WithDeadline.
func WithDeadline(parent context.Context, d time.Time) (context.Context, context.CancelFunc) {
	if _, isLazy := parent.(*Ctx); !isLazy && parent.Done() != nil {
		return context.WithDeadline(parent, d)
	}
	c := new(Ctx)
	c.Init(parent, d)
	return c, c.cancel
}

// Init makes c WithDeadline(parent, d), to be ended with c.Cancel: for a caller that holds the
// context in a struct of its own, or that defers c.Cancel, which saves WithDeadline's two
// allocations (the context and its CancelFunc's closure) or one. c must be zero and must not
// move afterwards.
func (c *Ctx) Init(parent context.Context, d time.Time) {
	p, isLazy := parent.(*Ctx)
	if isLazy {
		d = earlier(d, p.deadline)
	} else if pd, ok := parent.Deadline(); ok {
		d = earlier(d, pd)
	}
	c.parent, c.deadline = parent, d
	if !isLazy && parent.Done() != nil {
		c.real, c.stop = context.WithDeadline(parent, d)
	}
}

// Cancel is the CancelFunc of c.
func (c *Ctx) Cancel() { c.cancel() }

// WithTimeout is WithDeadline(parent, time.Now().Add(timeout)).
func WithTimeout(parent context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	return WithDeadline(parent, time.Now().Add(timeout))
}

// DeadlineOnly reports whether nothing can end ctx before its deadline except the CancelFunc
// of whoever made it: a context from this package, or one that is never cancelled. Watching
// such a context for an early end (context.AfterFunc) would only start its timer.
func DeadlineOnly(ctx context.Context) bool {
	if _, ok := ctx.(*Ctx); ok {
		return true
	}
	return ctx.Done() == nil
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func (c *Ctx) Deadline() (time.Time, bool) { return c.deadline, true }

// Done makes the real context: from now on it answers everything.
func (c *Ctx) Done() <-chan struct{} { return c.materialize().Done() }

func (c *Ctx) materialize() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.real == nil {
		// A lazy parent becomes real here too (lock order is always child, then parent).
		c.real, c.stop = context.WithDeadline(c.parent, c.deadline)
		if c.canceled {
			c.stop()
		}
	}
	return c.real
}

// Err is what the real context's Err would be: Canceled after the CancelFunc (or a lazy
// parent's), DeadlineExceeded once the deadline has passed.
func (c *Ctx) Err() error {
	c.mu.Lock()
	real, canceled := c.real, c.canceled
	c.mu.Unlock()
	switch {
	case real != nil:
		return real.Err()
	case canceled:
		return context.Canceled
	}
	if p, ok := c.parent.(*Ctx); ok {
		if err := p.Err(); err != nil {
			return err
		}
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// Value goes to the real context once there is one, so that contexts derived from it find its
// cancelCtx and register with it instead of watching it from a goroutine.
func (c *Ctx) Value(key any) any {
	c.mu.Lock()
	real := c.real
	c.mu.Unlock()
	if real != nil {
		return real.Value(key)
	}
	return c.parent.Value(key)
}

func (c *Ctx) cancel() {
	c.mu.Lock()
	stop := c.stop
	if stop == nil {
		c.canceled = true
	}
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
}

func (c *Ctx) String() string { return "lazyctx.WithDeadline(" + c.deadline.String() + ")" }
