package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vlproxy/vlproxy/internal/promexp"
)

func TestRoundRobin(t *testing.T) {
	ok := func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("{}") }
	a, b, c := startFake(t, ok), startFake(t, ok), startFake(t, ok)
	p := startProxy(t, []string{a.URL, b.URL, c.URL}, nil)
	for i := 0; i < 90; i++ {
		resp := p.do(t, "GET", "/idx/_doc/1", nil)
		if resp.StatusCode() != 200 {
			t.Fatalf("status %d", resp.StatusCode())
		}
		fasthttp.ReleaseResponse(resp)
	}
	if a.Hits.Load() != 30 || b.Hits.Load() != 30 || c.Hits.Load() != 30 {
		t.Fatalf("hits %d/%d/%d, want 30 each", a.Hits.Load(), b.Hits.Load(), c.Hits.Load())
	}
}

// TestFailoverZeroFailedReads kills one of two nodes (listener and open connections) in the middle of a
// read load; every read must still succeed.
func TestFailoverZeroFailedReads(t *testing.T) {
	slowish := func(ctx *fasthttp.RequestCtx) {
		time.Sleep(time.Millisecond)
		ctx.SetBodyString(`{"hits":{"total":1}}`)
	}
	a, b := startFake(t, slowish), startFake(t, slowish)
	p := startProxy(t, []string{a.URL, b.URL}, nil)

	var done, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient(p.Addr)
			for i := 0; i < 150; i++ {
				req := fasthttp.AcquireRequest()
				resp := fasthttp.AcquireResponse()
				req.Header.SetHost(p.Addr)
				if i%2 == 0 {
					req.Header.SetMethod("GET")
					req.SetRequestURI("/idx/_doc/1")
				} else {
					req.Header.SetMethod("POST")
					req.SetRequestURI("/idx/_search")
					req.SetBodyString(`{"query":{"match_all":{}}}`)
				}
				err := c.DoTimeout(req, resp, 10*time.Second)
				if err != nil || resp.StatusCode() != 200 {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("err %v status %d body %s", err, resp.StatusCode(), resp.Body()))
				}
				done.Add(1)
				fasthttp.ReleaseRequest(req)
				fasthttp.ReleaseResponse(resp)
			}
		}()
	}
	for done.Load() < 600 {
		time.Sleep(time.Millisecond)
	}
	b.kill()
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d reads failed; first: %v", failed.Load(), done.Load(), firstErr.Load())
	}
	if b.Hits.Load() == 0 || a.Hits.Load() <= b.Hits.Load() {
		t.Fatalf("hits a=%d b=%d: the load did not span the failover", a.Hits.Load(), b.Hits.Load())
	}
	if !p.Logs.contains("upstream node ejected") && !p.Logs.contains("failed its health check") {
		t.Fatalf("the dead node was neither ejected nor marked unhealthy")
	}
}

// TestRetryRules counts how often a node that reads the request and hangs up is hit per request:
// idempotent reads are retried (1 + MaxRetries attempts), writes never.
func TestRetryRules(t *testing.T) {
	url, hits := startRaw(t, func(c net.Conn, br *bufio.Reader) {})
	p := startProxy(t, []string{url}, func(c *Config) { c.MaxRetries = 2 })
	f := func(method, uri string, wantHits int64) {
		t.Helper()
		before := hits.Load()
		var body []byte
		if method != "GET" && method != "HEAD" && method != "DELETE" {
			body = []byte("{\"index\":{}}\n{}\n")
		}
		resp := p.do(t, method, uri, body)
		defer fasthttp.ReleaseResponse(resp)
		if method != "HEAD" {
			checkESError(t, resp.StatusCode(), resp.Body(), 502, typeBadGateway)
		} else if resp.StatusCode() != 502 {
			t.Fatalf("HEAD: status %d", resp.StatusCode())
		}
		if got := hits.Load() - before; got != wantHits {
			t.Fatalf("%s %s reached the node %d times, want %d", method, uri, got, wantHits)
		}
	}
	f("POST", "/_bulk", 1)
	f("POST", "/idx/_bulk", 1)
	f("PUT", "/idx/_doc/1", 1)
	f("POST", "/idx/_doc", 1)
	f("POST", "/idx/_update/1", 1)
	f("DELETE", "/idx/_doc/1", 1)
	f("POST", "/idx/_delete_by_query", 1)
	f("PUT", "/idx", 1)
	f("POST", "/_search/scroll", 1)
	f("GET", "/idx/_doc/1", 3)
	f("HEAD", "/idx", 3)
	f("POST", "/idx/_search", 3)
	f("POST", "/_msearch", 3)
	f("POST", "/idx/_count", 3)
	f("POST", "/_mget", 3)
}

