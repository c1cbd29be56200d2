// Package pipeline is the `_search`, `_msearch` and `_count` path of the proxy: per-request
// switches (headers, experiment variant, `ext.vlproxy`), the result cache with single-flight,
// rewrite of `multimodal` clauses, the upstream search, reranking of the top window, the
// explanation, and the X-VLProxy-* status headers.
//
// proxy/ owns the server, the upstream pool and error rendering; it hands every request of those
// three endpoints to Pipeline.Serve through a Forwarder that sends a buffered request upstream.
// A request that carries nothing for vlproxy (no `multimodal` clause, no `ext.vlproxy`, no rerank
// switched on) is forwarded with its body bytes unchanged.
package pipeline

import (
	"context"
	"log/slog"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vlproxy/vlproxy/cache"
	"github.com/vlproxy/vlproxy/proxy/experiment"
	"github.com/vlproxy/vlproxy/proxy/resultcache"
	"github.com/vlproxy/vlproxy/rerank"
	"github.com/vlproxy/vlproxy/rewrite"
)

// Kind is the endpoint a request goes to.
type Kind uint8

const (
	Search Kind = iota + 1
	Msearch
	Count
)

func (k Kind) String() string {
	return [...]string{"", "search", "msearch", "count"}[k]
}

// Forwarder sends a request whose body is fully buffered to an upstream node, retrying where
// that is safe, and fills resp with the whole response. The error is non-nil only when no
// response was had; it implements ESError for proxy/ to render.
type Forwarder interface {
	Forward(ctx context.Context, req *fasthttp.Request, resp *fasthttp.Response) error
}

// Rewriter is what the pipeline uses of rewrite.Rewriter.
type Rewriter interface {
	Rewrite(ctx context.Context, req rewrite.Request) (rewrite.Result, error)
}

// Reranker is what the pipeline uses of rerank.Reranker.
type Reranker interface {
	Prepare(req rerank.Request) (plan *rerank.Plan, upstreamBody []byte, upstreamQuery string, skip string, err error)
	Apply(ctx context.Context, plan *rerank.Plan, esBody []byte) (rerank.Result, error)
	// EnabledFor reports whether the index expression has reranking on by default.
	EnabledFor(index string) bool
}

// Config holds the pipeline's own settings.
type Config struct {
	// Timeout bounds the whole search path (rewrite + search + rerank). Default: 30s.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{Timeout: 30 * time.Second} }

// Pipeline serves the search endpoints. Every dependency except the Forwarder may be nil:
// without a Rewriter a `multimodal` clause becomes its plain-text query; without a Reranker
// nothing is reranked; without a result cache every response is a bypass.
type Pipeline struct {
	cfg     Config
	fwd     Forwarder
	rw      Rewriter
	rr      Reranker
	scorers map[string]Reranker
	exp     *experiment.Set
	results *cache.Cache
	keys    *resultcache.Keyer
	lag     time.Duration
	log     *slog.Logger
}

// Deps are the parts a Pipeline is built from.
type Deps struct {
	Forwarder Forwarder
	Rewriter  Rewriter
	Reranker  Reranker
	// Scorers are rerankers by scorer name, for experiment variants that name one; a variant
	// whose scorer is not here uses Reranker.
	Scorers     map[string]Reranker
	Experiments *experiment.Set
	Results     *cache.Cache       // result cache; nil disables it
	Keys        *resultcache.Keyer // result-cache keys and write invalidation, shared with the write path
	// RefreshLag: a response is not stored when a write to what it searched passed through
	// less than this long ago (the cluster may not have made the write searchable yet).
	RefreshLag time.Duration
	Log        *slog.Logger
}

// New builds a Pipeline.
func New(cfg Config, d Deps) *Pipeline {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultConfig().Timeout
	}
	if d.Results == nil || d.Keys == nil {
		d.Results, d.Keys = nil, nil
	}
	if d.Experiments == nil {
		d.Experiments, _ = experiment.New(experiment.Config{})
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	return &Pipeline{cfg: cfg, fwd: d.Forwarder, rw: d.Rewriter, rr: d.Reranker, scorers: d.Scorers, exp: d.Experiments,
		results: d.Results, keys: d.Keys, lag: d.RefreshLag, log: d.Log}
}

// Timings are the stages of one request, for Server-Timing.
type Timings struct {
	Rewrite, Model, Search, Rerank time.Duration
}

// noVariant labels the metrics of requests outside any experiment (shadow mode by header).
var noVariant = experiment.Variant{Experiment: "none", Name: "none"}

// observe records per-variant latency, rerank status and how reranking changed the order.
func (p *Pipeline) observe(in *input, parts []*part, d time.Duration) {
	v := noVariant
	if in.variant != nil {
		v = *in.variant
	} else if len(parts) == 0 || parts[0].plan == nil {
		return // nothing experimental happened
	}
	o := experiment.Observation{Latency: d}
	if len(parts) > 0 {
		pt := parts[0]
		o.RerankStatus = pt.rrState
		if pt.shadow.Scored > 0 {
			o.Compared = true
			o.Top1Changed = pt.shadow.Top1Changed
			o.Overlap = pt.shadow.Overlap
			o.Displacement = pt.shadow.Displacement
		}
	}
	p.exp.Observe(v, o)
}
