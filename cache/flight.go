package cache

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/vlproxy/vlproxy/internal/lazyctx"
)

type flight struct {
	done    chan struct{}
	val     []byte // set before done is closed
	err     error
	waiters int         // callers waiting for it, under Cache.flightMu
	ctx     lazyctx.Ctx // the fill's; its Cancel stops the fill once no caller waits
}

// Do returns the value under key, calling fn to produce it on a miss. Concurrent Do calls for
// the same missing key make one fn call (single flight); the others wait for its result and
// Stats.Collapsed counts them. hit reports whether the value came from the cache.
//
// Each caller waits only as long as its own ctx allows and then returns an error wrapping
// ctx.Err(). fn runs in its own goroutine with a context that keeps ctx's values but not its
// cancellation, bounded by Config.FillTimeout, so the caller that started the fill can go away
// without failing the others; once every caller waiting for it has gone, its context is
// cancelled, so that work nobody waits for stops (a model call in flight, say). A successful result is stored with Set; an error is returned to
// every caller waiting for that fill and is not cached.
//
// Do takes ownership of the slice fn returns: neither fn nor any caller may modify it.
func (c *Cache) Do(ctx context.Context, key []byte, fn func(ctx context.Context) ([]byte, error)) (val []byte, hit bool, err error) {
	return c.do(ctx, key, FillFunc(fn), false)
}

// Filler computes the value of a fill (Do's fn).
type Filler interface {
	Fill(ctx context.Context) ([]byte, error)
}

// FillFunc is a function as a Filler.
type FillFunc func(ctx context.Context) ([]byte, error)

// Fill calls f.
func (f FillFunc) Fill(ctx context.Context) ([]byte, error) { return f(ctx) }

// DoInline is Do, except that the caller which starts a fill runs it itself, in its own
// goroutine, instead of handing it to another and waiting: that saves a goroutine switch each
// way on every miss. That caller therefore waits for its fill (bounded by Config.FillTimeout)
// even after its own ctx is done; callers that join the fill wait as in Do, and the fill still
// runs detached from ctx's cancellation. Use it where the leader has nothing better to do than
// wait, as a request handler whose response is the fill.
func (c *Cache) DoInline(ctx context.Context, key []byte, fn func(ctx context.Context) ([]byte, error)) (val []byte, hit bool, err error) {
	return c.do(ctx, key, FillFunc(fn), true)
}

// DoInlineFiller is DoInline with the fill as a Filler: a caller that keeps the fill's state in
// a struct of its own (pooled) saves the closure and the variables it would capture.
func (c *Cache) DoInlineFiller(ctx context.Context, key []byte, fn Filler) (val []byte, hit bool, err error) {
	return c.do(ctx, key, fn, true)
}

