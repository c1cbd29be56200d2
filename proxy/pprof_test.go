package proxy

import (
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// Without -pprof, /debug/pprof/ is an ordinary path and goes to ES.
func TestPprofOffForwards(t *testing.T) {
	var upstream string
	es := startFake(t, func(ctx *fasthttp.RequestCtx) { upstream = string(ctx.Path()); ctx.SetBodyString("{}") })
	p := startProxy(t, []string{es.URL}, nil)
	resp := p.do(t, "GET", "/debug/pprof/heap", nil)
	defer fasthttp.ReleaseResponse(resp)
	if resp.StatusCode() != 200 || upstream != "/debug/pprof/heap" {
		t.Fatalf("status %d, upstream saw %q", resp.StatusCode(), upstream)
	}
}

// With -pprof, loopback clients get the profiles; others need the admin token.
func TestPprofOn(t *testing.T) {
	es := startFake(t, func(ctx *fasthttp.RequestCtx) { t.Errorf("upstream called for %s", ctx.Path()) })
	p := startProxy(t, []string{es.URL}, func(c *Config) { c.Pprof = true })
	resp := p.do(t, "GET", "/debug/pprof/heap?debug=1", nil)
	if resp.StatusCode() != 200 || !strings.Contains(string(resp.Body()), "heap profile") {
		t.Fatalf("loopback: status %d body %.200s", resp.StatusCode(), resp.Body())
	}
	fasthttp.ReleaseResponse(resp)

	cfg := DefaultConfig()
	cfg.Upstreams = []string{es.URL}
	cfg.Pprof = true
	cfg.HealthCheckInterval = 0
	s, err := New(cfg, nil, WithAdminToken("secret"))
	if err != nil {
		t.Fatal(err)
	}
	remote := func(auth string) *fasthttp.RequestCtx {
		var req fasthttp.Request
		req.SetRequestURI("/debug/pprof/cmdline")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		ctx := &fasthttp.RequestCtx{}
		ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 4000}, nil)
		s.Handler()(ctx)
		return ctx
	}
	ctx := remote("")
	checkESError(t, ctx.Response.StatusCode(), ctx.Response.Body(), 403, "security_exception")
	ctx = remote("Bearer wrong")
	checkESError(t, ctx.Response.StatusCode(), ctx.Response.Body(), 403, "security_exception")
	if ctx = remote("Bearer secret"); ctx.Response.StatusCode() != 200 || len(ctx.Response.Body()) == 0 {
		t.Fatalf("with the token: status %d", ctx.Response.StatusCode())
	}
}
