package hybrid

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"unsafe"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// Engines, which differ in the shape of the kNN query.
const (
	// OpenSearch's k-NN plugin: {"knn":{"<field>":{"vector":[…],"k":K,"filter":{…}}}}.
	OpenSearch = "opensearch"
	// Elasticsearch 8.12+ knn query: {"knn":{"field":…,"query_vector":[…],"k":K,"num_candidates":N,"filter":{…}}}.
	Elasticsearch = "elasticsearch"
)

// Retrieval modes of a multimodal clause.
const (
	ModeKeywords = "keywords"
	ModeVector   = "vector"
	ModeHybrid   = "hybrid"
)

// Plan is what the rewriter decided for one clause that runs a kNN search: the engine's
// query is built from it once the body's final from/size are known (rerank may widen them).
type Plan struct {
	Mode   string // ModeVector or ModeHybrid
	Engine string
	Field  string
	Vector []float32
	// K is the clause's k; 0 derives it from the page (from+size) so the page is full.
	K int
	// NumCandidates is the clause's num_candidates; 0 means max(2k, 100), at most 10000.
	NumCandidates int
	// Filter is the raw JSON query every kNN hit must match (the client's bool filters), or nil.
	Filter []byte
	Fusion Fusion
}

// ErrPlacement is returned by Locate when the clause stands where a kNN search cannot take
// its place.
var ErrPlacement = errors.New("the multimodal clause must be the query itself or stand in [must] or [should] of the top-level [bool]")

// Locate finds the clause whose replacement occupies body[start:end] and returns the filter
// the kNN side must apply: the top-level bool's filter and must_not, and its other must
// clauses (they restrict the result set; other should clauses only score, so the kNN side
// ignores them). A clause that is the whole query gives a nil filter.
func Locate(body []byte, start, end int) ([]byte, error) {
	q := gjson.Get(view(body), "query")
	if q.Index == start && q.Index+len(q.Raw) == end {
		return nil, nil
	}
	b := q.Get("bool")
	if !b.IsObject() {
		return nil, ErrPlacement
	}
	found := false
	var musts, filters, nots []string
	at := func(v gjson.Result) bool { return v.Index == start && v.Index+len(v.Raw) == end }
	each := func(v gjson.Result, f func(gjson.Result)) {
		if v.IsArray() {
			v.ForEach(func(_, x gjson.Result) bool { f(x); return true })
		} else if v.Exists() {
			f(v)
		}
	}
	each(b.Get("must"), func(x gjson.Result) {
		if at(x) {
			found = true
		} else {
			musts = append(musts, x.Raw)
		}
	})
	each(b.Get("should"), func(x gjson.Result) { found = found || at(x) })
	if !found {
		return nil, ErrPlacement
	}
	each(b.Get("filter"), func(x gjson.Result) { filters = append(filters, x.Raw) })
	each(b.Get("must_not"), func(x gjson.Result) { nots = append(nots, x.Raw) })
	filters = append(filters, musts...)
	if len(filters) == 0 && len(nots) == 0 {
		return nil, nil
	}
	out := []byte(`{"bool":{`)
	if len(filters) > 0 {
		out = appendRawArray(append(out, `"filter":`...), filters)
	}
	if len(nots) > 0 {
		if len(filters) > 0 {
			out = append(out, ',')
		}
		out = appendRawArray(append(out, `"must_not":`...), nots)
	}
	return append(out, "}}"...), nil
}

func appendRawArray(dst []byte, raws []string) []byte {
	dst = append(dst, '[')
	for i, r := range raws {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, r...)
	}
	return append(dst, ']')
}

// k returns the number of neighbours for a page that needs n hits.
func (p *Plan) k(n int) int {
	return max(p.K, n, 1)
}

func (p *Plan) numCandidates(k int) int {
	if p.NumCandidates > 0 {
		return max(p.NumCandidates, k)
	}
	return min(max(2*k, 100), max(10000, k))
}

// AppendQuery appends the engine's kNN query for k neighbours.
func (p *Plan) AppendQuery(dst []byte, k int) []byte {
	if p.Engine == Elasticsearch {
		dst = append(dst, `{"knn":{"field":`...)
		dst = strconv.AppendQuote(dst, p.Field)
		dst = append(dst, `,"query_vector":`...)
		dst = appendVector(dst, p.Vector)
		dst = append(dst, `,"k":`...)
		dst = strconv.AppendInt(dst, int64(k), 10)
		dst = append(dst, `,"num_candidates":`...)
		dst = strconv.AppendInt(dst, int64(p.numCandidates(k)), 10)
	} else {
		dst = append(dst, `{"knn":{`...)
		dst = strconv.AppendQuote(dst, p.Field)
		dst = append(dst, `:{"vector":`...)
		dst = appendVector(dst, p.Vector)
		dst = append(dst, `,"k":`...)
		dst = strconv.AppendInt(dst, int64(k), 10)
		if p.NumCandidates > 0 {
			dst = append(dst, `,"method_parameters":{"ef_search":`...)
			dst = strconv.AppendInt(dst, int64(p.numCandidates(k)), 10)
			dst = append(dst, '}')
		}
	}
	if len(p.Filter) > 0 {
		dst = append(dst, `,"filter":`...)
		dst = append(dst, p.Filter...)
	}
	if p.Engine != Elasticsearch {
		dst = append(dst, '}')
	}
	return append(dst, "}}"...)
}

