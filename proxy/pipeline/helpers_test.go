package pipeline_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/vlproxy/vlproxy/media"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"
	"github.com/valyala/fasthttp"

	"github.com/vlproxy/vlproxy/cache"
	"github.com/vlproxy/vlproxy/model"
	"github.com/vlproxy/vlproxy/model/modeltest"
	"github.com/vlproxy/vlproxy/proxy"
	"github.com/vlproxy/vlproxy/proxy/experiment"
	"github.com/vlproxy/vlproxy/proxy/pipeline"
	"github.com/vlproxy/vlproxy/proxy/resultcache"
	"github.com/vlproxy/vlproxy/rerank"
	"github.com/vlproxy/vlproxy/rewrite"
)

// product is one document of the fake ES catalogue. The fake answers every search with the
// catalogue in order, scores falling from len(catalogue), sliced by from/size.
type product struct {
	ID, Title, Description string
}

var catalogue = []product{
	{"p0", "blue denim jacket", "classic jacket"},
	{"p1", "red summer dress", "light cotton dress"},
	{"p2", "black leather boots", "winter boots"},
	{"p3", "red running shoes", "lightweight trainers"},
	{"p4", "green wool scarf", "warm scarf"},
	{"p5", "white linen shirt", "summer shirt"},
	{"p6", "red maxi dress", "floral print dress"},
	{"p7", "brown leather belt", "casual belt"},
	{"p8", "yellow rain coat", "waterproof coat"},
	{"p9", "grey hoodie", "cotton hoodie"},
}

// recorded is one request the fake ES received.
type recorded struct {
	Method, URI, ContentEncoding string
	Body                         []byte
}

// fakeES is a small ES on a loopback port: canned _search/_msearch/_count answers with hits
// from catalogue, 201 for document writes, and a record of every request.
type fakeES struct {
	URL   string
	Addr  string
	Calls atomic.Int64
	// Status, when set, answers every search with this status and an ES error body.
	Status atomic.Int32
	// Delay holds each search answer this long.
	Delay atomic.Int64
	// SourceBytes pads every hit's _source with a field of this many bytes.
	SourceBytes int
	// Docs is the number of documents (catalogue repeated with new ids); 0: len(catalogue).
	Docs int
	// NoRecord keeps requests out of the record (benchmarks).
	NoRecord bool

	mu   sync.Mutex
	reqs []recorded
	srv  *fasthttp.Server
}

func startES(tb testing.TB) *fakeES {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	f := &fakeES{Addr: ln.Addr().String()}
	f.URL = "http://" + f.Addr
	f.srv = &fasthttp.Server{Handler: f.handle, NoDefaultServerHeader: true, NoDefaultDate: true,
		ReadBufferSize: 64 << 10, MaxRequestBodySize: 64 << 20}
	go f.srv.Serve(ln)                      //nolint:errcheck
	tb.Cleanup(func() { f.srv.Shutdown() }) //nolint:errcheck
	return f
}

func (f *fakeES) handle(ctx *fasthttp.RequestCtx) {
	if string(ctx.UserAgent()) == "vlproxy-health-check" {
		ctx.SetBodyString(`{"version":{"number":"2.19.0"}}`)
		return
	}
	f.Calls.Add(1)
	r := recorded{ContentEncoding: string(ctx.Request.Header.ContentEncoding())}
	if !f.NoRecord {
		r.Method, r.URI, r.Body = string(ctx.Method()), string(ctx.RequestURI()), append([]byte(nil), ctx.PostBody()...)
		f.mu.Lock()
		f.reqs = append(f.reqs, r)
		f.mu.Unlock()
	}
	if d := f.Delay.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	ctx.SetContentType("application/json; charset=UTF-8")
	path := string(ctx.Path())
	body := ctx.PostBody()
	if r.ContentEncoding == "gzip" {
		body, _ = fasthttp.AppendGunzipBytes(nil, body)
	}
	isSearch := strings.HasSuffix(path, "/_search") || strings.HasSuffix(path, "/_msearch") || strings.HasSuffix(path, "/_count")
	if st := f.Status.Load(); st != 0 && isSearch {
		ctx.SetStatusCode(int(st))
		fmt.Fprintf(ctx, `{"error":{"root_cause":[{"type":"fake","reason":"fake failure"}],"type":"fake","reason":"fake failure"},"status":%d}`, st)
		return
	}
	switch {
	case strings.HasSuffix(path, "/_msearch"):
		ctx.WriteString(`{"took":1,"responses":[`) //nolint:errcheck
		lines := bytes.Split(bytes.TrimSpace(body), []byte("\n"))
		for i := 1; i < len(lines); i += 2 {
			if i > 1 {
				ctx.WriteString(",") //nolint:errcheck
			}
			ctx.Write(f.searchResponse(lines[i], nil, `,"status":200`)) //nolint:errcheck
		}
		ctx.WriteString(`]}`) //nolint:errcheck
	case strings.HasSuffix(path, "/_search"):
		ctx.Write(f.searchResponse(body, ctx.QueryArgs(), "")) //nolint:errcheck
	case strings.HasSuffix(path, "/_count"):
		fmt.Fprintf(ctx, `{"count":%d,"_shards":{"total":1,"successful":1,"skipped":0,"failed":0}}`, len(catalogue))
	case strings.Contains(path, "/_doc"):
		ctx.SetStatusCode(201)
		ctx.WriteString(`{"_index":"products","_id":"new","_version":1,"result":"created"}`) //nolint:errcheck
	default:
		ctx.WriteString(`{}`) //nolint:errcheck
	}
}

