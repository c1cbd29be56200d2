package proxy

import (
	"github.com/vlproxy/vlproxy/internal/eserr"
	"github.com/vlproxy/vlproxy/internal/esjson"

	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"

	"github.com/vlproxy/vlproxy/cache"
	"github.com/vlproxy/vlproxy/internal/promexp"
)

// serveAdmin answers the proxy's own endpoints:
//
//	GET /_vlproxy/health   proxy and per-node state as JSON; 200 while at least one node is available
//	                       and the proxy is not draining, 503 otherwise (for load-balancer readiness,
//	                       also while requests fail open to nodes marked down)
//	GET /_vlproxy/metrics  Prometheus text format (also at Config.MetricsPath, default /metrics)
//	/_vlproxy/ui/…         the playground, when WithUI mounted it (package ui)
//	GET /debug/pprof/…     Go's profiler, with Config.Pprof only (loopback or admin token)
func (s *Server) serveAdmin(ctx *fasthttp.RequestCtx, rq *request) {
	path := ctx.Path()
	switch {
	case string(path) == "/_vlproxy/health" && (ctx.IsGet() || ctx.IsHead()):
		s.serveHealth(ctx)
	case string(path) == "/_vlproxy/cache" && (ctx.IsGet() || ctx.IsHead()):
		s.serveCacheStats(ctx)
	case string(path) == "/_vlproxy/cache/_clear" && ctx.IsPost():
		s.serveCacheClear(ctx, rq)
	case s.cfg.Pprof && isPprofPath(path):
		s.servePprof(ctx, rq)
	case (string(path) == "/_vlproxy/metrics" || string(path) == s.cfg.MetricsPath) && (ctx.IsGet() || ctx.IsHead()):
		ctx.Response.Header.SetContentType(promexp.ContentType)
		if err := promexp.Write(ctx); err != nil {
			s.fail(ctx, rq, err)
		}
	case s.ui != nil && (string(path) == "/_vlproxy/ui" || bytes.HasPrefix(path, []byte("/_vlproxy/ui/"))):
		s.ui(ctx)
	default:
		s.fail(ctx, rq, &eserr.Error{Status: fasthttp.StatusNotFound, Type: "resource_not_found_exception",
			Reason: "no vlproxy endpoint " + string(ctx.Method()) + " " + string(path) +
				"; try GET /_vlproxy/health, GET /_vlproxy/metrics, GET /_vlproxy/cache or POST /_vlproxy/cache/_clear"})
	}
}

