package proxy

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Coarse connection deadlines. fasthttp arms a socket deadline five times per keep-alive request
// (the server: idle, read and write timeouts; the client: write and read of each attempt), and
// each arming moves a runtime timer under the poller's locks: on a _doc GET that was a tenth of
// vlproxy's instructions. Those timeouts are minutes long and almost never fire. A coarseConn
// therefore keeps a far deadline in an atomic and leaves the socket without one; a sweeper looks
// at its connections every sweepTick and sets a deadline that has passed on the socket, which fails
// the pending or the next read or write with the usual timeout error. A deadline less than
// exactDeadline after the sweeper's latest tick is set on the socket at once, as before, so short
// timeouts keep their precision; a far one fires at most sweepTick (plus scheduling delay) late.
// Telling the two apart by the latest tick instead of the clock saves a clock read per deadline
// (five per keep-alive request): a deadline exactDeadline+sweepTick after the tick is at least
// exactDeadline away while the sweeper keeps time, and should the sweeper fall behind, the far
// deadlines it fires are late by as much whichever way they were told apart.
const (
	sweepTick     = 50 * time.Millisecond
	exactDeadline = time.Second
)

// sweeper fires the passed far deadlines of its connections. Its goroutine runs while it has
// connections, so an idle Server costs nothing.
type sweeper struct {
	mu      sync.Mutex
	conns   map[*coarseConn]struct{}
	running bool
	tick    atomic.Int64 // unix nanoseconds of the latest tick (or of the start of run)
}

// wrap returns c with coarse deadlines, watched by the sweeper until it is closed.
func (sw *sweeper) wrap(c net.Conn) net.Conn {
	cc := &coarseConn{Conn: c, sw: sw}
	sw.mu.Lock()
	if sw.conns == nil {
		sw.conns = map[*coarseConn]struct{}{}
	}
	sw.conns[cc] = struct{}{}
	if !sw.running {
		sw.running = true
		sw.tick.Store(time.Now().UnixNano())
		go sw.run()
	}
	sw.mu.Unlock()
	return cc
}

func (sw *sweeper) remove(cc *coarseConn) {
	sw.mu.Lock()
	delete(sw.conns, cc)
	sw.mu.Unlock()
}

func (sw *sweeper) run() {
	t := time.NewTicker(sweepTick)
	defer t.Stop()
	for range t.C {
		// The clock, not the tick's time: a late tick must not make deadlines look farther away.
		now := time.Now().UnixNano()
		sw.tick.Store(now)
		if !sw.sweep(now) {
			return
		}
	}
}

// sweep fires what has passed by now; false (and the goroutine ends) when no connection is left.
func (sw *sweeper) sweep(now int64) bool {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if len(sw.conns) == 0 {
		sw.running = false
		return false
	}
	for cc := range sw.conns {
		cc.read.fire(now, cc.Conn.SetReadDeadline)
		cc.write.fire(now, cc.Conn.SetWriteDeadline)
	}
	return true
}

// coarseConn is a connection whose far deadlines the sweeper enforces.
type coarseConn struct {
	net.Conn
	sw          *sweeper
	read, write coarseDeadline
	closeOnce   sync.Once
}

func (c *coarseConn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}

func (c *coarseConn) SetReadDeadline(t time.Time) error {
	return c.read.set(t, c.sw.tick.Load(), c.Conn.SetReadDeadline)
}

func (c *coarseConn) SetWriteDeadline(t time.Time) error {
	return c.write.set(t, c.sw.tick.Load(), c.Conn.SetWriteDeadline)
}

func (c *coarseConn) Close() error {
	c.closeOnce.Do(func() { c.sw.remove(c) })
	return c.Conn.Close()
}

var errNoSyscallConn = errors.New("the connection is not a socket")

// SyscallConn exposes the socket underneath (watchClient peeks at it).
func (c *coarseConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errNoSyscallConn
	}
	return sc.SyscallConn()
}

// coarseDeadline is one direction's deadline. want is the far deadline the sweeper enforces
// (unix nanoseconds, 0 none). armed says the socket may carry a deadline (a near one, or a passed
// one the sweeper set), which the next far deadline must clear. The sweeper marks armed before it
// reads want, so a set that stored want after that read sees armed and waits for mu.
type coarseDeadline struct {
	want  atomic.Int64
	armed atomic.Bool
	mu    sync.Mutex
}

// set makes t the deadline; tick is the sweeper's latest tick (unix nanoseconds).
func (d *coarseDeadline) set(t time.Time, tick int64, setSocket func(time.Time) error) error {
	var w int64
	if !t.IsZero() {
		w = t.UnixNano()
	}
	if w == 0 || w-tick >= int64(exactDeadline+sweepTick) {
		d.want.Store(w)
		if !d.armed.Load() {
			return nil // the common case: two atomics instead of a timer update
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		d.armed.Store(false)
		return setSocket(time.Time{})
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.want.Store(0)
	d.armed.Store(true)
	return setSocket(t)
}

// fire sets the far deadline on the socket once it has passed.
func (d *coarseDeadline) fire(now int64, setSocket func(time.Time) error) {
	w := d.want.Load()
	if w == 0 || w > now {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	prev := d.armed.Swap(true)
	if d.want.Load() != w {
		d.armed.Store(prev) // a new deadline came meanwhile; its set saw armed and waits for mu
		return
	}
	setSocket(time.Unix(0, w)) //nolint:errcheck // a closed connection has nothing left to time out
	d.want.CompareAndSwap(w, 0)
}
