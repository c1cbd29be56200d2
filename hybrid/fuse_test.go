package hybrid

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func hits(keys string, scores ...float64) []Hit {
	var out []Hit
	for i, k := range strings.Fields(keys) {
		h := Hit{Key: k}
		if i < len(scores) {
			h.Score = scores[i]
		}
		out = append(out, h)
	}
	return out
}

func order(fs []Fused) string {
	var b []string
	for _, f := range fs {
		b = append(b, f.Key)
	}
	return strings.Join(b, " ")
}

func TestFuseOrder(t *testing.T) {
	f := func(name string, lex, vec []Hit, fu Fusion, want string) {
		t.Helper()
		if got := order(Fuse(lex, vec, fu)); got != want {
			t.Errorf("%s: order %q, want %q", name, got, want)
		}
	}
	// Equal RRF scores (a: 1/61+1/63, c: 1/63+1/61) are broken by the lexical rank; b and d
	// (1/62 each) by presence on the lexical side.
	f("rrf ties", hits("a b c"), hits("c d a"), Fusion{}, "a c b d")
	// The rank constant decides whether a document both sides rank 4th beats the singletons
	// ranked 1st: with k=1, 2/5 < 1/2; with k=60, 2/64 > 1/61.
	f("rrf k=1", hits("a b c d"), hits("x y z d"), Fusion{Method: RRF, RankConstant: 1}, "a x d b y c z")
	f("rrf k=60", hits("a b c d"), hits("x y z d"), Fusion{Method: RRF, RankConstant: 60}, "d a x b y c z")
	// Linear: lexical 10,5,0 → 1,.5,0; vector .9,.5,.1 → 1,.5,0.
	lex, vec := hits("a b c", 10, 5, 0), hits("c d a", 0.9, 0.5, 0.1)
	f("linear even", lex, vec, Fusion{Method: Linear}, "a c b d")
	f("linear vector-heavy", lex, vec, Fusion{Method: Linear, Weights: [2]float64{0.2, 0.8}}, "c d a b")
	f("linear lexical-only", lex, vec, Fusion{Method: Linear, Weights: [2]float64{1, 0}}, "a b c d")
	// One side empty: the other side's order, whatever the method.
	f("rrf no vector", hits("a b c"), nil, Fusion{}, "a b c")
	f("linear no lexical", nil, hits("x y", 3, 1), Fusion{Method: Linear}, "x y")
	f("both empty", nil, nil, Fusion{}, "")
	// A key repeated within a side keeps its first position.
	f("dup", hits("a a b"), hits("b"), Fusion{}, "b a")
	// Equal scores on one side normalise to 1, not 0/0.
	f("flat", hits("a b", 2, 2), hits("c", 7), Fusion{Method: Linear, Weights: [2]float64{0.4, 0.6}}, "c a b")
}

func TestFuseScoresAndRanks(t *testing.T) {
	out := Fuse(hits("a b c"), hits("c d a"), Fusion{RankConstant: 60})
	want := []struct {
		key      string
		lex, vec int
		score    float64
	}{
		{"a", 1, 3, 1.0/61 + 1.0/63},
		{"c", 3, 1, 1.0/63 + 1.0/61},
		{"b", 2, 0, 1.0 / 62},
		{"d", 0, 2, 1.0 / 62},
	}
	if len(out) != len(want) {
		t.Fatalf("got %d fused hits, want %d", len(out), len(want))
	}
	for i, w := range want {
		g := out[i]
		if g.Key != w.key || g.LexicalRank() != w.lex || g.VectorRank() != w.vec || math.Abs(g.Score-w.score) > 1e-12 {
			t.Errorf("hit %d = {%s lex %d vec %d %.6f}, want {%s lex %d vec %d %.6f}", i,
				g.Key, g.LexicalRank(), g.VectorRank(), g.Score, w.key, w.lex, w.vec, w.score)
		}
	}
	lin := Fuse(hits("a b c", 10, 5, 0), hits("c d a", 0.9, 0.5, 0.1), Fusion{Method: Linear, Weights: [2]float64{0.2, 0.8}})
	wantScores := map[string]float64{"c": 0.8, "d": 0.4, "a": 0.2, "b": 0.1}
	for _, h := range lin {
		if math.Abs(h.Score-wantScores[h.Key]) > 1e-12 {
			t.Errorf("linear %s = %g, want %g", h.Key, h.Score, wantScores[h.Key])
		}
	}
}

