package proxy

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/vlproxy/vlproxy/cache"
	"github.com/vlproxy/vlproxy/proxy/resultcache"
)

// benchSetup wires client → proxy → fake node over in-memory listeners, so the figures are the
// proxy's cost without the kernel's. direct is the same client talking to the node itself, bare
// the same client through the smallest fasthttp proxy (HostClient.Do and nothing else, as
// `vlbench bare-proxy`): the floor a fasthttp proxy is measured against.
func benchSetup(b testing.TB, opts ...Option) (viaProxy, direct, bare *fasthttp.HostClient) {
	b.Helper()
	body := []byte(`{"took":1,"timed_out":false,"hits":{"total":{"value":1,"relation":"eq"},"hits":[{"_id":"1","_source":{"title":"x"}}]}}`)
	upLn := fasthttputil.NewInmemoryListener()
	up := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.Response.Header.SetContentType("application/json")
			ctx.SetBody(body)
		},
		NoDefaultServerHeader: true,
		NoDefaultDate:         true,
	}
	go up.Serve(upLn) //nolint:errcheck

	cfg := DefaultConfig()
	cfg.Upstreams = []string{"http://upstream.invalid:9200"}
	cfg.HealthCheckInterval = 0
	s, err := New(cfg, nil, opts...)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range s.nodes {
		n.client.DialTimeout = func(string, time.Duration) (net.Conn, error) { return upLn.Dial() }
	}
	pLn := fasthttputil.NewInmemoryListener()
	go s.Serve(pLn) //nolint:errcheck
	toUp := &fasthttp.HostClient{Addr: "upstream", Dial: func(string) (net.Conn, error) { return upLn.Dial() },
		MaxConns: 1024, DisablePathNormalizing: true, NoDefaultUserAgentHeader: true}
	bareSrv := &fasthttp.Server{
		NoDefaultServerHeader: true, NoDefaultDate: true, NoDefaultContentType: true,
		DisablePreParseMultipartForm: true,
		Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.Request.Header.ResetConnectionClose()
			if err := toUp.Do(&ctx.Request, &ctx.Response); err != nil {
				ctx.Error(err.Error(), fasthttp.StatusBadGateway)
			}
			ctx.Response.Header.ResetConnectionClose()
		},
	}
	bLn := fasthttputil.NewInmemoryListener()
	go bareSrv.Serve(bLn) //nolint:errcheck
	b.Cleanup(func() {
		s.Shutdown(context.Background()) //nolint:errcheck
		bareSrv.Shutdown()               //nolint:errcheck
		up.Shutdown()                    //nolint:errcheck
	})
	mk := func(ln *fasthttputil.InmemoryListener) *fasthttp.HostClient {
		return &fasthttp.HostClient{Addr: "bench", Dial: func(string) (net.Conn, error) { return ln.Dial() }, MaxConns: 1024}
	}
	return mk(pLn), mk(upLn), mk(bLn)
}

func benchPassThrough(b *testing.B, c *fasthttp.HostClient, method, uri string, body []byte) {
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.RunParallel(func(pb *testing.PB) {
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		for pb.Next() {
			req.Reset()
			req.Header.SetMethod(method)
			req.SetRequestURI(uri)
			req.Header.SetHost("bench")
			req.SetBody(body)
			if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
				b.Fatalf("err %v status %d", err, resp.StatusCode())
			}
		}
	})
}

// BenchmarkPassThrough compares a GET and a search through the proxy with the same calls made
// directly to the node and through the bare fasthttp proxy (the baselines in the same run).
// Per-request proxy cost = proxy - direct; proxy/get ÷ bare/get is the ratio to the floor.
func BenchmarkPassThrough(b *testing.B) {
	viaProxy, direct, bare := benchSetup(b)
	search := []byte(`{"query":{"match":{"title":"red dress"}},"size":10}`)
	b.Run("direct/get", func(b *testing.B) { benchPassThrough(b, direct, "GET", "/idx/_doc/1", nil) })
	b.Run("bare/get", func(b *testing.B) { benchPassThrough(b, bare, "GET", "/idx/_doc/1", nil) })
	b.Run("proxy/get", func(b *testing.B) { benchPassThrough(b, viaProxy, "GET", "/idx/_doc/1", nil) })
	b.Run("direct/search", func(b *testing.B) { benchPassThrough(b, direct, "POST", "/idx/_search", search) })
	b.Run("proxy/search", func(b *testing.B) { benchPassThrough(b, viaProxy, "POST", "/idx/_search", search) })
}

