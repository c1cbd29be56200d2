package rerank

import (
	"encoding/binary"
	"encoding/hex"
	"github.com/vlproxy/vlproxy/internal/esjson"
	"github.com/vlproxy/vlproxy/internal/esshape"
	"hash/maphash"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/vlproxy/vlproxy/model"
)

// Skip reasons returned by Prepare; the proxy renders them as "skipped:<reason>"
// (SkipDisabled may be rendered as "off").
const (
	SkipDisabled     = "disabled"      // rerank not enabled for this request/index
	SkipSizeZero     = "size_zero"     // size: 0
	SkipSort         = "sort"          // a sort other than _score descending
	SkipSearchAfter  = "search_after"  // search_after paging
	SkipScroll       = "scroll"        // scroll URL parameter
	SkipPIT          = "pit"           // point in time
	SkipCollapse     = "collapse"      // field collapsing
	SkipNoQuery      = "no_query"      // no query text or image to score against
	SkipBeyondWindow = "beyond_window" // from >= window: the page is ES order anyway
	SkipInvalidBody  = "invalid_body"  // not a JSON object; ES will answer with its own error
)

// QueryArgs is the raw URL query string of the search request, without '?', as received.
type QueryArgs string

// Request is one search (or one body of an _msearch) offered to the reranker.
type Request struct {
	// Index is the target from the path (comma-separated names or patterns).
	Index string
	// Body is the search body after rewrite, with ext.vlproxy already removed.
	Body []byte
	// Args is the URL query string; size, from, sort, scroll, filter_path and _source* matter.
	Args QueryArgs
	// Mode comes from X-VLProxy-Rerank; it wins over Opts.Enabled.
	Mode Mode
	// Opts come from ext.vlproxy.rerank.
	Opts Options
	// Query is what candidates are scored against (the multimodal clause's text and image).
	// When empty, Prepare extracts the query text from the body or the q parameter.
	Query model.Document
	// QueryKey identifies the query in the score cache; derived from Query when empty.
	QueryKey string
	// Explain asks for Result.Explain (ext.vlproxy.explain).
	Explain bool
}

// Plan carries what Prepare decided to Apply. It is immutable and may be used once.
type Plan struct {
	from, size, window, fetch int
	shadow                    bool
	explain                   bool
	weight                    float64
	minScore                  *float64
	timeout                   time.Duration
	fields                    FieldsConfig
	fieldsSig                 uint64
	query                     model.Document
	queryKey                  string
	src                       *esshape.Source     // the client's _source filter to re-apply, nil when untouched
	fp                        *esshape.FilterPath // the client's filter_path to apply, nil when none
}

// From, Size and Window report the requested page and the rerank window.
func (p *Plan) From() int   { return p.from }
func (p *Plan) Size() int   { return p.size }
func (p *Plan) Window() int { return p.window }

// Shadow reports whether the plan only measures (returns ES order).
func (p *Plan) Shadow() bool { return p.shadow }

// Timeout is the rerank budget of this request.
func (p *Plan) Timeout() time.Duration { return p.timeout }

type qarg struct{ key, raw string }

func splitArgs(q string) []qarg {
	var out []qarg
	for q != "" {
		var seg string
		seg, q, _ = strings.Cut(q, "&")
		if seg == "" {
			continue
		}
		k, _, _ := strings.Cut(seg, "=")
		if uk, err := url.QueryUnescape(k); err == nil {
			k = uk
		}
		out = append(out, qarg{key: k, raw: seg})
	}
	return out
}

func argValue(args []qarg, key string) (string, bool) {
	for _, a := range args {
		if a.key == key {
			_, v, _ := strings.Cut(a.raw, "=")
			if uv, err := url.QueryUnescape(v); err == nil {
				v = uv
			}
			return v, true
		}
	}
	return "", false
}

