package modeltest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server is a running simulator. It uses net/http because a closed client
// connection cancels the handler's context: that is how vLLM notices a
// client going away, and how tests observe that the client aborted a call.
type Server struct {
	// URL is the base URL, e.g. "http://127.0.0.1:41234".
	URL string

	ln  net.Listener
	srv *http.Server

	mu         sync.Mutex
	cfg        Config
	queryRe    *regexp.Regexp
	faultsUsed []int
	rng        *rand.Rand
	calls      map[string]int64
	last       map[string][]byte
	gate       chan struct{} // non-nil while paused; closed by Resume
	seq        int64

	inFlight atomic.Int64
	canceled atomic.Int64
}

// NewServer starts a simulator on 127.0.0.1 with a free port. It panics if
// the config's QueryPattern does not compile (a test bug).
func NewServer(cfg Config) *Server {
	s, err := Listen("127.0.0.1:0", cfg)
	if err != nil {
		panic(err)
	}
	return s
}

// Listen starts a simulator on addr.
func Listen(addr string, cfg Config) (*Server, error) {
	s := &Server{calls: map[string]int64{}, last: map[string][]byte{}}
	if err := s.SetConfig(cfg); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	s.ln = ln
	s.URL = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// Close stops the server and releases paused requests.
func (s *Server) Close() {
	s.Resume()
	s.srv.Close()
}

// SetConfig replaces the configuration; fault counters restart.
func (s *Server) SetConfig(cfg Config) error {
	d := cfg.withDefaults()
	var re *regexp.Regexp
	if d.QueryPattern != "" {
		var err error
		if re, err = regexp.Compile(d.QueryPattern); err != nil {
			return fmt.Errorf("cannot compile query_pattern: %w", err)
		}
	}
	s.mu.Lock()
	s.cfg = d
	s.queryRe = re
	s.faultsUsed = make([]int, len(d.Faults))
	s.rng = rand.New(rand.NewPCG(d.Seed, d.Seed^0x9e3779b97f4a7c15))
	s.mu.Unlock()
	return nil
}

// Config returns the current configuration (with defaults applied).
func (s *Server) Config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// Calls returns the number of requests received per path, e.g. "/v1/chat/completions".
func (s *Server) Calls() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]int64, len(s.calls))
	for k, v := range s.calls {
		m[k] = v
	}
	return m
}

// LastRequest returns a copy of the last request body received on path.
func (s *Server) LastRequest(path string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.last[path]...)
}

// InFlight is the number of inference requests being handled right now.
func (s *Server) InFlight() int64 { return s.inFlight.Load() }

// Canceled counts inference requests whose client went away before the answer.
func (s *Server) Canceled() int64 { return s.canceled.Load() }

// Pause holds every inference request after it is read and validated, until
// Resume or until its client goes away. Tests use it to fill concurrency
// limits without relying on timing.
func (s *Server) Pause() {
	s.mu.Lock()
	if s.gate == nil {
		s.gate = make(chan struct{})
	}
	s.mu.Unlock()
}

// Resume releases paused requests.
func (s *Server) Resume() {
	s.mu.Lock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
	s.mu.Unlock()
}

func routeOf(path string) string {
	switch path {
	case "/v1/chat/completions", "/chat/completions":
		return RouteChat
	case "/v1/rerank", "/rerank", "/v2/rerank":
		return RouteRerank
	case "/score", "/v1/score":
		return RouteScore
	case "/v1/embeddings":
		return RouteEmbed
	case "/health":
		return RouteHealth
	case "/v1/models", "/api/tags":
		return RouteModels
	}
	return ""
}