// TestPassThroughAllocatesNothing guards the pass-through of a small GET: no allocation per
// request, in the proxy or anywhere on the in-memory path (client and fake node allocate none).
func TestPassThroughAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	viaProxy, _, _ := benchSetup(t)
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	get := func() {
		req.Reset()
		req.SetRequestURI("/idx/_doc/1")
		req.Header.SetHost("bench")
		if err := viaProxy.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			t.Fatalf("err %v status %d", err, resp.StatusCode())
		}
	}
	for i := 0; i < 100; i++ {
		get() // pools and buffers warm up
	}
	if n := testing.AllocsPerRun(1000, get); n > 0 {
		t.Fatalf("%v allocations per pass-through GET, want 0", n)
	}
}

// TestSearchHitAllocs guards a result-cache hit through the whole server (default
// configuration): after the first request fills the entry, serving it again allocates nothing
// in the proxy. The one allocation left is fasthttp's: after the handler, the server drains
// the streamed request body (StreamRequestBody) with io.CopyN, whose io.LimitedReader escapes.
func TestSearchHitAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	viaProxy := cachedSearchProxy(t)
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	body := []byte(`{"query":{"match":{"title":"red dress"}},"size":10}`)
	search := func() {
		postSearch(t, viaProxy, req, resp, body)
	}
	search()
	if got := string(resp.Header.Peek("X-VLProxy-Cache")); got != "miss" {
		t.Fatalf("first search: X-VLProxy-Cache %q, want miss", got)
	}
	for i := 0; i < 100; i++ {
		search() // pools and buffers warm up
	}
	if got := string(resp.Header.Peek("X-VLProxy-Cache")); got != "hit" {
		t.Fatalf("X-VLProxy-Cache %q, want hit", got)
	}
	if n := testing.AllocsPerRun(1000, search); n > 1 {
		t.Fatalf("%v allocations per result-cache hit, want 1 (fasthttp's drain of the body)", n)
	}
}

// TestSearchMissAllocs guards the allocations of a result-cache miss through the whole server
// (a distinct body each time): the entry's buffers (the body's, and a second when its
// metadata does not fit in the body buffer's spare capacity) and its LRU element, the flight (key copy,
// struct, channel), the fill's and the pipeline's contexts, and fasthttp's drain of the body.
func TestSearchMissAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	viaProxy := cachedSearchProxy(t)
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	var body []byte
	seq := 0
	search := func() {
		seq++
		body = strconv.AppendInt(append(body[:0], `{"query":{"match":{"title":"red dress"}},"from":`...), int64(seq), 10)
		body = append(body, '}')
		postSearch(t, viaProxy, req, resp, body)
		if got := string(resp.Header.Peek("X-VLProxy-Cache")); got != "miss" {
			t.Fatalf("X-VLProxy-Cache %q, want miss", got)
		}
	}
	for i := 0; i < 100; i++ {
		search()
	}
	if n := testing.AllocsPerRun(1000, search); n > 11 {
		t.Fatalf("%v allocations per result-cache miss, want at most 11", n)
	}
}

// BenchmarkSearchCached is a search through the proxy with the result cache on, as configured
// by default: hit repeats one body, miss sends a distinct body each time.
func BenchmarkSearchCached(b *testing.B) {
	viaProxy := cachedSearchProxy(b)
	seq := 0 // distinct bodies across the benchmark's runs
	run := func(b *testing.B, distinct bool) {
		b.ReportAllocs()
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		var body []byte
		for i := 0; i < b.N; i++ {
			body = append(body[:0], `{"query":{"match":{"title":"red dress"}},"size":10,"from":`...)
			if distinct {
				seq++
				body = strconv.AppendInt(body, int64(seq), 10)
			} else {
				body = append(body, '0')
			}
			body = append(body, '}')
			postSearch(b, viaProxy, req, resp, body)
			if distinct && string(resp.Header.Peek("X-VLProxy-Cache")) != "miss" {
				b.Fatalf("X-VLProxy-Cache %q, want miss", resp.Header.Peek("X-VLProxy-Cache"))
			}
		}
	}
	b.Run("hit", func(b *testing.B) { run(b, false) })
	b.Run("miss", func(b *testing.B) { run(b, true) })
}

// cachedSearchProxy is a client of the in-process proxy with the result cache as cmd/vlproxy
// configures it by default.
func cachedSearchProxy(tb testing.TB) *fasthttp.HostClient {
	results := cache.New(cache.Config{Name: "results", MaxBytes: 64 << 20, MaxEntryBytes: 4 << 20, TTL: time.Minute})
	viaProxy, _, _ := benchSetup(tb, WithResultCache(results, resultcache.DefaultConfig(), 0), WithRefreshLag(1500*time.Millisecond))
	return viaProxy
}

// postSearch sends body as a _search through c into resp (req is reused), failing on anything but a 200.
func postSearch(tb testing.TB, c *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response, body []byte) {
	req.Reset()
	req.Header.SetMethod("POST")
	req.SetRequestURI("/idx/_search")
	req.Header.SetHost("bench")
	req.Header.SetContentType("application/json")
	req.SetBody(body)
	if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
		tb.Fatalf("err %v status %d", err, resp.StatusCode())
	}
}
