package rewrite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/vlproxy/vlproxy/internal/bytesconv"
	"github.com/vlproxy/vlproxy/internal/eserr"
	"github.com/vlproxy/vlproxy/media"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/tidwall/gjson"

	"github.com/vlproxy/vlproxy/document"
	"github.com/vlproxy/vlproxy/hybrid"
	"github.com/vlproxy/vlproxy/model"
)

// Chatter is the part of the model client the rewriter uses.
type Chatter interface {
	Chat(ctx context.Context, req *model.ChatRequest) (*model.ChatResponse, error)
	Name() string
}

// Cache is the part of cache.Cache the rewriter uses: a byte cache with single-flight.
type Cache interface {
	Do(ctx context.Context, key []byte, fn func(ctx context.Context) ([]byte, error)) (val []byte, hit bool, err error)
}

// Mode is the per-request switch (header X-VLProxy-Rewrite or ext.vlproxy.rewrite.enabled).
type Mode int

const (
	// ModeOn rewrites clauses through the model.
	ModeOn Mode = iota
	// ModeOff turns each clause into its plain-text query without calling the model;
	// an image-only clause becomes match_none (no hits), so an A/B control arm
	// still answers instead of failing. Images are still validated.
	ModeOff
)

// Options are the per-request options under ext.vlproxy.rewrite.
type Options struct {
	// Enabled false means ModeOff; nil leaves the mode to the header and the default.
	Enabled *bool
}

// ParseOptions parses the JSON of ext.vlproxy.rewrite. An unknown key or a value
// of the wrong type is an error naming it.
func ParseOptions(raw []byte) (Options, error) {
	var o Options
	if len(raw) == 0 {
		return o, nil
	}
	v := gjson.ParseBytes(raw)
	if !v.IsObject() || !gjson.ValidBytes(raw) {
		return o, illegalArgument("[ext.vlproxy.rewrite] must be an object")
	}
	var err error
	v.ForEach(func(k, val gjson.Result) bool {
		switch k.Str {
		case "enabled":
			if !val.IsBool() {
				err = illegalArgument("[ext.vlproxy.rewrite.enabled] must be true or false")
				return false
			}
			b := val.Bool()
			o.Enabled = &b
		default:
			err = illegalArgument("[ext.vlproxy.rewrite] does not support option [%s]", k.Str)
			return false
		}
		return true
	})
	return o, err
}

// Request is one search body to rewrite.
type Request struct {
	Index string // index expression from the URL path, "" for /_search
	Body  []byte
	Mode  Mode
	// KeywordsOnly keeps every clause to keywords (a `_count`, where no kNN search can run);
	// a clause asking for vector or hybrid retrieval is refused with a 400.
	KeywordsOnly bool
	// Retrieval, when set (keywords, vector or hybrid), is every clause's mode, over the
	// clause's own (the X-VLProxy-Retrieval request header).
	Retrieval string
}

// Query is the first clause's query, for reranking.
type Query struct {
	Text  string
	Image string // the JPEG the model gets (as sent, or downscaled) as a data URI, "" without an image
	Key   string // stable hash of text and original image bytes
}

// Result is the outcome of Rewrite.
type Result struct {
	// Body is the body to forward: the request's own slice when no clause exists,
	// else a new slice where only the clauses' bytes differ.
	Body  []byte
	Found bool
	// Status is "applied" | "cached" | "skipped" | "off" | "fallback:<reason>",
	// the value of X-VLProxy-Rewrite. With several clauses a fallback wins over
	// applied, and "cached" means every clause was a cache hit.
	Status    string
	ModelTime time.Duration // time spent waiting for the model (zero on cache hits)
	Elapsed   time.Duration
	Query     Query
	// Retrieval is the value of X-VLProxy-Retrieval: keywords, vector, hybrid, or
	// fallback:<reason> when the clause wanted a kNN search and got keywords only.
	Retrieval string
	// Vector, when set, is the kNN search the body runs (mode vector or hybrid); its query
	// replaces the body's (vector) or runs beside it (hybrid, fused by the caller).
	Vector *hybrid.Plan
	// Explain describes the first clause: {"keywords","category","attributes","query","model","prompt_version"}
	// plus "fallback" (the reason) when the model did not help and "clauses" when there were several;
	// a document clause adds "document" and the extracted "rows".
	Explain json.RawMessage
	// Groups, for a document clause with group_by_row, has one search body per table row: Body
	// with that clause replaced by the row's query alone.
	Groups []Group
}

