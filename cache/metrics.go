package cache

import (
	"fmt"

	"github.com/VictoriaMetrics/metrics"
)

// cacheMetrics are shared by every Cache with the same Name, so the exported series are the
// sum over them; Stats stays per Cache.
type cacheMetrics struct {
	hits, misses, evictions, expirations, refused, collapsed *metrics.Counter
	bytes, entries, maxBytes                                 *metrics.Gauge
}

func metricsFor(name string) *cacheMetrics {
	label := fmt.Sprintf(`{cache=%q}`, name)
	return &cacheMetrics{
		hits:        metrics.GetOrCreateCounter("vlproxy_cache_hits_total" + label),
		misses:      metrics.GetOrCreateCounter("vlproxy_cache_misses_total" + label),
		evictions:   metrics.GetOrCreateCounter("vlproxy_cache_evictions_total" + label),
		expirations: metrics.GetOrCreateCounter("vlproxy_cache_expirations_total" + label),
		refused:     metrics.GetOrCreateCounter("vlproxy_cache_refused_total" + label),
		collapsed:   metrics.GetOrCreateCounter("vlproxy_cache_collapsed_total" + label),
		bytes:       metrics.GetOrCreateGauge("vlproxy_cache_bytes"+label, nil),
		entries:     metrics.GetOrCreateGauge("vlproxy_cache_entries"+label, nil),
		maxBytes:    metrics.GetOrCreateGauge("vlproxy_cache_max_bytes"+label, nil),
	}
}
