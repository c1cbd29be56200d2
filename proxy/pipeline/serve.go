package pipeline

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/valyala/fasthttp"

	"github.com/vlproxy/vlproxy/internal/bytesconv"
	"github.com/vlproxy/vlproxy/internal/httphdr"
	"github.com/vlproxy/vlproxy/proxy/experiment"
	"github.com/vlproxy/vlproxy/proxy/resultcache"
	"github.com/vlproxy/vlproxy/proxy/searchbody"
)

// input is everything the pipeline needs from the client's request, copied out of the
// RequestCtx: with single-flight the work may outlive the handler that started it.
type input struct {
	kind    Kind
	index   string                  // index expression from the path, "" for /_search
	header  *fasthttp.RequestHeader // the upstream request header, prepared by proxy/
	rawBody []byte                  // the body as the client sent it
	body    []byte                  // the body as ES reads it (gunzipped)
	raw     bool                    // body is rawBody (no Content-Encoding to undo)
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

// Serve answers one search-endpoint request. body is the client's whole body; prepare fills the
// request header to send upstream (hop-by-hop fields removed, X-Forwarded-* added) and is only
// called when the request goes upstream; the index expression is read from the path. On error
// the X-VLProxy-* headers already set stay, and proxy/ renders the error (it implements
// ESError). The returned Timings feed Server-Timing.
func (p *Pipeline) Serve(rc *fasthttp.RequestCtx, kind Kind, prepare func(dst *fasthttp.RequestHeader), body []byte) (Timings, error) {
	return p.ServeContext(context.Background(), rc, kind, prepare, body)
}

// ServeContext is Serve under parent: its cancellation (the client went away) or deadline stops
// this request's rewrite and rerank work — no model call starts afterwards and calls in flight
// are cancelled — while a result-cache fill that other requests wait for keeps running for them.
// fasthttp's RequestCtx is no such context; proxy/ derives one from the connection.
func (p *Pipeline) ServeContext(parent context.Context, rc *fasthttp.RequestCtx, kind Kind, prepare func(dst *fasthttp.RequestHeader), body []byte) (Timings, error) {
	get := func(name string) string { return string(rc.Request.Header.Peek(name)) }
	sw, err := searchbody.ParseSwitches(get)
	if err != nil {
		return Timings{}, err
	}
	path, _ := pathQuery(rc)
	in := &input{kind: kind, index: indexOf(path), sw: sw, rawBody: body}
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

	key, store := p.resultKey(rc, in)
	if key != nil {
		// The hit path: no upstream header, no copies, no deadline.
		if entry, ok := p.results.Get(key); ok {
			if out, err := decodeOutcome(entry); err == nil {
				setAge(&rc.Response.Header, out)
				p.write(rc, out, cacheHit)
				return Timings{}, nil
			}
		}
	}
	in.header = new(fasthttp.RequestHeader)
	prepare(in.header)
	ctx, cancel := context.WithTimeout(parent, p.cfg.Timeout)
	defer cancel()
	if key == nil {
		out, err := p.run(ctx, in)
		if err != nil {
			return Timings{}, err
		}
		p.write(rc, out, cacheBypass)
		return out.timings, nil
	}

	// The fill may outlive this handler (its client can leave while others wait), so it gets
	// its own copy of the body (in.header is already its own).
	in.rawBody = append([]byte(nil), body...)
	if in.raw {
		in.body = in.rawBody
	} else {
		in.body = append([]byte(nil), in.body...)
	}
	// Only the caller whose fill runs does the work; the others are served by it. fn may outlive
	// this handler, hence atomics.
	var led atomic.Pointer[Timings]
	var ran atomic.Bool
	// DoInline: this handler runs a fill it starts itself (no goroutine hand-off per miss); it
	// waits for it at most the cache's FillTimeout, and callers joining it wait as with Do.
	entry, hit, err := p.results.DoInline(ctx, key, func(ctx context.Context) ([]byte, error) {
		ran.Store(true)
		out, err := p.run(ctx, in)
		if err != nil {
			return nil, err
		}
		led.Store(&out.timings)
		if out.status < 200 || out.status > 299 || !store {
			return nil, &uncacheable{out: out}
		}
		out.stored = time.Now()
		return encodeOutcome(out), nil
	})
	// A caller whose fn did not run and that got no stored entry waited for another caller's
	// fill: collapsed, not a hit (the response is fresh) nor a miss (it caused no work).
	collapsed := !hit && !ran.Load()
	var unc *uncacheable
	switch {
	case errors.As(err, &unc):
		if collapsed {
			p.write(rc, unc.out, cacheCollapsed)
			return Timings{}, nil
		}
		p.write(rc, unc.out, cacheMiss)
		return unc.out.timings, nil
	case err != nil:
		return Timings{}, err
	}
	out, derr := decodeOutcome(entry)
	if derr != nil { // a cache fault is a miss, never a failed request
		p.log.Warn("cannot decode a result cache entry", "err", derr)
		p.results.Flush()
		if out, err = p.run(ctx, in); err != nil {
			return Timings{}, err
		}
		p.write(rc, out, cacheMiss)
		return out.timings, nil
	}
	if t := led.Load(); t != nil && !hit {
		p.write(rc, out, cacheMiss)
		return *t, nil
	}
	if collapsed {
		p.write(rc, out, cacheCollapsed)
		return Timings{}, nil
	}
	setAge(&rc.Response.Header, out)
	p.write(rc, out, cacheHit)
	return Timings{}, nil
}

// X-VLProxy-Cache values, each counted in vlproxy_result_cache_requests_total{state}.
const (
	cacheHit       = "hit"       // a stored response
	cacheMiss      = "miss"      // this request's own upstream call (and model calls)
	cacheCollapsed = "collapsed" // waited for an identical request's fill and shares its response
	cacheBypass    = "bypass"    // not cacheable, or the result cache is off
)

var cacheStates = map[string]prometheus.Counter{}

func init() {
	v := promauto.NewCounterVec(prometheus.CounterOpts{Name: "vlproxy_result_cache_requests_total",
		Help: "Search requests by X-VLProxy-Cache state: hit, miss, collapsed (waited for an identical request's fill) or bypass."},
		[]string{"state"})
	for _, st := range []string{cacheHit, cacheMiss, cacheCollapsed, cacheBypass} {
		cacheStates[st] = v.WithLabelValues(st)
	}
}

// uncacheable carries a response that must reach every waiter but not the cache (non-2xx, or
// filled within the refresh lag of a write).
type uncacheable struct{ out *outcome }

func (u *uncacheable) Error() string { return "response not cacheable" }

func (p *Pipeline) write(rc *fasthttp.RequestCtx, out *outcome, cacheState string) {
	r := &rc.Response
	r.SetStatusCode(out.status)
	for _, h := range out.header {
		r.Header.AddBytesKV(h.Name, h.Value)
	}
	setStatus(&r.Header, out.rewrite, out.rerank, cacheState)
	if out.retrieval != "" {
		r.Header.Set(httphdr.Retrieval, out.retrieval)
	}
	if c := cacheStates[cacheState]; c != nil {
		c.Inc()
	}
	if !rc.IsHead() {
		// out.body is never written again (a cache entry, or this request's own response), so
		// the client response takes it without a copy.
		r.SetBodyRaw(out.body)
	}
}

// Header names in the form fasthttp writes them (it normalizes "X-VLProxy-Cache" to
// "X-Vlproxy-Cache" on Set), so that SetCanonical skips the normalization and the bytes on the
// wire stay the same.
var (
	hdrAge     = []byte("Age")
	hdrRewrite = []byte("X-Vlproxy-Rewrite")
	hdrRerank  = []byte("X-Vlproxy-Rerank")
	hdrCache   = []byte("X-Vlproxy-Cache")
)

func setAge(h *fasthttp.ResponseHeader, out *outcome) {
	var buf [20]byte
	h.SetCanonical(hdrAge, strconv.AppendInt(buf[:0], int64(out.age(time.Now())), 10))
}

// setStatus sets the X-VLProxy-Rewrite, -Rerank and -Cache response headers.
func setStatus(h *fasthttp.ResponseHeader, rewrite, rerank, cache string) {
	h.SetCanonical(hdrRewrite, bytesconv.Bytes(rewrite))
	h.SetCanonical(hdrRerank, bytesconv.Bytes(rerank))
	h.SetCanonical(hdrCache, bytesconv.Bytes(cache))
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
