package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/vlproxy/vlproxy/internal/eserr"
	"github.com/vlproxy/vlproxy/internal/esshape"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
	"github.com/valyala/fasthttp"

	"github.com/vlproxy/vlproxy/model"
	"github.com/vlproxy/vlproxy/proxy/searchbody"
	"github.com/vlproxy/vlproxy/rerank"
	"github.com/vlproxy/vlproxy/rewrite"
)

// part is one search on its way through the pipeline: the whole body of `_search`/`_count`, or
// one header/body pair of `_msearch`.
type part struct {
	index     string
	body      []byte // as forwarded
	explain   bool
	rewrite   rewrite.Result
	rwState   string
	plan      *rerank.Plan
	rr        Reranker // the reranker that made plan (the variant's scorer)
	rrState   string
	shadow    rerank.ShadowStats
	query     string        // query string for the upstream (only `_search` may change it)
	retrieval string        // X-VLProxy-Retrieval of this search ("" without a clause)
	hy        *hybridPart   // the two sides of a hybrid search
	rwModel   time.Duration // model time of its rewrite
	rrModel   time.Duration // model time of its rerank
}

// run answers one request: prepare each search, one upstream call, then rerank and explain.
func (p *Pipeline) run(ctx context.Context, in *input) (*outcome, error) {
	start := time.Now()
	var parts []*part
	var items []searchbody.Item
	var t Timings
	// The upstream request: the client's, with a new body only when something changed it.
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	in.prepare(&req.Header, in.rc)
	// path and origQuery point into req's URI, which is set again only at the end, from copies.
	path, origQuery, _ := bytes.Cut(req.Header.RequestURI(), []byte("?"))
	upQuery := string(origQuery)
	intercept := searchbody.MaybeIntercepted(in.body) || p.rerankWanted(in)

	if in.kind == Msearch && intercept {
		var err error
		if items, err = searchbody.SplitMsearch(in.body); err != nil {
			return nil, err
		}
	}
	if intercept { // the limits were checked by Serve, before the result cache
		ctx = model.WithCallBudget(ctx, p.cfg.MaxModelCalls)
	}

	prepStart := time.Now()
	switch {
	case !intercept:
		// Nothing for vlproxy: forward as is.
	case in.kind == Msearch:
		parts = make([]*part, len(items))
		err := p.concurrently(ctx, len(items), func(ctx context.Context, i int) error {
			idx := items[i].Index()
			if idx == "" {
				idx = in.index
			}
			pt, err := p.prepare(ctx, in, idx, items[i].Body, "")
			if err != nil {
				return err
			}
			items[i].Body = pt.body
			parts[i] = pt
			return nil
		})
		if err != nil {
			return nil, err
		}
	default:
		pt, err := p.prepare(ctx, in, in.index, in.body, upQuery)
		if err != nil {
			return nil, err
		}
		upQuery = pt.query
		parts = append(parts, pt)
	}
	if len(parts) > 0 {
		var m time.Duration
		for _, pt := range parts {
			m += pt.rwModel
		}
		t.phase(&t.Rewrite, time.Since(prepStart), m)
	}
	// The client left or the deadline passed while the searches were prepared (their model
	// calls fell back): nobody is served by sending them.
	if err := stopped(ctx); err != nil {
		return nil, err
	}

	// A hybrid `_search` goes upstream as an `_msearch` of its two sides; its filter_path
	// applies to the fused response.
	var upPath []byte
	var hybridFilter string
	if in.kind == Search && len(parts) == 1 && parts[0].hy != nil {
		var err error
		var body []byte
		upPath, upQuery, body, hybridFilter, err = hybridSearch(path, upQuery, parts[0].hy)
		if err != nil {
			return nil, err
		}
		parts[0].body = body
	}
	if in.kind == Msearch && anyHybrid(parts) {
		items = expandMsearch(parts, items)
	}

	// An _msearch filter_path applies to the whole response, and the reranker needs its
	// searches' hits whole: take it off upstream and apply it at the end.
	var msearchFilter string
	if in.kind == Msearch && p.needsRerank(parts) {
		upQuery, msearchFilter = cutQueryParam(upQuery, "filter_path")
	}

	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	changed := false
	var body []byte
	switch {
	case len(parts) == 0:
		body = in.rawBody // untouched, even compressed
	case in.kind == Msearch:
		body = searchbody.AppendMsearch(nil, items)
		changed = true
	default:
		body = parts[0].body
		changed = string(body) != string(in.body)
	}
	if upPath != nil {
		req.Header.SetContentType("application/x-ndjson")
	}
	if changed || (len(parts) > 0 && !in.raw) {
		req.Header.Del("Content-Encoding")
		if !in.raw && !changed {
			body = in.body // we undid the encoding to read it; send it plain
		}
	}
	if p.needsResponse(parts) {
		req.Header.Del("Accept-Encoding") // the response is edited: get it plain
	}
	req.SetBodyRaw(body) // the client's body, or one made here; both outlive the round trip
	if upQuery != string(origQuery) || upPath != nil {
		if upPath == nil {
			upPath = path
		}
		u := append([]byte(nil), upPath...)
		if upQuery != "" {
			u = append(append(u, '?'), upQuery...)
		}
		req.Header.SetRequestURIBytes(u)
	}

	s := time.Now()
	if err := p.fwd.Forward(ctx, req, resp); err != nil {
		return nil, err
	}
	t.Search = time.Since(s)

	out := &outcome{status: resp.StatusCode()}
	out.header = outcomeHeaders(nil, &resp.Header)
	out.body = resp.SwapBody(nil) // the response is released below: take its body instead of copying it
	if anyHybrid(parts) && out.status >= 200 && out.status <= 299 {
		var err error
		if in.kind == Msearch {
			out.body, err = collapseMsearch(parts, out.body)
		} else {
			out.body, err = collapseSearch(parts[0], out.body)
		}
		if err != nil {
			return nil, err
		}
		if st := gjson.GetBytes(out.body, "status"); in.kind == Search && gjson.GetBytes(out.body, "error").Exists() && st.Int() >= 400 {
			out.status = int(st.Int()) // the lexical side failed: answer as the engine would
		}
		if hybridFilter != "" {
			out.body = esshape.ApplyFilterPath(out.body, hybridFilter)
		}
	}
	if p.needsResponse(parts) && out.status >= 200 && out.status <= 299 {
		finStart := time.Now()
		if err := p.finish(ctx, in, parts, out); err != nil {
			return nil, err
		}
		var m time.Duration
		for _, pt := range parts {
			m += pt.rrModel
		}
		t.phase(&t.Rerank, time.Since(finStart), m)
	}
	if in.kind == Search && len(parts) == 1 && len(parts[0].rewrite.Groups) > 0 && out.status >= 200 && out.status <= 299 {
		p.groupRows(ctx, in, parts[0], out, &t)
	}
	if msearchFilter != "" && out.status >= 200 && out.status <= 299 {
		out.body = esshape.ApplyFilterPath(out.body, msearchFilter)
	}
	out.rewrite, out.rerank = summarize(in, parts)
	out.retrieval = summarizeRetrieval(parts)
	out.timings = t
	p.observe(in, parts, time.Since(start))
	return out, nil
}