// searchResponse answers one search body: the catalogue in order, sliced by from/size (body or
// URL), every hit's _source whole.
func (f *fakeES) searchResponse(body []byte, args *fasthttp.Args, extra string) []byte {
	size, from := 10, 0
	if v := gjson.GetBytes(body, "size"); v.Exists() {
		size = int(v.Int())
	}
	if v := gjson.GetBytes(body, "from"); v.Exists() {
		from = int(v.Int())
	}
	if args != nil {
		if v := args.Peek("size"); v != nil {
			size, _ = strconv.Atoi(string(v))
		}
		if v := args.Peek("from"); v != nil {
			from, _ = strconv.Atoi(string(v))
		}
	}
	docs := f.Docs
	if docs == 0 {
		docs = len(catalogue)
	}
	var b []byte
	b = append(b, `{"took":1,"timed_out":false,"_shards":{"total":1,"successful":1,"skipped":0,"failed":0},"hits":{"total":{"value":`...)
	b = strconv.AppendInt(b, int64(docs), 10)
	b = append(b, `,"relation":"eq"},"max_score":`...)
	if from < docs && size > 0 {
		b = strconv.AppendInt(b, int64(docs-from), 10)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"hits":[`...)
	pad := strings.Repeat("x", f.SourceBytes)
	for i := from; i < from+size && i < docs; i++ {
		p := catalogue[i%len(catalogue)]
		if i >= len(catalogue) {
			p.ID = "p" + strconv.Itoa(i)
		}
		if i > from {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"_index":"products","_id":%q,"_score":%d,"_source":{"title":%q,"description":%q`,
			p.ID, docs-i, p.Title, p.Description)
		if pad != "" {
			b = fmt.Appendf(b, `,"pad":%q`, pad)
		}
		b = append(b, "}}"...)
	}
	b = append(b, "]}"...)
	b = append(b, extra...)
	return append(b, '}')
}

// requests returns a copy of what the fake received so far.
func (f *fakeES) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

// last returns the last request received; it fails when there is none.
func (f *fakeES) last(tb testing.TB) recorded {
	tb.Helper()
	r := f.requests()
	if len(r) == 0 {
		tb.Fatal("the fake ES received no request")
	}
	return r[len(r)-1]
}

// setup configures an in-process proxy in front of a fake ES and a model simulator.
type setup struct {
	sim         modeltest.Config
	rewrite     *rewrite.Config // nil: default config with a "products" profile
	rerank      *rerank.Config  // nil: default, reranking only on request
	experiments experiment.Config
	resultCache bool
	noKeywords  bool // no keyword cache
	pipeline    *pipeline.Config
	proxy       func(*proxy.Config)
	es          *fakeES
	shared      resultcache.Shared // fleet generations for the result cache (Redis)
	kwTier      cache.Tier         // shared tier behind the keyword cache (Redis)
	fleet       proxy.Fleet        // fleet-wide clears (Redis)
	adminToken  string
}