// Random lists: every key once, scores never increase, ranks point back at the inputs.
func TestFuseInvariants(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var u Fuser
	for n := range 200 {
		lex, vec := randomHits(rng, rng.IntN(30), 40), randomHits(rng, rng.IntN(30), 40)
		fu := Fusion{Method: []string{RRF, Linear}[n%2], RankConstant: 1 + rng.IntN(100)}
		out := u.Fuse(lex, vec, fu)
		keys := map[string]bool{}
		for _, h := range lex {
			keys[h.Key] = true
		}
		for _, h := range vec {
			keys[h.Key] = true
		}
		if len(out) != len(keys) {
			t.Fatalf("case %d: %d fused, %d distinct keys", n, len(out), len(keys))
		}
		for i, h := range out {
			if i > 0 && h.Score > out[i-1].Score {
				t.Fatalf("case %d: score rises at %d", n, i)
			}
			if (h.Lexical >= 0 && lex[h.Lexical].Key != h.Key) || (h.Vector >= 0 && vec[h.Vector].Key != h.Key) {
				t.Fatalf("case %d: hit %s points at the wrong input", n, h.Key)
			}
			if h.Lexical < 0 && h.Vector < 0 {
				t.Fatalf("case %d: hit %s from neither side", n, h.Key)
			}
		}
	}
}

func randomHits(rng *rand.Rand, n, universe int) []Hit {
	out := make([]Hit, 0, n)
	s := 10.0
	for range n {
		s -= rng.Float64()
		out = append(out, Hit{Key: fmt.Sprint("k", rng.IntN(universe)), Score: s})
	}
	return out
}

func TestPage(t *testing.T) {
	all := Fuse(hits("a b c d e"), nil, Fusion{})
	f := func(from, size int, want string) {
		t.Helper()
		if got := order(Page(all, from, size)); got != want {
			t.Errorf("Page(%d, %d) = %q, want %q", from, size, got, want)
		}
	}
	f(0, 10, "a b c d e")
	f(0, 2, "a b")
	f(2, 2, "c d")
	f(4, 2, "e")
	f(5, 2, "")
	f(9, 2, "")
	f(1, 0, "")
	f(-1, 1, "a")
}

func TestValidate(t *testing.T) {
	f := func(fu Fusion, want string) {
		t.Helper()
		err := fu.Validate()
		switch {
		case want == "" && err != nil:
			t.Errorf("%+v: %v", fu, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%+v: error %v, want one naming %q", fu, err, want)
		}
	}
	f(Fusion{}, "")
	f(Fusion{Method: Linear, Weights: [2]float64{1, 2}}, "")
	f(Fusion{Method: "borda"}, "fusion [borda]")
	f(Fusion{RankConstant: -1}, "fusion.rank_constant")
	f(Fusion{Method: Linear, Weights: [2]float64{-1, 1}}, "fusion.weights")
	f(Fusion{Method: Linear, Weights: [2]float64{math.NaN(), 1}}, "fusion.weights")
}

// Two sides of 100 hits with half of them in common, as a hybrid search of size 100 returns.
func benchLists() (lex, vec []Hit) {
	for i := range 100 {
		lex = append(lex, Hit{Key: fmt.Sprintf("products\x00doc-%d", i), Score: 30 - float64(i)*0.1})
		vec = append(vec, Hit{Key: fmt.Sprintf("products\x00doc-%d", 50+i), Score: 0.99 - float64(i)*0.005})
	}
	return lex, vec
}

func BenchmarkFuse(b *testing.B) {
	lex, vec := benchLists()
	for _, m := range []string{RRF, Linear} {
		b.Run(m, func(b *testing.B) {
			var u Fuser
			b.ReportAllocs()
			for b.Loop() {
				u.Fuse(lex, vec, Fusion{Method: m})
			}
		})
	}
}

func TestFuseAllocs(t *testing.T) {
	lex, vec := benchLists()
	var u Fuser
	u.Fuse(lex, vec, Fusion{})
	if n := testing.AllocsPerRun(50, func() { u.Fuse(lex, vec, Fusion{}) }); n > 0 {
		t.Errorf("a reused Fuser allocates %.0f times per fusion, want 0", n)
	}
}
