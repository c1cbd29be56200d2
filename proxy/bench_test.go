package proxy

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// benchSetup wires client → proxy → fake node over in-memory listeners, so the figures are the
// proxy's cost without the kernel's. direct is the same client talking to the node itself, bare
// the same client through the smallest fasthttp proxy (HostClient.Do and nothing else, as
// `vlbench bare-proxy`): the floor a fasthttp proxy is measured against.
func benchSetup(b testing.TB) (viaProxy, direct, bare *fasthttp.HostClient) {
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
	s, err := New(cfg, nil)
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
