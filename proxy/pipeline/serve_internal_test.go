package pipeline

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"

	"github.com/vlproxy/vlproxy/cache"
	"github.com/vlproxy/vlproxy/proxy/resultcache"
	"github.com/vlproxy/vlproxy/rewrite"
)

// countingForwarder answers every request with a fixed 200 body.
type countingForwarder struct{ calls atomic.Int64 }

func (f *countingForwarder) Forward(_ context.Context, _ *fasthttp.Request, resp *fasthttp.Response) error {
	f.calls.Add(1)
	resp.SetStatusCode(200)
	resp.Header.SetContentType("application/json")
	resp.SetBodyString(`{"hits":{"hits":[]}}`)
	return nil
}

func newCtx(body string) *fasthttp.RequestCtx {
	rc := new(fasthttp.RequestCtx)
	rc.Request.Header.SetMethod("POST")
	rc.Request.SetRequestURI("/products/_search")
	rc.Request.SetBodyString(body)
	return rc
}

// A result-cache entry that cannot be decoded is a miss: the request is answered from
// upstream, never failed.
func TestCorruptResultCacheEntryIsAMiss(t *testing.T) {
	fwd := &countingForwarder{}
	results := cache.New(cache.Config{Name: "pipeline_internal_test", MaxBytes: 1 << 20})
	p := New(Config{}, Deps{Forwarder: fwd, Results: results, Keys: resultcache.New(resultcache.Config{AssumeConcrete: true}),
		Log: slog.New(slog.DiscardHandler)})
	const body = `{"query":{"match_all":{}}}`

	serve := func() *fasthttp.RequestCtx {
		t.Helper()
		rc := newCtx(body)
		prepare := func(dst *fasthttp.RequestHeader, rc *fasthttp.RequestCtx) { rc.Request.Header.CopyTo(dst) }
		if _, err := p.Serve(rc, Search, prepare, rc.Request.Body()); err != nil {
			t.Fatalf("Serve: %v", err)
		}
		return rc
	}
	rc := serve()
	if string(rc.Response.Header.Peek("X-VLProxy-Cache")) != "miss" || fwd.calls.Load() != 1 {
		t.Fatalf("first call: cache %q, %d upstream calls", rc.Response.Header.Peek("X-VLProxy-Cache"), fwd.calls.Load())
	}
	key, _ := p.resultKey(newCtx(body), &input{body: []byte(body)}, new(bytebufferpool.ByteBuffer))
	if key == nil {
		t.Fatal("no result-cache key")
	}
	if _, ok := results.Get(key); !ok {
		t.Fatal("the first response was not cached under the key")
	}
	results.Set(key, []byte("garbage"))
	rc = serve()
	if rc.Response.StatusCode() != 200 || string(rc.Response.Body()) != `{"hits":{"hits":[]}}` || fwd.calls.Load() != 2 {
		t.Fatalf("corrupt entry: status %d body %s, %d upstream calls", rc.Response.StatusCode(), rc.Response.Body(), fwd.calls.Load())
	}
	if got := string(rc.Response.Header.Peek("X-VLProxy-Cache")); got != "miss" {
		t.Fatalf("corrupt entry: X-VLProxy-Cache %q", got)
	}
}

