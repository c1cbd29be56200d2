package proxy

import (
	"crypto/sha256"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// heapPeak samples the Go heap until stop is called and returns the largest growth over the start.
// Everything in the test (client, proxy, fake node) shares the heap, and client and node stream, so a
// proxy that held a body whole would show up as growth of the body's size.
func heapPeak() (stop func() uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > base && ms.HeapAlloc-base > peak.Load() {
				peak.Store(ms.HeapAlloc - base)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak.Load()
	}
}

func TestStreamingBulk100MB(t *testing.T) {
	const size = 100 << 20
	var got atomic.Int64
	var sum atomic.Value
	up := startFake(t, func(ctx *fasthttp.RequestCtx) {
		h := sha256.New()
		n, err := io.Copy(h, ctx.RequestBodyStream())
		if err != nil {
			ctx.SetStatusCode(400)
			return
		}
		got.Store(n)
		sum.Store(string(h.Sum(nil)))
		ctx.SetBodyString(`{"errors":false}`)
	})
	p := startProxy(t, []string{up.URL}, nil)
	want := sha256.New()
	io.Copy(want, &patternReader{n: size}) //nolint:errcheck

	for _, chunked := range []bool{false, true} {
		stop := heapPeak()
		req := fasthttp.AcquireRequest()
		req.Header.SetMethod("POST")
		req.SetRequestURI("/_bulk")
		req.Header.SetHost(p.Addr)
		req.Header.SetContentType("application/x-ndjson")
		cl := size
		if chunked {
			cl = -1
		}
		req.SetBodyStream(&patternReader{n: size}, cl)
		resp := fasthttp.AcquireResponse()
		err := p.c.DoTimeout(req, resp, time.Minute)
		peak := stop()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode() != 200 || got.Load() != size || sum.Load() != string(want.Sum(nil)) {
			t.Fatalf("chunked=%v: status %d, upstream got %d bytes (want %d), same bytes: %v", chunked, resp.StatusCode(),
				got.Load(), size, sum.Load() == string(want.Sum(nil)))
		}
		t.Logf("chunked=%v: heap growth peak %d KiB for a %d MiB body", chunked, peak>>10, size>>20)
		if peak > 16<<20 {
			t.Fatalf("chunked=%v: heap grew by %d MiB while streaming a %d MiB body", chunked, peak>>20, size>>20)
		}
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
	}
}

func TestLargeResponse50MB(t *testing.T) {
	const size = 50 << 20
	up := startFake(t, func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.SetContentType("application/json")
		if string(ctx.QueryArgs().Peek("chunked")) == "1" {
			ctx.SetBodyStream(&patternReader{n: size}, -1)
		} else {
			ctx.SetBodyStream(&patternReader{n: size}, size)
		}
	})
	p := startProxy(t, []string{up.URL}, nil)
	want := sha256.New()
	io.Copy(want, &patternReader{n: size}) //nolint:errcheck
	for _, uri := range []string{"/idx/_search", "/_cat/indices", "/_cat/indices?chunked=1"} {
		if uri == "/idx/_search" {
			// The search seam buffers whole responses; it only has to pass them intact.
			resp := p.do(t, "POST", uri, []byte(`{}`))
			if resp.StatusCode() != 200 || len(resp.Body()) != size {
				t.Fatalf("%s: status %d, %d bytes", uri, resp.StatusCode(), len(resp.Body()))
			}
			fasthttp.ReleaseResponse(resp)
			continue
		}
		stop := heapPeak()
		req := fasthttp.AcquireRequest()
		req.Header.SetMethod("GET")
		req.SetRequestURI(uri)
		req.Header.SetHost(p.Addr)
		resp := fasthttp.AcquireResponse()
		resp.StreamBody = true
		if err := p.c.DoTimeout(req, resp, time.Minute); err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(h, resp.BodyStream())
		resp.CloseBodyStream() //nolint:errcheck
		peak := stop()
		if err != nil || n != size || string(h.Sum(nil)) != string(want.Sum(nil)) {
			t.Fatalf("%s: read %d bytes (want %d), err %v, same bytes %v", uri, n, size, err, string(h.Sum(nil)) == string(want.Sum(nil)))
		}
		t.Logf("%s: heap growth peak %d KiB for a %d MiB response", uri, peak>>10, size>>20)
		if peak > 16<<20 {
			t.Fatalf("%s: heap grew by %d MiB while streaming a %d MiB response", uri, peak>>20, size>>20)
		}
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
	}
}

// A search answer whose body streams from the upstream (chunked) is read whole, within
// max_buffered_response_size; a larger one, chunked or of known length, is an ES-shaped 502.
func TestSearchStreamedAnswerBuffered(t *testing.T) {
	const limit = 1 << 20
	up := startFake(t, func(ctx *fasthttp.RequestCtx) {
		n, _ := strconv.Atoi(string(ctx.QueryArgs().Peek("n")))
		ctx.Response.Header.Set("X-Up", "1")
		ctx.Response.Header.SetContentType("application/json")
		if string(ctx.QueryArgs().Peek("chunked")) == "1" {
			ctx.SetBodyStream(&patternReader{n: int64(n)}, -1)
		} else {
			ctx.SetBodyStream(&patternReader{n: int64(n)}, n)
		}
	})
	p := startProxy(t, []string{up.URL}, func(c *Config) { c.MaxBufferedResponseSize = limit })
	{
		want, _ := io.ReadAll(&patternReader{n: 300 << 10})
		resp := p.do(t, "POST", "/idx/_search?chunked=1&n=307200", []byte(`{}`))
		if resp.StatusCode() != 200 || string(resp.Body()) != string(want) || string(resp.Header.Peek("X-Up")) != "1" ||
			len(resp.Header.Peek("Transfer-Encoding")) > 0 {
			t.Fatalf("chunked answer: status %d, %d bytes (want %d), X-Up %q, Transfer-Encoding %q",
				resp.StatusCode(), len(resp.Body()), len(want), resp.Header.Peek("X-Up"), resp.Header.Peek("Transfer-Encoding"))
		}
		fasthttp.ReleaseResponse(resp)
		for _, uri := range []string{"/idx/_search?chunked=1&n=2000000", "/idx/_search?n=2000000"} {
			resp := p.do(t, "POST", uri, []byte(`{}`))
			if resp.StatusCode() != 502 || !strings.Contains(string(resp.Body()), "max_buffered_response_size") {
				t.Fatalf("%s: status %d, body %.200s", uri, resp.StatusCode(), resp.Body())
			}
			fasthttp.ReleaseResponse(resp)
		}
	}
}