func appendVector(dst []byte, v []float32) []byte {
	dst = append(dst, '[')
	for i, x := range v {
		if i > 0 {
			dst = append(dst, ',')
		}
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			x = 0
		}
		dst = strconv.AppendFloat(dst, float64(x), 'g', -1, 32)
	}
	return append(dst, ']')
}

// PageOf reads from and size of a body as ES does (defaults 0 and 10).
func PageOf(body []byte) (from, size int, err error) {
	from, size = 0, 10
	r := gjson.GetManyBytes(body, "from", "size")
	for i, v := range r {
		if !v.Exists() {
			continue
		}
		n, ok := wholeNumber(v)
		if !ok || n < 0 {
			return 0, 0, fmt.Errorf("cannot read [%s]: want a non-negative integer, got %s", []string{"from", "size"}[i], v.Raw)
		}
		if i == 0 {
			from = n
		} else {
			size = n
		}
	}
	return from, size, nil
}

func wholeNumber(v gjson.Result) (int, bool) {
	if v.Type != gjson.Number || v.Num != math.Trunc(v.Num) || v.Num > 1e9 {
		return 0, false
	}
	return int(v.Num), true
}

// vectorOnlyDrops are body keys that make no sense on the kNN side of a hybrid search: the
// lexical side answers aggregations, suggestions and totals.
var vectorSideDrops = []string{"aggs", "aggregations", "suggest", "highlight", "track_total_hits", "post_filter", "rescore", "min_score"}

// VectorBody is the body of a `vector` search: body with its query replaced by the kNN query
// (k at least from+size, so the page is full); everything else stays.
func (p *Plan) VectorBody(body []byte) ([]byte, error) {
	from, size, err := PageOf(body)
	if err != nil {
		return nil, err
	}
	q := p.AppendQuery(nil, p.k(from+size))
	return sjson.SetRawBytes(append([]byte(nil), body...), "query", q)
}

// Sides returns the two bodies of a hybrid search — the lexical body and the kNN body, each
// asking for the top from+size (at least k for the kNN side) from 0 — and the page to cut
// from the fused list.
func (p *Plan) Sides(body []byte) (lex, vec []byte, from, size int, err error) {
	from, size, err = PageOf(body)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	n := from + size
	lex = append([]byte(nil), body...)
	if lex, err = sjson.SetBytes(lex, "from", 0); err != nil {
		return nil, nil, 0, 0, err
	}
	if lex, err = sjson.SetBytes(lex, "size", n); err != nil {
		return nil, nil, 0, 0, err
	}
	vec = append([]byte(nil), lex...)
	for _, k := range vectorSideDrops {
		if gjson.GetBytes(vec, k).Exists() {
			if vec, err = sjson.DeleteBytes(vec, k); err != nil {
				return nil, nil, 0, 0, err
			}
		}
	}
	k := p.k(n)
	if vec, err = sjson.SetBytes(vec, "size", max(n, min(k, 10000))); err != nil {
		return nil, nil, 0, 0, err
	}
	if vec, err = sjson.SetRawBytes(vec, "query", p.AppendQuery(nil, k)); err != nil {
		return nil, nil, 0, 0, err
	}
	return lex, vec, from, size, nil
}

// AppendMsearch appends the `_msearch` body running both sides on index (a URL index
// expression; "" for all); header holds extra item-header fields as raw JSON members
// (`"routing":"x"`), or nothing.
func AppendMsearch(dst []byte, index, header string, lex, vec []byte) []byte {
	h := []byte{'{'}
	if index != "" {
		h = append(h, `"index":`...)
		h = strconv.AppendQuote(h, index)
	}
	if header != "" {
		if index != "" {
			h = append(h, ',')
		}
		h = append(h, header...)
	}
	h = append(h, "}\n"...)
	dst = append(dst, h...)
	dst = append(dst, compact(lex)...)
	dst = append(dst, '\n')
	dst = append(dst, h...)
	dst = append(dst, compact(vec)...)
	return append(dst, '\n')
}

// compact removes the newlines an _msearch body cannot hold (outside strings they are
// whitespace; inside strings JSON forbids raw newlines anyway).
func compact(b []byte) []byte {
	for _, c := range b {
		if c == '\n' || c == '\r' {
			out := make([]byte, 0, len(b))
			for _, c := range b {
				if c != '\n' && c != '\r' {
					out = append(out, c)
				}
			}
			return out
		}
	}
	return b
}

// view reads b as a string without copying (gjson's *Bytes functions copy what they
// return); nothing returned from it may outlive b or be kept.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
