package proxy

import (
	"errors"
	"github.com/vlproxy/vlproxy/internal/eserr"
	"io"
	"time"

	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"

	"github.com/vlproxy/vlproxy/proxy/resultcache"
)

// request carries what the proxy knows about one client request while it is served.
type request struct {
	route    route
	start    time.Time
	deadline time.Time // start + RequestTimeout: every attempt and retry ends before it
	// now, when set, is a clock reading the next upstream attempt may take as its start instead
	// of reading the clock (the handler's start, when nothing slow ran since); do clears it.
	now      time.Time
	timing   serverTiming
	noTiming bool   // the response is known to carry no Server-Timing from upstream (finish need not look)
	upstream string // address of the last node tried, for logs
	body     *bytebufferpool.ByteBuffer
}

// smallBody: request bodies up to this size are read whole (cheaper than a stream, and replayable).
const smallBody = 64 << 10

var errClientBody = errors.New("cannot read the request body from the client")

// bodyLimiter streams a client request body upstream, failing once more than max bytes came through.
type bodyLimiter struct {
	r       io.Reader
	max     int64
	want    int64 // Content-Length, or -1 for chunked
	n       int64
	tooBig  bool
	readErr error
	tee     io.Writer // sees every byte read (a _bulk's BulkScanner), nil when none
}

