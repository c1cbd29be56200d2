package rerank

import (
	"context"
	"encoding/json"
	"github.com/vlproxy/vlproxy/internal/esjson"
	"github.com/vlproxy/vlproxy/internal/jsonscan"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/vlproxy/vlproxy/model"
)

// Rerank statuses (X-VLProxy-Rerank); fallbacks are StatusFallback + ":" + reason.
const (
	StatusApplied  = "applied"
	StatusPartial  = "partial"
	StatusCached   = "cached"
	StatusShadow   = "shadow"
	StatusFallback = "fallback"
)

// Result is what Apply produced.
type Result struct {
	// Body is the response for the client: the requested from/size slice, shaped as asked.
	Body []byte
	// Status is applied, partial, cached, shadow or fallback:<reason>.
	Status string
	// ModelTime is the time spent getting scores (cache and model).
	ModelTime time.Duration
	// Explain is {"scorer","model","status","hits":[{_index,_id,rank,original_rank,
	// original_score,model_score,score}]} for the returned hits; nil unless Request.Explain.
	Explain json.RawMessage
	// Shadow compares the reranked order with ES order; zero when nothing was scored.
	Shadow ShadowStats
}

// ShadowStats measures how reranking changed (or, in shadow mode, would have changed) the order.
type ShadowStats struct {
	// K is the number of top positions compared: min(from+size, window hits).
	K int
	// Overlap is |top-K by ES ∩ top-K reranked| / K.
	Overlap float64
	// Displacement is the mean |new rank − ES rank| over the scored window.
	Displacement float64
	// Top1Changed reports whether the first hit changed.
	Top1Changed bool
	// Scored is the number of window hits with a model score.
	Scored int
}

// hitInfo is one ES hit: bounds in the response bytes and the metadata reranking needs.
type hitInfo struct {
	start, end       int
	srcStart, srcEnd int // -1 when the hit has no _source
	id               string
	index            string
	esScore          float64
	hasScore         bool
	seq              int64
	hasSeq           bool
	doc              model.Document
}

// Apply reranks the ES response of a prepared request and returns the client's response.
// esBody must stay unmodified during the call. Model problems never fail it: they degrade to
// ES order with Status fallback:<reason>; a response without hits passes through shaped.
func (r *Reranker) Apply(ctx context.Context, plan *Plan, esBody []byte) (Result, error) {
	if plan == nil {
		return Result{Body: esBody, Status: StatusFallback + ":no_plan"}, nil
	}
	if len(esBody) == 0 {
		return Result{Body: esBody, Status: StatusFallback + ":bad_response"}, nil
	}
	loc, hits, ok := parseResponse(esBody, make([]hitInfo, 0, plan.fetch), func(i int) *FieldsConfig {
		if i < plan.window {
			return &plan.fields
		}
		return nil
	})
	if !ok {
		if !json.Valid(esBody) {
			return Result{Body: esBody, Status: StatusFallback + ":bad_response"}, nil
		}
		return Result{Body: plan.shape(esBody), Status: StatusFallback + ":bad_response"}, nil
	}
	w := min(plan.window, len(hits))

	res := Result{}
	var scores []float64
	fromCache := false
	if w > 0 {
		start := time.Now()
		scoreBy := start.Add(plan.timeout)
		// The wait outlasts the scoring deadline by a little, so partial scores get back.
		sctx, cancel := context.WithDeadline(ctx, scoreBy.Add(waitGrace(plan.timeout)))
		var err error
		scores, fromCache, err = r.scoreWindow(sctx, scoreBy, plan, hits[:w])
		res.ModelTime = time.Since(start)
		cancel()
		if err != nil {
			reason := model.Reason(err)
			if reason == model.KindCanceled && ctx.Err() == nil {
				reason = model.KindTimeout
			}
			r.log.Debug("rerank falls back to ES order", "reason", reason, "err", err)
			res.Status = StatusFallback + ":" + reason
			res.Body = plan.shape(plan.build(esBody, loc, hits, nil, nil, false))
			if plan.explain {
				res.Explain = r.explain(plan, res.Status, hits, nil, nil, nil)
			}
			return res, nil
		}
	}
	order, fused, scored := plan.order(hits, scores)
	if w > 0 && scored == 0 {
		// Nothing came back in time: that is a timeout, not a partial rerank.
		reason := model.KindTimeout
		if ctx.Err() != nil {
			reason = model.Reason(ctx.Err())
		}
		res.Status = StatusFallback + ":" + reason
		res.Body = plan.shape(plan.build(esBody, loc, hits, nil, nil, false))
		if plan.explain {
			res.Explain = r.explain(plan, res.Status, hits, nil, nil, nil)
		}
		return res, nil
	}
	res.Shadow = shadowStats(order, w, plan, scored)
	switch {
	case plan.shadow:
		res.Status = StatusShadow
	case scored < w:
		res.Status = StatusPartial
	case fromCache:
		res.Status = StatusCached
	default:
		res.Status = StatusApplied
	}
	if plan.shadow {
		res.Body = plan.build(esBody, loc, hits, nil, nil, false)
	} else {
		res.Body = plan.build(esBody, loc, hits, order, fused, true)
	}
	if plan.explain {
		if plan.shadow {
			res.Explain = r.explain(plan, res.Status, hits, nil, scores, fused)
		} else {
			res.Explain = r.explain(plan, res.Status, hits, order, scores, fused)
		}
	}
	res.Body = plan.shape(res.Body)
	return res, nil
}

