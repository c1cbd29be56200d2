package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"
)

// recorder keeps what the fake upstream last received.
type recorder struct {
	mu     sync.Mutex
	method string
	uri    string
	header map[string]string
	body   []byte
}

func (r *recorder) handler(respond func(ctx *fasthttp.RequestCtx)) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		r.mu.Lock()
		r.method = string(ctx.Method())
		r.uri = string(ctx.Request.Header.RequestURI())
		r.header = map[string]string{}
		for k, v := range ctx.Request.Header.All() {
			r.header[string(k)] = string(v)
		}
		r.body = append([]byte(nil), ctx.Request.Body()...)
		r.mu.Unlock()
		respond(ctx)
	}
}

var serverTimingRe = regexp.MustCompile(`^upstream;dur=\d+\.\d{3}, total;dur=\d+\.\d{3}$`)

// TestForwardedHeaders: X-Forwarded-For and -Proto are created, or appended to when the client sent
// them, in whatever case, with or without hop-by-hop fields beside them.
func TestForwardedHeaders(t *testing.T) {
	rec := &recorder{}
	up := startFake(t, rec.handler(func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("{}") }))
	p := startProxy(t, []string{up.URL}, nil)
	f := func(wantFor, wantProto string, kv ...string) {
		t.Helper()
		fasthttp.ReleaseResponse(p.do(t, "GET", "/idx/_doc/1", nil, kv...))
		rec.mu.Lock()
		got := rec.header
		rec.mu.Unlock()
		if got["X-Forwarded-For"] != wantFor || got["X-Forwarded-Proto"] != wantProto {
			t.Errorf("%v: upstream got X-Forwarded-For=%q X-Forwarded-Proto=%q, want %q %q",
				kv, got["X-Forwarded-For"], got["X-Forwarded-Proto"], wantFor, wantProto)
		}
	}
	f("127.0.0.1", "http")
	f("10.0.0.1, 127.0.0.1", "http", "x-forwarded-for", "10.0.0.1")
	f("127.0.0.1", "https, http", "X-Forwarded-Proto", "https")
	f("10.0.0.1, 127.0.0.1", "https, http", "X-Forwarded-Proto", "https", "X-Forwarded-For", "10.0.0.1", "Te", "trailers")
	f("10.0.0.1, 127.0.0.1", "http", "Connection", "X-Hop", "X-Forwarded-For", "10.0.0.1")
}

func TestAppendIP(t *testing.T) {
	for _, s := range []string{"127.0.0.1", "0.0.0.0", "10.20.255.9", "1.2.3.4", "::1", "2001:db8::7", "::ffff:192.168.0.1", "fe80::1"} {
		ip := net.ParseIP(s)
		if got := string(appendIP(nil, ip)); got != ip.String() {
			t.Errorf("appendIP(%s) = %q, want %q", s, got, ip.String())
		}
	}
	if got := string(appendIP([]byte("x"), net.IPv4(10, 0, 0, 1).To4())); got != "x10.0.0.1" {
		t.Errorf("appendIP of a 4-byte IP after x = %q", got)
	}
}

