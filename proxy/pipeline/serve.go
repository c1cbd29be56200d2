package pipeline

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"

	"github.com/vlproxy/vlproxy/internal/bytesconv"
	"github.com/vlproxy/vlproxy/internal/httphdr"
	"github.com/vlproxy/vlproxy/internal/lazyctx"
	"github.com/vlproxy/vlproxy/proxy/experiment"
	"github.com/vlproxy/vlproxy/proxy/resultcache"
	"github.com/vlproxy/vlproxy/proxy/searchbody"
)

// input is everything the pipeline needs from the client's request. It references the request
// (no copies): the work for a request, a result-cache fill included (cache.DoInline), ends
// before its handler returns.
type input struct {
	kind    Kind
	index   string // index expression from the path, "" for /_search
	rc      *fasthttp.RequestCtx
	prepare Prepare // fills an upstream request header (proxy/'s)
	rawBody []byte  // the body as the client sent it
	body    []byte  // the body as ES reads it (gunzipped)
	raw     bool    // body is rawBody (no Content-Encoding to undo)
	sw      searchbody.Switches
	variant *experiment.Variant
}

// outcome is one response of the pipeline, before it is written to the client. It is what the
// result cache stores.
type outcome struct {
	status    int
	header    []resultcache.Header // upstream response headers, hop-by-hop removed
	body      []byte
	rewrite   string // X-VLProxy-Rewrite
	rerank    string // X-VLProxy-Rerank
	retrieval string // X-VLProxy-Retrieval ("" without a multimodal clause)
	timings   Timings
	stored    time.Time // when it entered the result cache; zero when fresh
}

// Prepare fills dst, the header of a request to send upstream, from the client's request rc
// (hop-by-hop fields removed, X-Forwarded-* added). It is a plain function of rc, not a closure
// over it, so that handing it to Serve allocates nothing.
type Prepare func(dst *fasthttp.RequestHeader, rc *fasthttp.RequestCtx)

// Serve answers one search-endpoint request. body is the client's whole body; prepare fills the
// request header to send upstream and is only called when the request goes upstream; the index
// expression is read from the path. On error the X-VLProxy-* headers already set stay, and
// proxy/ renders the error (it implements ESError). The returned Timings feed Server-Timing.
func (p *Pipeline) Serve(rc *fasthttp.RequestCtx, kind Kind, prepare Prepare, body []byte) (Timings, error) {
	return p.serve(context.Background(), call{}, rc, kind, prepare, body)
}

// ServeUntil is Serve for a request parsed from the wire, with its arrival time and deadline:
// its work stops at the deadline, and result-cache freshness (TTL, Age) is judged at start,
// which saves a hit its clock reads. rc's header must be as fasthttp parsed it (not edited
// since): a repeated hit finds its key by the raw request bytes (hitMemo). No context is made
// unless the request has work to stop (a result-cache hit has none), which saves a hit its
// allocations.
func (p *Pipeline) ServeUntil(start, deadline time.Time, rc *fasthttp.RequestCtx, kind Kind, prepare Prepare, body []byte) (Timings, error) {
	return p.serve(context.Background(), call{start: start, deadline: deadline, wire: true}, rc, kind, prepare, body)
}

// call is what serve knows of a request besides rc: when it arrived (zero: read the clock when
// needed), when its work must stop (zero: no deadline), and whether its header is as parsed
// from the wire, which the hit memo needs.
type call struct {
	start, deadline time.Time
	wire            bool
}

func (c call) now() time.Time {
	if c.start.IsZero() {
		return time.Now()
	}
	return c.start
}

// ServeContext is Serve under parent: its cancellation (the client went away) or deadline stops
// this request's rewrite and rerank work — no model call starts afterwards and calls in flight
// are cancelled — while a result-cache fill that other requests wait for keeps running for them.
// fasthttp's RequestCtx is no such context: a request that may call a model gets one from
// Deps.WatchClient, which ends when its client goes away.
func (p *Pipeline) ServeContext(parent context.Context, rc *fasthttp.RequestCtx, kind Kind, prepare Prepare, body []byte) (Timings, error) {
	return p.serve(parent, call{}, rc, kind, prepare, body)
}

