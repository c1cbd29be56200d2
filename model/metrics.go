package model

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Model call metrics, in the default Prometheus registry (internal/promexp writes them out).
var (
	durationVec = promauto.NewHistogramVec(prometheus.HistogramOpts{Name: "vlproxy_model_request_duration_seconds",
		Help:    "Duration of whole model calls, queueing for a slot included.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"role", "endpoint"})
	tokensVec = promauto.NewCounterVec(prometheus.CounterOpts{Name: "vlproxy_model_tokens_total",
		Help: "Tokens the model servers reported, by role and kind (prompt or completion)."}, []string{"role", "kind"})
	errorsVec = promauto.NewCounterVec(prometheus.CounterOpts{Name: "vlproxy_model_errors_total",
		Help: "Failed model calls, by role and kind (as in model.Error.Kind)."}, []string{"role", "kind"})
	inFlightVec = promauto.NewGaugeVec(prometheus.GaugeOpts{Name: "vlproxy_model_in_flight",
		Help: "Model calls holding a concurrency slot."}, []string{"role", "endpoint"})
	queuedVec = promauto.NewGaugeVec(prometheus.GaugeOpts{Name: "vlproxy_model_queued",
		Help: "Model calls waiting for a concurrency slot."}, []string{"role", "endpoint"})
)

type clientMetrics struct {
	role             string
	duration         prometheus.Observer
	promptTokens     prometheus.Counter
	completionTokens prometheus.Counter
	inFlight         prometheus.Gauge
	queued           prometheus.Gauge
}

func newClientMetrics(role, endpoint string) *clientMetrics {
	// Every error kind exists from the start at 0, so rate() and alerts see a series before the
	// first failure.
	for _, k := range []string{KindTimeout, KindOverloaded, KindCircuitOpen, KindUnavailable, KindBadRequest, KindBadOutput, KindCanceled} {
		errorsVec.WithLabelValues(role, k)
	}
	return &clientMetrics{
		role:             role,
		duration:         durationVec.WithLabelValues(role, endpoint),
		promptTokens:     tokensVec.WithLabelValues(role, "prompt"),
		completionTokens: tokensVec.WithLabelValues(role, "completion"),
		inFlight:         inFlightVec.WithLabelValues(role, endpoint),
		queued:           queuedVec.WithLabelValues(role, endpoint),
	}
}

// errorsOf is on the error path only, so the vector's own lookup is cheap enough.
func (m *clientMetrics) errorsOf(kind string) prometheus.Counter {
	return errorsVec.WithLabelValues(m.role, kind)
}
