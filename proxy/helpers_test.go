package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// fakeNode is an in-process upstream on a loopback port that can be killed with its connections.
type fakeNode struct {
	URL  string
	Addr string
	Hits atomic.Int64
	// HealthStatus is the status answered to the proxy's health checks (which are not counted in Hits
	// nor passed to the handler); 0 means 200.
	HealthStatus atomic.Int32
	// HealthPlan, when set, answers the nth check (from 1) instead.
	HealthPlan atomic.Pointer[func(n int64) int]
	Checks     atomic.Int64
	ln         *trackingListener
	srv        *fasthttp.Server
	close      sync.Once
}

type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns[c] = struct{}{}
		l.mu.Unlock()
	}
	return c, err
}

func (l *trackingListener) killAll() {
	l.Listener.Close()
	l.mu.Lock()
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
}

func listenLoopback(t testing.TB) *trackingListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &trackingListener{Listener: ln, conns: map[net.Conn]struct{}{}}
}

// startFake runs h as an upstream node. The server streams request bodies and adds nothing to
// responses, like an ES node would not.
func startFake(t testing.TB, h fasthttp.RequestHandler) *fakeNode {
	t.Helper()
	f := &fakeNode{ln: listenLoopback(t)}
	f.Addr = f.ln.Addr().String()
	f.URL = "http://" + f.Addr
	f.srv = &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			if string(ctx.UserAgent()) == "vlproxy-health-check" {
				n := f.Checks.Add(1)
				if plan := f.HealthPlan.Load(); plan != nil {
					ctx.SetStatusCode((*plan)(n))
				} else if st := f.HealthStatus.Load(); st != 0 {
					ctx.SetStatusCode(int(st))
				}
				return
			}
			f.Hits.Add(1)
			h(ctx)
		},
		StreamRequestBody:     true,
		NoDefaultServerHeader: true,
		NoDefaultDate:         true,
		NoDefaultContentType:  true,
		ReadBufferSize:        64 << 10,
		Logger:                quietLogger{},
	}
	go f.srv.Serve(f.ln) //nolint:errcheck
	t.Cleanup(f.kill)
	return f
}

func (f *fakeNode) kill() { f.close.Do(f.ln.killAll) }

type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

// startRaw runs a TCP upstream whose connection handler does anything, including misbehaving.
func startRaw(t testing.TB, handle func(c net.Conn, br *bufio.Reader)) (url string, hits *atomic.Int64) {
	t.Helper()
	ln := listenLoopback(t)
	hits = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					var req fasthttp.Request
					if err := req.Read(br); err != nil {
						return
					}
					if string(req.URI().Path()) == "/" && string(req.Header.UserAgent()) == "vlproxy-health-check" {
						io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}") //nolint:errcheck
						continue
					}
					hits.Add(1)
					handle(c, br)
					return
				}
			}()
		}
	}()
	t.Cleanup(ln.killAll)
	return "http://" + ln.Addr().String(), hits
}

// deadURL is a loopback address nothing listens on: a guaranteed connection refused.
func deadURL(t testing.TB) string {
	t.Helper()
	// A socket bound but never listening: connections to its port are refused, and nobody
	// else can take the port while the test runs (a freed port was seen reused by another
	// test process, which made the "dead" node healthy).
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("http://127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}

// logBuffer collects JSON log lines for assertions.
type logBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	b.lines = append(b.lines, strings.TrimSpace(string(p)))
	b.mu.Unlock()
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}

func (b *logBuffer) contains(s string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, l := range b.lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

type testProxy struct {
	*Server
	Addr string
	Logs *logBuffer
	c    *fasthttp.HostClient
}

// startProxy serves a proxy on a loopback port in front of upstreams; mutate adjusts the config.
func startProxy(t testing.TB, upstreams []string, mutate func(*Config)) *testProxy {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Upstreams = upstreams
	cfg.HealthCheckInterval = 50 * time.Millisecond
	cfg.RetryWait = 10 * time.Millisecond
	if mutate != nil {
		mutate(&cfg)
	}
	logs := &logBuffer{}
	s, err := New(cfg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	ln := listenLoopback(t)
	go s.Serve(ln) //nolint:errcheck
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx) //nolint:errcheck
	})
	p := &testProxy{Server: s, Addr: ln.Addr().String(), Logs: logs}
	p.c = newClient(p.Addr)
	return p
}

func newClient(addr string) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr:                      addr,
		DisablePathNormalizing:    true,
		NoDefaultUserAgentHeader:  true,
		MaxIdemponentCallAttempts: 1,
		MaxConns:                  1024,
		ReadBufferSize:            64 << 10,
	}
}

// do sends one request through the proxy and returns the response (caller releases).
func (p *testProxy) do(t testing.TB, method, uri string, body []byte, hdr ...string) *fasthttp.Response {
	t.Helper()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.Header.SetMethod(method)
	req.SetRequestURI(uri)
	req.Header.SetHost(p.Addr)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	if body != nil {
		req.SetBody(body)
	}
	resp := fasthttp.AcquireResponse()
	if err := p.c.DoTimeout(req, resp, 20*time.Second); err != nil {
		t.Fatalf("%s %s: %s", method, uri, err)
	}
	return resp
}

// esError is the shape every proxy-made error must have.
type esErrorBody struct {
	Error struct {
		RootCause []struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"root_cause"`
		Type   string `json:"type"`
		Reason string `json:"reason"`
	} `json:"error"`
	Status int `json:"status"`
}

// checkESError asserts resp is an ES-shaped error with the status and type.
func checkESError(t testing.TB, status int, body []byte, wantStatus int, wantType string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("status %d, want %d; body %s", status, wantStatus, body)
	}
	var e esErrorBody
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("error body is not ES-shaped: %s: %s", err, body)
	}
	if e.Status != wantStatus || e.Error.Type != wantType || len(e.Error.RootCause) != 1 ||
		e.Error.RootCause[0].Type != wantType || e.Error.Reason == "" || e.Error.RootCause[0].Reason != e.Error.Reason {
		t.Fatalf("unexpected ES error (want status %d type %s): %s", wantStatus, wantType, body)
	}
}

// patternReader yields n deterministic bytes without holding them.
type patternReader struct{ n, off int64 }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n-r.off {
		p = p[:r.n-r.off]
	}
	for i := range p {
		x := r.off + int64(i)
		p[i] = byte(x*7 + x>>8)
	}
	r.off += int64(len(p))
	return len(p), nil
}

// drainBody reads the request body a fake node received (nil stream: no body).
func drainBody(ctx *fasthttp.RequestCtx) int64 {
	s := ctx.RequestBodyStream()
	if s == nil {
		return int64(len(ctx.Request.Body()))
	}
	n, _ := io.Copy(io.Discard, s)
	return n
}
