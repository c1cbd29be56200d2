package proxy

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// drainWindow is how long a closing listener keeps handing over connections: those the kernel
// had already queued (whose clients may have sent their request) and those arriving meanwhile.
const drainWindow = 250 * time.Millisecond

// drainListener makes Shutdown serve the listen backlog instead of resetting it. Closing a
// listening socket resets every connection still in its accept queue, and their clients
// see "connection reset" for a request they already sent; under load (the accept loop lagging)
// that was dozens of failed requests per SIGTERM. Close therefore only sets a deadline:
// Accept keeps returning queued connections (served with Connection: close) for drainWindow.
// When the deadline passes, whatever the kernel still queues is taken in one burst of
// non-blocking accepts and the socket is closed right after (a starved accept loop left
// connections queued past the deadline, and those were reset); the burst is handed out, then
// Accept reports the listener closed. Listeners without deadlines close at once.
//
// It also gives every accepted connection coarse deadlines (deadline.go).
type drainListener struct {
	net.Listener
	deadlines *sweeper
	closing   atomic.Bool
	closeOnce sync.Once
	closeErr  error

	mu      sync.Mutex
	drained []net.Conn // taken from the backlog at close, not yet handed out
	closed  bool
}

type deadliner interface{ SetDeadline(time.Time) error }

func (l *drainListener) Accept() (net.Conn, error) {
	if c, ok, closed := l.next(); ok || closed {
		if !ok {
			return nil, net.ErrClosed
		}
		return l.deadlines.wrap(c), nil
	}
	c, err := l.Listener.Accept()
	if err != nil && l.closing.Load() {
		l.drainAndClose()
		if c, ok, _ := l.next(); ok {
			return l.deadlines.wrap(c), nil
		}
		return nil, net.ErrClosed
	}
	if err != nil {
		return nil, err
	}
	return l.deadlines.wrap(c), nil
}

// next hands out one connection of the closing burst; closed tells that the socket is gone.
func (l *drainListener) next() (c net.Conn, ok, closed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.drained) > 0 {
		c, l.drained = l.drained[0], l.drained[1:]
		return c, true, l.closed
	}
	return nil, false, l.closed
}

func (l *drainListener) Close() error {
	if !l.closing.CompareAndSwap(false, true) {
		return nil
	}
	d, ok := l.Listener.(deadliner)
	if !ok || d.SetDeadline(time.Now().Add(drainWindow)) != nil {
		return l.closeNow()
	}
	return nil
}

// drainAndClose takes the rest of the backlog and closes the socket in one go, so that the
// window in which the kernel queues a connection only to reset it is a few microseconds.
func (l *drainListener) drainAndClose() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.drained = append(l.drained, takeBacklog(l.Listener)...)
	l.closeOnce.Do(func() { l.closeErr = l.Listener.Close() })
	l.closed = true
}

func (l *drainListener) closeNow() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closeOnce.Do(func() { l.closeErr = l.Listener.Close() })
	l.closed = true
	return l.closeErr
}