func (s *Server) serveHealth(ctx *fasthttp.RequestCtx) {
	available := 0
	for _, n := range s.nodes {
		if n.Available() {
			available++
		}
	}
	status := "green"
	switch {
	case available == 0:
		status = "red"
	case available < len(s.nodes):
		status = "yellow"
	}
	draining := s.draining.Load()
	b := make([]byte, 0, 256+200*len(s.nodes))
	b = append(b, `{"status":"`...)
	b = append(b, status...)
	b = append(b, `","draining":`...)
	b = strconv.AppendBool(b, draining)
	b = append(b, `,"available_upstreams":`...)
	b = strconv.AppendInt(b, int64(available), 10)
	// With no node available, requests still go to the nodes when the proxy fails open.
	b = append(b, `,"fail_open":`...)
	b = strconv.AppendBool(b, available == 0 && s.cfg.HealthFailOpen)
	b = append(b, `,"upstreams":[`...)
	now := time.Now().UnixNano()
	for i, n := range s.nodes {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"url":`...)
		b = esjson.AppendString(b, n.url)
		b = append(b, `,"available":`...)
		b = strconv.AppendBool(b, n.Available())
		b = append(b, `,"healthy":`...)
		b = strconv.AppendBool(b, n.healthy.Load())
		b = append(b, `,"ejected":`...)
		b = strconv.AppendBool(b, now < n.ejectedUntil.Load())
		b = append(b, `,"failed_checks":`...)
		b = strconv.AppendInt(b, int64(n.fails.Load()), 10)
		b = append(b, `,"in_flight":`...)
		b = strconv.AppendInt(b, n.inFlight.Load(), 10)
		b = append(b, `,"last_check":`...)
		if lc := n.lastCheck.Load(); lc > 0 {
			b = esjson.AppendString(b, time.Unix(0, lc).UTC().Format(time.RFC3339Nano))
		} else {
			b = append(b, "null"...)
		}
		b = append(b, `,"last_error":`...)
		if e := n.lastErr.Load(); e != nil {
			b = esjson.AppendString(b, *e)
		} else {
			b = append(b, "null"...)
		}
		b = append(b, '}')
	}
	b = append(b, ']')
	if len(s.components) > 0 {
		b = append(b, `,"components":{`...)
		for i, c := range s.components {
			if i > 0 {
				b = append(b, ',')
			}
			state, up := c.Health()
			b = esjson.AppendString(b, c.Name)
			b = append(b, `:{"up":`...)
			b = strconv.AppendBool(b, up)
			b = append(b, `,"state":`...)
			js, err := json.Marshal(state)
			if err != nil {
				js = []byte("null")
			}
			b = append(b, js...)
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	b = append(b, '}')
	if available == 0 || draining {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
	}
	ctx.Response.Header.SetContentType("application/json; charset=UTF-8")
	ctx.SetBody(b)
}

// serveCacheStats answers GET /_vlproxy/cache: the stats of every cache, by name.
func (s *Server) serveCacheStats(ctx *fasthttp.RequestCtx) {
	out := make(map[string]cache.Stats, len(s.caches))
	for _, c := range s.caches {
		out[c.Name()] = c.Stats()
	}
	b, _ := json.Marshal(map[string]any{"caches": out})
	ctx.Response.Header.SetContentType("application/json; charset=UTF-8")
	ctx.SetBody(b)
}

// serveCacheClear answers POST /_vlproxy/cache/_clear: every cache is flushed in O(1), on every
// replica of the fleet with WithFleet (the answer's "fleet" says how far it reached). It needs
// "Authorization: Bearer <admin token>"; without a configured token it is refused.
func (s *Server) serveCacheClear(ctx *fasthttp.RequestCtx, rq *request) {
	auth := ctx.Request.Header.Peek("Authorization")
	want := "Bearer " + s.adminToken
	if s.adminToken == "" || subtle.ConstantTimeCompare(auth, []byte(want)) != 1 {
		reason := "clearing the caches needs the admin token (-admin-token) as Authorization: Bearer <token>"
		if s.adminToken == "" {
			reason = "clearing the caches is disabled: no admin token is configured (-admin-token)"
		}
		s.fail(ctx, rq, &eserr.Error{Status: fasthttp.StatusForbidden, Type: "security_exception", Reason: reason})
		return
	}
	b := []byte(`{"acknowledged":true,"cleared":`)
	b = strconv.AppendInt(b, int64(len(s.caches)), 10)
	if s.keys != nil {
		// Bumps the fleet's epoch too: every replica's cached results are unreachable at once.
		s.keys.InvalidateAll()
	}
	if s.fleet == nil {
		s.flushCaches()
		b = append(b, `,"fleet":false}`...)
	} else {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		gen, told, err := s.fleet.Clear(cctx) // flushes this replica's caches first
		cancel()
		b = appendFleetClear(b, gen, told, err)
	}
	ctx.Response.Header.SetContentType("application/json; charset=UTF-8")
	ctx.SetBody(b)
}

// appendFleetClear ends a clear's answer with what reached the fleet.
func appendFleetClear(b []byte, gen uint64, told int64, err error) []byte {
	if err != nil {
		b = append(b, `,"fleet":{"cleared":false,"reason":`...)
		b = esjson.AppendString(b, "cannot reach redis ("+err.Error()+"): this replica is cleared; the other replicas will be when redis takes writes again")
		return append(b, `}}`...)
	}
	b = append(b, `,"fleet":{"cleared":true,"generation":`...)
	b = strconv.AppendUint(b, gen, 10)
	b = append(b, `,"replicas_told":`...)
	b = strconv.AppendInt(b, told, 10)
	return append(b, `}}`...)
}

// flushCaches empties every cache of this replica in O(1).
func (s *Server) flushCaches() {
	for _, c := range s.caches {
		c.Flush()
	}
}

// isPprofPath reports whether a path (or request URI) is under /debug/pprof.
func isPprofPath(uri []byte) bool {
	return bytes.HasPrefix(uri, []byte("/debug/pprof/")) || string(uri) == "/debug/pprof" ||
		bytes.HasPrefix(uri, []byte("/debug/pprof?"))
}

// servePprof answers /debug/pprof/ (Config.Pprof): to a loopback client, or to one that sends the
// admin token, since profiles show code paths, goroutine stacks and request data in memory.
func (s *Server) servePprof(ctx *fasthttp.RequestCtx, rq *request) {
	if !ctx.RemoteIP().IsLoopback() && !s.adminAuthorized(ctx) {
		s.fail(ctx, rq, &eserr.Error{Status: fasthttp.StatusForbidden, Type: "security_exception",
			Reason: "/debug/pprof is open to loopback clients and to the admin token (-admin-token) as Authorization: Bearer <token>"})
		return
	}
	if string(ctx.Path()) == "/debug/pprof" {
		ctx.URI().SetPath("/debug/pprof/")
	}
	pprofhandler.PprofHandler(ctx)
}

// adminAuthorized reports whether the request carries "Authorization: Bearer <admin token>"; it
// is false while no token is configured.
func (s *Server) adminAuthorized(ctx *fasthttp.RequestCtx) bool {
	want := "Bearer " + s.adminToken
	return s.adminToken != "" && subtle.ConstantTimeCompare(ctx.Request.Header.Peek("Authorization"), []byte(want)) == 1
}