// order returns the final hit order (window reordered, unscored window hits after the scored
// ones in ES order, min_score drops, then the hits beyond the window in ES order), the fused
// score per hit (NaN when not scored) and the number of scored window hits.
func (p *Plan) order(hits []hitInfo, scores []float64) ([]int, []float64, int) {
	w := len(scores)
	fused := make([]float64, len(hits))
	for i := range fused {
		fused[i] = math.NaN()
	}
	scored := 0
	mlo, mhi := math.Inf(1), math.Inf(-1)
	elo, ehi := math.Inf(1), math.Inf(-1)
	esOK := true
	for i := 0; i < w; i++ {
		if math.IsNaN(scores[i]) {
			continue
		}
		scored++
		mlo, mhi = math.Min(mlo, scores[i]), math.Max(mhi, scores[i])
		if !hits[i].hasScore {
			esOK = false
		} else {
			elo, ehi = math.Min(elo, hits[i].esScore), math.Max(ehi, hits[i].esScore)
		}
	}
	norm := func(v, lo, hi float64) float64 {
		if hi > lo {
			return (v - lo) / (hi - lo)
		}
		return 1
	}
	order := make([]int, 0, len(hits))
	for i := 0; i < w; i++ {
		if math.IsNaN(scores[i]) {
			continue
		}
		if p.minScore != nil && scores[i] < *p.minScore {
			continue
		}
		var es float64
		if esOK {
			es = norm(hits[i].esScore, elo, ehi)
		} else if w > 1 {
			es = 1 - float64(i)/float64(w-1) // no ES scores: ES rank stands in
		} else {
			es = 1
		}
		fused[i] = p.weight*norm(scores[i], mlo, mhi) + (1-p.weight)*es
		order = append(order, i)
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case fused[a] > fused[b]:
			return -1
		case fused[a] < fused[b]:
			return 1
		}
		return 0
	})
	for i := 0; i < w; i++ {
		if math.IsNaN(scores[i]) {
			order = append(order, i)
		}
	}
	for i := w; i < len(hits); i++ {
		order = append(order, i)
	}
	return order, fused, scored
}

func shadowStats(order []int, w int, p *Plan, scored int) ShadowStats {
	st := ShadowStats{Scored: scored}
	if scored == 0 || w == 0 {
		return st
	}
	k := min(p.from+p.size, w, len(order))
	st.K = k
	if k == 0 {
		return st
	}
	in := 0
	for _, i := range order[:k] {
		if i < k {
			in++
		}
	}
	st.Overlap = float64(in) / float64(k)
	st.Top1Changed = order[0] != 0
	var disp float64
	n := 0
	for pos, i := range order {
		if i < w {
			disp += math.Abs(float64(pos - i))
			n++
		}
	}
	// Hits dropped by min_score count as displaced to the end of the window.
	if n < w {
		seen := make([]bool, w)
		for _, i := range order {
			if i < w {
				seen[i] = true
			}
		}
		for i, s := range seen {
			if !s {
				disp += float64(w - i)
				n++
			}
		}
	}
	st.Displacement = disp / float64(n)
	return st
}

// build writes the response: the from/size slice of order (nil: ES order), with new _score
// values and max_score when rescore is set, and the client's _source filter re-applied.
func (p *Plan) build(esBody []byte, loc respLoc, hits []hitInfo, order []int, fused []float64, rescore bool) []byte {
	n := len(hits)
	if order != nil {
		n = len(order)
	}
	lo := min(p.from, n)
	hi := min(p.from+p.size, n)
	at := func(pos int) int {
		if order != nil {
			return order[pos]
		}
		return pos
	}
	size := len(esBody) - (loc.hitsEnd - loc.hitsStart) + 64
	for pos := lo; pos < hi; pos++ {
		h := &hits[at(pos)]
		size += h.end - h.start + 32
	}
	out := make([]byte, 0, size)
	msStart, msEnd := -1, -1
	var maxScore float64
	haveMax := false
	if rescore {
		msStart, msEnd = loc.maxStart, loc.maxEnd
		for _, i := range order {
			s, ok := hitScore(&hits[i], fused[i])
			if ok && (!haveMax || s > maxScore) {
				maxScore, haveMax = s, true
			}
		}
	}
	hs, he := loc.hitsStart, loc.hitsEnd
	if msStart >= 0 && msEnd <= hs {
		out = append(out, esBody[:msStart]...)
		out = appendScore(out, maxScore, haveMax)
		out = append(out, esBody[msEnd:hs]...)
	} else {
		out = append(out, esBody[:hs]...)
	}
	out = append(out, '[')
	for pos := lo; pos < hi; pos++ {
		if pos > lo {
			out = append(out, ',')
		}
		i := at(pos)
		score := math.NaN()
		if rescore {
			score = fused[i]
		}
		out = p.appendHit(out, esBody, &hits[i], score)
	}
	out = append(out, ']')
	if msStart >= he {
		out = append(out, esBody[he:msStart]...)
		out = appendScore(out, maxScore, haveMax)
		out = append(out, esBody[msEnd:]...)
	} else {
		out = append(out, esBody[he:]...)
	}
	return out
}

