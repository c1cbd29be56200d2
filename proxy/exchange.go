package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"time"

	"github.com/valyala/fasthttp"
)

// exchange is one pass-through attempt on node n: it sends req and reads the answer into dst,
// the client's response. It takes connections from the node's HostClient pool and gives them back
// itself, instead of calling HostClient.Do, for two savings. It decides between buffering and
// streaming once the answer's header is in (HostClient must be told beforehand, and a streamed
// answer costs it a stream, four allocations and a close protocol even for 100 bytes). And it
// parses the answer straight into dst, where HostClient would reset dst first, which makes
// fasthttp add a Date: the answer would otherwise be parsed once and its fields copied one by one.
//
// A body of known length up to ResponseBufferSize is read whole into dst and the connection goes
// back at once (stream is nil). Any other body is left streaming in stream.BodyStream(), and
// release(reuse) must be called once it has been read (reuse: to its end) or abandoned, then
// stream released. The caller removes the hop-by-hop fields from dst.Header.
func (s *Server) exchange(n *node, req *fasthttp.Request, dst *fasthttp.Response, deadline time.Time,
	timeout time.Duration) (stream *fasthttp.Response, release func(reuse bool), err error) {
	hc := n.client
	cc, err := hc.AcquireConn(timeout, false) // timeout bounds the wait for a free connection
	if err != nil {
		return nil, nil, err
	}
	conn := cc.Conn()
	if uri := req.Header.RequestURI(); !hc.IsTLS && isOriginForm(uri) {
		// Request.Write sends the header's request URI as it is unless the URI was parsed, and
		// the server parsed it: marked unparsed, the raw path goes upstream without being
		// rebuilt from its parts (and the client's Host with it, where the parsed URI's is
		// lowercased).
		req.SetRequestURIBytes(uri)
	} else {
		// An absolute-form URI is sent in origin form, from the parsed URI; its raw path as it
		// came, as HostClient sets.
		req.URI().DisablePathNormalizing = true
	}
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
		return nil, nil, err
	}
	br := hc.AcquireReader(conn)
	stream, err = s.readAnswer(br, req.Header.IsHead(), dst)
	upClose := dst.Header.ConnectionClose() // the caller strips Connection before the stream ends
	if err == nil && stream != nil {
		return stream, func(reuse bool) { giveBack(hc, cc, br, reuse && !upClose) }, nil
	}
	giveBack(hc, cc, br, err == nil && !upClose)
	if err == io.EOF {
		err = fasthttp.ErrConnectionClosed // as HostClient says it
	}
	return nil, nil, err
}

// isOriginForm says the request URI is an absolute path and query (RFC 9112 §3.2.1), as fasthttp's
// URI parser reads it: no "//" that would start an authority, no fragment it would drop.
func isOriginForm(uri []byte) bool {
	return len(uri) > 0 && uri[0] == '/' && (len(uri) == 1 || uri[1] != '/') && bytes.IndexByte(uri, '#') < 0
}

// giveBack returns an upstream connection to its pool (reuse: its answer was read to its end and
// did not say Connection: close), or closes it. C is fasthttp's unexported connection type.
func giveBack[C any](hc interface {
	ReleaseReader(*bufio.Reader)
	ReleaseConn(C)
	CloseConn(C)
}, cc C, br *bufio.Reader, reuse bool) {
	hc.ReleaseReader(br)
	if reuse {
		hc.ReleaseConn(cc)
	} else {
		hc.CloseConn(cc)
	}
}

// maxInterim bounds the 1xx answers skipped before the final one, as fasthttp does.
const maxInterim = 100

// readAnswer reads a response header from br into dst, skipping interim 1xx answers, then its
// body: none for HEAD, 204 and 304; whole into dst when its length is known and at most
// ResponseBufferSize; otherwise it returns a Response streaming the body. Reading a header
// resets everything of dst's header but its no-default-Date and Content-Type settings.
func (s *Server) readAnswer(br *bufio.Reader, head bool, dst *fasthttp.Response) (stream *fasthttp.Response, err error) {
	h := &dst.Header
	for i := 0; ; i++ {
		if err := h.Read(br); err != nil {
			return nil, err
		}
		if c := h.StatusCode(); c < 100 || c >= 200 || c == fasthttp.StatusSwitchingProtocols {
			break
		}
		if i == maxInterim {
			return nil, errTooManyInterim
		}
	}
	dst.ResetBody()
	if c := h.StatusCode(); head || c == fasthttp.StatusNoContent || c == fasthttp.StatusNotModified {
		return nil, nil
	}
	limit := int(s.cfg.ResponseBufferSize)
	cl := h.ContentLength()
	if cl >= 0 && cl <= limit {
		return nil, dst.ReadBody(br, limit)
	}
	// The body streams through a Response of its own, with the framing of the answer.
	stream = fasthttp.AcquireResponse()
	stream.Header.SetContentLength(cl)
	stream.StreamBody = true
	if err := stream.ReadBody(br, 0); err != nil {
		fasthttp.ReleaseResponse(stream)
		return nil, err
	}
	return stream, nil
}

var errTooManyInterim = errors.New("the upstream sent over 100 interim (1xx) responses")