// env is a running proxy with its fake ES and simulator.
type env struct {
	ES       *fakeES
	Sim      *modeltest.Server
	Addr     string
	Keywords *cache.Cache
	c        *fasthttp.HostClient
}

func testRewriteConfig() rewrite.Config {
	cfg := rewrite.DefaultConfig()
	cfg.Profiles = []rewrite.Profile{{Index: "products*", Fields: []string{"title^3", "description"}}, {Index: "*"}}
	cfg.Timeout = 500 * time.Millisecond
	return cfg
}

func start(tb testing.TB, s setup) *env {
	tb.Helper()
	log := slog.New(slog.DiscardHandler)
	e := &env{ES: s.es}
	if e.ES == nil {
		e.ES = startES(tb)
	}
	e.Sim = modeltest.NewServer(s.sim)
	tb.Cleanup(e.Sim.Close)

	chat, err := model.New(model.RoleChat, model.Config{URL: e.Sim.URL, Model: modeltest.DefaultModel, HealthInterval: -1}, log)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(chat.Close)
	rr, err := model.New(model.RoleRerank, model.Config{URL: e.Sim.URL, Model: modeltest.DefaultModel, HealthInterval: -1}, log)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(rr.Close)

	var opts []proxy.Option
	var kwCache rewrite.Cache
	if !s.noKeywords {
		e.Keywords = cache.New(cache.Config{Name: "pipeline_test_keywords", MaxBytes: 16 << 20, TTL: time.Minute})
		if s.kwTier != nil {
			e.Keywords.SetTier(s.kwTier)
		}
		kwCache = e.Keywords
		opts = append(opts, proxy.WithCaches(e.Keywords))
	}
	if s.fleet != nil {
		opts = append(opts, proxy.WithFleet(s.fleet))
	}
	if s.adminToken != "" {
		opts = append(opts, proxy.WithAdminToken(s.adminToken))
	}
	rwCfg := testRewriteConfig()
	if s.rewrite != nil {
		rwCfg = *s.rewrite
	}
	rw, err := rewrite.New(rwCfg, chat, kwCache, log)
	if err != nil {
		tb.Fatal(err)
	}
	opts = append(opts, proxy.WithRewriter(rw))

	rrCfg := rerank.DefaultConfig()
	rrCfg.Timeout = 2 * time.Second
	if s.rerank != nil {
		rrCfg = *s.rerank
	}
	rk, err := rerank.New(rrCfg, rerank.NewAPIScorer(rr), nil, log)
	if err != nil {
		tb.Fatal(err)
	}
	judge, err := rerank.New(rrCfg, rerank.NewJudgeScorer(chat, rerank.DefaultJudgeConfig()), nil, log)
	if err != nil {
		tb.Fatal(err)
	}
	opts = append(opts, proxy.WithReranker(rk), proxy.WithScorer("api", rk), proxy.WithScorer("judge", judge))

	exps, err := experiment.New(s.experiments)
	if err != nil {
		tb.Fatal(err)
	}
	opts = append(opts, proxy.WithExperiments(exps))
	if s.resultCache {
		rc := cache.New(cache.Config{Name: "pipeline_test_results", MaxBytes: 16 << 20, TTL: time.Minute})
		opts = append(opts, proxy.WithResultCache(rc, resultcache.Config{AssumeConcrete: true}, 0))
		if s.shared != nil {
			opts = append(opts, proxy.WithSharedGenerations(s.shared))
		}
	}

	if s.pipeline != nil {
		opts = append(opts, proxy.WithPipeline(*s.pipeline))
	}
	cfg := proxy.DefaultConfig()
	cfg.Upstreams = []string{e.ES.URL}
	cfg.HealthCheckInterval = 0
	if s.proxy != nil {
		s.proxy(&cfg)
	}
	p, err := proxy.New(cfg, log, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go p.Serve(ln) //nolint:errcheck
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(ctx) //nolint:errcheck
	})
	e.Addr = ln.Addr().String()
	e.c = &fasthttp.HostClient{Addr: e.Addr, MaxConns: 1024, ReadBufferSize: 64 << 10,
		NoDefaultUserAgentHeader: true, DisablePathNormalizing: true, MaxIdemponentCallAttempts: 1}
	return e
}

// reply is a response read whole.
type reply struct {
	Status int
	Header map[string]string
	Body   []byte
}

