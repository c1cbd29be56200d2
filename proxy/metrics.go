package proxy

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Metrics live in the global VictoriaMetrics set, so every package's metrics come out of one /metrics.
// Per-request counters are looked up in a fixed array instead of by name, so the hot path does not
// format strings.

var (
	requestCounters [numClasses][600]atomic.Pointer[metrics.Counter]
	inFlight        = metrics.NewCounter("vlproxy_requests_in_flight")
	retriesTotal    = metrics.NewCounter("vlproxy_upstream_retries_total")
	clientErrors    = metrics.NewCounter("vlproxy_client_request_errors_total")
)

// countRequest counts a finished request by route class and response status.
func countRequest(class routeClass, status int) {
	if status < 100 || status >= 600 {
		status = 599
	}
	p := &requestCounters[class][status]
	c := p.Load()
	if c == nil {
		c = metrics.GetOrCreateCounter(fmt.Sprintf(`vlproxy_requests_total{class=%q,status="%d"}`, class.String(), status))
		p.Store(c)
	}
	c.Inc()
}

// nodeMetrics are the per-upstream-node series.
type nodeMetrics struct {
	latency  *metrics.Histogram // time to the response header, per attempt
	healthy  *metrics.Gauge
	errors   *metrics.Counter
	ejection *metrics.Counter
}

func newNodeMetrics(addr string) nodeMetrics {
	return nodeMetrics{
		latency:  metrics.GetOrCreateHistogram(fmt.Sprintf(`vlproxy_upstream_request_duration_seconds{upstream=%q}`, addr)),
		healthy:  metrics.GetOrCreateGauge(fmt.Sprintf(`vlproxy_upstream_healthy{upstream=%q}`, addr), nil),
		errors:   metrics.GetOrCreateCounter(fmt.Sprintf(`vlproxy_upstream_errors_total{upstream=%q}`, addr)),
		ejection: metrics.GetOrCreateCounter(fmt.Sprintf(`vlproxy_upstream_ejections_total{upstream=%q}`, addr)),
	}
}

func (m nodeMetrics) observe(d time.Duration) { m.latency.Update(d.Seconds()) }