func TestHeadersBothWays(t *testing.T) {
	rec := &recorder{}
	up := startFake(t, rec.handler(func(ctx *fasthttp.RequestCtx) {
		h := &ctx.Response.Header
		h.Set("X-Elastic-Product", "Elasticsearch")
		h.Set("Date", "Mon, 02 Jan 2006 15:04:05 GMT")
		h.Set("Server", "fake-es")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Connection", "X-Hop-Resp")
		h.Set("X-Hop-Resp", "secret")
		h.Set("Proxy-Authenticate", "Basic")
		h.Set("Upgrade", "h2c")
		ctx.SetBodyString(`{"ok":true}`)
	}))
	p := startProxy(t, []string{up.URL}, nil)

	resp := p.do(t, "POST", "/idx/_doc/1?refresh=true", []byte(`{"a":1}`),
		"Content-Type", "application/json",
		"X-Opaque-Id", "abc",
		"Authorization", "Basic dTpw",
		"Connection", "X-Hop-Req",
		"X-Hop-Req", "drop-me",
		"Keep-Alive", "timeout=9",
		"Proxy-Authorization", "Basic eDp5",
		"Te", "trailers",
		"X-Forwarded-For", "10.0.0.1",
		"Expect", "100-continue")
	defer fasthttp.ReleaseResponse(resp)

	rec.mu.Lock()
	got := rec.header
	rec.mu.Unlock()
	want := func(name, value string) {
		t.Helper()
		if got[name] != value {
			t.Errorf("upstream got %s=%q, want %q (all: %v)", name, got[name], value, got)
		}
	}
	want("Content-Type", "application/json")
	want("X-Opaque-Id", "abc")
	want("Authorization", "Basic dTpw")
	want("X-Forwarded-For", "10.0.0.1, 127.0.0.1")
	want("X-Forwarded-Proto", "http")
	for _, h := range []string{"X-Hop-Req", "Keep-Alive", "Proxy-Authorization", "Te", "Expect", "User-Agent"} {
		if v, ok := got[h]; ok {
			t.Errorf("upstream got hop-by-hop or added header %s=%q", h, v)
		}
	}
	if c := got["Connection"]; c != "" && !strings.EqualFold(c, "keep-alive") {
		t.Errorf("upstream got Connection=%q", c)
	}
	if string(rec.body) != `{"a":1}` {
		t.Errorf("upstream body %q", rec.body)
	}

	rh := &resp.Header
	rh.SetNoDefaultContentType(true) // report only what was on the wire
	wantResp := func(name, value string) {
		t.Helper()
		if v := string(rh.Peek(name)); v != value {
			t.Errorf("client got %s=%q, want %q", name, v, value)
		}
	}
	wantResp("X-Elastic-Product", "Elasticsearch")
	wantResp("Date", "") // fasthttp cannot forward Date; at least none is invented
	wantResp("Server", "fake-es")
	wantResp("Content-Type", "") // the upstream sent none, so none is added
	for _, h := range []string{"Keep-Alive", "X-Hop-Resp", "Proxy-Authenticate", "Upgrade"} {
		if v := rh.Peek(h); v != nil {
			t.Errorf("client got hop-by-hop header %s=%q", h, v)
		}
	}
	if st := string(rh.Peek("Server-Timing")); !serverTimingRe.MatchString(st) {
		t.Errorf("Server-Timing %q", st)
	}
	if string(resp.Body()) != `{"ok":true}` {
		t.Errorf("client body %q", resp.Body())
	}
}

// TestNoHeadersAdded reads the raw response bytes: only what the upstream sent plus Server-Timing.
func TestNoHeadersAdded(t *testing.T) {
	up := startFake(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("x") })
	p := startProxy(t, []string{up.URL}, nil)
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") //nolint:errcheck
	var resp fasthttp.Response
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		t.Fatal(err)
	}
	var names []string
	resp.Header.SetNoDefaultContentType(true) // report only what was on the wire
	for k := range resp.Header.All() {
		names = append(names, string(k))
	}
	if got := strings.Join(names, ","); got != "Content-Length,Server-Timing" {
		t.Fatalf("response headers %s, want Content-Length,Server-Timing", got)
	}
}

