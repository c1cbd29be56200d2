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
// Accept keeps returning queued connections (served with Connection: close) for drainWindow,
// then closes the socket and reports it closed. Listeners without deadlines close at once.
//
// It also gives every accepted connection coarse deadlines (deadline.go).
type drainListener struct {
	net.Listener
	deadlines *sweeper
	closing   atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

type deadliner interface{ SetDeadline(time.Time) error }

func (l *drainListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil && l.closing.Load() {
		l.closeNow()
		return nil, net.ErrClosed
	}
	if err != nil {
		return nil, err
	}
	return l.deadlines.wrap(c), nil
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

func (l *drainListener) closeNow() error {
	l.closeOnce.Do(func() { l.closeErr = l.Listener.Close() })
	return l.closeErr
}
