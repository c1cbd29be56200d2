package proxy

import (
	"context"
	"time"

	"github.com/vlproxy/vlproxy/internal/eserr"

	"github.com/valyala/fasthttp"

	"github.com/vlproxy/vlproxy/cache"
	"github.com/vlproxy/vlproxy/proxy/experiment"
	"github.com/vlproxy/vlproxy/proxy/pipeline"
	"github.com/vlproxy/vlproxy/proxy/resultcache"
)

// Option adds an optional part to a Server: the search pipeline's stages, caches, model
// endpoints shown in /_vlproxy/health. A Server without options is a plain pass-through proxy.
type Option func(*options)

type options struct {
	pipeline    pipeline.Config
	rewriter    pipeline.Rewriter
	reranker    pipeline.Reranker
	scorers     map[string]pipeline.Reranker
	experiments *experiment.Set
	results     *cache.Cache
	keyCfg      resultcache.Config
	topology    time.Duration
	refreshLag  time.Duration
	shared      resultcache.Shared
	fleet       Fleet
	caches      []*cache.Cache
	components  []Component
	adminToken  string
	ui          fasthttp.RequestHandler
}

// Component is a dependency shown in /_vlproxy/health (a model endpoint, for instance).
type Component struct {
	Name string
	// Health returns a JSON-marshalable state and whether the component is usable.
	Health func() (state any, up bool)
}

// WithPipeline sets the search pipeline's own settings.
func WithPipeline(cfg pipeline.Config) Option { return func(o *options) { o.pipeline = cfg } }

// WithRewriter enables rewriting of `multimodal` clauses.
func WithRewriter(r pipeline.Rewriter) Option { return func(o *options) { o.rewriter = r } }

// WithReranker enables reranking.
func WithReranker(r pipeline.Reranker) Option { return func(o *options) { o.reranker = r } }

// WithScorer registers a reranker under a scorer name, for experiment variants that name it
// (Variant.Scorer); variants without one use the WithReranker reranker.
func WithScorer(name string, r pipeline.Reranker) Option {
	return func(o *options) {
		if o.scorers == nil {
			o.scorers = map[string]pipeline.Reranker{}
		}
		o.scorers[name] = r
	}
}

// WithExperiments enables sticky A/B experiments.
func WithExperiments(e *experiment.Set) Option { return func(o *options) { o.experiments = e } }

// WithResultCache caches search responses in c, keyed and invalidated per cfg. Every
// topologyEvery the proxy reads the cluster's aliases so that writes only invalidate the
// searches that read what they wrote (0: never; every write then invalidates everything
// unless cfg.AssumeConcrete).
func WithResultCache(c *cache.Cache, cfg resultcache.Config, topologyEvery time.Duration) Option {
	return func(o *options) {
		o.results, o.keyCfg, o.topology = c, cfg, topologyEvery
		o.caches = append(o.caches, c)
	}
}

// WithRefreshLag stops the result cache from storing a search's response for lag after a write
// to what it searches: a write made without ?refresh becomes searchable only at the cluster's
// next periodic refresh (index.refresh_interval, 1s by default), and a response filled before
// that must not be served after it. Hits keep working; 0 turns the window off.
func WithRefreshLag(lag time.Duration) Option {
	return func(o *options) { o.refreshLag = lag }
}

// WithSharedGenerations makes result-cache invalidation fleet-wide: writes through this proxy
// bump the generations in sh too, and every cached result is checked against sh before it is
// served (see resultcache.Shared). Without it each replica sees only its own writes.
func WithSharedGenerations(sh resultcache.Shared) Option {
	return func(o *options) { o.shared = sh }
}

// Fleet is how a clear reaches every replica (cache/l2.Client implements it over Redis).
type Fleet interface {
	// OnClear registers fn to run whenever this replica learns of a fleet-wide clear.
	OnClear(fn func())
	// Clear runs the OnClear callbacks here and makes every replica run theirs (before their
	// next cached search); it returns the fleet's clear generation and how many replicas were
	// told at once.
	Clear(ctx context.Context) (generation uint64, told int64, err error)
}