// Rewriter rewrites multimodal clauses. It is safe for concurrent use.
type Rewriter struct {
	embed      Embedder
	embedCache Cache
	cfg        Config
	model      Chatter
	cache      Cache
	log        *slog.Logger
	images     *media.Loader
	// docs reads documents; docURLs downloads them under document.max_bytes.
	docs     *document.Reader
	docURLs  *media.Loader
	docImage media.Config
	decodes  *media.Gate // image decodes in flight, shared by every request
}

// New builds a Rewriter. m may be nil (no model configured: text clauses fall back
// to plain text, image-only clauses follow Fallback.ImageOnly); c may be nil (no caching).
func New(cfg Config, m Chatter, c Cache, log *slog.Logger) (*Rewriter, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	r := &Rewriter{cfg: cfg, model: m, cache: c, log: log}
	r.images = media.NewLoader(&r.cfg.Image)
	if r.docs, err = document.NewReader(r.cfg.Document.Limits); err != nil {
		return nil, err
	}
	r.docImage = r.cfg.Image
	r.docImage.MaxBytes = r.cfg.Document.MaxBytes
	r.docURLs = media.NewLoader(&r.docImage)
	r.decodes = media.NewGate(&r.cfg.Image)
	return r, nil
}

// Decodes is the process-wide bound on image decodes (image.max_decodes, image.max_decode_queue)
// that the rewriter's images go through, for other paths of the process that decode images.
func (r *Rewriter) Decodes() *media.Gate { return r.decodes }