// TestRequestLineForms: an origin-form request line goes upstream as it came, with the client's
// Host; an absolute-form one in origin form; a fragment is not sent; an HTTP/1.0 request without
// Host gets the node's.
func TestRequestLineForms(t *testing.T) {
	var mu sync.Mutex
	var uri, host string
	up := startFake(t, func(ctx *fasthttp.RequestCtx) {
		mu.Lock()
		uri, host = string(ctx.Request.Header.RequestURI()), string(ctx.Request.Header.Host())
		mu.Unlock()
		ctx.SetBodyString("{}")
	})
	p := startProxy(t, []string{up.URL}, nil)
	upHost := strings.TrimPrefix(up.URL, "http://")
	f := func(raw, wantURI, wantHost string) {
		t.Helper()
		resp := rawExchange(t, p.Addr, raw)
		mu.Lock()
		defer mu.Unlock()
		if resp.StatusCode() != 200 || uri != wantURI || host != wantHost {
			t.Errorf("%q: status %d, upstream got %q with Host %q, want %q with Host %q",
				raw, resp.StatusCode(), uri, host, wantURI, wantHost)
		}
		uri, host = "", ""
	}
	f("GET /idx/_doc/1?x=%2F& HTTP/1.1\r\nHost: Search.Example\r\n\r\n", "/idx/_doc/1?x=%2F&", "Search.Example")
	f("GET /idx/_search? HTTP/1.1\r\nHost: a\r\n\r\n", "/idx/_search?", "a")
	f("GET /idx/_doc/1#frag HTTP/1.1\r\nHost: a\r\n\r\n", "/idx/_doc/1", "a")
	f("GET http://a/idx/_doc/%2F?q=1 HTTP/1.1\r\nHost: a\r\n\r\n", "/idx/_doc/%2F?q=1", "a")
	f("GET /idx/_doc/1 HTTP/1.0\r\n\r\n", "/idx/_doc/1", upHost)
}

func TestRawURIForwardedByteExact(t *testing.T) {
	rec := &recorder{}
	up := startFake(t, rec.handler(func(ctx *fasthttp.RequestCtx) {}))
	p := startProxy(t, []string{up.URL}, nil)
	f := func(method, uri string) {
		t.Helper()
		resp := p.do(t, method, uri, nil)
		fasthttp.ReleaseResponse(resp)
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if rec.uri != uri || rec.method != method {
			t.Errorf("upstream got %s %q, want %s %q", rec.method, rec.uri, method, uri)
		}
	}
	f("GET", "/idx/_doc/a%2Fb")
	f("PUT", "/idx/_doc/a%2Fb%3F%23?routing=x%2Fy&refresh")
	f("DELETE", "/idx/_doc/%E4%B8%AD%20x")
	f("GET", "/idx/_search?q=title:%22a+b%22&size=1&sort=&&x=%zz")
	f("GET", "/idx//_doc/..%2F..%2Fetc")
	f("HEAD", "/a,b/_doc/1")
	f("POST", "/_bulk?pipeline=p%201")
	f("OPTIONS", "/")
	f("PATCH", "/x")
}

func TestHEAD(t *testing.T) {
	up := startFake(t, func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/missing" {
			ctx.SetStatusCode(404)
		}
		ctx.Response.Header.SetContentType("application/json; charset=UTF-8")
		ctx.SetBodyString(strings.Repeat("a", 1234))
	})
	p := startProxy(t, []string{up.URL}, nil)
	f := func(path string, status int) {
		t.Helper()
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "HEAD "+path+" HTTP/1.1\r\nHost: x\r\n\r\nGET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n") //nolint:errcheck
		br := bufio.NewReader(c)
		var head fasthttp.Response
		head.SkipBody = true
		if err := head.Read(br); err != nil {
			t.Fatal(err)
		}
		if head.StatusCode() != status || head.Header.ContentLength() != 1234 {
			t.Fatalf("HEAD %s: status %d content-length %d", path, head.StatusCode(), head.Header.ContentLength())
		}
		// The next response on the same connection must start right after the HEAD header.
		var get fasthttp.Response
		if err := get.Read(br); err != nil {
			t.Fatal(err)
		}
		if get.StatusCode() != status || len(get.Body()) != 1234 {
			t.Fatalf("GET after HEAD: status %d, %d bytes", get.StatusCode(), len(get.Body()))
		}
	}
	f("/idx", 200)
	f("/missing", 404)
}

