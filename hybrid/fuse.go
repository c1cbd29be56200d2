// Package hybrid owns hybrid retrieval: fusing a lexical and a vector result list into one
// ranking (reciprocal rank fusion or a weighted sum of min-max normalised scores), paging over
// the fused list, and the bytes around it — the one `_msearch` round trip that runs both
// searches and the single ES response built from the two answers. It is pure: no network, no
// model, no engine knowledge beyond the shape of a search body and response.
package hybrid

import (
	"fmt"
	"math"
	"slices"
)

// Fusion methods.
const (
	RRF    = "rrf"
	Linear = "linear"
)

// Fusion says how two ranked lists become one.
type Fusion struct {
	// Method is RRF or Linear. Default RRF.
	Method string `yaml:"method"`
	// RankConstant is RRF's k in 1/(k+rank), rank counted from 1. Default 60 (as ES and OpenSearch).
	RankConstant int `yaml:"rank_constant"`
	// Weights are Linear's weights of the lexical and the vector side, applied to scores
	// min-max normalised to [0,1] per side. Default [0.5, 0.5].
	Weights [2]float64 `yaml:"weights"`
}

// DefaultRankConstant is RRF's default k.
const DefaultRankConstant = 60

// WithDefaults fills zero fields.
func (f Fusion) WithDefaults() Fusion {
	if f.Method == "" {
		f.Method = RRF
	}
	if f.RankConstant <= 0 {
		f.RankConstant = DefaultRankConstant
	}
	if f.Weights == [2]float64{} {
		f.Weights = [2]float64{0.5, 0.5}
	}
	return f
}

// Validate reports the first bad field, naming it as a client would write it.
func (f Fusion) Validate() error {
	switch f.Method {
	case RRF, Linear, "":
	default:
		return fmt.Errorf("cannot use fusion [%s]: want rrf or linear", f.Method)
	}
	if f.RankConstant < 0 {
		return fmt.Errorf("cannot use fusion.rank_constant [%d]: must be at least 1", f.RankConstant)
	}
	for _, w := range f.Weights {
		if w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
			return fmt.Errorf("cannot use fusion.weights [%g, %g]: weights must be finite and not negative", f.Weights[0], f.Weights[1])
		}
	}
	return nil
}

// Hit is one entry of a side's ranked list, best first. Key identifies the document across
// the two sides (index and _id); Score is the engine's score.
type Hit struct {
	Key   string
	Score float64
}

// Fused is one document of the fused ranking. Lexical and Vector are its 0-based positions in
// the input lists, -1 where that side did not return it; LexicalRank and VectorRank are the same
// counted from 1 (0 = absent), as explain shows them.
type Fused struct {
	Key     string
	Lexical int
	Vector  int
	Score   float64
}

// LexicalRank is the 1-based rank on the lexical side, 0 when absent.
func (f Fused) LexicalRank() int { return f.Lexical + 1 }

// VectorRank is the 1-based rank on the vector side, 0 when absent.
func (f Fused) VectorRank() int { return f.Vector + 1 }

// Fuser fuses lists, reusing its buffers; it is not safe for concurrent use (take one per
// request or from a sync.Pool). The zero value is ready.
type Fuser struct {
	index map[string]int
	out   []Fused
}

// Fuse returns the union of lex and vec ordered by fused score, best first. A key repeated
// within one side keeps its first (best) position. Ties are broken by the better lexical rank,
// then the better vector rank (a document both sides found comes before one only one side
// found at the same score), then by key, so the order is total and reproducible. The returned
// slice is valid until the next call.
func (u *Fuser) Fuse(lex, vec []Hit, f Fusion) []Fused {
	f = f.WithDefaults()
	if u.index == nil {
		u.index = make(map[string]int, len(lex)+len(vec))
	}
	clear(u.index)
	out := u.out[:0]
	for i, h := range lex {
		if _, dup := u.index[h.Key]; dup {
			continue
		}
		u.index[h.Key] = len(out)
		out = append(out, Fused{Key: h.Key, Lexical: i, Vector: -1})
	}
	for i, h := range vec {
		j, ok := u.index[h.Key]
		if !ok {
			u.index[h.Key] = len(out)
			out = append(out, Fused{Key: h.Key, Lexical: -1, Vector: i})
			continue
		}
		if out[j].Vector < 0 {
			out[j].Vector = i
		}
	}
	switch f.Method {
	case Linear:
		lmin, lmax := scoreRange(lex)
		vmin, vmax := scoreRange(vec)
		for i := range out {
			s := 0.0
			if p := out[i].Lexical; p >= 0 {
				s += f.Weights[0] * minMax(lex[p].Score, lmin, lmax)
			}
			if p := out[i].Vector; p >= 0 {
				s += f.Weights[1] * minMax(vec[p].Score, vmin, vmax)
			}
			out[i].Score = s
		}
	default:
		k := float64(f.RankConstant)
		for i := range out {
			s := 0.0
			if p := out[i].Lexical; p >= 0 {
				s += 1 / (k + float64(p+1))
			}
			if p := out[i].Vector; p >= 0 {
				s += 1 / (k + float64(p+1))
			}
			out[i].Score = s
		}
	}
	slices.SortFunc(out, compare)
	u.out = out
	return out
}

// Fuse is Fuser.Fuse with a fresh Fuser (for callers that fuse once).
func Fuse(lex, vec []Hit, f Fusion) []Fused {
	var u Fuser
	return u.Fuse(lex, vec, f)
}

func compare(a, b Fused) int {
	switch {
	case a.Score > b.Score:
		return -1
	case a.Score < b.Score:
		return 1
	}
	if c := rankCmp(a.Lexical, b.Lexical); c != 0 {
		return c
	}
	if c := rankCmp(a.Vector, b.Vector); c != 0 {
		return c
	}
	switch {
	case a.Key < b.Key:
		return -1
	case a.Key > b.Key:
		return 1
	}
	return 0
}

// rankCmp orders positions with absent (-1) last.
func rankCmp(a, b int) int {
	switch {
	case a == b:
		return 0
	case a < 0:
		return 1
	case b < 0:
		return -1
	case a < b:
		return -1
	}
	return 1
}

func scoreRange(hs []Hit) (lo, hi float64) {
	if len(hs) == 0 {
		return 0, 0
	}
	lo, hi = hs[0].Score, hs[0].Score
	for _, h := range hs[1:] {
		lo, hi = min(lo, h.Score), max(hi, h.Score)
	}
	return lo, hi
}

// minMax maps s into [0,1]; a side whose scores are all equal (or has one hit) gives 1, so
// its documents count fully rather than vanish.
func minMax(s, lo, hi float64) float64 {
	if hi <= lo {
		return 1
	}
	return (s - lo) / (hi - lo)
}

// Page returns fused[from:from+size], clipped to the list (from and size as ES takes them:
// from ≥ 0, size ≥ 0).
func Page(fused []Fused, from, size int) []Fused {
	if from < 0 {
		from = 0
	}
	if from >= len(fused) || size <= 0 {
		return fused[:0]
	}
	end := len(fused)
	if size < end-from {
		end = from + size
	}
	return fused[from:end]
}