func (l *bodyLimiter) Read(p []byte) (int, error) {
	if l.tooBig {
		return 0, errBodyTooLargeSentinel
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.tee != nil && n > 0 {
		l.tee.Write(p[:n]) //nolint:errcheck // a scanner never fails
	}
	if l.n > l.max {
		l.tooBig = true
		return 0, errBodyTooLargeSentinel
	}
	if err == io.EOF && l.want >= 0 && l.n < l.want {
		err = io.ErrUnexpectedEOF // the client hung up before sending what it announced
	}
	if err != nil && err != io.EOF {
		l.readErr = err
	}
	return n, err
}

var errBodyTooLargeSentinel = errors.New("request body over max_body_size")

// readBody reads the whole client body (at most MaxBodySize) into rq.body.
func (s *Server) readBody(ctx *fasthttp.RequestCtx, rq *request) ([]byte, error) {
	stream := ctx.RequestBodyStream()
	if stream == nil {
		return ctx.Request.Body(), nil
	}
	if ctx.Request.Header.ContentLength() == 0 {
		// fasthttp streams even an announced empty body (wrk and some clients send
		// Content-Length: 0 on a GET): there is nothing to read, and reading it through a
		// LimitReader cost an allocation.
		return nil, nil
	}
	rq.body = bytebufferpool.Get()
	lim := int64(s.cfg.MaxBodySize)
	n, err := readAtMost(rq.body, stream, lim+1)
	if n > lim {
		return nil, errBodyTooLarge(s.cfg.MaxBodySize)
	}
	if cl := ctx.Request.Header.ContentLength(); err == nil && cl >= 0 && n < int64(cl) {
		err = io.ErrUnexpectedEOF // the client hung up before sending what it announced
	}
	if err != nil {
		return nil, errBadRequest(errClientBody.Error(), err)
	}
	return rq.body.B, nil
}

// readAtMost appends to buf what r yields until EOF or until max bytes, and returns how many
// it read; io.EOF is no error. It is buf.ReadFrom(io.LimitReader(r, max)) without the
// LimitedReader, which escapes to the heap on every search.
func readAtMost(buf *bytebufferpool.ByteBuffer, r io.Reader, max int64) (int64, error) {
	b := buf.B
	start := len(b)
	for int64(len(b)-start) < max {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		end := min(int64(cap(b)), int64(len(b))+max-int64(len(b)-start))
		m, err := r.Read(b[len(b):end])
		b = b[:len(b)+m]
		if err != nil {
			buf.B = b
			if err == io.EOF {
				err = nil
			}
			return int64(len(b) - start), err
		}
	}
	buf.B = b
	return int64(len(b) - start), nil
}

// passThrough forwards the request to a node and the answer back, bytes unchanged. Request bodies over
// smallBody that may not be retried stream upstream; responses over ResponseBufferSize stream back.
// A request whose body is read whole goes upstream as the client's request itself, its header
// edited in place (forwardRequestHeader), which saves copying the header.
func (s *Server) passThrough(ctx *fasthttp.RequestCtx, rq *request) {
	var req *fasthttp.Request
	var lim *bodyLimiter
	var bulk *resultcache.BulkScanner
	var body []byte
	cl := ctx.Request.Header.ContentLength()
	stream := ctx.RequestBodyStream()
	if stream != nil && !rq.route.retryable && (cl < 0 || cl > smallBody) {
		// The body streams from the client's request while a copy of its header goes upstream.
		req = fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(req)
		prepareUpstreamRequest(&req.Header, ctx)
		lim = &bodyLimiter{r: stream, max: int64(s.cfg.MaxBodySize), want: int64(cl)}
		// A streamed _bulk is scanned on its way for the indices it writes, so that it
		// invalidates only their cached searches. A compressed one cannot be read: it touches all.
		if s.keys != nil && len(ctx.Request.Header.ContentEncoding()) == 0 && resultcache.IsBulkPath(ctx.Path()) {
			bulk = resultcache.NewBulkScanner(ctx.Path(), ctx.URI().QueryString())
			lim.tee = bulk
		}
	} else {
		var err error
		if body, err = s.readBody(ctx, rq); err != nil {
			s.fail(ctx, rq, err)
			return
		}
		req = &ctx.Request
		if stream != nil {
			req.SetBodyRaw(body) // the bytes read replace the stream, which the server still drains
		}
		forwardRequestHeader(&req.Header, ctx)
		if stream == nil || cl == 0 {
			rq.now = rq.start // no client body was waited for: the attempt starts about now
		}
	}

	var prefix *bytebufferpool.ByteBuffer
	var answer *fasthttp.Response // set while the answer's body streams from its connection
	var release func(reuse bool)
	_, err := s.do(rq, req, nil, lim, cl, func(n *node, deadline time.Time, timeout time.Duration) error {
		var err error
		if answer, release, err = s.exchange(n, req, &ctx.Response, deadline, timeout); err != nil || answer == nil {
			return err
		}
		complete := false
		if prefix, complete, err = s.prefetch(answer); err != nil || complete {
			answer.CloseBodyStream() //nolint:errcheck
			release(err == nil)
			fasthttp.ReleaseResponse(answer)
			answer = nil
		}
		return err
	})
	// A write may have been applied even when its answer failed: invalidate either way, after
	// the upstream saw it, so no search can cache the old data under the new generation.
	s.invalidate(ctx, body, lim != nil, bulk)
	if err != nil {
		clearResponseHeader(&ctx.Response.Header) // what a failed attempt's answer left there
		if lim != nil && lim.tooBig {
			err = errBodyTooLarge(s.cfg.MaxBodySize)
		} else if lim != nil && lim.readErr != nil {
			err = errBadRequest(errClientBody.Error(), lim.readErr)
		}
		s.fail(ctx, rq, err)
		return
	}
	rq.noTiming = !stripResponseHopByHop(&ctx.Response.Header)
	switch {
	case answer != nil:
		ctx.Response.SetBodyStream(&upstreamBody{prefix: prefix, resp: answer, release: release}, ctx.Response.Header.ContentLength())
	case prefix != nil:
		// Hand the buffer over instead of copying it; the client response's old buffer goes to the pool.
		prefix.B = ctx.Response.SwapBody(prefix.B)
		bytebufferpool.Put(prefix)
	}
}

// prefetch reads the streaming body of an answer of unknown length (chunked, or until the upstream
// closes) up to ResponseBufferSize. complete says the whole body is in prefix; otherwise the rest
// streams after it. An answer of known length over the limit streams from its first byte.
func (s *Server) prefetch(resp *fasthttp.Response) (prefix *bytebufferpool.ByteBuffer, complete bool, err error) {
	limit := int64(s.cfg.ResponseBufferSize)
	if resp.Header.ContentLength() >= 0 {
		return nil, false, nil
	}
	prefix = bytebufferpool.Get()
	n, err := readAtMost(prefix, resp.BodyStream(), limit+1)
	if err != nil {
		bytebufferpool.Put(prefix)
		return nil, false, errors.New("the upstream broke off the response body: " + err.Error())
	}
	return prefix, n <= limit, nil
}

// upstreamBody is a response body streaming from a node to the client; fasthttp closes it once the body
// is written (or the client is gone), which gives the upstream connection back to its pool when the
// body was read to its end, and closes it otherwise.
type upstreamBody struct {
	prefix  *bytebufferpool.ByteBuffer
	off     int
	resp    *fasthttp.Response
	release func(reuse bool)
	eof     bool
}

func (b *upstreamBody) Read(p []byte) (int, error) {
	if b.prefix != nil {
		if b.off < len(b.prefix.B) {
			n := copy(p, b.prefix.B[b.off:])
			b.off += n
			return n, nil
		}
		bytebufferpool.Put(b.prefix)
		b.prefix = nil
	}
	n, err := b.resp.BodyStream().Read(p)
	b.eof = b.eof || err == io.EOF
	return n, err
}

func (b *upstreamBody) Close() error {
	if b.prefix != nil {
		bytebufferpool.Put(b.prefix)
		b.prefix = nil
	}
	if b.resp != nil {
		b.resp.CloseBodyStream() //nolint:errcheck
		b.release(b.eof)
		fasthttp.ReleaseResponse(b.resp)
		b.resp = nil
	}
	return nil
}

// do sends req to a node chosen by the selector and fills resp, retrying on another node when safe:
// after a dial error for any request, after other failures only for idempotent reads with a replayable
// body. Every attempt ends before rq.deadline and at most MaxRetries retries follow the first attempt.
// lim, when set, is a client body streaming upstream (cl its Content-Length or -1): it is replayable
// only until its first byte was read. exchange, when set, makes each attempt on node n instead of
// HostClient.DoTimeout (the pass-through's exchange), ending by deadline, timeout from now; resp is
// then nil, the exchange filling what it reads into.
func (s *Server) do(rq *request, req *fasthttp.Request, resp *fasthttp.Response, lim *bodyLimiter, cl int,
	exchange func(n *node, deadline time.Time, timeout time.Duration) error) (*node, error) {
	streamResp := resp != nil && resp.StreamBody
	noHost := len(req.Header.Host()) == 0
	var tried uint64
	var lastErr error
	staleRetried, schemeSet := false, false
	for attempt := 0; attempt <= s.cfg.MaxRetries; attempt++ {
		idx := s.pick(tried)
		if idx < 0 && lastErr != nil {
			// Every available node failed once: wait a little (never past the deadline) and go around.
			wait := s.cfg.RetryWait
			if left := time.Until(rq.deadline); left < wait {
				break
			}
			time.Sleep(wait)
			tried = 0
			idx = s.pick(tried)
		}
		if idx < 0 {
			if lastErr != nil {
				return nil, lastErr
			}
			return nil, errNoHealthy
		}
		n := s.nodes[idx]
		tried |= 1 << idx
		rq.upstream = n.addr
		if n.client.IsTLS || schemeSet {
			// HostClient refuses a request whose scheme is not its own, and the client's request
			// came as http; only https nodes (or a retry after one) pay for the URI parse.
			setScheme(req, n.client.IsTLS)
			schemeSet = true
		}
		if noHost {
			// HTTP/1.0 clients may send no Host; HTTP/1.1 to the node needs one.
			req.Header.SetHost(n.addr)
		}
		if attempt > 0 {
			retriesTotal.Inc()
			if resp != nil {
				resp.Reset()
				resp.StreamBody = streamResp
			}
		}
		if lim != nil {
			if lim.n > 0 {
				return nil, lastErr // the body is gone; it cannot be sent again
			}
			req.SetBodyStream(lim, cl)
		}
		now := rq.now
		if now.IsZero() {
			now = time.Now()
		}
		rq.now = time.Time{}
		deadline := now.Add(s.cfg.UpstreamTimeout)
		if rq.deadline.Before(deadline) {
			deadline = rq.deadline
		}
		if !deadline.After(now) {
			return nil, &eserr.Error{Status: fasthttp.StatusGatewayTimeout, Type: typeTimeout,
				Reason: "request_timeout (-request-timeout) expired before the upstream answered", Err: lastErr}
		}
		n.inFlight.Add(1)
		var err error
		if timeout := deadline.Sub(now); exchange != nil {
			err = exchange(n, deadline, timeout)
		} else {
			err = n.client.DoTimeout(req, resp, timeout) // = DoDeadline without reading the clock again
		}
		n.inFlight.Add(-1)
		d := time.Since(now)
		rq.timing.add("upstream", d)
		n.m.observe(d)
		if err == nil {
			return n, nil
		}
		n.m.errors.Inc()
		if isDialError(err) {
			lastErr = err
			if !errors.Is(err, fasthttp.ErrNoFreeConns) && n.eject(s.cfg.EjectDuration, err.Error()) {
				s.log.Warn("upstream node ejected after a failed connection", "upstream", n.url,
					"reason", err.Error(), "for", s.cfg.EjectDuration.String())
			}
			continue
		}
		lastErr = &upstreamError{addr: n.addr, err: err}
		if !rq.route.retryable || lim != nil {
			return nil, lastErr
		}
		if errors.Is(err, fasthttp.ErrConnectionClosed) && !staleRetried {
			// Most likely a pooled connection the node closed while it was idle (a restart, or
			// the node's idle timeout): the node itself may be fine, so it may be tried again at
			// once instead of after RetryWait, as HostClient.Do would have.
			staleRetried = true
			tried &^= 1 << idx
		}
		s.log.Debug("retrying an idempotent read on another node", "upstream", n.url, "reason", err.Error())
	}
	return nil, lastErr
}

// roundTrip sends a fully buffered request to an upstream node, with the retry rules and deadline of
// rq, and returns with the whole response in resp (at most MaxBufferedResponseSize bytes). req and
// resp stay owned by the caller. A returned error renders ES-shaped through fail. Each attempt is
// an exchange (as the pass-through's) whose streamed body is then read whole: HostClient.DoTimeout
// cost a third more instructions per search, and its reset of resp added a Date.
func (s *Server) roundTrip(rq *request, req *fasthttp.Request, resp *fasthttp.Response) error {
	resp.StreamBody = false
	_, err := s.do(rq, req, nil, nil, 0, func(n *node, deadline time.Time, timeout time.Duration) error {
		return s.exchangeWhole(n, req, resp, deadline, timeout)
	})
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		return &eserr.Error{Status: fasthttp.StatusBadGateway, Type: typeBadGateway,
			Reason: "upstream response is larger than max_buffered_response_size (" + s.cfg.MaxBufferedResponseSize.String() + ")", Err: err}
	}
	return err
}