var (
	rewriteDuration = promauto.NewHistogram(prometheus.HistogramOpts{Name: "vlproxy_rewrite_duration_seconds",
		Help:    "Time to rewrite the multimodal clauses of one body, model calls included.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}})
	modelCalls = promauto.NewCounter(prometheus.CounterOpts{Name: "vlproxy_rewrite_model_calls_total",
		Help: "Keyword generations sent to the chat model (cache misses that were not collapsed)."})
	imageBytesTotal = promauto.NewCounter(prometheus.CounterOpts{Name: "vlproxy_rewrite_image_bytes_total",
		Help: "Decoded bytes of the query images."})
	imageDownscaled = promauto.NewCounter(prometheus.CounterOpts{Name: "vlproxy_rewrite_images_downscaled_total",
		Help: "Query images downscaled before they were sent to the model."})
	rewriteBadInputs = promauto.NewCounter(prometheus.CounterOpts{Name: "vlproxy_rewrite_bad_requests_total",
		Help: "Bodies refused because of a bad multimodal clause or image."})
	clausesVec = promauto.NewCounterVec(prometheus.CounterOpts{Name: "vlproxy_rewrite_clauses_total",
		Help: "Multimodal clauses rewritten, by outcome (as in X-VLProxy-Rewrite)."}, []string{"status"})
)

func countClause(status string) { clausesVec.WithLabelValues(status).Inc() }

// Census is what a body's multimodal clauses will cost, known without decoding an image or
// calling the model, so that a request over a limit is refused before any of that work.
type Census struct {
	Clauses int // multimodal clauses: at most one model call each
	Images  int // clauses carrying an image
}

// Census finds the body's clauses and checks what needs no model: their syntax, the length
// of their text (rewrite.max_text_length) and the headers of their inline images (pixels and
// decoded bytes, read from the first bytes of the string). The error is what Rewrite would return.
func (r *Rewriter) Census(body []byte) (Census, error) {
	clauses, err := findClauses(body)
	if err != nil {
		return Census{}, err
	}
	return r.census(clauses)
}

func (r *Rewriter) census(clauses []clause) (Census, error) {
	var c Census
	for i := range clauses {
		if n := len(clauses[i].Text); n > r.cfg.MaxTextLength {
			return c, illegalArgument("cannot accept [multimodal] [text] of %d bytes: more than rewrite.max_text_length (%d); raise -max-clause-text", n, r.cfg.MaxTextLength)
		}
		c.Clauses++
		if clauses[i].Image != "" {
			c.Images++
			if err := media.CheckString(clauses[i].Image, &r.cfg.Image); err != nil {
				return c, err
			}
		}
	}
	return c, nil
}

// Rewrite replaces every multimodal clause of the body by a standard query.
// A returned error implements ESError (400 bad clause or image, 413 image too
// large, 503 image-only query without a usable model); nothing should be forwarded then.
func (r *Rewriter) Rewrite(ctx context.Context, req Request) (Result, error) {
	start := time.Now()
	res := Result{Body: req.Body, Status: "skipped"}
	clauses, err := findClauses(req.Body)
	if err != nil {
		rewriteBadInputs.Inc()
		return res, err
	}
	if len(clauses) == 0 {
		res.Elapsed = time.Since(start)
		return res, nil
	}
	res.Found = true
	if _, err := r.census(clauses); err != nil {
		rewriteBadInputs.Inc()
		return res, err
	}
	prof := r.cfg.profile(req.Index)
	body := req.Body
	// The clauses' bytes (a 270 KB image, say) do not reach the output.
	size := len(body)
	for i := range clauses {
		size -= clauses[i].end - clauses[i].start
	}
	out := make([]byte, 0, size+512*len(clauses))
	prev := 0
	hits, fallback := 0, ""
	var groups [][]byte
	gStart, gEnd := 0, 0
	for i := range clauses {
		if err := ctx.Err(); err != nil {
			// The request ended (client gone, deadline): the rest is not worth working on,
			// and the caller forwards nothing.
			res.Body, res.Status, res.Elapsed = req.Body, "fallback:"+model.Reason(err), time.Since(start)
			return res, err
		}
		c := &clauses[i]
		if req.Retrieval != "" && !req.KeywordsOnly {
			c.Mode = req.Retrieval
		}
		out = append(out, body[prev:c.start]...)
		qStart := len(out)
		var o clauseOutcome
		out, o, err = r.rewriteClause(ctx, c, prof, req.Mode, out, len(clauses), body, req.KeywordsOnly)
		res.ModelTime += o.modelTime
		if err != nil {
			var e *eserr.Error
			if errors.As(err, &e) && e.Status < 500 {
				rewriteBadInputs.Inc()
			}
			res.Body, res.Found = req.Body, true
			res.Status = o.status
			res.Elapsed = time.Since(start)
			return res, err
		}
		countClause(o.status)
		switch {
		case o.status == "cached":
			hits++
		case fallback == "" && o.status != "applied":
			fallback = o.status // "off" or "fallback:<reason>"
		}
		if o.plan != nil {
			res.Vector = o.plan
		}
		if i == 0 {
			res.Retrieval = o.retrieval
			res.Query = o.query
			res.Explain = r.explain(&o, out[qStart:], len(clauses))
		}
		if o.rowQueries != nil {
			if groups != nil {
				res.Body, res.Status = req.Body, "error"
				return res, parsingError("[multimodal] [group_by_row] may be set on one clause per search")
			}
			groups, gStart, gEnd = o.rowQueries, qStart, len(out)
			for j, row := range o.rows {
				res.Groups = append(res.Groups, Group{Row: row, Body: groups[j]})
			}
		}
		prev = c.end
	}
	out = append(out, body[prev:]...)
	res.Body = out
	for j := range res.Groups {
		g := &res.Groups[j]
		b := make([]byte, 0, len(out)-(gEnd-gStart)+len(g.Body))
		b = append(b, out[:gStart]...)
		b = append(b, g.Body...)
		g.Body = append(b, out[gEnd:]...)
	}
	switch {
	case fallback != "":
		res.Status = fallback
	case hits == len(clauses):
		res.Status = "cached"
	default:
		res.Status = "applied"
	}
	res.Elapsed = time.Since(start)
	rewriteDuration.Observe(res.Elapsed.Seconds())
	return res, nil
}

type clauseOutcome struct {
	status    string
	retrieval string       // X-VLProxy-Retrieval of the clause
	plan      *hybrid.Plan // set when the clause runs a kNN search
	reason    string
	kw        *Keywords
	modelTime time.Duration
	query     Query
	// A document clause: the document, its rows, and (group_by_row) one query per row.
	doc        *document.Document
	rows       []document.Row
	rowQueries [][]byte
	moments    *momentsExplain // a moments clause: what it searches
}

func (r *Rewriter) rewriteClause(ctx context.Context, c *clause, prof *Profile, mode Mode, dst []byte, n int, body []byte, keywordsOnly bool) ([]byte, clauseOutcome, error) {
	if c.Moments != "" {
		return r.rewriteMoments(ctx, c, prof, mode, dst, n, body, keywordsOnly)
	}
	if c.Document != "" {
		dst, o, err := r.rewriteDocument(ctx, c, prof, mode, dst)
		o.retrieval = hybrid.ModeKeywords
		return dst, o, err
	}
	o := clauseOutcome{retrieval: hybrid.ModeKeywords}
	fields := prof.Fields
	if c.hasFields {
		fields = c.Fields
	}
	rmode := hybrid.ModeKeywords
	var plan *hybrid.Plan
	if keywordsOnly && (c.Mode == hybrid.ModeVector || c.Mode == hybrid.ModeHybrid) {
		o.status = "error"
		return dst, o, illegalArgument("[multimodal] [mode] [%s] is not supported by this endpoint (a count runs keywords only)", c.Mode)
	}
	if mode != ModeOff && !keywordsOnly {
		var err error
		if rmode, err = r.chooseMode(c, prof, n); err != nil {
			o.status = "error"
			return dst, o, err
		}
		if rmode != hybrid.ModeKeywords {
			if plan, err = r.planFor(c, prof, rmode, body); err != nil {
				o.status = "error"
				return dst, o, err
			}
		}
	}
	var img *media.Image
	if c.Image != "" {
		q, err := r.image(ctx, c.Image)
		if err != nil {
			o.status = "error"
			return dst, o, err
		}
		img = &q
	}
	o.query = makeQuery(c.Text, img)

	if mode == ModeOff {
		o.status = "off"
		if c.Text == "" {
			return appendMatchNone(dst), o, nil
		}
		return appendTextQuery(dst, c, fields), o, nil
	}

	var wait func() ([]float32, bool, time.Duration, error)
	if plan != nil {
		wait = r.embedAsync(ctx, c, img, prof)
	}
	// useVector takes the embedding; false (with the retrieval fallback set) when there is
	// none, and an error for what the client must hear about (a dimension mismatch).
	useVector := func() (bool, bool, error) {
		vec, hit, d, err := wait()
		if !hit {
			o.modelTime += d
		}
		if err != nil {
			var e *eserr.Error
			if errors.As(err, &e) {
				return false, false, err
			}
			o.retrieval = r.embedFallback(ctx, err)
			return false, false, nil
		}
		plan.Vector = vec
		o.plan = plan
		o.retrieval = plan.Mode
		return true, hit, nil
	}
	if rmode == hybrid.ModeVector {
		ok, hit, err := useVector()
		if err != nil {
			o.status = "error"
			return dst, o, err
		}
		if ok {
			// The lexical body is never sent: VectorBody replaces the query.
			o.status = "applied"
			if hit {
				o.status = "cached"
			}
			return appendMatchNone(dst), o, nil
		}
	}

	kw, hit, err := r.keywords(ctx, c, img, &o)
	if err != nil {
		o.reason = model.Reason(err)
		if o.reason == model.KindUnavailable && errors.Is(err, errNoModel) {
			o.reason = "no_model"
		}
		o.status = "fallback:" + o.reason
		r.log.LogAttrs(ctx, slog.LevelWarn, "rewrite fell back", slog.String("reason", o.reason),
			slog.Bool("image", img != nil), slog.Any("err", err))
		if wait != nil && rmode == hybrid.ModeHybrid {
			ok, _, verr := useVector()
			if verr != nil {
				return dst, o, verr
			}
			if ok && c.Text == "" {
				// No keywords for an image-only clause, but its vector: kNN alone.
				plan.Mode, o.retrieval = hybrid.ModeVector, hybrid.ModeVector
				return appendMatchNone(dst), o, nil
			}
		}
		if c.Text != "" {
			return appendTextQuery(dst, c, fields), o, nil
		}
		if r.cfg.Fallback.ImageOnly == "empty" {
			return appendMatchNone(dst), o, nil
		}
		return dst, o, modelUnavailable(o.reason, err)
	}
	o.kw = &kw
	o.status = "applied"
	if hit {
		o.status = "cached"
	}
	if wait != nil && rmode == hybrid.ModeHybrid {
		if _, _, err := useVector(); err != nil {
			o.status = "error"
			return dst, o, err
		}
	}
	return appendKeywordQuery(dst, c, fields, &kw, prof.Attributes), o, nil
}

func makeQuery(text string, img *media.Image) Query {
	h := sha256.New()
	h.Write([]byte(text))
	h.Write([]byte{0})
	q := Query{Text: text}
	if img != nil {
		h.Write(img.Sum[:])
		q.Image = img.URI
	}
	q.Key = hex.EncodeToString(h.Sum(nil)[:16])
	return q
}

// image loads and validates a clause image and returns it as the model gets it.
// A JPEG within the pixel budget is forwarded as sent (header, markers and
// hash only: no pixel is decoded). Any other image is decoded and downscaled;
// that result is cached by the sha256 of the original bytes, so a repeated
// image skips decoding.
func (r *Rewriter) image(ctx context.Context, s string) (media.Image, error) {
	in, err := r.images.Load(ctx, s)
	if err != nil {
		return media.Image{}, err
	}
	defer in.Release()
	raw := in.Raw
	imageBytesTotal.Add(float64(len(raw)))
	q := media.Image{Sum: sha256.Sum256(raw)}
	hdr, err := media.Inspect(raw, &r.cfg.Image)
	if err != nil {
		return q, err
	}
	if hdr.PassThrough(&r.cfg.Image) {
		if err := media.CheckJPEG(raw); err != nil {
			return q, err
		}
		q.URI = media.JPEGURI(raw, in.B64)
		return q, nil
	}
	shrink := func(raw []byte) ([]byte, error) {
		if err := r.decodes.Acquire(ctx); err != nil {
			return nil, err
		}
		jpg, err := media.Shrink(raw, hdr, &r.cfg.Image)
		r.decodes.Release()
		if err != nil {
			return nil, err
		}
		imageDownscaled.Inc()
		return []byte(media.JPEGURI(jpg, "")), nil
	}
	if r.cache == nil {
		uri, err := shrink(raw)
		q.URI = bytesconv.String(uri)
		return q, err
	}
	key := make([]byte, 0, 64)
	key = append(key, 2, 'i', 'm', 'g', 0) // 2: the value is a data URI
	key = strconv.AppendInt(key, int64(r.cfg.Image.PixelBudget), 10)
	key = append(key, 0)
	key = strconv.AppendInt(key, int64(r.cfg.Image.JPEGQuality), 10)
	key = append(key, 0)
	key = append(key, q.Sum[:]...)
	// fn may outlive this call (the cache fills detached): raw leaves the pool.
	in.Keep()
	val, _, err := r.cache.Do(ctx, key, func(context.Context) ([]byte, error) { return shrink(raw) })
	var e *eserr.Error
	switch {
	case err == nil && bytes.HasPrefix(val, []byte(media.JPEGURIPrefix)):
		q.URI = string(val)
		return q, nil
	case errors.As(err, &e):
		return q, err
	}
	uri, err := shrink(raw) // a cache fault is a miss
	q.URI = bytesconv.String(uri)
	return q, err
}

var errNoModel = errors.New("no model configured")

// keywords asks the model (through the cache) for the clause's keywords.
func (r *Rewriter) keywords(ctx context.Context, c *clause, img *media.Image, o *clauseOutcome) (kw Keywords, hit bool, err error) {
	if r.model == nil {
		return kw, false, errNoModel
	}
	lang := r.language(c)
	call := func(ctx context.Context) (Keywords, error) {
		ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
		defer cancel()
		uri := ""
		if img != nil {
			uri = img.URI
		}
		modelCalls.Inc()
		resp, err := r.model.Chat(ctx, r.chatRequest(c, lang, uri))
		if err != nil {
			return Keywords{}, err
		}
		k, err := parseOutput(resp.Content, r.cfg.MaxKeywords)
		if err != nil {
			return k, &model.Error{Kind: model.KindBadOutput, Message: fmt.Sprintf("cannot parse keywords from %.80q", resp.Content), Err: err}
		}
		return k, nil
	}
	start := time.Now()
	defer func() {
		if !hit {
			o.modelTime = time.Since(start)
		}
	}()
	if r.cache == nil {
		kw, err = call(ctx)
		return kw, false, err
	}
	key := r.keywordKey(c, lang, img)
	// fn may outlive this call (the cache fills detached), so it shares nothing with it.
	val, hit, err := r.cache.Do(ctx, key, func(ctx context.Context) ([]byte, error) {
		kw, err := call(ctx)
		if err != nil {
			return nil, err
		}
		return json.Marshal(kw)
	})
	if err != nil {
		var me *model.Error
		if errors.As(err, &me) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return kw, false, err // the model call failed, or our deadline passed while waiting for it
		}
		kw, err = call(ctx) // a cache fault is a miss
		return kw, false, err
	}
	if json.Unmarshal(val, &kw) != nil || len(kw.Keywords) == 0 {
		kw, err = call(ctx)
		return kw, false, err
	}
	return kw, hit, nil
}

// keywordKey identifies a keyword answer: a version byte, model, prompt version,
// language, attribute switch, keyword cap, text and the original image's sha256.
func (r *Rewriter) keywordKey(c *clause, lang string, img *media.Image) []byte {
	name := r.model.Name()
	key := make([]byte, 0, 64+len(name)+len(c.Text))
	key = append(key, 1, 'k', 'w', 0)
	key = append(key, name...)
	key = append(key, 0)
	key = append(key, r.cfg.Prompt.Version...)
	key = append(key, 0)
	key = append(key, lang...)
	key = append(key, 0)
	if c.Attributes {
		key = append(key, 'a')
	}
	key = strconv.AppendInt(key, int64(r.cfg.MaxKeywords), 10)
	key = append(key, 0)
	key = append(key, c.Text...)
	key = append(key, 0)
	if img != nil {
		key = append(key, img.Sum[:]...)
	}
	return key
}

type explanation struct {
	Keywords      []string          `json:"keywords"`
	Category      string            `json:"category,omitempty"`
	Attributes    map[string]string `json:"attributes,omitempty"`
	Query         json.RawMessage   `json:"query"`
	Model         string            `json:"model,omitempty"`
	PromptVersion string            `json:"prompt_version"`
	Status        string            `json:"status"`
	Fallback      string            `json:"fallback,omitempty"`
	Retrieval     string            `json:"retrieval,omitempty"`
	Clauses       int               `json:"clauses,omitempty"`
	Document      *documentExplain  `json:"document,omitempty"`
	Rows          []document.Row    `json:"rows,omitempty"`
	Moments       *momentsExplain   `json:"moments,omitempty"`
}

func (r *Rewriter) explain(o *clauseOutcome, query []byte, n int) json.RawMessage {
	e := explanation{
		Keywords:      []string{},
		Query:         json.RawMessage(query),
		PromptVersion: r.cfg.Prompt.Version,
		Status:        o.status,
		Fallback:      o.reason,
		Retrieval:     o.retrieval,
	}
	if n > 1 {
		e.Clauses = n
	}
	if r.model != nil {
		e.Model = r.model.Name()
	}
	if o.doc != nil {
		e.Document = explainDocument(o.doc)
		e.Rows = o.rows
		if e.Rows == nil {
			e.Rows = []document.Row{}
		}
		e.PromptVersion = DocumentPromptVersion
	}
	if o.moments != nil {
		e.Moments = o.moments
	}
	if o.kw != nil {
		e.Keywords = o.kw.Keywords
		e.Category = o.kw.Category
		e.Attributes = o.kw.Attributes
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil
	}
	return b
}
