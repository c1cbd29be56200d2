package proxy

import (
	"bufio"
	"errors"
	"io"
	"time"

	"github.com/valyala/fasthttp"
)

// exchange is one pass-through attempt on node n: it sends req and reads the answer into resp.
// It takes connections from the node's HostClient pool and gives them back itself, instead of
// calling HostClient.Do, because it decides between buffering and streaming once the answer's
// header is in: HostClient must be told beforehand, and a streamed answer costs it a stream,
// four allocations and a close protocol even when the body is 100 bytes. A body of known length
// up to ResponseBufferSize is read whole and the connection goes back at once (release is nil);
// any other body is left streaming in resp.BodyStream(), and release(reuse) must be called once
// it has been read (reuse: to its end) or abandoned.
func (s *Server) exchange(n *node, req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time,
	timeout time.Duration) (release func(reuse bool), err error) {
	hc := n.client
	cc, err := hc.AcquireConn(timeout, false) // timeout bounds the wait for a free connection
	if err != nil {
		return nil, err
	}
	conn := cc.Conn()
	req.URI().DisablePathNormalizing = true // what HostClient sets: the raw path goes upstream as it came
	if err = conn.SetWriteDeadline(deadline); err == nil {
		bw := hc.AcquireWriter(conn)
		if err = req.Write(bw); err == nil {
			err = bw.Flush()
		}
		hc.ReleaseWriter(bw)
	}
	if err == nil {
		err = conn.SetReadDeadline(deadline)
	}
	if err != nil {
		hc.CloseConn(cc)
		return nil, err
	}
	br := hc.AcquireReader(conn)
	streamed, err := s.readAnswer(br, req.Header.IsHead(), resp)
	if err == nil && streamed {
		return func(reuse bool) { giveBack(hc, cc, br, resp, reuse) }, nil
	}
	giveBack(hc, cc, br, resp, err == nil)
	if err == io.EOF {
		err = fasthttp.ErrConnectionClosed // as HostClient says it
	}
	return nil, err
}

// giveBack returns an upstream connection to its pool after an answer was read to its end
// (reuse), and closes it otherwise or when the answer said Connection: close. C is fasthttp's
// unexported connection type.
func giveBack[C any](hc interface {
	ReleaseReader(*bufio.Reader)
	ReleaseConn(C)
	CloseConn(C)
}, cc C, br *bufio.Reader, resp *fasthttp.Response, reuse bool) {
	hc.ReleaseReader(br)
	if reuse && !resp.ConnectionClose() {
		hc.ReleaseConn(cc)
	} else {
		hc.CloseConn(cc)
	}
}

// maxInterim bounds the 1xx answers skipped before the final one, as fasthttp does.
const maxInterim = 100

// readAnswer reads a response header from br, skipping interim 1xx answers, then its body: none
// for HEAD, 204 and 304; whole when its length is known and at most ResponseBufferSize; otherwise
// it leaves the body streaming in resp (streamed true).
func (s *Server) readAnswer(br *bufio.Reader, head bool, resp *fasthttp.Response) (streamed bool, err error) {
	h := &resp.Header
	for i := 0; ; i++ {
		if err := h.Read(br); err != nil {
			return false, err
		}
		if c := h.StatusCode(); c >= 200 || c == fasthttp.StatusSwitchingProtocols {
			break
		}
		if i == maxInterim {
			return false, errTooManyInterim
		}
	}
	if c := h.StatusCode(); head || c == fasthttp.StatusNoContent || c == fasthttp.StatusNotModified {
		resp.SkipBody = true
		return false, nil
	}
	limit := int(s.cfg.ResponseBufferSize)
	if cl := h.ContentLength(); cl >= 0 && cl <= limit {
		resp.StreamBody = false
		return false, resp.ReadBody(br, limit)
	}
	resp.StreamBody = true
	return true, resp.ReadBody(br, 0)
}

var errTooManyInterim = errors.New("the upstream sent over 100 interim (1xx) responses")