// exchangeWhole is one attempt of roundTrip: an exchange into resp whose body, when it streams
// (unknown length, or over ResponseBufferSize), is read to its end into resp, failing with
// fasthttp.ErrBodyTooLarge past MaxBufferedResponseSize.
func (s *Server) exchangeWhole(n *node, req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time, timeout time.Duration) error {
	stream, release, err := s.exchange(n, req, resp, deadline, timeout)
	if err != nil || stream == nil {
		return err
	}
	defer fasthttp.ReleaseResponse(stream)
	limit := int64(s.cfg.MaxBufferedResponseSize)
	buf := bytebufferpool.Get()
	defer bytebufferpool.Put(buf)
	got, err := readAtMost(buf, stream.BodyStream(), limit+1)
	stream.CloseBodyStream() //nolint:errcheck
	switch {
	case err != nil:
		release(false)
		return errors.New("the upstream broke off the response body: " + err.Error())
	case got > limit:
		release(false)
		return fasthttp.ErrBodyTooLarge
	}
	release(true)
	buf.B = resp.SwapBody(buf.B) // the body read becomes resp's; its old buffer goes to the pool
	resp.Header.SetContentLength(len(resp.Body()))
	return nil
}

// setScheme makes req's URI say https for a TLS node, http otherwise.
func setScheme(req *fasthttp.Request, tls bool) {
	if tls {
		req.URI().SetScheme("https")
	} else {
		req.URI().SetScheme("http")
	}
}
