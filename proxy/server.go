// Package proxy owns the HTTP side of vlproxy: the fasthttp server and routing, the upstream node pool
// (round-robin balancing, active and passive health, retries, deadlines), byte-exact pass-through of
// every ES API, ES-shaped errors, the /_vlproxy/* endpoints, Server-Timing and metrics. Searches go
// through Server.serveSearch (search.go) to proxy/pipeline (switches, result cache, rewrite → ES →
// rerank); writes that pass through invalidate cached results (Server.invalidate); the optional
// parts are wired with Options (options.go).
package proxy

import (
	"context"
	"errors"
	"fmt"
	"github.com/vlproxy/vlproxy/internal/eserr"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"

	"github.com/vlproxy/vlproxy/cache"
	"github.com/vlproxy/vlproxy/proxy/pipeline"
	"github.com/vlproxy/vlproxy/proxy/resultcache"
)

// Server is a running proxy. Create it with New, run it with Serve or ListenAndServe, stop it with
// Shutdown.
type Server struct {
	cfg   Config
	log   *slog.Logger
	nodes []*node
	sel   selector
	srv   *fasthttp.Server

	draining   atomic.Bool
	deadlines  *sweeper // coarse deadlines of client and upstream connections (deadline.go)
	stopHealth chan struct{}
	healthDone chan struct{}
	stopOnce   sync.Once

	// The search pipeline and what hangs off it (see options.go). pipe is never nil: without
	// options it forwards searches unchanged.
	pipe       *pipeline.Pipeline
	keys       *resultcache.Keyer // nil without a result cache
	caches     []*cache.Cache
	fleet      Fleet // nil: a clear reaches this replica only
	components []Component
	adminToken string
	ui         fasthttp.RequestHandler // nil: no playground
	stopBg     chan struct{}
	bg         sync.WaitGroup
}

// maxUpstreams bounds the node list so the retry loop can track tried nodes in one word.
const maxUpstreams = 64

// New validates cfg, builds the node pool and starts active health checks (stopped by Shutdown).
func New(cfg Config, log *slog.Logger, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.Upstreams) > maxUpstreams {
		return nil, fmt.Errorf("upstreams: at most %d nodes are supported", maxUpstreams)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log, sel: &roundRobin{}, deadlines: &sweeper{}}
	for _, u := range cfg.Upstreams {
		n, err := newNode(u, &s.cfg, s.deadlines)
		if err != nil {
			return nil, err
		}
		s.nodes = append(s.nodes, n)
	}
	maxBody := int(min(int64(cfg.MaxBodySize), int64(^uint(0)>>1)))
	s.srv = &fasthttp.Server{
		Handler:      s.handle,
		ErrorHandler: s.handleBadRequest,
		Logger:       fasthttpLogger{log},
		// Bodies stream: MaxRequestBodySize only bounds what fasthttp reads ahead; the proxy enforces
		// max_body_size itself while streaming.
		StreamRequestBody:            true,
		MaxRequestBodySize:           maxBody,
		DisablePreParseMultipartForm: true,
		ReadBufferSize:               int(cfg.MaxHeaderSize),
		WriteBufferSize:              32 << 10,
		ReadTimeout:                  cfg.ReadTimeout,
		WriteTimeout:                 cfg.WriteTimeout,
		IdleTimeout:                  cfg.IdleTimeout,
		Concurrency:                  cfg.MaxConns,
		NoDefaultServerHeader:        true,
		NoDefaultDate:                true,
		NoDefaultContentType:         true,
		// The proxy keeps its own request start (request.start); fasthttp need not read the clock
		// for RequestCtx.Time, which nothing here calls.
		LazyRequestTime:       true,
		CloseOnShutdown:       true,
		SecureErrorLogMessage: true,
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	s.applyOptions(&o)
	if cfg.HealthCheckInterval > 0 {
		s.stopHealth = make(chan struct{})
		s.healthDone = make(chan struct{})
		go s.healthLoop(s.stopHealth, s.healthDone)
	}
	return s, nil
}

// Handler returns the request handler, for tests that drive it through their own fasthttp.Server.
// Serve configures streaming, limits and timeouts that a bare handler does not get.
func (s *Server) Handler() fasthttp.RequestHandler { return s.handle }

// Serve accepts clients on ln until Shutdown; it returns nil after a Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.log.Info("vlproxy listening", "addr", ln.Addr().String(), "upstreams", s.cfg.Upstreams)
	return s.srv.Serve(&drainListener{Listener: ln, deadlines: s.deadlines})
}

// ListenAndServe listens on Config.Listen and serves.
func (s *Server) ListenAndServe() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s (-listen): %w", s.cfg.Listen, err)
	}
	return s.Serve(ln)
}

// drainGrace is how long Shutdown keeps serving, with Connection: close on every response,
// before it closes connections.
const drainGrace = 500 * time.Millisecond

