package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// rawExchange writes raw bytes to the proxy and reads one response.
func rawExchange(t *testing.T, addr, raw string) *fasthttp.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	go io.WriteString(c, raw)                       //nolint:errcheck
	resp := &fasthttp.Response{}
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		t.Fatalf("cannot read the response to %q: %s", raw[:min(len(raw), 40)], err)
	}
	return resp
}

func TestMalformedHTTP(t *testing.T) {
	up := startFake(t, func(ctx *fasthttp.RequestCtx) {})
	p := startProxy(t, []string{up.URL}, nil)
	f := func(raw string) {
		t.Helper()
		resp := rawExchange(t, p.Addr, raw)
		checkESError(t, resp.StatusCode(), resp.Body(), 400, typeBadRequest)
		if !serverTimingRe.MatchString(string(resp.Header.Peek("Server-Timing"))) {
			t.Errorf("no Server-Timing on the 400 for %q", raw)
		}
	}
	f("GARBAGE\r\n\r\n")
	f("GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n")
	f("POST /_bulk HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
	f("GET /x HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n")
	if up.Hits.Load() != 0 {
		t.Fatalf("malformed requests reached the node %d times", up.Hits.Load())
	}
	if !p.Logs.contains(`"status":400`) {
		t.Fatal("400s not logged")
	}
}

func TestOversizeHeaders(t *testing.T) {
	up := startFake(t, func(ctx *fasthttp.RequestCtx) {})
	p := startProxy(t, []string{up.URL}, func(c *Config) { c.MaxHeaderSize = 4 << 10 })
	resp := rawExchange(t, p.Addr, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: "+strings.Repeat("a", 8<<10)+"\r\n\r\n")
	checkESError(t, resp.StatusCode(), resp.Body(), 400, typeHeaderTooLong)
	if !strings.Contains(string(resp.Body()), "max_header_size") {
		t.Fatalf("error does not name the limit: %s", resp.Body())
	}
}

func TestBodyOverLimit413(t *testing.T) {
	up := startFake(t, func(ctx *fasthttp.RequestCtx) {
		drainBody(ctx)
	})
	p := startProxy(t, []string{up.URL}, func(c *Config) { c.MaxBodySize = 100 << 10 })
	big := strings.Repeat("x", 200<<10)
	for _, uri := range []string{"/_bulk", "/idx/_search", "/idx/_doc/1"} {
		// Announced by Content-Length: refused before anything is sent upstream.
		resp := p.do(t, "POST", uri, []byte(big))
		checkESError(t, resp.StatusCode(), resp.Body(), 413, typeTooLarge)
		fasthttp.ReleaseResponse(resp)
		// Chunked: found out while reading.
		resp = rawExchange(t, p.Addr, fmt.Sprintf("POST %s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", uri, len(big), big))
		checkESError(t, resp.StatusCode(), resp.Body(), 413, typeTooLarge)
		if !strings.Contains(string(resp.Body()), "max-body-size") {
			t.Fatalf("413 does not name the flag: %s", resp.Body())
		}
	}
	// At the limit it passes.
	resp := p.do(t, "POST", "/_bulk", []byte(big[:100<<10]))
	if resp.StatusCode() != 200 {
		t.Fatalf("body at the limit: status %d", resp.StatusCode())
	}
	fasthttp.ReleaseResponse(resp)
}

// TestClientDisconnectMidRequest: a client that hangs up halfway through a streamed body or while the
// node is still answering leaves the proxy healthy for the next client.
func TestClientDisconnectMidRequest(t *testing.T) {
	var gotBytes, searches atomic.Int64
	release := make(chan struct{})
	up := startFake(t, func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/idx/_search" {
			searches.Add(1)
		}
		if string(ctx.Path()) == "/slow/_doc/1" {
			<-release
		}
		n := drainBody(ctx)
		gotBytes.Add(n)
		ctx.SetBodyString("{}")
	})
	p := startProxy(t, []string{up.URL}, nil)

	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "POST /_bulk HTTP/1.1\r\nHost: a\r\nContent-Length: 10485760\r\n\r\n") //nolint:errcheck
	c.Write(make([]byte, 1<<20))                                                             //nolint:errcheck
	time.Sleep(50 * time.Millisecond)
	c.Close()

	// The same on the buffered (search) path: the node must not get a truncated body.
	c1, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c1, "POST /idx/_search HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n{\"query\":") //nolint:errcheck
	time.Sleep(50 * time.Millisecond)
	c1.Close()

	c2, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c2, "GET /slow/_doc/1 HTTP/1.1\r\nHost: a\r\n\r\n") //nolint:errcheck
	time.Sleep(50 * time.Millisecond)
	c2.Close()
	close(release)

	deadline := time.Now().Add(5 * time.Second)
	for !p.Logs.contains("cannot read the request body") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !p.Logs.contains("cannot read the request body") {
		t.Fatalf("the broken-off upload was not logged: %v", p.Logs.lines)
	}
	if n := gotBytes.Load(); n >= 10<<20 {
		t.Fatalf("node got %d bytes of a body the client never sent", n)
	}
	if searches.Load() != 0 {
		t.Fatal("a truncated search body was forwarded")
	}
	for i := 0; i < 20; i++ {
		resp := p.do(t, "POST", "/_bulk", []byte("{}\n"))
		if resp.StatusCode() != 200 {
			t.Fatalf("request after disconnects: status %d %s", resp.StatusCode(), resp.Body())
		}
		fasthttp.ReleaseResponse(resp)
	}
}