func TestGzipBothWays(t *testing.T) {
	var zreq bytes.Buffer
	zw := gzip.NewWriter(&zreq)
	io.WriteString(zw, strings.Repeat(`{"index":{}}`+"\n"+`{"f":"v"}`+"\n", 100)) //nolint:errcheck
	zw.Close()
	var zresp bytes.Buffer
	zw = gzip.NewWriter(&zresp)
	io.WriteString(zw, `{"took":1,"errors":false}`) //nolint:errcheck
	zw.Close()

	rec := &recorder{}
	up := startFake(t, rec.handler(func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Content-Encoding", "gzip")
		ctx.Response.Header.SetContentType("application/json")
		ctx.SetBody(zresp.Bytes())
	}))
	p := startProxy(t, []string{up.URL}, nil)
	for _, uri := range []string{"/_bulk", "/idx/_search"} {
		resp := p.do(t, "POST", uri, zreq.Bytes(), "Content-Encoding", "gzip", "Accept-Encoding", "gzip",
			"Content-Type", "application/x-ndjson")
		rec.mu.Lock()
		if !bytes.Equal(rec.body, zreq.Bytes()) || rec.header["Content-Encoding"] != "gzip" {
			t.Errorf("%s: upstream got %d bytes with Content-Encoding %q, want the %d gzip bytes", uri, len(rec.body),
				rec.header["Content-Encoding"], zreq.Len())
		}
		rec.mu.Unlock()
		if !bytes.Equal(resp.Body(), zresp.Bytes()) || string(resp.Header.Peek("Content-Encoding")) != "gzip" {
			t.Errorf("%s: client got %q with Content-Encoding %q", uri, resp.Body(), resp.Header.Peek("Content-Encoding"))
		}
		fasthttp.ReleaseResponse(resp)
	}
}

// TestBodyBytesUnchanged sends arbitrary bytes (fixed length and chunked) and gets them echoed back.
func TestBodyBytesUnchanged(t *testing.T) {
	up := startFake(t, func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("X-Len", string(ctx.Request.Header.Peek("Content-Length")))
		ctx.SetBody(ctx.Request.Body())
	})
	p := startProxy(t, []string{up.URL}, nil)
	body := make([]byte, 300<<10)
	io.ReadFull(&patternReader{n: int64(len(body))}, body) //nolint:errcheck
	f := func(uri string, size int, chunked bool) {
		t.Helper()
		req := fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(req)
		req.Header.SetMethod("POST")
		req.SetRequestURI(uri)
		req.Header.SetHost(p.Addr)
		if chunked {
			req.SetBodyStream(bytes.NewReader(body[:size]), -1)
		} else {
			req.SetBody(body[:size])
		}
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseResponse(resp)
		if err := p.c.Do(req, resp); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode() != 200 || !bytes.Equal(resp.Body(), body[:size]) {
			t.Fatalf("%s size %d chunked %v: status %d, echoed %d bytes that differ", uri, size, chunked, resp.StatusCode(), len(resp.Body()))
		}
	}
	for _, uri := range []string{"/_bulk", "/idx/_search", "/idx/_doc"} {
		for _, size := range []int{0, 1, 8 << 10, 64<<10 + 1, len(body)} {
			f(uri, size, false)
			f(uri, size, true)
		}
	}
}

// TestUpstreamServerTimingKept: the proxy's stages follow those the upstream reported.
func TestUpstreamServerTimingKept(t *testing.T) {
	up := startFake(t, func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Server-Timing", "es;dur=1.5")
		ctx.SetBodyString("{}")
	})
	p := startProxy(t, []string{up.URL}, nil)
	resp := p.do(t, "GET", "/idx/_doc/1", nil)
	defer fasthttp.ReleaseResponse(resp)
	st := string(resp.Header.Peek("Server-Timing"))
	if rest, ok := strings.CutPrefix(st, "es;dur=1.5, "); !ok || !serverTimingRe.MatchString(rest) {
		t.Errorf("Server-Timing %q, want the upstream's then the proxy's", st)
	}
}