// ServeHTTP routes a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	path := r.URL.Path
	route := routeOf(path)
	s.mu.Lock()
	s.calls[path]++
	s.last[path] = body
	cfg := s.cfg
	s.mu.Unlock()

	if cfg.APIKey != "" && (strings.HasPrefix(path, "/v1/") || strings.HasPrefix(path, "/v2/")) &&
		r.Header.Get("Authorization") != "Bearer "+cfg.APIKey {
		writeFault(w, Fault{Status: 401, Shape: ShapeUnauthorized})
		return
	}
	wantMethod := http.MethodPost
	if route == RouteHealth || route == RouteModels {
		wantMethod = http.MethodGet
	}
	if route == "" {
		writeFault(w, Fault{Status: 404, Shape: ShapeFastAPI, Message: "Not Found"})
		return
	}
	if r.Method != wantMethod {
		writeFault(w, Fault{Status: 405, Shape: ShapeFastAPI, Message: "Method Not Allowed"})
		return
	}

	if f, ok := s.pickFault(route, body); ok {
		if f.Output == "" {
			if !s.wait(r.Context(), time.Duration(f.Delay)) {
				return
			}
			writeFault(w, f)
			return
		}
		// Malformed outputs go through the normal path and latency.
		r = r.WithContext(context.WithValue(r.Context(), outputKey{}, f.Output))
	}

	switch route {
	case RouteHealth:
		if cfg.Unhealthy {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	case RouteModels:
		s.serveModels(w, path, cfg)
		return
	}

	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	var resp any
	var ferr *Fault
	switch route {
	case RouteChat:
		resp, ferr = s.chat(r.Context(), cfg, body)
	case RouteRerank:
		resp, ferr = s.rerank(r.Context(), cfg, body)
	case RouteScore:
		resp, ferr = s.score(r.Context(), cfg, body)
	case RouteEmbed:
		resp, ferr = s.embed(cfg, body)
	}
	if ferr != nil {
		writeFault(w, *ferr)
		return
	}
	if !s.wait(r.Context(), s.latency(cfg)) {
		return
	}
	if !s.paused(r.Context()) {
		return
	}
	b, _ := json.Marshal(resp)
	if malformed(r.Context()) == OutBadBody {
		b = b[:len(b)/2]
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

type outputKey struct{}

func malformed(ctx context.Context) string {
	s, _ := ctx.Value(outputKey{}).(string)
	return s
}

func (s *Server) pickFault(route string, body []byte) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.cfg.Faults {
		if f.Route != "" && f.Route != route {
			continue
		}
		if f.Route == "" && (route == RouteHealth || route == RouteModels) {
			continue
		}
		if f.Match != "" && !strings.Contains(string(body), f.Match) {
			continue
		}
		if f.Times > 0 && s.faultsUsed[i] >= f.Times {
			continue
		}
		s.faultsUsed[i]++
		return f, true
	}
	if s.cfg.ErrorRate > 0 && route != RouteHealth && route != RouteModels && s.rng.Float64() < s.cfg.ErrorRate {
		return s.cfg.RateFault, true
	}
	return Fault{}, false
}

func (s *Server) latency(cfg Config) time.Duration {
	l := cfg.Latency
	base := float64(l.Base)
	if base <= 0 && l.Jitter <= 0 {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch l.Dist {
	case "uniform":
		return time.Duration(base + s.rng.Float64()*float64(l.Jitter))
	case "lognormal":
		return time.Duration(base * math.Exp(l.Sigma*s.rng.NormFloat64()))
	}
	return time.Duration(base)
}

// wait sleeps d unless the client goes away; false means it went away.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return s.alive(ctx)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		s.canceled.Add(1)
		return false
	}
}

func (s *Server) alive(ctx context.Context) bool {
	if ctx.Err() != nil {
		s.canceled.Add(1)
		return false
	}
	return true
}

func (s *Server) paused(ctx context.Context) bool {
	s.mu.Lock()
	g := s.gate
	s.mu.Unlock()
	if g == nil {
		return true
	}
	select {
	case <-g:
		return true
	case <-ctx.Done():
		s.canceled.Add(1)
		return false
	}
}