// stopped returns the error of a request whose context is done: 504 when its deadline passed,
// 499 (client closed request, as nginx logs it) when its client went away.
func stopped(ctx context.Context) error {
	err := ctx.Err()
	if err == nil {
		// The context's timer may not have fired yet on a busy machine although its deadline
		// has passed; the forwarder would then report an upstream timeout for a request that
		// never reached the upstream.
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			err = context.DeadlineExceeded
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		return &eserr.Error{Status: 504, Type: "timeout_exception", Reason: "cannot finish the search within the deadline (pipeline.timeout, -request-timeout)", Err: err}
	default:
		return &eserr.Error{Status: 499, Type: "task_cancelled_exception", Reason: "cannot finish the search: the client went away", Err: context.Cause(ctx)}
	}
}

// checkLimits refuses a request whose clauses are over a per-request limit, before its body is
// copied or keyed, any image is decoded, any model is called or anything is forwarded.
func (p *Pipeline) checkLimits(in *input) error {
	if p.rw == nil || !searchbody.MaybeIntercepted(in.body) {
		return nil // without a rewriter a clause is a 503; without the word, there is none
	}
	var items []searchbody.Item
	if in.kind == Msearch {
		var err error
		if items, err = searchbody.SplitMsearch(in.body); err != nil {
			return err
		}
	}
	var total rewrite.Census
	add := func(body []byte) error {
		c, err := p.rw.Census(body)
		total.Clauses += c.Clauses
		total.Images += c.Images
		return err
	}
	if in.kind == Msearch {
		for i := range items {
			if err := add(items[i].Body); err != nil {
				return err
			}
		}
	} else if err := add(in.body); err != nil {
		return err
	}
	switch {
	case total.Clauses > p.cfg.MaxClauses:
		return eserr.Errorf(400, "illegal_argument_exception",
			"cannot accept %d [multimodal] clauses in one request: more than pipeline.max_clauses (%d); raise -max-clauses", total.Clauses, p.cfg.MaxClauses)
	case total.Images > p.cfg.MaxImages:
		return eserr.Errorf(400, "illegal_argument_exception",
			"cannot accept %d [multimodal] images in one request: more than pipeline.max_images (%d); raise -max-images", total.Images, p.cfg.MaxImages)
	case total.Clauses > p.cfg.MaxModelCalls:
		return eserr.Errorf(400, "illegal_argument_exception",
			"cannot accept %d [multimodal] clauses in one request: more model calls than pipeline.max_model_calls (%d); raise -max-model-calls", total.Clauses, p.cfg.MaxModelCalls)
	}
	return nil
}

