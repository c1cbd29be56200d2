//go:build unix

package proxy

import (
	"context"
	"errors"
	"net"
	"syscall"
	"time"
)

// errClientGone is the cause of a request context cancelled because its client closed the
// connection.
var errClientGone = errors.New("the client closed the connection")

// watchClient returns a context that is cancelled when the client closes (or resets) its TCP
// connection while the request is being served, and a stop function to call before the
// handler returns. fasthttp reads nothing from the connection while a handler runs, so the
// kernel's receive queue is watched with MSG_PEEK, which consumes no byte: a readable socket
// with nothing to peek is a closed one. Bytes that arrive (a pipelined request) end the watch
// without cancelling. A connection that is not a socket (an in-memory listener) is not watched.
func watchClient(parent context.Context, c net.Conn) (context.Context, func()) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return parent, func() {}
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return parent, func() {}
	}
	ctx, cancel := context.WithCancelCause(parent)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var b [1]byte
		gone := false
		err := raw.Read(func(fd uintptr) bool {
			n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			switch {
			case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
				return false // nothing yet: wait until the socket is readable
			case err != nil, n == 0:
				gone = true // reset, or an orderly close
			}
			return true
		})
		if err == nil && gone {
			cancel(errClientGone)
		}
	}()
	return ctx, func() {
		// Wake the watcher through the read deadline, then clear it: fasthttp arms its own
		// deadlines before it reads the next request.
		_ = c.SetReadDeadline(time.Now())
		<-done
		_ = c.SetReadDeadline(time.Time{})
		cancel(nil)
	}
}