// TestDialErrorRetriedForWrites: a refused connection means the request never left, so even a _bulk
// goes to the next node.
func TestDialErrorRetriedForWrites(t *testing.T) {
	live := startFake(t, func(ctx *fasthttp.RequestCtx) {
		drainBody(ctx)
		ctx.SetBodyString(`{"errors":false}`)
	})
	// Ejection off, so the dead node stays in rotation and every other request dials it first.
	p := startProxy(t, []string{deadURL(t), live.URL}, func(c *Config) {
		c.EjectDuration = 0
		c.HealthCheckInterval = 0
	})
	for i := 0; i < 10; i++ {
		resp := p.do(t, "POST", "/_bulk", []byte(strings.Repeat("{\"index\":{}}\n{}\n", 10000)))
		if resp.StatusCode() != 200 {
			t.Fatalf("bulk %d: status %d %s", i, resp.StatusCode(), resp.Body())
		}
		fasthttp.ReleaseResponse(resp)
	}
	if live.Hits.Load() != 10 {
		t.Fatalf("live node hits %d, want 10", live.Hits.Load())
	}
}

// waitRed polls /_vlproxy/health until it says red, which must come with a 503, and returns the body.
func waitRed(t *testing.T, p *testProxy, deadline time.Time) string {
	t.Helper()
	for {
		resp := p.do(t, "GET", "/_vlproxy/health", nil)
		body := string(resp.Body())
		st := resp.StatusCode()
		fasthttp.ReleaseResponse(resp)
		if strings.Contains(body, `"status":"red"`) {
			if st != 503 {
				t.Fatalf("health is red with status %d", st)
			}
			return body
		}
		if time.Now().After(deadline) {
			t.Fatal("node never marked unhealthy")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestNoHealthyNode503 pins the behaviour with -health-fail-open=false: no node available is
// a 503 and nothing reaches the node.
func TestNoHealthyNode503(t *testing.T) {
	a := startFake(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("{}") })
	a.HealthStatus.Store(503)
	p := startProxy(t, []string{a.URL}, func(c *Config) { c.HealthFailOpen = false })
	deadline := time.Now().Add(5 * time.Second)
	if body := waitRed(t, p, deadline); !strings.Contains(body, `"fail_open":false`) {
		t.Fatalf("health: %s", body)
	}
	resp := p.do(t, "GET", "/idx/_search", nil)
	checkESError(t, resp.StatusCode(), resp.Body(), 503, typeNoHealthy)
	fasthttp.ReleaseResponse(resp)
	if a.Hits.Load() != 0 {
		t.Fatalf("an unhealthy node got %d requests", a.Hits.Load())
	}
	// Recovery: the next passing check brings it back.
	a.HealthStatus.Store(0)
	for time.Now().Before(deadline) {
		resp := p.do(t, "GET", "/idx/_doc/1", nil)
		st := resp.StatusCode()
		fasthttp.ReleaseResponse(resp)
		if st == 200 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("node never came back after its health check passed")
}

// TestAllNodesDownFailOpen pins the default: with every node marked down by its checks,
// requests still go to the nodes (a node the checks got wrong keeps serving) and health says
// red, 503, fail_open. A node that is down for real answers with its own error: 502.
func TestAllNodesDownFailOpen(t *testing.T) {
	a := startFake(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(`{"found":true}`) })
	a.HealthStatus.Store(503)
	p := startProxy(t, []string{a.URL, deadURL(t)}, nil)
	deadline := time.Now().Add(5 * time.Second)
	if body := waitRed(t, p, deadline); !strings.Contains(body, `"fail_open":true`) {
		t.Fatalf("health: %s", body)
	}
	before := failOpenCount(t)
	for i := 0; i < 10; i++ {
		resp := p.do(t, "GET", "/idx/_doc/1", nil)
		if resp.StatusCode() != 200 || string(resp.Body()) != `{"found":true}` {
			t.Fatalf("request %d while every node is marked down: %d %s", i, resp.StatusCode(), resp.Body())
		}
		fasthttp.ReleaseResponse(resp)
	}
	if a.Hits.Load() != 10 {
		t.Fatalf("the node marked down got %d of 10 requests", a.Hits.Load())
	}
	if got := failOpenCount(t) - before; got < 10 {
		t.Fatalf("vlproxy_upstream_fail_open_total grew by %v, want at least 10", got)
	}

	// Nothing answers at all: the client gets the node's error, not a 503.
	a.kill()
	resp := p.do(t, "GET", "/idx/_doc/1", nil)
	checkESError(t, resp.StatusCode(), resp.Body(), 502, typeUpstreamRefused)
	fasthttp.ReleaseResponse(resp)
}

func failOpenCount(t *testing.T) float64 {
	t.Helper()
	var b strings.Builder
	if err := promexp.Write(&b); err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(l, "vlproxy_upstream_fail_open_total "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatal("no vlproxy_upstream_fail_open_total in the metrics")
	return 0
}

// TestOneMissedCheckKeepsNode: a serving node that misses fewer checks in a row than
// HealthCheckFails stays in rotation; one more and it is out, until HealthCheckPasses pass.
func TestOneMissedCheckKeepsNode(t *testing.T) {
	a := startFake(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("{}") })
	// Checks 1, 3, 4 fail: never three in a row. From check 10 on, three fail, then all pass.
	plan := func(n int64) int {
		if n == 1 || n == 3 || n == 4 || (n >= 10 && n <= 12) {
			return 503
		}
		return 200
	}
	a.HealthPlan.Store(&plan)
	p := startProxy(t, []string{a.URL}, func(c *Config) { c.HealthCheckInterval = 10 * time.Millisecond })
	deadline := time.Now().Add(10 * time.Second)
	for a.Checks.Load() < 9 {
		if time.Now().After(deadline) {
			t.Fatal("the checks did not run")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if p.Logs.contains("failed its health checks") || !p.Logs.contains("missed a health check") {
		t.Fatalf("after checks 1, 3 and 4 failed the node was marked down (or no miss was logged):\n%s", p.Logs)
	}
	for !p.Logs.contains("healthy again") {
		if time.Now().After(deadline) {
			t.Fatalf("the node never came back after checks 10-12 failed:\n%s", p.Logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !p.Logs.contains("failed its health checks") {
		t.Fatal("three failed checks in a row did not mark the node down")
	}
}

func TestUpstreamMisbehaves502(t *testing.T) {
	f := func(name string, handle func(c net.Conn, br *bufio.Reader)) {
		t.Helper()
		url, _ := startRaw(t, handle)
		p := startProxy(t, []string{url}, nil)
		for _, uri := range []string{"/_bulk", "/idx/_search", "/_cat/indices"} {
			resp := p.do(t, "POST", uri, []byte("{}\n"))
			checkESError(t, resp.StatusCode(), resp.Body(), 502, typeBadGateway)
			fasthttp.ReleaseResponse(resp)
		}
		if !p.Logs.contains(`"status":502`) {
			t.Fatalf("%s: the 502 was not logged", name)
		}
	}
	f("garbage", func(c net.Conn, br *bufio.Reader) { io.WriteString(c, "SSH-2.0-OpenSSH\r\n\r\n") }) //nolint:errcheck
	f("close before answering", func(c net.Conn, br *bufio.Reader) {})
	f("close mid-body", func(c net.Conn, br *bufio.Reader) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"took\":") //nolint:errcheck
	})
	f("close mid-chunk", func(c net.Conn, br *bufio.Reader) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"took\":") //nolint:errcheck
	})
	f("broken header", func(c net.Conn, br *bufio.Reader) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n{}") //nolint:errcheck
	})
}

func TestSlowUpstream504(t *testing.T) {
	up := startFake(t, func(ctx *fasthttp.RequestCtx) {
		time.Sleep(400 * time.Millisecond)
		ctx.SetBodyString("{}")
	})
	p := startProxy(t, []string{up.URL}, func(c *Config) {
		c.UpstreamTimeout = 50 * time.Millisecond
		c.RequestTimeout = 150 * time.Millisecond
	})
	for _, m := range []string{"GET /idx/_doc/1", "POST /_bulk", "POST /idx/_search"} {
		method, uri, _ := strings.Cut(m, " ")
		resp := p.do(t, method, uri, nil)
		checkESError(t, resp.StatusCode(), resp.Body(), 504, typeTimeout)
		fasthttp.ReleaseResponse(resp)
	}
	// Reads were retried inside the deadline, writes were not.
	if h := up.Hits.Load(); h < 4 || h > 7 {
		t.Fatalf("slow node was hit %d times, want 1 (bulk) + 2..3 per read", h)
	}
}

// TestClientConnectionCloseKeepsUpstreamAlive: clients that close after each request still share one
// pooled upstream connection.
func TestClientConnectionCloseKeepsUpstreamAlive(t *testing.T) {
	up := startFake(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("{}") })
	p := startProxy(t, []string{up.URL}, func(c *Config) { c.HealthCheckInterval = 0 })
	for i := 0; i < 20; i++ {
		resp := rawExchange(t, p.Addr, "GET /idx/_doc/1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		if resp.StatusCode() != 200 || !resp.ConnectionClose() {
			t.Fatalf("status %d, connection close %v", resp.StatusCode(), resp.ConnectionClose())
		}
	}
	up.ln.mu.Lock()
	conns := len(up.ln.conns)
	up.ln.mu.Unlock()
	if conns != 1 || up.Hits.Load() != 20 {
		t.Fatalf("%d upstream connections for %d requests, want 1", conns, up.Hits.Load())
	}
}

// TestExchangeGivesConnectionsBack: whatever the answer's framing (known length under and over
// response_buffer_size, chunked under and over it, no body), its upstream connection serves the
// next request once the body was read; an answer with Connection: close ends its connection.
func TestExchangeGivesConnectionsBack(t *testing.T) {
	big := bytes.Repeat([]byte("b"), 4<<10)
	up := startFake(t, func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/small":
			ctx.SetBodyString(`{"small":1}`)
		case "/chunked":
			ctx.SetBodyStream(strings.NewReader(`{"chunked":1}`), -1)
		case "/big":
			ctx.SetBody(big)
		case "/bigchunked":
			ctx.SetBodyStream(bytes.NewReader(big), -1)
		case "/empty":
			ctx.SetStatusCode(fasthttp.StatusNoContent)
		case "/close":
			ctx.SetConnectionClose()
			ctx.SetBodyString("bye")
		}
	})
	p := startProxy(t, []string{up.URL}, func(c *Config) {
		c.HealthCheckInterval = 0
		c.ResponseBufferSize = 1 << 10
	})
	f := func(method, uri string, status int, body []byte) {
		t.Helper()
		resp := p.do(t, method, uri, nil)
		defer fasthttp.ReleaseResponse(resp)
		if resp.StatusCode() != status || !bytes.Equal(resp.Body(), body) {
			t.Fatalf("%s %s: status %d, body %.40q", method, uri, resp.StatusCode(), resp.Body())
		}
	}
	const rounds = 3
	for i := 0; i < rounds; i++ {
		// A write first: it is not retried, so a connection kept after Connection: close fails it.
		f("POST", "/small", 200, []byte(`{"small":1}`))
		f("HEAD", "/small", 200, nil)
		f("GET", "/chunked", 200, []byte(`{"chunked":1}`))
		f("GET", "/big", 200, big)
		f("GET", "/bigchunked", 200, big)
		f("GET", "/empty", 204, nil)
		f("GET", "/close", 200, []byte("bye"))
	}
	up.ln.mu.Lock()
	conns := len(up.ln.conns)
	up.ln.mu.Unlock()
	if conns != rounds {
		t.Fatalf("%d upstream connections for %d rounds that each end with Connection: close, want %d", conns, rounds, rounds)
	}
}

// TestBrokenAnswerLeavesNoFields: an answer that breaks off after its header was parsed into the
// client response must not lend its fields to the ES-shaped error that replaces it.
func TestBrokenAnswerLeavesNoFields(t *testing.T) {
	url, _ := startRaw(t, func(c net.Conn, br *bufio.Reader) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Partial: yes\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n{") //nolint:errcheck
	})
	p := startProxy(t, []string{url}, nil)
	resp := p.do(t, "POST", "/_bulk", []byte("{}\n"))
	defer fasthttp.ReleaseResponse(resp)
	checkESError(t, resp.StatusCode(), resp.Body(), 502, typeBadGateway)
	if v := resp.Header.Peek("X-Partial"); v != nil {
		t.Errorf("the 502 carries the broken answer's X-Partial=%q", v)
	}
	if ct := string(resp.Header.ContentType()); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("the 502 has Content-Type %q", ct)
	}
}