// Prepare decides whether req is reranked. skip != "" means forward it unchanged; err is a
// 400 *eserr.Error for bad input. Otherwise it returns the body and query string to send upstream:
// size widened to max(from+size, window), from = 0, and _source/filter_path relaxed so the
// fields the reranker needs come back (Apply strips them again).
func (r *Reranker) Prepare(req Request) (plan *Plan, upstreamBody []byte, upstreamQuery string, skip string, err error) {
	o := req.Opts
	window := r.cfg.WindowSize
	if o.WindowSize != nil {
		window = *o.WindowSize
	}
	if window < 1 || window > r.cfg.MaxWindowSize {
		return nil, nil, "", "", badRequest("[%s.rank_window_size] must be between 1 and %d (rerank.max_window_size), got %d",
			optPrefix, r.cfg.MaxWindowSize, window)
	}
	enabled := false
	switch req.Mode {
	case ModeOn, ModeShadow:
		enabled = true
	case ModeDefault:
		if o.Enabled != nil {
			enabled = *o.Enabled
		} else {
			enabled = r.enabledFor(req.Index)
		}
	}
	if !enabled {
		return nil, nil, "", SkipDisabled, nil
	}
	body := req.Body
	if len(strings.TrimSpace(string(body))) == 0 {
		body = []byte("{}")
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() || !gjson.ValidBytes(body) {
		return nil, nil, "", SkipInvalidBody, nil
	}
	args := splitArgs(string(req.Args))

	size, from := 10, 0
	if n, ok, e := intParam(args, root, "size"); e != nil {
		return nil, nil, "", "", e
	} else if ok {
		size = n
	}
	if n, ok, e := intParam(args, root, "from"); e != nil {
		return nil, nil, "", "", e
	} else if ok {
		from = n
	}
	if _, ok := argValue(args, "scroll"); ok {
		return nil, nil, "", SkipScroll, nil
	}
	if size == 0 {
		return nil, nil, "", SkipSizeZero, nil
	}
	if v, ok := argValue(args, "sort"); ok && !urlSortIsScore(v) {
		return nil, nil, "", SkipSort, nil
	}
	if v := root.Get("sort"); v.Exists() && !bodySortIsScore(v) {
		return nil, nil, "", SkipSort, nil
	}
	if root.Get("search_after").Exists() {
		return nil, nil, "", SkipSearchAfter, nil
	}
	if root.Get("pit").Exists() {
		return nil, nil, "", SkipPIT, nil
	}
	if root.Get("collapse").Exists() {
		return nil, nil, "", SkipCollapse, nil
	}
	minScore := r.cfg.MinScore
	if o.MinScore != nil {
		minScore = o.MinScore
	}
	if from >= window && minScore == nil {
		return nil, nil, "", SkipBeyondWindow, nil
	}
	q := req.Query
	if q.Text == "" && q.Image == "" {
		q.Text = extractQueryText(root.Get("query"))
		if q.Text == "" {
			q.Text, _ = argValue(args, "q")
		}
		if q.Text == "" {
			return nil, nil, "", SkipNoQuery, nil
		}
	}
	p := &Plan{
		from: from, size: size, window: window, fetch: max(from+size, window),
		shadow: req.Mode == ModeShadow, explain: req.Explain,
		weight: r.cfg.Weight, minScore: minScore, timeout: r.cfg.Timeout,
		fields: r.cfg.Fields, query: q, queryKey: req.QueryKey,
	}
	if o.Weight != nil {
		p.weight = *o.Weight
	}
	if o.Timeout != nil {
		p.timeout = *o.Timeout
	}
	if o.Fields != nil {
		p.fields = *o.Fields
	}
	p.fieldsSig = fieldsSig(p.fields)
	if p.queryKey == "" {
		p.queryKey = docKey(q)
	}

	drop := map[string]bool{"size": true, "from": true}
	if fp, ok := argValue(args, "filter_path"); ok {
		p.fp = esshape.ParseFilterPath(fp)
		drop["filter_path"] = true
	}
	// The effective _source filter: URL parameters win over the body (as in ES).
	orig, fromURL := sourceFromArgs(args)
	if !fromURL {
		orig = sourceFromBody(root.Get("_source"))
	}
	needed := neededPaths(p.fields)
	keepsAll := true
	for _, n := range needed {
		if !orig.KeepsPath(n) {
			keepsAll = false
			break
		}
	}
	out := append([]byte(nil), body...)
	if !keepsAll {
		p.src = orig
		if fromURL {
			drop["_source"], drop["_source_includes"], drop["_source_excludes"] = true, true, true
		}
		out, err = sjson.SetRawBytes(out, "_source", upstreamSource(orig, needed))
		if err != nil {
			return nil, nil, "", "", badRequest("cannot set [_source]: %w", err)
		}
	}
	if out, err = sjson.SetBytes(out, "size", p.fetch); err != nil {
		return nil, nil, "", "", badRequest("cannot set [size]: %w", err)
	}
	if out, err = sjson.SetBytes(out, "from", 0); err != nil {
		return nil, nil, "", "", badRequest("cannot set [from]: %w", err)
	}
	var qs strings.Builder
	for _, a := range args {
		if drop[a.key] {
			continue
		}
		if qs.Len() > 0 {
			qs.WriteByte('&')
		}
		qs.WriteString(a.raw)
	}
	return p, out, qs.String(), "", nil
}

// intParam reads size/from from the URL (which wins, as in ES) or the body.
func intParam(args []qarg, root gjson.Result, name string) (int, bool, error) {
	var s string
	if v, ok := argValue(args, name); ok {
		s = v
	} else if v := root.Get(name); v.Exists() {
		if v.Type != gjson.Number && v.Type != gjson.String {
			return 0, false, badRequest("[%s] must be an integer, got %s", name, truncate(v.Raw, 20))
		}
		s = v.String()
	} else {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
	if err != nil {
		return 0, false, badRequest("[%s] must be an integer, got %q", name, truncate(s, 20))
	}
	if n < 0 {
		return 0, false, badRequest("[%s] parameter cannot be negative, found [%d]", name, n)
	}
	return int(n), true, nil
}

func urlSortIsScore(v string) bool {
	for _, f := range strings.Split(v, ",") {
		name, order, _ := strings.Cut(strings.TrimSpace(f), ":")
		if name != "_score" || (order != "" && order != "desc") {
			return false
		}
	}
	return true
}

// bodySortIsScore accepts "_score", {"_score":"desc"}, {"_score":{"order":"desc"}} and lists of them.
func bodySortIsScore(v gjson.Result) bool {
	if v.IsArray() {
		ok := true
		v.ForEach(func(_, e gjson.Result) bool {
			ok = bodySortIsScore(e)
			return ok
		})
		return ok
	}
	if v.Type == gjson.String {
		return v.String() == "_score"
	}
	if !v.IsObject() {
		return false
	}
	ok := true
	v.ForEach(func(k, e gjson.Result) bool {
		if k.String() != "_score" {
			ok = false
			return false
		}
		order := e.String()
		if e.IsObject() {
			order = e.Get("order").String()
		}
		ok = order == "" || order == "desc"
		return ok
	})
	return ok
}

// extractQueryText collects the query strings of full-text clauses (match*, multi_match,
// query_string, simple_query_string, combined_fields) anywhere in the query, in order.
func extractQueryText(q gjson.Result) string {
	var parts []string
	var walk func(v gjson.Result)
	walk = func(v gjson.Result) {
		if v.IsArray() {
			v.ForEach(func(_, e gjson.Result) bool { walk(e); return true })
			return
		}
		if !v.IsObject() {
			return
		}
		v.ForEach(func(k, e gjson.Result) bool {
			switch k.String() {
			case "multi_match", "query_string", "simple_query_string", "combined_fields":
				if s := e.Get("query").String(); s != "" {
					parts = append(parts, s)
				}
			case "match", "match_phrase", "match_phrase_prefix", "match_bool_prefix":
				e.ForEach(func(_, f gjson.Result) bool {
					s := f.String()
					if f.IsObject() {
						s = f.Get("query").String()
					}
					if s != "" {
						parts = append(parts, s)
					}
					return true
				})
			case "must_not", "filter":
				// Negative and filtering clauses say nothing about relevance.
			default:
				walk(e)
			}
			return true
		})
	}
	walk(q)
	seen := map[string]bool{}
	out := parts[:0]
	for _, p := range parts {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}

func sourceFromArgs(args []qarg) (*esshape.Source, bool) {
	f := &esshape.Source{}
	found := false
	if v, ok := argValue(args, "_source"); ok {
		found = true
		switch v {
		case "false":
			f.Disabled = true
		case "true", "":
		default:
			f.Includes = splitList(v)
		}
	}
	if v, ok := argValue(args, "_source_includes"); ok {
		found = true
		f.Disabled = false
		f.Includes = splitList(v)
	}
	if v, ok := argValue(args, "_source_excludes"); ok {
		found = true
		f.Excludes = splitList(v)
	}
	return f, found
}

func splitList(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

func sourceFromBody(v gjson.Result) *esshape.Source {
	f := &esshape.Source{}
	strs := func(v gjson.Result) []string {
		if v.Type == gjson.String {
			return []string{v.String()}
		}
		var out []string
		v.ForEach(func(_, e gjson.Result) bool {
			out = append(out, e.String())
			return true
		})
		return out
	}
	switch {
	case !v.Exists(), v.Type == gjson.True:
	case v.Type == gjson.False:
		f.Disabled = true
	case v.Type == gjson.String, v.IsArray():
		f.Includes = strs(v)
	case v.IsObject():
		for _, k := range []string{"includes", "include"} {
			if e := v.Get(k); e.Exists() {
				f.Includes = strs(e)
			}
		}
		for _, k := range []string{"excludes", "exclude"} {
			if e := v.Get(k); e.Exists() {
				f.Excludes = strs(e)
			}
		}
	}
	return f
}

func neededPaths(f FieldsConfig) []string {
	n := append([]string(nil), f.Text...)
	if f.Image != "" {
		n = append(n, f.Image)
	}
	return n
}

// upstreamSource is the _source filter sent upstream: the client's filter widened by the
// fields the reranker needs.
func upstreamSource(orig *esshape.Source, needed []string) []byte {
	var incl, excl []string
	if !orig.Disabled {
		if len(orig.Includes) > 0 {
			incl = append(incl, orig.Includes...)
			for _, n := range needed {
				if !(&esshape.Source{Includes: orig.Includes}).KeepsPath(n) {
					incl = append(incl, n)
				}
			}
		}
		for _, e := range orig.Excludes {
			drops := false
			for _, n := range needed {
				if !(&esshape.Source{Excludes: []string{e}}).KeepsPath(n) {
					drops = true
				}
			}
			if !drops {
				excl = append(excl, e)
			}
		}
	} else {
		incl = needed
	}
	b := []byte(`{"includes":[`)
	for i, s := range incl {
		if i > 0 {
			b = append(b, ',')
		}
		b = esjson.AppendString(b, s)
	}
	b = append(b, `],"excludes":[`...)
	for i, s := range excl {
		if i > 0 {
			b = append(b, ',')
		}
		b = esjson.AppendString(b, s)
	}
	return append(b, "]}"...)
}

var hashSeed1, hashSeed2 = maphash.MakeSeed(), maphash.MakeSeed()

// docKey is a 128-bit in-process hash of a document (the score cache lives in this process).
func docKey(d model.Document) string {
	var h maphash.Hash
	var b [16]byte
	for i, seed := range []maphash.Seed{hashSeed1, hashSeed2} {
		h.SetSeed(seed)
		h.WriteString(d.Text)
		h.WriteByte(0)
		h.WriteString(d.Image)
		binary.LittleEndian.PutUint64(b[i*8:], h.Sum64())
	}
	return hex.EncodeToString(b[:])
}

func fieldsSig(f FieldsConfig) uint64 {
	var h maphash.Hash
	h.SetSeed(hashSeed1)
	for _, t := range f.Text {
		h.WriteString(t)
		h.WriteByte(0)
	}
	h.WriteByte(1)
	h.WriteString(f.Image)
	return h.Sum64()
}