// serve is ServeContext under parent, and also until c.deadline unless it is zero.
func (p *Pipeline) serve(parent context.Context, c call, rc *fasthttp.RequestCtx, kind Kind, prepare Prepare, body []byte) (Timings, error) {
	if p.results != nil {
		sc := scratchPool.Get().(*scratch)
		defer releaseScratch(sc)
		if c.wire {
			var ok bool
			if sc.raw, ok = rawOf(rc, body); ok {
				sc.memoize = true
				// A request the memo knows was plain when it was remembered, and its bytes
				// are the same: only the configuration may have changed since.
				if e := p.memo.find(&sc.raw); e != nil && p.nothingConfigured(rc, kind) {
					return p.servePlainCached(parent, c, rc, sc, kind, prepare, body, e)
				}
			}
		}
		sc.readFields(rc)
		if p.nothingFor(&sc.fields, rc, kind, body) {
			return p.servePlainCached(parent, c, rc, sc, kind, prepare, body, nil)
		}
	}
	if !c.deadline.IsZero() {
		var cancel context.CancelFunc
		parent, cancel = lazyctx.WithDeadline(parent, c.deadline)
		defer cancel()
	}
	if p.watch != nil {
		var stop func()
		parent, stop = p.watch(parent, rc)
		defer stop()
	}
	get := func(name string) string { return string(rc.Request.Header.Peek(name)) }
	sw, err := searchbody.ParseSwitches(get)
	if err != nil {
		return Timings{}, err
	}
	path, _ := pathQuery(rc)
	in := &input{kind: kind, index: indexOf(path), sw: sw, rawBody: body, rc: rc, prepare: prepare}
	v, ok, err := p.exp.Pick(get, sw.Variant)
	if err != nil {
		return Timings{}, err
	}
	if ok {
		in.variant = &v
		rc.Response.Header.Set(httphdr.Variant, v.Name)
	}
	if in.body, in.raw, err = p.decodeBody(parent, &rc.Request.Header, body); err != nil {
		return Timings{}, err
	}
	if err := p.checkLimits(in); err != nil {
		return Timings{}, err
	}

	kb := bytebufferpool.Get()
	defer bytebufferpool.Put(kb)
	key, store := p.resultKey(rc, in, kb)
	if key != nil {
		// The hit path: no upstream header, no copies, no deadline.
		now := c.now()
		if entry, ok := p.results.GetAt(key, now); ok && p.writeEntry(rc, entry, cacheHit, now) == nil {
			return Timings{}, nil
		}
	}
	ctx, cancel := lazyctx.WithTimeout(parent, p.cfg.Timeout)
	defer cancel()
	if key == nil {
		out, err := p.run(ctx, in)
		if err != nil {
			return Timings{}, err
		}
		p.write(rc, out, cacheBypass)
		return out.timings, nil
	}

	// Only the caller whose fill runs does the work; the others are served by it. DoInline runs
	// the fill of the caller that starts it in that caller's goroutine before it returns (and
	// never runs a joining caller's fn), so the fill may use this request's body and header
	// without copies, and led needs no lock.
	var led *outcome
	entry, hit, err := p.results.DoInline(ctx, key, func(ctx context.Context) ([]byte, error) {
		out, err := p.run(ctx, in)
		if err != nil {
			return nil, err
		}
		led = out
		if out.status < 200 || out.status > 299 || !store {
			return nil, &uncacheable{out: out}
		}
		out.stored = time.Now()
		return encodeOutcome(out), nil
	})
	return p.answer(rc, entry, hit, led, err, func() (*outcome, error) { return p.run(ctx, in) })
}

// answer writes the response of a result-cache DoInline: the leader's own outcome led (a miss),
// another caller's (collapsed) or a stored entry (hit). A stored entry that cannot be decoded is
// a miss, never a failed request: the cache is flushed and rerun answers.
func (p *Pipeline) answer(rc *fasthttp.RequestCtx, entry []byte, hit bool, led *outcome, err error, rerun func() (*outcome, error)) (Timings, error) {
	var unc *uncacheable
	switch {
	case errors.As(err, &unc):
		// A caller whose fn did not run waited for another caller's fill: collapsed, not a hit
		// (the response is fresh) nor a miss (it caused no work).
		if led == nil {
			p.write(rc, unc.out, cacheCollapsed)
			return Timings{}, nil
		}
		p.write(rc, unc.out, cacheMiss)
		return unc.out.timings, nil
	case err != nil:
		return Timings{}, err
	case led != nil && !hit:
		p.write(rc, led, cacheMiss)
		return led.timings, nil
	}
	state := cacheHit
	if !hit {
		state = cacheCollapsed
	}
	if derr := p.writeEntry(rc, entry, state, time.Now()); derr != nil {
		p.log.Warn("cannot decode a result cache entry", "err", derr)
		p.results.Flush()
		out, err := rerun()
		if err != nil {
			return Timings{}, err
		}
		p.write(rc, out, cacheMiss)
		return out.timings, nil
	}
	return Timings{}, nil
}

// cacheState is the X-VLProxy-Cache value of a response, each counted in
// vlproxy_result_cache_requests_total{state}.
type cacheState uint8

const (
	cacheHit       cacheState = iota // a stored response
	cacheMiss                        // this request's own upstream call (and model calls)
	cacheCollapsed                   // waited for an identical request's fill and shares its response
	cacheBypass                      // not cacheable, or the result cache is off
	numCacheStates
)

var cacheStateNames = [numCacheStates][]byte{[]byte("hit"), []byte("miss"), []byte("collapsed"), []byte("bypass")}

var cacheStates [numCacheStates]prometheus.Counter

func init() {
	v := promauto.NewCounterVec(prometheus.CounterOpts{Name: "vlproxy_result_cache_requests_total",
		Help: "Search requests by X-VLProxy-Cache state: hit, miss, collapsed (waited for an identical request's fill) or bypass."},
		[]string{"state"})
	for st := range numCacheStates {
		cacheStates[st] = v.WithLabelValues(string(cacheStateNames[st]))
	}
}