func hitScore(h *hitInfo, fused float64) (float64, bool) {
	if !math.IsNaN(fused) {
		return fused, true
	}
	return h.esScore, h.hasScore
}

func appendScore(dst []byte, s float64, ok bool) []byte {
	if !ok {
		return append(dst, "null"...)
	}
	return strconv.AppendFloat(dst, float64(float32(s)), 'g', -1, 32)
}

// appendHit writes one hit, replacing _score when score is not NaN and re-filtering _source.
func (p *Plan) appendHit(dst, b []byte, h *hitInfo, score float64) []byte {
	if math.IsNaN(score) && p.src == nil || b[h.start] != '{' {
		return append(dst, b[h.start:h.end]...)
	}
	dst = append(dst, '{')
	first := true
	jsonscan.EachField(b, h.start, func(key []byte, ks, vs int) int {
		ve := jsonscan.SkipValue(b, vs)
		if ve < 0 {
			return -1
		}
		switch {
		case string(key) == "_score" && !math.IsNaN(score):
			dst = appendKey(dst, b[ks:ks+len(key)+2], &first)
			dst = appendScore(dst, score, true)
		case string(key) == "_source" && p.src != nil:
			if p.src.Disabled {
				return ve
			}
			dst = appendKey(dst, b[ks:ks+len(key)+2], &first)
			if b[vs] == '{' {
				dst = p.src.AppendFiltered(dst, gjson.Parse(bstr(b[vs:ve])))
			} else {
				dst = append(dst, b[vs:ve]...)
			}
		default:
			dst = appendKey(dst, b[ks:ks+len(key)+2], &first)
			dst = append(dst, b[vs:ve]...)
		}
		return ve
	})
	return append(dst, '}')
}

func appendKey(dst []byte, raw []byte, first *bool) []byte {
	if !*first {
		dst = append(dst, ',')
	}
	*first = false
	dst = append(dst, raw...)
	return append(dst, ':')
}

// shape applies the client's filter_path.
func (p *Plan) shape(body []byte) []byte {
	if p.fp == nil {
		return body
	}
	return p.fp.Apply(body)
}

// explain describes the returned hits; order nil means ES order.
func (r *Reranker) explain(p *Plan, status string, hits []hitInfo, order []int, scores, fused []float64) json.RawMessage {
	name := r.scorer.Name()
	kind, mdl, _ := strings.Cut(name, ":")
	b := []byte(`{"scorer":`)
	b = esjson.AppendString(b, kind)
	b = append(b, `,"model":`...)
	b = esjson.AppendString(b, mdl)
	b = append(b, `,"status":`...)
	b = esjson.AppendString(b, status)
	b = append(b, `,"window":`...)
	b = strconv.AppendInt(b, int64(min(p.window, len(hits))), 10)
	b = append(b, `,"hits":[`...)
	n := len(hits)
	if order != nil {
		n = len(order)
	}
	lo, hi := min(p.from, n), min(p.from+p.size, n)
	for pos := lo; pos < hi; pos++ {
		i := pos
		if order != nil {
			i = order[pos]
		}
		h := &hits[i]
		if pos > lo {
			b = append(b, ',')
		}
		b = append(b, `{"_index":`...)
		b = esjson.AppendString(b, h.index)
		b = append(b, `,"_id":`...)
		b = esjson.AppendString(b, h.id)
		b = append(b, `,"rank":`...)
		b = strconv.AppendInt(b, int64(pos+1), 10)
		b = append(b, `,"original_rank":`...)
		b = strconv.AppendInt(b, int64(i+1), 10)
		b = append(b, `,"original_score":`...)
		b = appendScore(b, h.esScore, h.hasScore)
		b = append(b, `,"model_score":`...)
		if i < len(scores) && !math.IsNaN(scores[i]) {
			b = strconv.AppendFloat(b, scores[i], 'g', -1, 64)
		} else {
			b = append(b, "null"...)
		}
		b = append(b, `,"score":`...)
		if i < len(fused) {
			b = appendScore(b, fused[i], !math.IsNaN(fused[i]))
		} else {
			b = append(b, "null"...)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// waitGrace is how long Apply waits past the scoring deadline: 10% of the budget, 2..20 ms.
func waitGrace(timeout time.Duration) time.Duration {
	return min(max(timeout/10, 2*time.Millisecond), 20*time.Millisecond)
}