// skipNoScorer: reranking was asked for (header or variant) but no scorer is configured.
const skipNoScorer = "no_scorer"

// rerankRequested reports whether the header or the variant asks for reranking (on or shadow).
func rerankRequested(in *input) bool {
	switch in.sw.Rerank {
	case searchbody.SwitchOn, searchbody.SwitchShadow:
		return true
	case searchbody.SwitchOff:
		return false
	}
	return in.variant != nil && (in.variant.Rerank == "on" || in.variant.Rerank == "shadow")
}

// rerankWanted reports whether reranking may apply although the body carries nothing for
// vlproxy: a header or variant switched it on, or the index has it on by default.
func (p *Pipeline) rerankWanted(in *input) bool {
	rr := p.rerankerFor(in)
	if rr == nil || in.kind == Count {
		return false
	}
	switch in.sw.Rerank {
	case searchbody.SwitchOn, searchbody.SwitchShadow:
		return true
	case searchbody.SwitchOff:
		return false
	}
	if in.variant != nil && (in.variant.Rerank == "on" || in.variant.Rerank == "shadow") {
		return true
	}
	return rr.EnabledFor(in.index)
}

func (p *Pipeline) needsRerank(parts []*part) bool {
	for _, pt := range parts {
		if pt.plan != nil {
			return true
		}
	}
	return false
}

// cutQueryParam removes every name=… parameter from a raw query string and returns the rest and
// the (unescaped) value of the last one.
func cutQueryParam(q, name string) (rest, value string) {
	var b strings.Builder
	for _, seg := range strings.Split(q, "&") {
		k, v, _ := strings.Cut(seg, "=")
		if uk, err := url.QueryUnescape(k); err == nil && uk == name {
			if uv, err := url.QueryUnescape(v); err == nil {
				value = uv
			} else {
				value = v
			}
			continue
		}
		if seg == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(seg)
	}
	return b.String(), value
}

