package model

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// transport sends fasthttp requests over its own small connection pool.
//
// fasthttp.HostClient does not expose the connection a request runs on, so
// it cannot abort a call when the caller's context is canceled; it can only
// wait for the deadline. A model call can run for seconds on the GPU, and
// vLLM aborts a generation only when the client closes the connection. So
// the transport checks a connection out for the whole exchange, writes the
// request and reads the response with fasthttp's own (pooled, allocation
// free) Request.Write / Response.ReadLimitBody, and context.AfterFunc closes
// that connection the moment the context ends.
type transport struct {
	addr        string
	tlsConfig   *tls.Config // nil for http
	dialTimeout time.Duration
	maxIdle     int

	mu     sync.Mutex
	idle   []*pconn
	closed bool
}

type pconn struct {
	net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	lastUsed time.Time
}

// idleTimeout is below uvicorn's keep-alive timeout (5s, used by vLLM and
// SGLang), so the pool rarely hands out a connection the server has closed.
const idleTimeout = 4 * time.Second

func (t *transport) get(deadline time.Time) (*pconn, bool, error) {
	now := time.Now()
	t.mu.Lock()
	for len(t.idle) > 0 {
		c := t.idle[len(t.idle)-1]
		t.idle = t.idle[:len(t.idle)-1]
		if now.Sub(c.lastUsed) < idleTimeout {
			t.mu.Unlock()
			return c, true, nil
		}
		c.Close()
	}
	t.mu.Unlock()
	timeout := t.dialTimeout
	if d := time.Until(deadline); d < timeout {
		timeout = d
	}
	if timeout <= 0 {
		return nil, false, errDeadline
	}
	d := net.Dialer{Timeout: timeout}
	nc, err := d.Dial("tcp", t.addr)
	if err != nil {
		return nil, false, err
	}
	if t.tlsConfig != nil {
		tc := tls.Client(nc, t.tlsConfig)
		tc.SetDeadline(time.Now().Add(timeout))
		if err := tc.Handshake(); err != nil {
			nc.Close()
			return nil, false, err
		}
		nc = tc
	}
	return &pconn{Conn: nc, br: bufio.NewReaderSize(nc, 16<<10), bw: bufio.NewWriterSize(nc, 16<<10)}, false, nil
}

func (t *transport) put(c *pconn) {
	c.lastUsed = time.Now()
	t.mu.Lock()
	if t.closed || len(t.idle) >= t.maxIdle {
		t.mu.Unlock()
		c.Close()
		return
	}
	t.idle = append(t.idle, c)
	t.mu.Unlock()
}

func (t *transport) close() {
	t.mu.Lock()
	t.closed = true
	for _, c := range t.idle {
		c.Close()
	}
	t.idle = nil
	t.mu.Unlock()
}

var errDeadline = errors.New("deadline exceeded before the request was sent")

// do runs one exchange. The caller owns req and resp. On a context end it
// returns ctx.Err() (the connection is closed, so the server sees the
// client go away); a connection error on a reused keep-alive connection is
// retried once on a fresh one.
func (t *transport) do(ctx context.Context, deadline time.Time, req *fasthttp.Request, resp *fasthttp.Response, maxBody int) error {
	for attempt := 0; ; attempt++ {
		c, reused, err := t.get(deadline)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		stop := context.AfterFunc(ctx, func() { c.Close() })
		c.SetDeadline(deadline)
		err = req.Write(c.bw)
		if err == nil {
			err = c.bw.Flush()
		}
		if err == nil {
			err = resp.ReadLimitBody(c.br, maxBody)
		}
		closedByCtx := !stop()
		if closedByCtx {
			c.Close()
			if err != nil {
				return ctx.Err()
			}
			return nil
		}
		if err != nil {
			c.Close()
			if reused && attempt == 0 && staleConn(err) {
				resp.Reset()
				continue
			}
			return err
		}
		if resp.ConnectionClose() {
			c.Close()
		} else {
			t.put(c)
		}
		return nil
	}
}

// staleConn reports errors that mean the server closed an idle keep-alive
// connection before our request reached it.
func staleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, fasthttp.ErrConnectionClosed)
}
