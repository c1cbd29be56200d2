package cache

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// One family per measure, labelled by Config.Name: caches with the same Name share their series
// (the exported values are the sum over them); Stats stays per Cache.
var (
	hitsVec = promauto.NewCounterVec(prometheus.CounterOpts{Name: "vlproxy_cache_hits_total",
		Help: "Lookups that found a live entry in the in-process cache."}, []string{"cache"})
	missesVec = promauto.NewCounterVec(prometheus.CounterOpts{Name: "vlproxy_cache_misses_total",
		Help: "Lookups that found no live entry in the in-process cache."}, []string{"cache"})
	evictionsVec = promauto.NewCounterVec(prometheus.CounterOpts{Name: "vlproxy_cache_evictions_total",
		Help: "Entries dropped to stay within the byte bound."}, []string{"cache"})
	expirationsVec = promauto.NewCounterVec(prometheus.CounterOpts{Name: "vlproxy_cache_expirations_total",
		Help: "Entries dropped because their TTL passed."}, []string{"cache"})
	refusedVec = promauto.NewCounterVec(prometheus.CounterOpts{Name: "vlproxy_cache_refused_total",
		Help: "Values not stored because they were larger than the cache's max entry size."}, []string{"cache"})
	collapsedVec = promauto.NewCounterVec(prometheus.CounterOpts{Name: "vlproxy_cache_collapsed_total",
		Help: "Concurrent identical misses that waited for another caller's computation (single-flight)."}, []string{"cache"})
	bytesVec = promauto.NewGaugeVec(prometheus.GaugeOpts{Name: "vlproxy_cache_bytes",
		Help: "Bytes held by the in-process cache (keys, values and per-entry overhead)."}, []string{"cache"})
	entriesVec = promauto.NewGaugeVec(prometheus.GaugeOpts{Name: "vlproxy_cache_entries",
		Help: "Entries held by the in-process cache."}, []string{"cache"})
	maxBytesVec = promauto.NewGaugeVec(prometheus.GaugeOpts{Name: "vlproxy_cache_max_bytes",
		Help: "The in-process cache's byte bound."}, []string{"cache"})
)

type cacheMetrics struct {
	hits, misses, evictions, expirations, refused, collapsed prometheus.Counter
	bytes, entries, maxBytes                                 prometheus.Gauge
}

func metricsFor(name string) *cacheMetrics {
	return &cacheMetrics{
		hits:        hitsVec.WithLabelValues(name),
		misses:      missesVec.WithLabelValues(name),
		evictions:   evictionsVec.WithLabelValues(name),
		expirations: expirationsVec.WithLabelValues(name),
		refused:     refusedVec.WithLabelValues(name),
		collapsed:   collapsedVec.WithLabelValues(name),
		bytes:       bytesVec.WithLabelValues(name),
		entries:     entriesVec.WithLabelValues(name),
		maxBytes:    maxBytesVec.WithLabelValues(name),
	}
}
