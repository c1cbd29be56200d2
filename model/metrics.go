package model

import (
	"fmt"
	"sync"

	"github.com/VictoriaMetrics/metrics"
)

type clientMetrics struct {
	role             string
	duration         *metrics.Histogram
	promptTokens     *metrics.Counter
	completionTokens *metrics.Counter
	inFlight         *metrics.Gauge
	queued           *metrics.Gauge

	mu     sync.Mutex
	errors map[string]*metrics.Counter
}

// Metric names (Prometheus exposition through the default VictoriaMetrics set):
//
//	vlproxy_model_request_duration_seconds{role,endpoint}  histogram of whole calls, queueing included
//	vlproxy_model_tokens_total{role,kind="prompt|completion"}
//	vlproxy_model_errors_total{role,kind}                   kind as in Error.Kind
//	vlproxy_model_in_flight{role,endpoint}, vlproxy_model_queued{role,endpoint}
func newClientMetrics(role, endpoint string) *clientMetrics {
	l := fmt.Sprintf(`role=%q,endpoint=%q`, role, endpoint)
	m := &clientMetrics{
		role:             role,
		duration:         metrics.GetOrCreateHistogram(`vlproxy_model_request_duration_seconds{` + l + `}`),
		promptTokens:     metrics.GetOrCreateCounter(fmt.Sprintf(`vlproxy_model_tokens_total{role=%q,kind="prompt"}`, role)),
		completionTokens: metrics.GetOrCreateCounter(fmt.Sprintf(`vlproxy_model_tokens_total{role=%q,kind="completion"}`, role)),
		inFlight:         metrics.GetOrCreateGauge(`vlproxy_model_in_flight{`+l+`}`, nil),
		queued:           metrics.GetOrCreateGauge(`vlproxy_model_queued{`+l+`}`, nil),
		errors:           map[string]*metrics.Counter{},
	}
	return m
}

func (m *clientMetrics) errorsOf(kind string) *metrics.Counter {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.errors[kind]
	if !ok {
		c = metrics.GetOrCreateCounter(fmt.Sprintf(`vlproxy_model_errors_total{role=%q,kind=%q}`, m.role, kind))
		m.errors[kind] = c
	}
	return c
}