// TestDrainUnderLoad: requests in flight when Shutdown starts all complete; a steady load of new
// connections sees no failed request (connections refused after the listener closed never started).
func TestDrainUnderLoad(t *testing.T) {
	var inflight atomic.Int64
	up := startFake(t, func(ctx *fasthttp.RequestCtx) {
		inflight.Add(1)
		defer inflight.Add(-1)
		drainBody(ctx)
		time.Sleep(200 * time.Millisecond)
		ctx.SetBodyString(`{"ok":true}`)
	})
	p := startProxy(t, []string{up.URL}, nil)

	const workers = 32
	var ok, failed, refused atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient(p.Addr)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req := fasthttp.AcquireRequest()
				resp := fasthttp.AcquireResponse()
				req.Header.SetHost(p.Addr)
				req.SetConnectionClose() // a fresh connection per request: no idle keep-alive race
				if (w+i)%2 == 0 {
					req.Header.SetMethod("POST")
					req.SetRequestURI("/_bulk")
					req.SetBodyString("{\"index\":{}}\n{}\n")
				} else {
					req.Header.SetMethod("GET")
					req.SetRequestURI("/idx/_doc/1")
				}
				err := c.DoTimeout(req, resp, 10*time.Second)
				switch {
				case err == nil && resp.StatusCode() == 200:
					ok.Add(1)
				case errors.Is(err, syscall.ECONNREFUSED):
					refused.Add(1)
					time.Sleep(5 * time.Millisecond)
				default:
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("err %v status %d", err, resp.StatusCode()))
				}
				fasthttp.ReleaseRequest(req)
				fasthttp.ReleaseResponse(resp)
			}
		}()
	}
	for inflight.Load() < workers {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %s", err)
	}
	// Let the workers hit the closed listener for a moment, then stop them.
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed during the drain (%d ok, %d refused); first: %v", failed.Load(), ok.Load(), refused.Load(), firstErr.Load())
	}
	if ok.Load() < workers || refused.Load() == 0 {
		t.Fatalf("%d ok, %d refused: in-flight requests did not finish, or the listener stayed open", ok.Load(), refused.Load())
	}
}

func TestAdminEndpoints(t *testing.T) {
	a := startFake(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("{}") })
	p := startProxy(t, []string{a.URL, deadURL(t)}, func(c *Config) { c.HealthCheckInterval = 20 * time.Millisecond })
	resp := p.do(t, "POST", "/_bulk", []byte("{}\n"))
	fasthttp.ReleaseResponse(resp)

	var h struct {
		Status    string `json:"status"`
		Draining  bool   `json:"draining"`
		Available int    `json:"available_upstreams"`
		Upstreams []struct {
			URL       string  `json:"url"`
			Available bool    `json:"available"`
			Healthy   bool    `json:"healthy"`
			LastError *string `json:"last_error"`
		} `json:"upstreams"`
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp := p.do(t, "GET", "/_vlproxy/health", nil)
		if err := json.Unmarshal(resp.Body(), &h); err != nil {
			t.Fatalf("health is not JSON: %s: %s", err, resp.Body())
		}
		if !serverTimingRe.MatchString(string(resp.Header.Peek("Server-Timing"))) {
			t.Fatal("no Server-Timing on the health endpoint")
		}
		st := resp.StatusCode()
		fasthttp.ReleaseResponse(resp)
		if h.Status == "yellow" {
			if st != 200 || h.Available != 1 || len(h.Upstreams) != 2 || !h.Upstreams[0].Healthy ||
				h.Upstreams[1].Healthy || h.Upstreams[1].LastError == nil || h.Upstreams[0].URL != a.URL {
				t.Fatalf("health %d %+v", st, h)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health never turned yellow: %+v", h)
		}
		time.Sleep(10 * time.Millisecond)
	}

	for _, path := range []string{"/metrics", "/_vlproxy/metrics"} {
		resp := p.do(t, "GET", path, nil)
		body := string(resp.Body())
		for _, want := range []string{
			`vlproxy_requests_total{class="bulk",status="200"}`,
			`vlproxy_upstream_request_duration_seconds_bucket{upstream="` + a.Addr + `"`,
			`vlproxy_upstream_healthy{upstream="` + a.Addr + `"} 1`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("%s lacks %s", path, want)
			}
		}
		fasthttp.ReleaseResponse(resp)
	}
	resp = p.do(t, "GET", "/_vlproxy/nope", nil)
	checkESError(t, resp.StatusCode(), resp.Body(), 404, "resource_not_found_exception")
	fasthttp.ReleaseResponse(resp)
}
