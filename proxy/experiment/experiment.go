// Package experiment splits traffic into A/B variants stickily by a key header and records
// per-variant metrics (latency, rerank status, top-1 change rate, shadow overlap/displacement).
// A variant is a set of switches the proxy applies to the request.
package experiment

import (
	"fmt"
	"github.com/vlproxy/vlproxy/internal/eserr"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Variant is one arm of an experiment.
type Variant struct {
	// Name is reported in X-VLProxy-Variant. Required, unique within the experiment.
	Name string `yaml:"name"`
	// Weight is the relative share of traffic. Default: 0 (only reachable when forced or default).
	Weight float64 `yaml:"weight"`
	// Rewrite forces query rewriting on or off; nil leaves the request's own switches. Default: nil.
	Rewrite *bool `yaml:"rewrite"`
	// Rerank is "on", "off" or "shadow"; "" leaves the request's own switches. Default: "".
	Rerank string `yaml:"rerank"`
	// WindowSize overrides rank_window_size when > 0. Default: 0.
	WindowSize int `yaml:"window_size"`
	// Scorer names the scorer to use ("api" or "judge"); "" uses the configured one. Default: "".
	Scorer string `yaml:"scorer"`

	// Experiment is the name of the experiment the variant belongs to (set by New).
	Experiment string `yaml:"-"`
}

// Experiment is one sticky split.
type Experiment struct {
	// Name identifies the experiment in metrics and salts the hash. Required.
	Name string `yaml:"name"`
	// KeyHeader is the request header whose value picks the variant. Default: X-User-Id.
	KeyHeader string `yaml:"key_header"`
	// DefaultVariant serves requests without the key header. Default: the first variant.
	DefaultVariant string `yaml:"default_variant"`
	// Variants are the arms; their weights must sum to more than 0.
	Variants []Variant `yaml:"variants"`
}

// Config lists the experiments. The first experiment whose key header the request carries
// decides; a request with none of the key headers gets the first experiment's default variant.
type Config struct {
	// Experiments, in priority order. Default: none (no variant header is sent).
	Experiments []Experiment `yaml:"experiments"`
}

// DefaultConfig returns a configuration without experiments.
func DefaultConfig() Config { return Config{} }

type compiled struct {
	Experiment
	cum  []float64 // cumulative normalized weights
	def  int
	seed uint64
}

// Set is a validated configuration, safe for concurrent use.
type Set struct {
	exps []compiled
	mu   sync.Mutex
	vm   map[string]*variantMetrics
}

// New validates cfg: names present and unique, weights finite and >= 0 with a positive sum,
// known rerank modes, and an existing default variant.
func New(cfg Config) (*Set, error) {
	s := &Set{vm: map[string]*variantMetrics{}}
	seen := map[string]bool{}
	for ei, e := range cfg.Experiments {
		if e.Name == "" {
			return nil, fmt.Errorf("cannot use experiments[%d]: missing name", ei)
		}
		if seen[e.Name] {
			return nil, fmt.Errorf("cannot use experiment %q: duplicate name", e.Name)
		}
		seen[e.Name] = true
		if e.KeyHeader == "" {
			e.KeyHeader = "X-User-Id"
		}
		if len(e.Variants) == 0 {
			return nil, fmt.Errorf("cannot use experiment %q: no variants", e.Name)
		}
		c := compiled{Experiment: e, def: -1, seed: fnv1a(fnvOffset, e.Name)}
		c.Variants = append([]Variant(nil), e.Variants...)
		names := map[string]bool{}
		var sum float64
		for vi := range c.Variants {
			v := &c.Variants[vi]
			v.Experiment = e.Name
			if v.Name == "" {
				return nil, fmt.Errorf("cannot use experiment %q variant %d: missing name", e.Name, vi)
			}
			if names[v.Name] {
				return nil, fmt.Errorf("cannot use experiment %q: duplicate variant %q", e.Name, v.Name)
			}
			names[v.Name] = true
			if math.IsNaN(v.Weight) || math.IsInf(v.Weight, 0) || v.Weight < 0 {
				return nil, fmt.Errorf("cannot use experiment %q variant %q: weight %v must be finite and >= 0", e.Name, v.Name, v.Weight)
			}
			switch v.Rerank {
			case "", "on", "off", "shadow":
			default:
				return nil, fmt.Errorf("cannot use experiment %q variant %q: rerank %q must be on, off or shadow", e.Name, v.Name, v.Rerank)
			}
			if v.WindowSize < 0 {
				return nil, fmt.Errorf("cannot use experiment %q variant %q: window_size %d must be >= 0", e.Name, v.Name, v.WindowSize)
			}
			if v.Name == e.DefaultVariant {
				c.def = vi
			}
			sum += v.Weight
		}
		if !(sum > 0) {
			return nil, fmt.Errorf("cannot use experiment %q: variant weights sum to %v, want > 0", e.Name, sum)
		}
		if e.DefaultVariant == "" {
			c.def = 0
		} else if c.def < 0 {
			return nil, fmt.Errorf("cannot use experiment %q: default_variant %q is not a variant", e.Name, e.DefaultVariant)
		}
		acc := 0.0
		for _, v := range c.Variants {
			acc += v.Weight / sum
			c.cum = append(c.cum, acc)
		}
		c.cum[len(c.cum)-1] = 1
		s.exps = append(s.exps, c)
	}
	return s, nil
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnv1a(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// mix is the splitmix64 finalizer: FNV-1a leaves sequential keys poorly spread in the high bits.
func mix(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// bucket maps a key to [0,1) deterministically per experiment.
func (c *compiled) bucket(key string) float64 {
	h := mix(fnv1a(fnv1a(c.seed, "\x00"), key))
	return float64(h>>11) / (1 << 53)
}

// Pick chooses the variant for a request. forced (X-VLProxy-Variant) wins: a variant name, or
// "experiment/variant"; an unknown name is a 400 *eserr.Error. Otherwise the first experiment whose
// key header is present assigns by a hash of experiment name and key, weighted; without any
// key the first experiment's default variant serves. ok is false when no experiments exist.
func (s *Set) Pick(header func(string) string, forced string) (Variant, bool, error) {
	if len(s.exps) == 0 {
		if forced != "" {
			return Variant{}, false, eserr.BadRequest("unknown variant [%s] in header [X-VLProxy-Variant]: no experiments configured", forced)
		}
		return Variant{}, false, nil
	}
	if forced = strings.TrimSpace(forced); forced != "" {
		exp, name, qualified := strings.Cut(forced, "/")
		if !qualified {
			name, exp = exp, ""
		}
		for _, c := range s.exps {
			if exp != "" && c.Name != exp {
				continue
			}
			for _, v := range c.Variants {
				if v.Name == name {
					return v, true, nil
				}
			}
		}
		return Variant{}, false, eserr.BadRequest("unknown variant [%s] in header [X-VLProxy-Variant]", forced)
	}
	for i := range s.exps {
		c := &s.exps[i]
		key := header(c.KeyHeader)
		if key == "" {
			continue
		}
		u := c.bucket(key)
		for vi, cu := range c.cum {
			if u < cu {
				return c.Variants[vi], true, nil
			}
		}
		return c.Variants[len(c.Variants)-1], true, nil
	}
	c := &s.exps[0]
	return c.Variants[c.def], true, nil
}

// Observation is what the proxy learned from serving one request in a variant.
type Observation struct {
	// Latency is the total time of the request.
	Latency time.Duration
	// RerankStatus is the X-VLProxy-Rerank value (applied, partial, cached, shadow, skipped:…, fallback:…, off).
	RerankStatus string
	// Compared is true when a rerank order was computed (Top1Changed, Overlap, Displacement are set).
	Compared     bool
	Top1Changed  bool
	Overlap      float64 // top-k overlap between ES and reranked order, 0..1
	Displacement float64 // mean absolute rank displacement
}

type variantMetrics struct {
	latency      prometheus.Observer
	compared     prometheus.Counter
	top1Changed  prometheus.Counter
	overlap      prometheus.Observer
	displacement prometheus.Observer
	experiment   string
	variant      string
}

var (
	expLatencyVec = promauto.NewHistogramVec(prometheus.HistogramOpts{Name: "vlproxy_experiment_request_duration_seconds",
		Help:    "Duration of the searches a variant served.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"experiment", "variant"})
	expComparedVec = promauto.NewCounterVec(prometheus.CounterOpts{Name: "vlproxy_experiment_rerank_compared_total",
		Help: "Searches whose reranked order was compared with the original order."}, []string{"experiment", "variant"})
	expTop1ChangedVec = promauto.NewCounterVec(prometheus.CounterOpts{Name: "vlproxy_experiment_rerank_top1_changed_total",
		Help: "Compared searches whose first hit changed with the rerank."}, []string{"experiment", "variant"})
	expOverlapVec = promauto.NewHistogramVec(prometheus.HistogramOpts{Name: "vlproxy_experiment_rerank_topk_overlap_ratio",
		Help:    "Share of the original top k that stays in the reranked top k (0..1).",
		Buckets: prometheus.LinearBuckets(0, 0.1, 11)}, []string{"experiment", "variant"})
	expDisplacementVec = promauto.NewHistogramVec(prometheus.HistogramOpts{Name: "vlproxy_experiment_rerank_rank_displacement",
		Help:    "Mean absolute change of rank per hit that the rerank caused.",
		Buckets: []float64{0, .5, 1, 2, 3, 5, 8, 13, 21, 34}}, []string{"experiment", "variant"})
	expStatusVec = promauto.NewCounterVec(prometheus.CounterOpts{Name: "vlproxy_experiment_rerank_status_total",
		Help: "Searches a variant served, by rerank status (applied, partial, cached, skipped, fallback, shadow, off, none)."},
		[]string{"experiment", "variant", "status"})
)

func (s *Set) metricsFor(v Variant) *variantMetrics {
	key := v.Experiment + "\x00" + v.Name
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.vm[key]; ok {
		return m
	}
	m := &variantMetrics{
		experiment:   v.Experiment,
		variant:      v.Name,
		latency:      expLatencyVec.WithLabelValues(v.Experiment, v.Name),
		compared:     expComparedVec.WithLabelValues(v.Experiment, v.Name),
		top1Changed:  expTop1ChangedVec.WithLabelValues(v.Experiment, v.Name),
		overlap:      expOverlapVec.WithLabelValues(v.Experiment, v.Name),
		displacement: expDisplacementVec.WithLabelValues(v.Experiment, v.Name),
	}
	s.vm[key] = m
	return m
}

// Observe records one request served by v. The top-1 change rate is
// vlproxy_experiment_rerank_top1_changed_total / vlproxy_experiment_rerank_compared_total.
func (s *Set) Observe(v Variant, o Observation) {
	m := s.metricsFor(v)
	m.latency.Observe(o.Latency.Seconds())
	st := o.RerankStatus
	if st == "" {
		st = "none"
	}
	expStatusVec.WithLabelValues(m.experiment, m.variant, st).Inc()
	if o.Compared {
		m.compared.Inc()
		if o.Top1Changed {
			m.top1Changed.Inc()
		}
		m.overlap.Observe(o.Overlap)
		m.displacement.Observe(o.Displacement)
	}
}

// Empty reports whether no experiment is configured: every request is then served without a
// variant, and the proxy may skip the per-request pick.
func (s *Set) Empty() bool { return len(s.exps) == 0 }
