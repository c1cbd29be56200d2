package bench

import (
	"math"
	"testing"
)

func TestExactCosine(t *testing.T) {
	vecs := map[string][]float32{
		"q": {1, 0}, "a": {0.9, 0.1}, "b": {0.5, 0.5}, "c": {0, 1}, "d": {-1, 0},
	}
	qs := []EvalQuery{{ID: "image-q", Exclude: []string{"q"}}}
	qrels := Qrels{"image-q": {"a": 2, "b": 1, "c": 0, "d": 0}}
	rep, err := ExactCosine(vecs, qs, qrels, 2, 3, "exact")
	if err != nil {
		t.Fatal(err)
	}
	run := rep.Variants[0].Queries[0].Run
	if len(run) != 3 || run[0].ID != "a" || run[1].ID != "b" || run[2].ID != "c" {
		t.Fatalf("run %v, want a b c", run)
	}
	m := rep.Variants[0].Mean
	// The ideal ranking a, b is the run's own top 2: nDCG@2 = 1; recall@3 = 2 of 2 relevant.
	if math.Abs(m["ndcg@2"]-1) > 1e-9 || m["recall@3"] != 1 || m["rr"] != 1 {
		t.Fatalf("metrics %v", m)
	}
	if _, err := ExactCosine(vecs, []EvalQuery{{ID: "image-zz"}}, qrels, 2, 0, "x"); err == nil {
		t.Fatal("a query without a stored vector gave no error")
	}
}

func TestEvaluateDeep(t *testing.T) {
	run := []RankedDoc{{ID: "x", Score: 3}, {ID: "y", Score: 2}, {ID: "a", Score: 1}}
	m := EvaluateDeep(run, map[string]int{"a": 1}, 2, 3)
	if m["rr"] != 0 || m["recall@2"] != 0 || m["recall@3"] != 1 {
		t.Fatalf("metrics %v: rr and recall@2 must see the first 2 only, recall@3 all 3", m)
	}
}
