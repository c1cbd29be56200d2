package pipeline

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vlproxy/vlproxy/internal/lazyctx"
	"github.com/vlproxy/vlproxy/proxy/resultcache"
)

// scratch is the per-request state of a search with the result cache on, pooled: the header
// fields (1.5 KiB, which would escape through the Headers interface) and the key.
type scratch struct {
	fields resultcache.Fields
	key    []byte
	parts  resultcache.Parts
	fill   plainFill
	// The request as sent, and whether a hit may be remembered by it (hitMemo).
	raw     rawRequest
	memoize bool
}

// plainFill is the result-cache fill of a plain search (servePlainCached): one upstream round
// trip that answers the request itself. It is kept in the scratch so that handing it to
// DoInlineFiller allocates nothing, as a closure and what it captures would.
type plainFill struct {
	p       *Pipeline
	rc      *fasthttp.RequestCtx
	kind    Kind
	prepare Prepare
	body    []byte
	store   bool
	// What the fill did: its timings, and whether it wrote the client response.
	t     Timings
	wrote bool
}

func (f *plainFill) Fill(ctx context.Context) ([]byte, error) {
	entry, t, err := f.p.forwardPlain(ctx, f.rc, f.kind, f.prepare, f.body, cacheMiss, true, f.store)
	f.t, f.wrote = t, err == nil || errors.As(err, new(*uncacheable))
	return entry, err
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// readFields files the request's header fields in sc.fields, in one pass.
func (sc *scratch) readFields(rc *fasthttp.RequestCtx) {
	h := &rc.Request.Header
	sc.fields.Reset(h)
	for k, v := range h.All() {
		sc.fields.Add(k, v)
	}
}

func releaseScratch(sc *scratch) {
	sc.fields.Reset(nil) // drop the references into the request
	sc.fill = plainFill{}
	sc.raw, sc.memoize, sc.parts = rawRequest{}, false, resultcache.Parts{}
	if cap(sc.key) <= 64<<10 {
		scratchPool.Put(sc)
	}
}

// servePlainCached serves, with the result cache on, a search that carries nothing for vlproxy
// (nothingFor): its key, then a stored response or one upstream round trip, stored. It copies
// neither the request nor the response body, starts no timer and watches no client (nothing it
// does could be stopped: the upstream round trip has its own deadline), and a hit allocates
// nothing.
//
// Its one context is made after the lookup missed: the pipeline's timeout and clk's deadline
// (zero for none) in one lazy context under parent.
//
// A request the hit memo remembers (memo not nil) takes its key from there, with the index
// generations of the moment; any other reads sc.fields for it.
func (p *Pipeline) servePlainCached(parent context.Context, c call, rc *fasthttp.RequestCtx, sc *scratch, kind Kind, prepare Prepare, body []byte,
	memo *memoEntry) (Timings, error) {
	var key []byte
	var last time.Time
	ok := true
	if memo != nil {
		key, last = p.keys.KeyAgain(sc.key[:0], memo.key, &memo.parts)
	} else {
		path, query := pathQuery(rc)
		key, last, ok = p.keys.KeyParts(sc.key[:0], resultcache.KeyInput{
			Method: rc.Method(), Path: path, Query: query, Body: body, Header: &sc.fields,
		}, &sc.parts)
	}
	if ok {
		sc.key = key
		now := c.now()
		entry, hit := p.results.GetAt(key, now)
		if hit {
			err := p.writeEntry(rc, entry, cacheHit, now)
			if err == nil {
				if memo == nil && sc.memoize && sc.parts.Reusable() {
					p.memo.remember(&sc.raw, key, &sc.parts)
				}
				return Timings{}, nil
			}
			p.fault(err)
		}
	}
	until := c.now().Add(p.cfg.Timeout)
	if !c.deadline.IsZero() && c.deadline.Before(until) {
		until = c.deadline
	}
	ctx := new(lazyctx.Ctx) // one allocation; WithDeadline's CancelFunc would be a second
	ctx.Init(parent, until)
	defer ctx.Cancel()
	if !ok {
		_, t, err := p.forwardPlain(ctx, rc, kind, prepare, body, cacheBypass, false, false)
		return t, err
	}
	store := last.IsZero() || time.Since(last) >= p.lag
	// DoInline runs the fill of the caller that starts it in that caller's goroutine before it
	// returns, and never a joining caller's fn: the fill answers this request itself.
	sc.fill = plainFill{p: p, rc: rc, kind: kind, prepare: prepare, body: body, store: store}
	entry, hit, err := p.results.DoInlineFiller(ctx, key, &sc.fill)
	if sc.fill.wrote {
		return sc.fill.t, nil
	}
	var unc *uncacheable
	switch {
	case errors.As(err, &unc):
		p.write(rc, unc.out, cacheCollapsed)
		return Timings{}, nil
	case err != nil:
		return Timings{}, err
	}
	state := cacheHit
	if !hit {
		state = cacheCollapsed
	}
	if err := p.writeEntry(rc, entry, state, time.Now()); err != nil {
		p.fault(err)
		_, t, err := p.forwardPlain(ctx, rc, kind, prepare, body, cacheMiss, false, false)
		return t, err
	}
	return Timings{}, nil
}

// fault handles a result-cache entry that cannot be decoded: a cache fault is a miss, never a
// failed request, and the whole cache goes.
func (p *Pipeline) fault(err error) {
	p.log.Warn("cannot decode a result cache entry", "err", err)
	p.results.Flush()
}

// forwardPlain sends the request upstream as the client sent it and answers with the response,
// headers and body as they came (the body without a copy), with the given X-VLProxy-Cache
// state. As a result-cache fill it also returns the response as an entry, made in the body's
// own buffer; a response that may not be stored (not 2xx, or !store: within the refresh lag of
// a write) is then an *uncacheable error that carries it for the callers that waited for it.
func (p *Pipeline) forwardPlain(ctx context.Context, rc *fasthttp.RequestCtx, kind Kind, prepare Prepare, body []byte,
	state cacheState, fill, store bool) ([]byte, Timings, error) {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	prepare(&req.Header, rc)
	req.SetBodyRaw(body)
	var t Timings
	s := time.Now()
	// The answer is read into the client response itself (Forwarder), which saves copying its
	// header field by field.
	r := &rc.Response
	if err := p.fwd.Forward(ctx, req, r); err != nil {
		return nil, t, err
	}
	t.Search = time.Since(s)

	status := r.StatusCode()
	rewrite, rerank := plainStates(kind)
	var hs [maxStoredHeaders]resultcache.Header
	e := resultcache.Entry{Status: status, Headers: hs[:0]}
	for k, v := range r.Header.All() {
		switch storedAs(k) {
		case storedContentType:
			e.ContentType = v
		case storedHeader:
			e.Headers = append(e.Headers, resultcache.Header{Name: k, Value: v})
		}
	}
	var upstreamHeader []resultcache.Header // for the callers an uncacheable answer is passed to
	if fill && (!store || !resultcache.CacheableStatus(status)) {
		upstreamHeader = outcomeHeaders(nil, &r.Header)
	}
	setStatus(&r.Header, rewrite, rerank, state)
	// The body leaves the client response's own buffer, which fasthttp reuses, for the entry
	// (AppendEntryMeta) and is referenced back.
	b := r.SwapBody(nil)
	if !rc.IsHead() {
		r.SetBodyRaw(b)
	}
	switch {
	case !fill:
		return nil, t, nil
	case !store || !resultcache.CacheableStatus(status):
		out := &outcome{status: status, header: upstreamHeader, body: b,
			rewrite: string(rewrite), rerank: string(rerank), timings: t}
		return nil, t, &uncacheable{out: out}
	}
	e.Rewrite, e.Rerank = rewrite, rerank
	e.Stored = time.Now()
	// The client response holds b[:len(b)]; the metadata goes after it, in b's spare capacity.
	return resultcache.AppendEntryMeta(b, &e), t, nil
}