func (r reply) h(name string) string { return r.Header[strings.ToLower(name)] }

// do sends a request through the proxy; hdr are name/value pairs.
func (e *env) do(tb testing.TB, method, uri string, body []byte, hdr ...string) reply {
	tb.Helper()
	return doAt(tb, e.c, e.Addr, method, uri, body, hdr...)
}

func doAt(tb testing.TB, c *fasthttp.HostClient, host, method, uri string, body []byte, hdr ...string) reply {
	tb.Helper()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(method)
	req.SetRequestURI(uri)
	req.Header.SetHost(host)
	req.Header.SetContentType("application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if body != nil {
		req.SetBody(body)
	}
	if err := c.DoTimeout(req, resp, 30*time.Second); err != nil {
		tb.Fatalf("%s %s: %s", method, uri, err)
	}
	r := reply{Status: resp.StatusCode(), Header: map[string]string{}, Body: append([]byte(nil), resp.Body()...)}
	for k, v := range resp.Header.All() {
		r.Header[strings.ToLower(string(k))] = string(v)
	}
	return r
}

// search posts body to /products/_search.
func (e *env) search(tb testing.TB, body string, hdr ...string) reply {
	tb.Helper()
	return e.do(tb, "POST", "/products/_search", []byte(body), hdr...)
}

// wantHeaders checks X-VLProxy-* header values.
func wantHeaders(tb testing.TB, r reply, kv ...string) {
	tb.Helper()
	for i := 0; i+1 < len(kv); i += 2 {
		if got := r.h(kv[i]); got != kv[i+1] {
			tb.Fatalf("%s = %q, want %q (status %d, body %s)", kv[i], got, kv[i+1], r.Status, r.Body)
		}
	}
}

// wantESError checks an ES-shaped error with the status and a reason containing substr.
func wantESError(tb testing.TB, r reply, status int, substr string) {
	tb.Helper()
	if r.Status != status {
		tb.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	var e struct {
		Error struct {
			RootCause []struct {
				Type   string `json:"type"`
				Reason string `json:"reason"`
			} `json:"root_cause"`
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"error"`
		Status int `json:"status"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		tb.Fatalf("error body is not ES-shaped: %s: %s", err, r.Body)
	}
	if e.Status != status || e.Error.Type == "" || len(e.Error.RootCause) != 1 || e.Error.RootCause[0].Type != e.Error.Type ||
		e.Error.RootCause[0].Reason != e.Error.Reason || !strings.Contains(e.Error.Reason, substr) {
		tb.Fatalf("ES error %s: want status %d and a reason containing %q", r.Body, status, substr)
	}
}

// ids lists the _id of the hits in a search response.
func ids(tb testing.TB, body []byte) string {
	tb.Helper()
	var out []string
	for _, h := range gjson.GetBytes(body, "hits.hits").Array() {
		out = append(out, h.Get("_id").String())
	}
	return strings.Join(out, ",")
}

// compact re-encodes JSON without insignificant whitespace, for exact comparisons.
func compact(tb testing.TB, s []byte) string {
	tb.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, s); err != nil {
		tb.Fatalf("invalid JSON %s: %s", err, s)
	}
	return b.String()
}

// testPicture draws a w x h picture with a gradient and a block of colour.
func testPicture(w, h int, seed uint8) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.RGBA{uint8(x*255/max(1, w)) ^ seed, uint8(y * 255 / max(1, h)), 90, 255}
			if x > w/3 && x < 2*w/3 && y > h/3 && y < 2*h/3 {
				c = color.RGBA{200, 20, seed, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

func jpegOf(tb testing.TB, w, h int, seed uint8) []byte {
	tb.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, testPicture(w, h, seed), &jpeg.Options{Quality: 85}); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

func pngOf(tb testing.TB, w, h int, seed uint8) []byte {
	tb.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, testPicture(w, h, seed)); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// modelHash is the simulator's hash of an image as the rewriter sends it to the model.
func modelHash(tb testing.TB, raw []byte) string {
	tb.Helper()
	b, err := media.Prepare(raw, media.DefaultConfig())
	if err != nil {
		tb.Fatal(err)
	}
	return modeltest.ImageHash(b)
}

func dataURI(mime string, b []byte) string {
	return "data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(b)
}

func gzipped(b []byte) []byte { return fasthttp.AppendGzipBytes(nil, b) }