// Shutdown marks the server draining and serves on for drainGrace, then stops accepting
// connections, lets in-flight requests finish (responses carry
// Connection: close) and returns when all connections are closed or ctx is done. Health checks stop and
// idle upstream connections close.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	s.log.Info("vlproxy draining")
	// A grace period before connections close: every response now carries Connection: close
	// and health answers draining, so clients move their keep-alive connections elsewhere
	// instead of sending on one at the instant it is closed (a request lost to that race
	// cannot be retried when it has a body).
	grace := time.NewTimer(drainGrace)
	select {
	case <-grace.C:
	case <-ctx.Done():
		grace.Stop()
	}
	err := s.srv.ShutdownWithContext(ctx)
	s.stopOnce.Do(func() {
		if s.stopHealth != nil {
			close(s.stopHealth)
			<-s.healthDone
		}
	})
	s.stopBackground()
	for _, n := range s.nodes {
		n.client.CloseIdleConnections()
	}
	if err != nil {
		return fmt.Errorf("cannot drain within the deadline (-drain-timeout): %w", err)
	}
	s.log.Info("vlproxy stopped")
	return nil
}

// handle is the entry point of every request: classify, dispatch, then stamp Server-Timing and count.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	rq := request{start: time.Now()}
	rq.deadline = rq.start.Add(s.cfg.RequestTimeout)
	rq.route = classifyRoute(ctx.Method(), ctx.Request.Header.RequestURI(), s.cfg.MetricsPath)
	if s.cfg.Pprof && isPprofPath(ctx.Request.Header.RequestURI()) {
		rq.route = route{class: classAdmin}
	}
	inFlight.Inc()
	if cl := ctx.Request.Header.ContentLength(); cl > 0 && int64(cl) > int64(s.cfg.MaxBodySize) {
		s.fail(ctx, &rq, errBodyTooLarge(s.cfg.MaxBodySize))
	} else {
		switch rq.route.class {
		case classAdmin:
			s.serveAdmin(ctx, &rq)
		case classSearch, classMsearch, classCount:
			s.serveSearch(ctx, &rq)
		default:
			s.passThrough(ctx, &rq)
		}
	}
	if s.draining.Load() {
		// After the handler: a pass-through parses the upstream's answer into the response, which
		// would clear a flag set before.
		ctx.SetConnectionClose()
	}
	s.finish(ctx, &rq)
	inFlight.Dec()
}

// serverTimingKey is canonical, so setting it skips fasthttp's key normalization.
var serverTimingKey = []byte("Server-Timing")

func (s *Server) finish(ctx *fasthttp.RequestCtx, rq *request) {
	var buf [128]byte
	total := time.Since(rq.start)
	st := rq.timing.appendHeader(buf[:0], total)
	if !rq.noTiming {
		if old := ctx.Response.Header.PeekCanonical(serverTimingKey); len(old) > 0 {
			st = append(append(append([]byte(nil), old...), ", "...), st...)
		}
	}
	ctx.Response.Header.SetCanonical(serverTimingKey, st)
	countRequest(rq.route.class, ctx.Response.StatusCode())
	observeTiming(rq.route.class, &rq.timing, total)
	if rq.body != nil {
		bytebufferpool.Put(rq.body)
		rq.body = nil
	}
}

// fail answers with the ES-shaped form of err and logs it with a short reason.
func (s *Server) fail(ctx *fasthttp.RequestCtx, rq *request, err error) {
	status, typ, reason := classify(err)
	if rq.body != nil {
		bytebufferpool.Put(rq.body)
		rq.body = nil
	}
	ctx.Response.ResetBody()
	ctx.Response.SetStatusCode(status)
	ctx.Response.Header.SetContentType("application/json; charset=UTF-8")
	var buf [512]byte
	ctx.Response.SetBody(eserr.Append(buf[:0], status, typ, reason))
	if status == fasthttp.StatusRequestEntityTooLarge || errors.Is(err, errClientBody) {
		// The rest of the body was not read; the connection cannot carry another request.
		ctx.SetConnectionClose()
	}
	level := slog.LevelWarn
	if status >= 500 {
		level = slog.LevelError
	}
	s.log.LogAttrs(context.Background(), level, "request failed",
		slog.Int("status", status), slog.String("type", typ), slog.String("reason", reason),
		slog.String("method", string(ctx.Method())), slog.String("uri", string(ctx.Request.Header.RequestURI())),
		slog.String("class", rq.route.class.String()), slog.String("upstream", rq.upstream),
		slog.String("client", ctx.RemoteAddr().String()), slog.String("error", err.Error()))
}

// handleBadRequest answers requests fasthttp could not parse (malformed request line or headers,
// headers over max_header_size, broken chunked framing).
func (s *Server) handleBadRequest(ctx *fasthttp.RequestCtx, err error) {
	rq := request{start: time.Now(), route: route{class: classOther}}
	var e *eserr.Error
	var tooBig *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &tooBig):
		e = &eserr.Error{Status: fasthttp.StatusBadRequest, Type: typeHeaderTooLong,
			Reason: "request headers are larger than max_header_size (" + s.cfg.MaxHeaderSize.String() + "); raise -max-header-size", Err: err}
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		e = errBodyTooLarge(s.cfg.MaxBodySize)
	default:
		e = errBadRequest("cannot parse the HTTP request", err)
	}
	s.fail(ctx, &rq, e)
	ctx.SetConnectionClose()
	s.finish(ctx, &rq)
}

// fasthttpLogger sends fasthttp's own messages to slog at debug level.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Debug("fasthttp", "msg", fmt.Sprintf(format, args...))
}