func (p *Pipeline) needsResponse(parts []*part) bool {
	for _, pt := range parts {
		if pt.plan != nil || pt.explain || len(pt.rewrite.Groups) > 0 || pt.hy != nil {
			return true
		}
	}
	return false
}

// prepare runs options, rewrite and rerank planning for one search body.
func (p *Pipeline) prepare(ctx context.Context, in *input, index string, body []byte, query string) (*part, error) {
	pt := &part{index: index, query: query}
	opts, body, err := searchbody.ExtractOptions(body)
	if err != nil {
		return nil, err
	}
	pt.explain = opts.Explain
	rwOpts, err := rewrite.ParseOptions(opts.Rewrite)
	if err != nil {
		return nil, err
	}
	rrOpts, err := rerank.ParseOptions(opts.Rerank)
	if err != nil {
		return nil, err
	}
	if in.variant != nil && in.variant.WindowSize > 0 && rrOpts.WindowSize == nil {
		w := in.variant.WindowSize
		rrOpts.WindowSize = &w
	}

	mode := rewriteMode(in, rwOpts)
	if p.rw != nil {
		res, err := p.rw.Rewrite(ctx, rewrite.Request{Index: index, Body: body, Mode: mode, KeywordsOnly: in.kind == Count, Retrieval: in.sw.Retrieval})
		if err != nil {
			if serr := stopped(ctx); serr != nil {
				return nil, serr
			}
			return nil, err
		}
		if len(res.Groups) > 0 && in.kind != Search {
			return nil, eserr.BadRequest("[multimodal] [group_by_row] is supported by _search only, not by _%s", in.kind)
		}
		pt.rewrite = res
		pt.rwState = res.Status
		pt.retrieval = res.Retrieval
		body = res.Body
		pt.rwModel = res.ModelTime
	} else if searchbody.MaybeIntercepted(body) {
		return nil, eserr.New(503, "model_unavailable_exception",
			"cannot rewrite the multimodal clause: no rewriter is configured")
	} else {
		pt.rwState = "skipped"
	}

	pt.rrState = "off"
	if in.kind == Count {
		pt.rrState = "skipped:count"
	} else if rr := p.rerankerFor(in); rr == nil {
		if rerankRequested(in) {
			pt.rrState = "skipped:" + skipNoScorer
		}
	} else {
		rmode := rerankMode(in)
		q := model.Document{Text: pt.rewrite.Query.Text, Image: pt.rewrite.Query.Image}
		plan, upBody, upQuery, skip, err := rr.Prepare(rerank.Request{
			Index: index, Body: body, Query: q, QueryKey: pt.rewrite.Query.Key,
			Args: rerank.QueryArgs(pt.query), Mode: rmode, Opts: rrOpts, Explain: pt.explain,
		})
		if err != nil {
			return nil, err
		}
		switch {
		case skip != "":
			pt.rrState = "skipped:" + skip
			if skip == rerank.SkipDisabled {
				pt.rrState = "off"
			}
		case plan != nil:
			pt.plan, pt.rr = plan, rr
			body = upBody
			if in.kind == Search {
				pt.query = upQuery
			}
		}
	}
	pt.body = body
	if err := prepareVector(pt); err != nil {
		return nil, err
	}
	return pt, nil
}

// rerankerFor picks the reranker of the request's experiment variant (its scorer), else the
// default one.
func (p *Pipeline) rerankerFor(in *input) Reranker {
	if in.variant != nil && in.variant.Scorer != "" {
		if r, ok := p.scorers[in.variant.Scorer]; ok {
			return r
		}
	}
	return p.rr
}

