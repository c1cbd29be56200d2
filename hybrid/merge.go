package hybrid

import (
	"fmt"
	"strconv"

	"github.com/tidwall/gjson"
)

// SideError is an error answer of one side of a hybrid search, as the engine gave it.
type SideError struct {
	Side   string // "lexical" or "vector"
	Status int
	Body   []byte // the engine's {"error":…,"status":…}
}

func (e *SideError) Error() string {
	return fmt.Sprintf("cannot run the %s side of the hybrid search: %s", e.Side, gjson.GetBytes(e.Body, "error.reason").String())
}

// Explained is one hit of the fused page as explain shows it.
type Explained struct {
	Index       string  `json:"_index"`
	ID          string  `json:"_id"`
	LexicalRank int     `json:"lexical_rank,omitempty"`
	VectorRank  int     `json:"vector_rank,omitempty"`
	Score       float64 `json:"fused_score"`
}

// Merger turns the two answers of a hybrid `_msearch` into one `_search` response. It
// reuses its buffers; not safe for concurrent use. The zero value is ready.
type Merger struct {
	fuser    Fuser
	lex, vec []Hit
	lexRaw   []string
	vecRaw   []string
}

// Merge fuses lexResp and vecResp (each one `_search` response) and returns a `_search`
// response: the lexical response with hits.hits replaced by the fused page (each hit's
// `_score` the fused score, `max_score` the best fused score), so hits.total, aggregations,
// _shards and the rest are the lexical side's; `took` is the larger of the two and
// `timed_out` true when either side timed out. explain, when true, also returns the page's
// ranks. An error answer of either side is a *SideError.
func (m *Merger) Merge(lexResp, vecResp []byte, p *Plan, from, size int, explain bool) ([]byte, []Explained, error) {
	if err := sideError("lexical", lexResp); err != nil {
		return nil, nil, err
	}
	if err := sideError("vector", vecResp); err != nil {
		return nil, nil, err
	}
	lr := gjson.Parse(view(lexResp))
	vr := gjson.Parse(view(vecResp))
	lh, vh := lr.Get("hits.hits"), vr.Get("hits.hits")
	m.lex, m.lexRaw = collect(m.lex[:0], m.lexRaw[:0], lh)
	m.vec, m.vecRaw = collect(m.vec[:0], m.vecRaw[:0], vh)
	fused := m.fuser.Fuse(m.lex, m.vec, p.Fusion)
	page := Page(fused, from, size)

	hitsArr := make([]byte, 0, len(lh.Raw)+len(vh.Raw)/2)
	hitsArr = append(hitsArr, '[')
	var ex []Explained
	if explain {
		ex = make([]Explained, 0, len(page))
	}
	for i, f := range page {
		if i > 0 {
			hitsArr = append(hitsArr, ',')
		}
		raw := ""
		if f.Lexical >= 0 {
			raw = m.lexRaw[f.Lexical]
		} else {
			raw = m.vecRaw[f.Vector]
		}
		hitsArr = appendWithScore(hitsArr, raw, f.Score)
		if explain {
			h := gjson.GetMany(raw, "_index", "_id")
			ex = append(ex, Explained{Index: h[0].String(), ID: h[1].String(),
				LexicalRank: f.LexicalRank(), VectorRank: f.VectorRank(), Score: f.Score})
		}
	}
	hitsArr = append(hitsArr, ']')

	out := make([]byte, 0, len(lexResp)+len(hitsArr))
	// Splice by offsets: everything of the lexical response stays byte for byte except
	// took, timed_out, max_score and the hits array.
	type edit struct {
		at   gjson.Result
		with []byte
	}
	edits := []edit{{lh, hitsArr}}
	if t := lr.Get("took"); t.Exists() && t.Index > 0 {
		took := max(t.Int(), vr.Get("took").Int())
		edits = append(edits, edit{t, strconv.AppendInt(nil, took, 10)})
	}
	if t := lr.Get("timed_out"); t.Exists() && t.Index > 0 && vr.Get("timed_out").Bool() {
		edits = append(edits, edit{t, []byte("true")})
	}
	if ms := lr.Get("hits.max_score"); ms.Exists() && ms.Index > 0 {
		v := []byte("null")
		if len(page) > 0 {
			v = strconv.AppendFloat(nil, fused[0].Score, 'g', -1, 64)
		}
		edits = append(edits, edit{ms, v})
	}
	if lh.Index <= 0 {
		return nil, nil, fmt.Errorf("cannot merge the hybrid search: the lexical response has no hits array")
	}
	sortEdits := func() {
		for i := 1; i < len(edits); i++ {
			for j := i; j > 0 && edits[j].at.Index < edits[j-1].at.Index; j-- {
				edits[j], edits[j-1] = edits[j-1], edits[j]
			}
		}
	}
	sortEdits()
	prev := 0
	for _, e := range edits {
		out = append(out, lexResp[prev:e.at.Index]...)
		out = append(out, e.with...)
		prev = e.at.Index + len(e.at.Raw)
	}
	out = append(out, lexResp[prev:]...)
	return out, ex, nil
}

func sideError(side string, resp []byte) error {
	e := gjson.Get(view(resp), "error")
	if !e.Exists() {
		return nil
	}
	st := int(gjson.Get(view(resp), "status").Int())
	if st == 0 {
		st = 500
	}
	return &SideError{Side: side, Status: st, Body: resp}
}

func collect(dst []Hit, raws []string, hits gjson.Result) ([]Hit, []string) {
	hits.ForEach(func(_, h gjson.Result) bool {
		f := h.Get("_index")
		id := h.Get("_id")
		dst = append(dst, Hit{Key: f.Str + "\x00" + id.Str, Score: h.Get("_score").Float()})
		raws = append(raws, h.Raw)
		return true
	})
	return dst, raws
}

// appendWithScore appends the hit object raw with its _score set to s (added first when
// the hit has none, e.g. under a sort).
func appendWithScore(dst []byte, raw string, s float64) []byte {
	sc := gjson.Get(raw, "_score")
	num := strconv.AppendFloat(nil, s, 'g', -1, 64)
	if sc.Exists() && sc.Index > 0 {
		dst = append(dst, raw[:sc.Index]...)
		dst = append(dst, num...)
		return append(dst, raw[sc.Index+len(sc.Raw):]...)
	}
	dst = append(dst, `{"_score":`...)
	dst = append(dst, num...)
	rest := raw[1:]
	if len(gjson.Parse(raw).Map()) > 0 {
		dst = append(dst, ',')
	}
	return append(dst, rest...)
}