// WithFleet makes POST /_vlproxy/cache/_clear fleet-wide: a clear through any replica flushes
// the caches of every replica, and what the fleet shared before it becomes unreachable.
func WithFleet(f Fleet) Option { return func(o *options) { o.fleet = f } }

// WithCaches lists more caches (model outputs) in GET /_vlproxy/cache and clears them with
// POST /_vlproxy/cache/_clear.
func WithCaches(cs ...*cache.Cache) Option {
	return func(o *options) { o.caches = append(o.caches, cs...) }
}

// WithComponent shows a dependency in /_vlproxy/health.
func WithComponent(c Component) Option {
	return func(o *options) { o.components = append(o.components, c) }
}

// WithAdminToken sets the token that POST /_vlproxy/cache/_clear requires (as
// "Authorization: Bearer <token>"). Without one, clearing is refused.
func WithAdminToken(token string) Option { return func(o *options) { o.adminToken = token } }

// WithUI serves h at /_vlproxy/ui and below it (the playground, package ui). h does its own
// access checks; without this option those paths are a 404 like any unknown /_vlproxy path.
func WithUI(h fasthttp.RequestHandler) Option { return func(o *options) { o.ui = h } }

func (s *Server) applyOptions(o *options) {
	d := pipeline.Deps{
		Forwarder:   searchForwarder{s},
		Rewriter:    o.rewriter,
		Reranker:    o.reranker,
		Scorers:     o.scorers,
		Experiments: o.experiments,
		WatchClient: func(ctx context.Context, rc *fasthttp.RequestCtx) (context.Context, func()) {
			return watchClient(ctx, rc.Conn())
		},
		Log: s.log,
	}
	if o.results != nil {
		s.keys = resultcache.New(o.keyCfg)
		if o.shared != nil {
			s.keys.SetShared(o.shared)
		}
		d.Results, d.Keys, d.RefreshLag = o.results, s.keys, o.refreshLag
	}
	s.pipe = pipeline.New(o.pipeline, d)
	s.caches = o.caches
	if o.fleet != nil {
		s.fleet = o.fleet
		s.fleet.OnClear(s.flushCaches)
	}
	s.components = o.components
	s.adminToken = o.adminToken
	s.ui = o.ui
	s.stopBg = make(chan struct{})
	if s.keys != nil && o.topology > 0 {
		// Read the aliases once before serving, so the first searches already get precise keys
		// (a failure is retried by the loop).
		first := o.topology
		if err := s.refreshTopology(); err != nil {
			s.log.Warn("cannot read the cluster's aliases for the result cache", "err", err)
			first = min(o.topology, 5*time.Second)
		}
		s.bg.Add(1)
		go s.topologyLoop(first, o.topology)
	}
}

func (s *Server) stopBackground() {
	select {
	case <-s.stopBg:
	default:
		close(s.stopBg)
	}
	s.bg.Wait()
}

// topologyLoop keeps the result cache's view of indices and aliases current.
func (s *Server) topologyLoop(first, every time.Duration) {
	defer s.bg.Done()
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-s.stopBg:
			return
		case <-t.C:
		}
		if err := s.refreshTopology(); err != nil {
			s.log.Warn("cannot read the cluster's aliases for the result cache", "err", err)
			t.Reset(min(every, 5*time.Second))
			continue
		}
		t.Reset(every)
	}
}

func (s *Server) refreshTopology() error {
	version := s.keys.TopologyVersion()
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod("GET")
	req.SetRequestURI("/_alias?expand_wildcards=all")
	rq := request{route: route{class: classOther, retryable: true}, start: time.Now()}
	rq.deadline = rq.start.Add(s.cfg.HealthCheckTimeout + time.Second)
	if err := s.roundTrip(&rq, req, resp); err != nil {
		return err
	}
	if resp.StatusCode() != fasthttp.StatusOK {
		return &eserr.Error{Status: resp.StatusCode(), Type: "topology", Reason: "GET /_alias answered " + string(resp.Header.StatusMessage())}
	}
	t, err := resultcache.ParseAliases(resp.Body())
	if err != nil {
		return err
	}
	s.keys.SetTopology(version, t) // false: a write changed it meanwhile; the next round fetches again
	return nil
}