// uncacheable carries a response that must reach every waiter but not the cache (non-2xx, or
// filled within the refresh lag of a write).
type uncacheable struct{ out *outcome }

func (u *uncacheable) Error() string { return "response not cacheable" }

func (p *Pipeline) write(rc *fasthttp.RequestCtx, out *outcome, state cacheState) {
	r := &rc.Response
	r.SetStatusCode(out.status)
	for _, h := range out.header {
		r.Header.AddBytesKV(h.Name, h.Value)
	}
	setStatus(&r.Header, bytesconv.Bytes(out.rewrite), bytesconv.Bytes(out.rerank), state)
	if out.retrieval != "" {
		r.Header.SetCanonical(hdrRetrieval, bytesconv.Bytes(out.retrieval))
	}
	if !rc.IsHead() {
		// out.body is never written again (a cache entry, or this request's own response), so
		// the client response takes it without a copy.
		r.SetBodyRaw(out.body)
	}
}

// maxStoredHeaders is how many stored headers writeEntry decodes without allocating.
const maxStoredHeaders = 8

// writeEntry answers with a stored response: status, stored headers, Age, status headers and
// body, which the client response references. It does not allocate.
func (p *Pipeline) writeEntry(rc *fasthttp.RequestCtx, entry []byte, state cacheState, now time.Time) error {
	var hs [maxStoredHeaders]resultcache.Header
	e := resultcache.Entry{Headers: hs[:0]}
	if err := e.Decode(entry); err != nil {
		return err
	}
	r := &rc.Response
	if state == cacheHit {
		setAge(&r.Header, now.Sub(e.Stored))
	}
	r.SetStatusCode(e.Status)
	if len(e.ContentType) > 0 {
		r.Header.SetContentTypeBytes(e.ContentType)
	}
	for _, h := range e.Headers {
		r.Header.AddBytesKV(h.Name, h.Value)
	}
	setStatus(&r.Header, e.Rewrite, e.Rerank, state)
	if len(e.Retrieval) > 0 {
		r.Header.SetCanonical(hdrRetrieval, e.Retrieval)
	}
	if !rc.IsHead() {
		// Entries are immutable. The body is the entry's prefix: taken from entry rather than
		// e.Body, since the compiler would otherwise move hs (held by e) to the heap.
		n := len(e.Body)
		r.SetBodyRaw(entry[:n:n])
	}
	return nil
}

// Header names in the form fasthttp writes them (it normalizes "X-VLProxy-Cache" to
// "X-Vlproxy-Cache" on Set), so that SetCanonical skips the normalization and the bytes on the
// wire stay the same.
var (
	hdrAge         = []byte("Age")
	hdrContentType = []byte("Content-Type")
	hdrRewrite     = []byte("X-Vlproxy-Rewrite")
	hdrRerank      = []byte("X-Vlproxy-Rerank")
	hdrCache       = []byte("X-Vlproxy-Cache")
	hdrRetrieval   = []byte("X-Vlproxy-Retrieval")
)

// setAge sets Age: the whole seconds an entry has been stored for.
func setAge(h *fasthttp.ResponseHeader, stored time.Duration) {
	age := max(stored, 0) / time.Second
	var buf [20]byte
	h.SetCanonical(hdrAge, strconv.AppendInt(buf[:0], int64(age), 10))
}

// setStatus sets the X-VLProxy-Rewrite, -Rerank and -Cache response headers and counts the
// cache state.
func setStatus(h *fasthttp.ResponseHeader, rewrite, rerank []byte, state cacheState) {
	h.SetCanonical(hdrRewrite, rewrite)
	h.SetCanonical(hdrRerank, rerank)
	h.SetCanonical(hdrCache, cacheStateNames[state])
	cacheStates[state].Inc()
}

// pathQuery returns the raw path and query string of the request without making fasthttp parse
// the whole URI (which costs more than the rest of a result-cache hit's key). Absolute-form
// request targets and fragments go through the parser.
func pathQuery(rc *fasthttp.RequestCtx) (path, query []byte) {
	uri := rc.Request.Header.RequestURI()
	if len(uri) == 0 || uri[0] != '/' || bytes.IndexByte(uri, '#') >= 0 {
		u := rc.URI()
		return u.PathOriginal(), u.QueryString()
	}
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		return uri[:i], uri[i+1:]
	}
	return uri, nil
}

// indexOf returns the index expression of a search path ("/a,b/_search" → "a,b"), decoded,
// or "" for "/_search".
func indexOf(path []byte) string {
	if len(path) < 2 || path[0] != '/' {
		return ""
	}
	seg := path[1:]
	if i := bytes.IndexByte(seg, '/'); i >= 0 {
		seg = seg[:i]
	} else {
		return ""
	}
	if len(seg) == 0 || seg[0] == '_' {
		return ""
	}
	if s, err := url.PathUnescape(string(seg)); err == nil {
		return s
	}
	return string(seg)
}