// FuzzServe feeds arbitrary bodies to every endpoint: the pipeline never panics, and every
// error it returns is ES-shaped with a 4xx/5xx status.
func FuzzServe(f *testing.F) {
	f.Add(uint8(0), []byte(`{"query":{"multimodal":{"text":"red dress"}},"ext":{"vlproxy":{"explain":true}}}`))
	f.Add(uint8(1), []byte("{\"index\":\"products\"}\n{\"query\":{\"multimodal\":{\"text\":\"x\"}}}\n{}\n{}\n"))
	f.Add(uint8(2), []byte(`{"query":{"multimodal":{"image":"data:image/png;base64,AAAA"}}}`))
	f.Add(uint8(0), []byte(`{"ext":{"vlproxy":{"rerank":{"enabled":true,"rank_window_size":9999}}}}`))
	f.Add(uint8(0), []byte(`{"query":{"bool":{"must":[{"multimodal":{"text":"a","fields":["t"]}}]}},"ext":{"vlproxy":[]}}`))
	rw, err := rewrite.New(rewrite.DefaultConfig(), nil, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	fwd := &countingForwarder{}
	p := New(Config{}, Deps{Forwarder: fwd, Rewriter: rw, Log: slog.New(slog.DiscardHandler)})
	f.Fuzz(func(t *testing.T, k uint8, body []byte) {
		kind := []Kind{Search, Msearch, Count}[int(k)%3]
		rc := newCtx(string(body))
		prepare := func(dst *fasthttp.RequestHeader, rc *fasthttp.RequestCtx) { rc.Request.Header.CopyTo(dst) }
		_, err := p.Serve(rc, kind, prepare, body)
		if err == nil {
			return
		}
		var es interface{ ESError() (int, string, string) }
		if !errors.As(err, &es) {
			t.Fatalf("error %v (%T) is not ES-shaped", err, err)
		}
		if st, typ, reason := es.ESError(); st < 400 || st > 599 || typ == "" || reason == "" {
			t.Fatalf("ES error %d %q %q", st, typ, reason)
		}
	})
}

// Rerank asked for on a pipeline without a scorer says why nothing happened.
func TestRerankWithoutScorerSaysNoScorer(t *testing.T) {
	p := New(Config{}, Deps{Forwarder: &countingForwarder{}, Log: slog.New(slog.DiscardHandler)})
	f := func(kind Kind, uri, body, want string) {
		t.Helper()
		rc := newCtx(body)
		rc.Request.SetRequestURI(uri)
		rc.Request.Header.Set("X-VLProxy-Rerank", "on")
		prepare := func(dst *fasthttp.RequestHeader, rc *fasthttp.RequestCtx) { rc.Request.Header.CopyTo(dst) }
		if _, err := p.Serve(rc, kind, prepare, []byte(body)); err != nil {
			t.Fatal(err)
		}
		if got := string(rc.Response.Header.Peek("X-VLProxy-Rerank")); got != want {
			t.Fatalf("%s: X-VLProxy-Rerank %q, want %q", uri, got, want)
		}
	}
	f(Search, "/products/_search", `{"query":{"match_all":{}}}`, "skipped:no_scorer")
	f(Msearch, "/products/_msearch", "{}\n{\"query\":{\"match_all\":{}}}\n", "skipped:no_scorer")
	f(Count, "/products/_count", `{}`, "skipped:count")
}

func TestReadLimited(t *testing.T) {
	f := func(n int, limit int64, ok bool) {
		t.Helper()
		b, err := readLimited(bytes.NewReader(make([]byte, n)), 512, limit)
		if (err == nil) != ok || (ok && len(b) != n) || int64(cap(b)) > limit+1 {
			t.Fatalf("%d bytes, limit %d: len %d cap %d err %v", n, limit, len(b), cap(b), err)
		}
	}
	f(0, 10, true)
	f(1000, 1000, true)
	f(1001, 1000, false)
	f(5<<20, 5<<20, true)
	f(3<<20, 5<<20, true)
}

// TestResultCacheHitAllocs: a result-cache hit of a search with nothing for vlproxy is answered
// from the stored entry without allocating: key, lookup, status, headers, Age and body.
func TestResultCacheHitAllocs(t *testing.T) {
	rc, serve := hitSetup(t)
	serve()
	if got := string(rc.Response.Header.Peek("X-VLProxy-Cache")); got != "hit" {
		t.Fatalf("second request: X-VLProxy-Cache %q; want hit", got)
	}
	if got := string(rc.Response.Header.Peek("Age")); got != "0" || string(rc.Response.Header.ContentType()) != "application/json" {
		t.Fatalf("hit: Age %q, Content-Type %q", got, rc.Response.Header.ContentType())
	}
	if raceEnabled {
		t.Skip("allocation guard: sync.Pool drops items at random under the race detector")
	}
	if allocs := testing.AllocsPerRun(200, serve); allocs != 0 {
		t.Fatalf("a result-cache hit allocates %v times; want 0", allocs)
	}
}

func BenchmarkResultCacheHit(b *testing.B) {
	_, serve := hitSetup(b)
	b.ReportAllocs()
	for b.Loop() {
		serve()
	}
}

// hitSetup stores one plain search's response and returns a function that serves it again
// (a hit) into the same, reset, RequestCtx.
func hitSetup(tb testing.TB) (*fasthttp.RequestCtx, func()) {
	fwd := &countingForwarder{}
	results := cache.New(cache.Config{Name: "pipeline_internal_hit_test", MaxBytes: 1 << 20})
	p := New(Config{}, Deps{Forwarder: fwd, Results: results, Keys: resultcache.New(resultcache.Config{AssumeConcrete: true}),
		Log: slog.New(slog.DiscardHandler)})
	rc := newCtx(`{"query":{"match":{"title":"shirt"}}}`)
	rc.Request.Header.SetContentType("application/json")
	rc.Request.Header.Set("User-Agent", "wrk")
	prepare := func(dst *fasthttp.RequestHeader, rc *fasthttp.RequestCtx) { rc.Request.Header.CopyTo(dst) }
	ctx := context.Background()
	serve := func() {
		rc.Response.Reset()
		if _, err := p.ServeContext(ctx, rc, Search, prepare, rc.Request.Body()); err != nil {
			tb.Fatalf("Serve: %v", err)
		}
	}
	serve()
	if got := string(rc.Response.Header.Peek("X-VLProxy-Cache")); got != "miss" || fwd.calls.Load() != 1 {
		tb.Fatalf("first request: X-VLProxy-Cache %q, %d upstream calls", got, fwd.calls.Load())
	}
	return rc, serve
}
