package proxy

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics live in the default Prometheus registry, so every package's metrics come out of one
// /metrics (internal/promexp). Per-request series are looked up in fixed arrays instead of by
// label values, so the hot path neither formats nor hashes strings.

// latencyBuckets cover a cached hit (sub-millisecond) up to a slow model-backed search.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

var (
	requestsVec = promauto.NewCounterVec(prometheus.CounterOpts{Name: "vlproxy_requests_total",
		Help: "Finished requests, by route class and response status."}, []string{"class", "status"})
	requestDurationVec = promauto.NewHistogramVec(prometheus.HistogramOpts{Name: "vlproxy_request_duration_seconds",
		Help:    "Time from the request's arrival to the end of its handler (a streamed body is not included), by route class.",
		Buckets: latencyBuckets}, []string{"class"})
	stageDurationVec = promauto.NewHistogramVec(prometheus.HistogramOpts{Name: "vlproxy_request_stage_duration_seconds",
		Help:    "Time spent in one stage of a request (the Server-Timing stages: upstream, rewrite, model, rerank; disjoint), by route class.",
		Buckets: latencyBuckets}, []string{"class", "stage"})
	inFlight = promauto.NewGauge(prometheus.GaugeOpts{Name: "vlproxy_requests_in_flight",
		Help: "Requests being handled."})
	retriesTotal = promauto.NewCounter(prometheus.CounterOpts{Name: "vlproxy_upstream_retries_total",
		Help: "Upstream attempts beyond the first of a request."})
	clientErrors = promauto.NewCounter(prometheus.CounterOpts{Name: "vlproxy_client_request_errors_total",
		Help: "Requests that failed on the client side of the connection (malformed or cut off)."})

	upstreamDurationVec = promauto.NewHistogramVec(prometheus.HistogramOpts{Name: "vlproxy_upstream_request_duration_seconds",
		Help:    "Time to the upstream's response header, per attempt and node.",
		Buckets: latencyBuckets}, []string{"upstream"})
	upstreamHealthyVec = promauto.NewGaugeVec(prometheus.GaugeOpts{Name: "vlproxy_upstream_healthy",
		Help: "1 while the node is in rotation (fewer than -health-check-fails failed checks in a row, or back after -health-check-passes) and not ejected, 0 otherwise."}, []string{"upstream"})
	upstreamErrorsVec = promauto.NewCounterVec(prometheus.CounterOpts{Name: "vlproxy_upstream_errors_total",
		Help: "Attempts to a node that failed at the transport level."}, []string{"upstream"})
	failOpenTotal = promauto.NewCounter(prometheus.CounterOpts{Name: "vlproxy_upstream_fail_open_total",
		Help: "Attempts sent to a node marked down because no node was available (-health-fail-open)."})
	upstreamEjectionsVec = promauto.NewCounterVec(prometheus.CounterOpts{Name: "vlproxy_upstream_ejections_total",
		Help: "Times a node was taken out of rotation after failures."}, []string{"upstream"})
)

var requestCounters [numClasses][600]atomic.Pointer[prometheus.Counter]

// countRequest counts a finished request by route class and response status.
func countRequest(class routeClass, status int) {
	if status < 100 || status >= 600 {
		status = 599
	}
	p := &requestCounters[class][status]
	c := p.Load()
	if c == nil {
		cc := requestsVec.WithLabelValues(class.String(), strconv.Itoa(status))
		c = &cc
		p.Store(c)
	}
	(*c).Inc()
}

// stageNames are the stages with a latency series; serverTiming may carry others, not exported.
var stageNames = [...]string{"upstream", "rewrite", "model", "rerank"}

var (
	requestDurations [numClasses]prometheus.Observer
	stageDurations   [numClasses][len(stageNames)]prometheus.Observer
)

func init() {
	for c := routeClass(0); c < numClasses; c++ {
		requestDurations[c] = requestDurationVec.WithLabelValues(c.String())
		for i, s := range stageNames {
			stageDurations[c][i] = stageDurationVec.WithLabelValues(c.String(), s)
		}
	}
}

// observeTiming records the request's total and each of its stages.
func observeTiming(class routeClass, t *serverTiming, total time.Duration) {
	requestDurations[class].Observe(total.Seconds())
	for i := 0; i < t.n; i++ {
		for j, s := range stageNames {
			if t.names[i] == s {
				stageDurations[class][j].Observe(t.durs[i].Seconds())
				break
			}
		}
	}
}

// nodeMetrics are the per-upstream-node series.
type nodeMetrics struct {
	latency  prometheus.Observer // time to the response header, per attempt
	healthy  prometheus.Gauge
	errors   prometheus.Counter
	ejection prometheus.Counter
}

func newNodeMetrics(addr string) nodeMetrics {
	return nodeMetrics{
		latency:  upstreamDurationVec.WithLabelValues(addr),
		healthy:  upstreamHealthyVec.WithLabelValues(addr),
		errors:   upstreamErrorsVec.WithLabelValues(addr),
		ejection: upstreamEjectionsVec.WithLabelValues(addr),
	}
}

func (m nodeMetrics) observe(d time.Duration) { m.latency.Observe(d.Seconds()) }
