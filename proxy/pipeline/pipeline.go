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
	"runtime"
	"sync/atomic"
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
// that is safe, and fills resp with the whole response, without hop-by-hop fields. resp may be
// the client's response: its header is replaced by the answer's, and left empty on an error.
// The error is non-nil only when no response was had; it implements ESError for proxy/ to render.
type Forwarder interface {
	Forward(ctx context.Context, req *fasthttp.Request, resp *fasthttp.Response) error
}

// Rewriter is what the pipeline uses of rewrite.Rewriter.
type Rewriter interface {
	Rewrite(ctx context.Context, req rewrite.Request) (rewrite.Result, error)
	// Census counts a body's clauses and checks what needs no model (see rewrite.Census).
	Census(body []byte) (rewrite.Census, error)
}

// Reranker is what the pipeline uses of rerank.Reranker.
type Reranker interface {
	Prepare(req rerank.Request) (plan *rerank.Plan, upstreamBody []byte, upstreamQuery string, skip string, err error)
	Apply(ctx context.Context, plan *rerank.Plan, esBody []byte) (rerank.Result, error)
	// EnabledFor reports whether the index expression has reranking on by default.
	EnabledFor(index string) bool
}

// Config holds the pipeline's own settings. Every limit is per client request; a request over
// one is refused (ES-shaped error naming the flag) before anything is forwarded or any model
// is called.
type Config struct {
	// Timeout bounds the whole search path (rewrite + search + rerank). Default: 30s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxDecodedBodySize bounds a gzip/deflate search body once decompressed, checked while
	// decompressing (413). A bomb costs its sender a few hundred bytes and the proxy up to
	// this much, so it is well below max_body_size. Default 32MiB.
	MaxDecodedBodySize int64 `yaml:"max_decoded_body_size"`
	// MaxDecompressions bounds the request bodies decompressed at once, process-wide (each may
	// take up to MaxDecodedBodySize); four times as many may wait, one more is a 429.
	// Default: the number of CPUs.
	MaxDecompressions int `yaml:"max_decompressions"`
	// MaxClauses bounds the multimodal clauses of one request: one body, or all searches of an
	// _msearch together (400). Default 8.
	MaxClauses int `yaml:"max_clauses"`
	// MaxImages bounds the clause images of one request (400). Default 4.
	MaxImages int `yaml:"max_images"`
	// MaxModelCalls bounds the model calls (keywords, rerank scoring) of one request. A request
	// with more clauses is refused (400); rerank calls beyond it are not made (partial). Default 256.
	MaxModelCalls int `yaml:"max_model_calls"`
	// MsearchConcurrency bounds the searches of one _msearch rewritten or reranked at once.
	// Default 4.
	MsearchConcurrency int `yaml:"msearch_concurrency"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Timeout: 30 * time.Second, MaxDecodedBodySize: 32 << 20, MaxDecompressions: runtime.NumCPU(),
		MaxClauses: 8, MaxImages: 4, MaxModelCalls: 256, MsearchConcurrency: 4}
}

// withDefaults gives every zero field its default.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Timeout <= 0 {
		c.Timeout = d.Timeout
	}
	if c.MaxDecodedBodySize <= 0 {
		c.MaxDecodedBodySize = d.MaxDecodedBodySize
	}
	for _, f := range []struct{ v, def *int }{{&c.MaxClauses, &d.MaxClauses}, {&c.MaxImages, &d.MaxImages},
		{&c.MaxModelCalls, &d.MaxModelCalls}, {&c.MsearchConcurrency, &d.MsearchConcurrency},
		{&c.MaxDecompressions, &d.MaxDecompressions}} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return c
}

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
	memo    hitMemo // the key parts of repeated result-cache hits, by their raw bytes
	keys    *resultcache.Keyer
	lag     time.Duration
	watch   func(ctx context.Context, rc *fasthttp.RequestCtx) (context.Context, func())
	log     *slog.Logger
	// decompress gates body decompression: slots in flight, and a count of those waiting.
	decompress chan struct{}
	waiting    atomic.Int64
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
	// WatchClient derives from ctx a context that also ends when the client of rc goes away,
	// and a function to call before the handler returns. It is called only for requests that
	// may call a model; nil: clients are not watched.
	WatchClient func(ctx context.Context, rc *fasthttp.RequestCtx) (context.Context, func())
	Log         *slog.Logger
}

// New builds a Pipeline.
func New(cfg Config, d Deps) *Pipeline {
	cfg = cfg.withDefaults()
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
		results: d.Results, keys: d.Keys, lag: d.RefreshLag, watch: d.WatchClient, log: d.Log, decompress: make(chan struct{}, cfg.MaxDecompressions)}
}

// Timings are the stages of one request, for Server-Timing. They are disjoint wall-clock
// spans: Rewrite and Rerank exclude the model time spent inside them, which Model holds, so
// their sum never exceeds the request's time. Searches of an _msearch run concurrently: each
// stage is the wall time of its phase, and Model is capped at the phases it lies in.
type Timings struct {
	Rewrite time.Duration // finding clauses, images, building queries (model time excluded)
	Model   time.Duration // waiting for model answers, of rewrite and rerank
	Search  time.Duration // the upstream round trip (retries included)
	Rerank  time.Duration // reading hits, reordering, explaining (model time excluded)
}

// phase adds one phase of wall time wall, of which model was spent waiting for the model
// (summed over concurrent work, hence capped), to stage and t.Model.
func (t *Timings) phase(stage *time.Duration, wall, model time.Duration) {
	model = min(model, wall)
	*stage += wall - model
	t.Model += model
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