func (c *Cache) do(ctx context.Context, key []byte, fn Filler, inline bool) (val []byte, hit bool, err error) {
	gen := c.gen.Load()
	if v, ok := c.Get(key); ok {
		return v, true, nil
	}
	// One allocation holds the key as the entry will store it (version, generation, key): the
	// flight's map key is a string sharing its bytes (never modified), and the fill's entry
	// keeps it.
	full := make([]byte, prefixLen+len(key))
	putPrefix(full, gen)
	copy(full[prefixLen:], key)
	fk := unsafe.String(unsafe.SliceData(full), len(full))

	c.flightMu.Lock()
	f, joined := c.flights[fk]
	if joined {
		c.collapsed.Add(1)
		c.m.collapsed.Inc()
		f.waiters++
	} else {
		// A fill may have stored the value and left between our lookup and the lock.
		if v, ok := c.lookup(gen, key, true, time.Now()); ok {
			c.flightMu.Unlock()
			return v, true, nil
		}
		// Lazy: a fill that never waits on its context (an upstream round trip takes only its
		// deadline) starts no timer.
		// It is part of the flight, which saves two allocations.
		f = &flight{done: make(chan struct{}), waiters: 1}
		f.ctx.Init(context.WithoutCancel(ctx), time.Now().Add(c.cfg.FillTimeout))
		fillCtx := &f.ctx
		c.flights[fk] = f
		if inline {
			c.flightMu.Unlock()
			// The leader counts as a waiter: when its ctx is cancelled (its client went away)
			// and nobody else waits, the fill is cancelled as in Do, and the leader returns as
			// soon as fn sees it. A passed deadline is left to the fill's own deadline
			// (FillTimeout, or the one fn sets), so that fn reports it as a deadline; a ctx
			// that only its deadline can end is therefore not watched at all.
			stop := func() bool { return false }
			if !lazyctx.DeadlineOnly(ctx) {
				stop = context.AfterFunc(ctx, func() {
					if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
						c.leave(f, fk)
					}
				})
			}
			c.fill(fillCtx, f, fk, gen, full, fn)
			stop()
			return f.val, false, f.err
		}
		c.fills.run(func() { c.fill(fillCtx, f, fk, gen, full, fn) })
	}
	c.flightMu.Unlock()

	select {
	case <-f.done:
		return f.val, false, f.err
	case <-ctx.Done():
		c.leave(f, fk)
		return nil, false, fmt.Errorf("cannot wait for the %s cache to be filled: %w", c.cfg.Name, ctx.Err())
	}
}

// leave is a waiter of f giving up; the last one to leave cancels the fill.
func (c *Cache) leave(f *flight, fk string) {
	c.flightMu.Lock()
	defer c.flightMu.Unlock()
	if f.waiters--; f.waiters == 0 {
		f.ctx.Cancel()
		// A later caller starts a fill of its own instead of joining this cancelled one.
		if c.flights[fk] == f {
			delete(c.flights, fk)
		}
	}
}

// fill runs fn for the flight f of full (putPrefix and key) and stores what it returns.
func (c *Cache) fill(ctx context.Context, f *flight, fk string, gen uint64, full []byte, fn Filler) {
	defer f.ctx.Cancel()
	key := full[prefixLen:]
	val, err := c.fillThrough(ctx, gen, key, fn)
	if err == nil && c.fits(key, val) {
		c.add(gen, full, val, c.cfg.TTL) // Do owns val, and full is the flight's: no copies
	}
	f.val, f.err = val, err
	// Store first, then leave the table: a caller that no longer finds the flight finds the
	// value (Do looks again under flightMu).
	c.flightMu.Lock()
	if c.flights[fk] == f { // not when abandoned and replaced (see Do)
		delete(c.flights, fk)
	}
	c.flightMu.Unlock()
	close(f.done)
}

// call turns a panic in fn into an error for every waiter instead of killing the process
// from a goroutine nobody can recover in.
func call(ctx context.Context, fn Filler) (val []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			val, err = nil, fmt.Errorf("cannot fill cache: fill function panicked: %v", r)
		}
	}()
	return fn.Fill(ctx)
}

// fillIdle is how long a fill goroutine waits for the next fill before it exits.
const fillIdle = 10 * time.Second

// fillWorkers runs a cache's fills. A fill goes to a goroutine that is already waiting for work
// when there is one: a fresh goroutine starts on a small stack that grows (and is copied) again
// on every fill through an HTTP client, several percent of a result-cache miss.
type fillWorkers struct {
	work chan func()
	quit chan struct{} // closed by stop: idle workers exit
}

// stop makes idle fill workers exit now rather than after fillIdle (tests inside a synctest
// bubble must end with no goroutine left).
func (w *fillWorkers) stop() { close(w.quit) }

func (w *fillWorkers) run(f func()) {
	select {
	case w.work <- f: // an idle worker took it
	default:
		go w.loop(f)
	}
}

func (w *fillWorkers) loop(f func()) {
	f()
	t := time.NewTimer(fillIdle)
	defer t.Stop()
	for {
		select {
		case f = <-w.work:
			f()
			t.Reset(fillIdle)
		case <-t.C:
			return
		case <-w.quit:
			return
		}
	}
}