func (s *Server) serveModels(w http.ResponseWriter, path string, cfg Config) {
	w.Header().Set("Content-Type", "application/json")
	if path == "/api/tags" {
		fmt.Fprintf(w, `{"models":[{"name":%q,"model":%q,"size":0}]}`, cfg.Model, cfg.Model)
		return
	}
	fmt.Fprintf(w, `{"object":"list","data":[{"id":%q,"object":"model","created":1731000000,"owned_by":"vllm","root":%q,"parent":null,"max_model_len":%d}]}`,
		cfg.Model, cfg.Model, cfg.MaxModelLen)
}

// Default messages and type strings per status, after vLLM / llama.cpp / TEI.
func defaultMessage(status int) string {
	switch status {
	case 400:
		return "modeltest: bad request"
	case 401:
		return "Unauthorized"
	case 404:
		return "The model `unknown` does not exist."
	case 413:
		return "batch size 64 > maximum allowed batch size 32"
	case 422:
		return "tokenizer error"
	case 424:
		return "backend error"
	case 429:
		return "Model is overloaded"
	case 501:
		return "Only base64 data URLs are supported for now."
	case 503:
		return "Loading model"
	}
	return "EngineCore encountered an issue."
}

func vllmType(status int) string {
	switch status {
	case 400:
		return "BadRequestError"
	case 401:
		return "UnauthorizedError"
	case 404:
		return "NotFoundError"
	case 501:
		return "NotImplementedError"
	case 503:
		return "ServiceUnavailableError"
	}
	return "InternalServerError"
}

func llamaType(status int) string {
	switch status {
	case 400:
		return "invalid_request_error"
	case 401:
		return "authentication_error"
	case 403:
		return "permission_error"
	case 404:
		return "not_found_error"
	case 501:
		return "not_supported_error"
	case 503:
		return "unavailable_error"
	}
	return "server_error"
}

func teiType(status int) string {
	switch status {
	case 503:
		return "Unhealthy"
	case 424:
		return "Backend"
	case 429:
		return "Overloaded"
	case 422:
		return "Tokenizer"
	case 413:
		return "Validation"
	}
	return "Empty"
}

// ErrorBody renders the body of an error of the given shape, status and message.
func ErrorBody(shape string, status int, msg string) (contentType string, body []byte) {
	if msg == "" {
		msg = defaultMessage(status)
	}
	q, _ := json.Marshal(msg)
	switch shape {
	case ShapeVLLMFlat:
		return "application/json", fmt.Appendf(nil, `{"object":"error","message":%s,"type":%q,"param":null,"code":%d}`, q, vllmType(status), status)
	case ShapeUnauthorized:
		return "application/json", []byte(`{"error":"Unauthorized"}`)
	case ShapeFastAPI:
		return "application/json", fmt.Appendf(nil, `{"detail":%s}`, q)
	case ShapeText:
		return "text/plain; charset=utf-8", []byte(http.StatusText(status))
	case ShapeLlamaCpp:
		return "application/json", fmt.Appendf(nil, `{"error":{"code":%d,"message":%s,"type":%q}}`, status, q, llamaType(status))
	case ShapeOllama:
		return "application/json", fmt.Appendf(nil, `{"error":%s}`, q)
	case ShapeOllamaOpenAI:
		return "application/json", fmt.Appendf(nil, `{"error":{"message":%s,"type":"invalid_request_error","param":null,"code":null}}`, q)
	case ShapeTEI:
		return "application/json", fmt.Appendf(nil, `{"error":%s,"error_type":%q}`, q, teiType(status))
	case ShapeEmpty:
		return "", nil
	}
	return "application/json", fmt.Appendf(nil, `{"error":{"message":%s,"type":%q,"param":null,"code":%d}}`, q, vllmType(status), status)
}

func writeFault(w http.ResponseWriter, f Fault) {
	status := f.Status
	if status == 0 {
		status = 500
	}
	ct, body := ErrorBody(f.Shape, status, f.Message)
	if ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// badRequest is vLLM's 400 in the nested shape.
func badRequest(format string, args ...any) *Fault {
	return &Fault{Status: 400, Shape: ShapeVLLM, Message: fmt.Sprintf(format, args...)}
}
