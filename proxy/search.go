package proxy

import (
	"context"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vlproxy/vlproxy/proxy/pipeline"
	"github.com/vlproxy/vlproxy/proxy/resultcache"
)

// serveSearch handles _search, _msearch and _count: the body is read whole (bounded by
// max_body_size) and handed to the search pipeline (switches, result cache, rewrite, upstream
// search, rerank, explain), which sends it upstream through searchForwarder.
func (s *Server) serveSearch(ctx *fasthttp.RequestCtx, rq *request) {
	body, err := s.readBody(ctx, rq)
	if err != nil {
		s.fail(ctx, rq, err)
		return
	}
	kind := pipeline.Search
	switch rq.route.class {
	case classMsearch:
		kind = pipeline.Msearch
	case classCount:
		kind = pipeline.Count
	}
	if s.pipe.Plain(ctx, kind, body) {
		s.servePlainSearch(ctx, rq, kind, body)
		return
	}
	// The pipeline's work for this request stops when its deadline passes or, if it may call a
	// model, when its client leaves (watchClient, through pipeline.Deps). Its context is made
	// only once there is work to stop (not for a result-cache hit), and lazily: a search that
	// waits on nothing but its upstream round trip starts no timer.
	t, err := s.pipe.ServeUntil(rq.start, rq.deadline, ctx, kind, prepareUpstreamRequest, body)
	if err != nil {
		s.fail(ctx, rq, err)
		return
	}
	// Disjoint stages (pipeline.Timings): upstream is the search's round trip, model the time
	// waiting for model answers, rewrite and rerank the rest of their work.
	rq.timing.add("upstream", t.Search)
	if t.Rewrite > 0 || t.Model > 0 {
		rq.timing.add("rewrite", t.Rewrite)
		rq.timing.add("model", t.Model)
	}
	if t.Rerank > 0 {
		rq.timing.add("rerank", t.Rerank)
	}
}

// servePlainSearch forwards a search that needs nothing from the pipeline (Pipeline.Plain): the
// buffered round trip of an idempotent read, bytes unchanged both ways. As in the pass-through,
// the client's request goes upstream itself, its header edited in place, and the answer is
// parsed into the client response, which saves copying either header.
func (s *Server) servePlainSearch(ctx *fasthttp.RequestCtx, rq *request, kind pipeline.Kind, body []byte) {
	req := &ctx.Request
	if ctx.RequestBodyStream() != nil {
		req.SetBodyRaw(body) // the bytes read replace the stream, which the server still drains
	}
	forwardRequestHeader(&req.Header, ctx)
	err := s.roundTrip(rq, req, &ctx.Response)
	h := &ctx.Response.Header
	if err != nil {
		clearResponseHeader(h) // what a failed attempt's answer left there
		pipeline.SetPlainStatus(h, kind)
		s.fail(ctx, rq, err)
		return
	}
	stripResponseHopByHop(h)
	pipeline.SetPlainStatus(h, kind)
}

// searchForwarder is the pipeline's way upstream: the buffered round trip with the retry rules of
// an idempotent read, inside the pipeline's deadline, answered without hop-by-hop headers.
type searchForwarder struct{ s *Server }

func (f searchForwarder) Forward(ctx context.Context, req *fasthttp.Request, resp *fasthttp.Response) error {
	rq := request{route: route{class: classSearch, retryable: true}, start: time.Now()}
	rq.deadline = rq.start.Add(f.s.cfg.RequestTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(rq.deadline) {
		rq.deadline = d
	}
	if err := f.s.roundTrip(&rq, req, resp); err != nil {
		clearResponseHeader(&resp.Header) // what a failed attempt's answer left there: resp may be the client's
		return err
	}
	stripResponseHopByHop(&resp.Header)
	return nil
}

// invalidate applies a write that passed through to the result cache. body is nil when the
// request body streamed (over smallBody): then a _bulk is known by what bulk scanned of it on
// its way (nil: not scanned, every cached result goes), other writes by their path.
func (s *Server) invalidate(ctx *fasthttp.RequestCtx, body []byte, streamed bool, bulk *resultcache.BulkScanner) {
	if s.keys == nil || ctx.IsGet() || ctx.IsHead() {
		return // reads write nothing (resultcache.Writes agrees), and most requests are reads
	}
	uri := ctx.Request.Header.RequestURI()
	path, query := uri, []byte(nil)
	for i, c := range uri {
		if c == '?' {
			path, query = uri[:i], uri[i+1:]
			break
		}
	}
	var w resultcache.Write
	if streamed {
		w = resultcache.StreamedWrites(ctx.Method(), path, query, bulk)
	} else {
		w = resultcache.Writes(ctx.Method(), path, query, body)
	}
	if w.IsWrite() {
		s.keys.Invalidate(w)
	}
}