// rewriteMode applies the precedence header > experiment variant > ext.vlproxy.rewrite.
func rewriteMode(in *input, o rewrite.Options) rewrite.Mode {
	on := true
	switch {
	case in.sw.Rewrite != searchbody.SwitchUnset:
		on = in.sw.Rewrite == searchbody.SwitchOn
	case in.variant != nil && in.variant.Rewrite != nil:
		on = *in.variant.Rewrite
	case o.Enabled != nil:
		on = *o.Enabled
	}
	if on {
		return rewrite.ModeOn
	}
	return rewrite.ModeOff
}

// rerankMode applies the precedence header > experiment variant; ext.vlproxy.rerank and the
// per-index default are rerank's own business (ModeDefault).
func rerankMode(in *input) rerank.Mode {
	switch in.sw.Rerank {
	case searchbody.SwitchOn:
		return rerank.ModeOn
	case searchbody.SwitchOff:
		return rerank.ModeOff
	case searchbody.SwitchShadow:
		return rerank.ModeShadow
	}
	if in.variant != nil {
		switch in.variant.Rerank {
		case "on":
			return rerank.ModeOn
		case "off":
			return rerank.ModeOff
		case "shadow":
			return rerank.ModeShadow
		}
	}
	return rerank.ModeDefault
}

// finish reranks and explains a 2xx response; the searches of an _msearch concurrently.
func (p *Pipeline) finish(ctx context.Context, in *input, parts []*part, out *outcome) error {
	if in.kind != Msearch {
		b, err := p.finishOne(ctx, parts[0], out.body)
		if err != nil {
			return err
		}
		out.body = b
		return nil
	}
	resps, ok := searchbody.SplitResponses(out.body)
	if !ok || len(resps) != len(parts) {
		return nil // not the shape we sent: leave ES's answer alone
	}
	err := p.concurrently(ctx, len(parts), func(ctx context.Context, i int) error {
		pt := parts[i]
		if gjson.GetBytes(resps[i], "error").Exists() {
			if pt.plan != nil {
				pt.rrState = "skipped:error"
			}
			return nil
		}
		b, err := p.finishOne(ctx, pt, resps[i])
		if err != nil {
			return err
		}
		resps[i] = b
		return nil
	})
	if err != nil {
		return err
	}
	b, err := searchbody.ReplaceResponses(out.body, resps)
	if err != nil {
		return nil
	}
	out.body = b
	return nil
}

// concurrently runs fn(0..n-1), at most cfg.MsearchConcurrency at once, and returns the error
// of the lowest index that failed; the first failure cancels the context of the others.
func (p *Pipeline) concurrently(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	if n == 1 || p.cfg.MsearchConcurrency <= 1 {
		for i := 0; i < n; i++ {
			if err := fn(ctx, i); err != nil {
				return err
			}
		}
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, n)
	sem := make(chan struct{}, p.cfg.MsearchConcurrency)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			errs[i] = ctx.Err()
			continue
		}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			if errs[i] = fn(ctx, i); errs[i] != nil {
				cancel()
			}
		}(i)
	}
	wg.Wait()
	var first error
	for _, err := range errs {
		if err == nil {
			continue
		}
		// A search cancelled because another failed reports that one's error instead.
		if first == nil || (errors.Is(first, context.Canceled) && !errors.Is(err, context.Canceled)) {
			first = err
		}
		if !errors.Is(first, context.Canceled) {
			break
		}
	}
	return first
}

