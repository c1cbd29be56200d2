package proxy

import (
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
)

// serveAdmin answers the proxy's own endpoints:
//
//	GET /_vlproxy/health   proxy and per-node state as JSON; 200 while at least one node is available
//	                       and the proxy is not draining, 503 otherwise (for load-balancer readiness)
//	GET /_vlproxy/metrics  Prometheus text format (also at Config.MetricsPath, default /metrics)
func (s *Server) serveAdmin(ctx *fasthttp.RequestCtx, rq *request) {
	path := ctx.Path()
	switch {
	case string(path) == "/_vlproxy/health" && (ctx.IsGet() || ctx.IsHead()):
		s.serveHealth(ctx)
	case (string(path) == "/_vlproxy/metrics" || string(path) == s.cfg.MetricsPath) && (ctx.IsGet() || ctx.IsHead()):
		ctx.Response.Header.SetContentType("text/plain; version=0.0.4; charset=utf-8")
		metrics.WritePrometheus(ctx, true)
	default:
		s.fail(ctx, rq, &Error{Status: fasthttp.StatusNotFound, Type: "resource_not_found_exception",
			Reason: "no vlproxy endpoint " + string(ctx.Method()) + " " + string(path) +
				"; try GET /_vlproxy/health or GET /_vlproxy/metrics"})
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
	b = append(b, `,"upstreams":[`...)
	now := time.Now().UnixNano()
	for i, n := range s.nodes {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"url":`...)
		b = appendJSONString(b, n.url)
		b = append(b, `,"available":`...)
		b = strconv.AppendBool(b, n.Available())
		b = append(b, `,"healthy":`...)
		b = strconv.AppendBool(b, n.healthy.Load())
		b = append(b, `,"ejected":`...)
		b = strconv.AppendBool(b, now < n.ejectedUntil.Load())
		b = append(b, `,"in_flight":`...)
		b = strconv.AppendInt(b, n.inFlight.Load(), 10)
		b = append(b, `,"last_check":`...)
		if lc := n.lastCheck.Load(); lc > 0 {
			b = appendJSONString(b, time.Unix(0, lc).UTC().Format(time.RFC3339Nano))
		} else {
			b = append(b, "null"...)
		}
		b = append(b, `,"last_error":`...)
		if e := n.lastErr.Load(); e != nil {
			b = appendJSONString(b, *e)
		} else {
			b = append(b, "null"...)
		}
		b = append(b, '}')
	}
	b = append(b, "]}"...)
	if available == 0 || draining {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
	}
	ctx.Response.Header.SetContentType("application/json; charset=UTF-8")
	ctx.SetBody(b)
}