func (p *Pipeline) finishOne(ctx context.Context, pt *part, body []byte) ([]byte, error) {
	var rrExplain []byte
	if pt.plan != nil {
		res, err := pt.rr.Apply(ctx, pt.plan, body)
		if err != nil {
			return nil, err
		}
		pt.rrModel = res.ModelTime
		pt.rrState = res.Status
		pt.shadow = res.Shadow
		body = res.Body
		rrExplain = res.Explain
	}
	if !pt.explain {
		return body, nil
	}
	ext := []byte(`{}`)
	if len(pt.rewrite.Explain) > 0 {
		ext, _ = sjson.SetRawBytes(ext, "rewrite", pt.rewrite.Explain)
	}
	if len(rrExplain) > 0 {
		ext, _ = sjson.SetRawBytes(ext, "rerank", rrExplain)
	}
	if m := explainMoments(pt.rewrite.Explain, body); m != nil {
		ext, _ = sjson.SetRawBytes(ext, "moments", m)
	}
	if pt.hy != nil {
		if b, err := json.Marshal(pt.hy.explain); err == nil {
			ext, _ = sjson.SetRawBytes(ext, "hybrid.hits", b)
			ext, _ = sjson.SetBytes(ext, "hybrid.fusion", pt.hy.plan.Fusion)
		}
	}
	if pt.retrieval != "" {
		ext, _ = sjson.SetBytes(ext, "status.retrieval", pt.retrieval)
	}
	ext, _ = sjson.SetBytes(ext, "status.rewrite", pt.rwState)
	ext, _ = sjson.SetBytes(ext, "status.rerank", pt.rrState)
	if b, err := sjson.SetRawBytes(body, "ext.vlproxy", ext); err == nil {
		body = b
	}
	return body, nil
}

// summarizeRetrieval builds X-VLProxy-Retrieval like summarize: "" when no search had a clause.
func summarizeRetrieval(parts []*part) string {
	any := false
	for _, pt := range parts {
		any = any || pt.retrieval != ""
	}
	if !any {
		return ""
	}
	return join(parts, func(pt *part) string {
		if pt.retrieval == "" {
			return "skipped"
		}
		return pt.retrieval
	})
}

// summarize builds the X-VLProxy-Rewrite and X-VLProxy-Rerank values: one value, or for
// `_msearch` one per search in order, comma-separated, when they differ.
func summarize(in *input, parts []*part) (rw, rr string) {
	if len(parts) == 0 {
		rw, rr = "skipped", "off"
		switch {
		case in.kind == Count:
			rr = "skipped:count"
		case rerankRequested(in): // requested and yet nothing to intercept: no scorer
			rr = "skipped:" + skipNoScorer
		}
		if in.sw.Rewrite == searchbody.SwitchOff {
			rw = "off"
		}
		return rw, rr
	}
	return join(parts, func(pt *part) string { return pt.rwState }), join(parts, func(pt *part) string { return pt.rrState })
}

func join(parts []*part, f func(*part) string) string {
	first := f(parts[0])
	same := true
	for _, pt := range parts[1:] {
		if f(pt) != first {
			same = false
			break
		}
	}
	if same {
		return first
	}
	var b []byte
	for i, pt := range parts {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, f(pt)...)
	}
	return string(b)
}

// explainMoments lists, for a moments clause, each hit's matching video segments from its
// inner_hits: [{"_id","moments":[{"start","end","description","score"}]}]; nil otherwise.
func explainMoments(rewriteExplain, body []byte) []byte {
	name := gjson.GetBytes(rewriteExplain, "moments.inner_hits").String()
	if name == "" {
		return nil
	}
	type moment struct {
		Start       float64 `json:"start"`
		End         float64 `json:"end"`
		Description string  `json:"description"`
		Score       float64 `json:"score"`
	}
	type hit struct {
		ID      string   `json:"_id"`
		Moments []moment `json:"moments"`
	}
	out := []hit{}
	path := "inner_hits." + gjson.Escape(name) + ".hits.hits"
	for _, h := range gjson.GetBytes(body, "hits.hits").Array() {
		e := hit{ID: h.Get("_id").String(), Moments: []moment{}}
		for _, m := range h.Get(path).Array() {
			src := m.Get("_source")
			e.Moments = append(e.Moments, moment{Start: src.Get("start").Float(), End: src.Get("end").Float(),
				Description: src.Get("description").String(), Score: m.Get("_score").Float()})
		}
		out = append(out, e)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil
	}
	return b
}
