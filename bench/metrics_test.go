package bench

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func docs(ids ...string) []RankedDoc {
	out := make([]RankedDoc, len(ids))
	for i, id := range ids {
		out[i] = RankedDoc{ID: id, Score: float64(len(ids) - i)}
	}
	return out
}

// Hand-computed: relevant d1(3) d2(2) d4(1) d5(1), d3 judged 0, d6 unjudged; run d3 d1 d6 d4 d2.
func TestEvaluateHandComputed(t *testing.T) {
	judged := map[string]int{"d1": 3, "d2": 2, "d3": 0, "d4": 1, "d5": 1}
	m := Evaluate(docs("d3", "d1", "d6", "d4", "d2"), judged, 5)
	want := map[string]float64{
		"p@5":      3.0 / 5,
		"recall@5": 3.0 / 4,
		"rr":       1.0 / 2,
		// (1/2 + 2/4 + 3/5) / 4 relevant (d5 never retrieved still counts in the denominator)
		"ap@5": (0.5 + 0.5 + 0.6) / 4,
		// DCG (3/log2 3 + 1/log2 5 + 2/log2 6) over IDCG (3 + 2/log2 3 + 1/log2 4 + 1/log2 5)
		"ndcg@5": 0.5964660417,
		// judged-only: d6 removed, run d3 d1 d4 d2
		"p'@5":    3.0 / 5,
		"ap'@5":   (1.0/2 + 2.0/3 + 3.0/4) / 4,
		"ndcg'@5": 0.6266961531,
	}
	for k, v := range want {
		if math.Abs(m[k]-v) > 1e-9 {
			t.Errorf("%s = %.10f, want %.10f", k, m[k], v)
		}
	}
	if len(m) != len(MetricNames(5)) {
		t.Errorf("metrics %v, want exactly %v", m, MetricNames(5))
	}
}

func TestEvaluateCases(t *testing.T) {
	f := func(run []RankedDoc, judged map[string]int, k int, metric string, want float64) {
		t.Helper()
		if got := Evaluate(run, judged, k)[metric]; math.Abs(got-want) > 1e-9 {
			t.Fatalf("%s of %v with %v = %.10f, want %.10f", metric, run, judged, got, want)
		}
	}
	rel4 := map[string]int{"r1": 1, "r2": 1, "r3": 1, "r4": 1}
	// AP denominator is all relevant judged documents, not the retrieved ones.
	f(docs("r1"), rel4, 10, "ap@10", 0.25)
	// AP@k counts only the top k but still divides by all 4.
	f(docs("x", "r1", "r2"), rel4, 2, "ap@2", 0.5/4)
	// P@k divides by k even when fewer documents come back.
	f(docs("r1"), rel4, 10, "p@10", 0.1)
	// Ideal DCG uses all judged documents, so finding 1 of 4 is not perfect.
	f(docs("r1"), rel4, 10, "ndcg@10", 1/(1+1/math.Log2(3)+1/math.Log2(4)+1/math.Log2(5)))
	f(docs("r1", "r2", "r3", "r4"), rel4, 10, "ndcg@10", 1)
	// Unjudged documents count as non-relevant, unless judged-only.
	f(docs("u1", "u2", "r1"), rel4, 3, "p@3", 1.0/3)
	f(docs("u1", "u2", "r1"), rel4, 3, "p'@3", 1.0/3)
	f(docs("u1", "u2", "r1"), rel4, 3, "rr", 1.0/3)
	f(docs("u1", "u2", "r1"), rel4, 3, "ap'@3", 0.25)
	f(docs("u1", "u2", "r1"), rel4, 3, "ndcg'@3", 1/(1+1/math.Log2(3)+1/math.Log2(4)))
	// A query with nothing relevant scores 0 everywhere.
	none := map[string]int{"a": 0}
	for _, m := range MetricNames(5) {
		f(docs("a", "b"), none, 5, m, 0)
	}
	// Empty run.
	f(nil, rel4, 5, "ndcg@5", 0)
	f(nil, rel4, 5, "rr", 0)
	// Graded gains: a gain-2 doc first beats a gain-1 doc first.
	g := map[string]int{"hi": 2, "lo": 1}
	f(docs("hi", "lo"), g, 2, "ndcg@2", 1)
	f(docs("lo", "hi"), g, 2, "ndcg@2", (1+2/math.Log2(3))/(2+1/math.Log2(3)))
}

func TestTrecOrderTies(t *testing.T) {
	f := func(in []RankedDoc, want string) {
		t.Helper()
		var ids []string
		for _, d := range TrecOrder(in) {
			ids = append(ids, d.ID)
		}
		if got := strings.Join(ids, " "); got != want {
			t.Fatalf("TrecOrder = %q, want %q", got, want)
		}
	}
	// Equal scores: document id descending, whatever the input order.
	f([]RankedDoc{{"a", 1}, {"c", 2}, {"b", 1}}, "c b a")
	f([]RankedDoc{{"b", 1}, {"a", 1}, {"d", 1}}, "d b a")
	// Lexicographic, not numeric: "9" > "10".
	f([]RankedDoc{{"10", 1}, {"9", 1}}, "9 10")
	// With ties, the relevant document's rank is decided by its id.
	judged := map[string]int{"a": 1}
	if rr := Evaluate(TrecOrder([]RankedDoc{{"a", 1}, {"b", 1}}), judged, 10)["rr"]; rr != 0.5 {
		t.Fatalf("rr with tie = %g, want 0.5 (b sorts before a)", rr)
	}
}

func TestRandomizationTest(t *testing.T) {
	a := make([]float64, 20)
	b := make([]float64, 20)
	for i := range a {
		a[i], b[i] = 0.5, 0.6
	}
	d, p := RandomizationTest(a, b, 10000, 1)
	if math.Abs(d-0.1) > 1e-12 || p > 0.001 {
		t.Fatalf("consistent +0.1: diff %g p %g, want p < 0.001", d, p)
	}
	if d, p := RandomizationTest(a, a, 1000, 1); d != 0 || p != 1 {
		t.Fatalf("identical: diff %g p %g, want 0 and 1", d, p)
	}
	// Symmetric noise: no evidence.
	for i := range b {
		b[i] = 0.5 + 0.1*float64(1-2*(i%2))
	}
	if _, p := RandomizationTest(a, b, 10000, 1); p < 0.5 {
		t.Fatalf("symmetric differences: p %g, want ≥ 0.5", p)
	}
	// One huge and many tiny opposite changes: the sign test would say "worse", the mean says better.
	for i := range b {
		b[i] = 0.49
	}
	b[0] = 1.0
	if d, _ := RandomizationTest(a, b, 1000, 1); d <= 0 {
		t.Fatalf("mean diff %g, want > 0", d)
	}
}

func TestParseQrelsErrors(t *testing.T) {
	dir := t.TempDir()
	f := func(content, want string) {
		t.Helper()
		path := filepath.Join(dir, "q.qrels")
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadQrels(path)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("LoadQrels(%q): err %v, want %q", content, err, want)
		}
	}
	f("q1 0 d1 1\nq1 0 d2\n", `q.qrels:2: want 4 fields "query iteration document relevance", got 3`)
	f("q1 0 d1 1\n\nq1 0 d2 high\n", `q.qrels:3: relevance "high" is not an integer`)
	f("q1 0 d1 1\nq1 0 d1 2\n", `q.qrels:2: document "d1" is judged twice for query "q1"`)
	f("# nothing\n", "q.qrels: no judgments")
	if _, err := LoadQrels(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing file: %v", err)
	}
	qr, err := ParseQrels(strings.NewReader("q1 0 d1 2\nq1\t0\td2\t0\n# c\nq2 Q0 x -1\n"), "ok")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(qr); got != "map[q1:map[d1:2 d2:0] q2:map[x:-1]]" || qr.Relevant("q1") != 1 || qr.Relevant("q2") != 0 {
		t.Fatalf("qrels %s", got)
	}
}

func TestParseQueriesErrors(t *testing.T) {
	f := func(content, want string) {
		t.Helper()
		_, err := ParseQueries(strings.NewReader(content), "queries.ndjson", "")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("ParseQueries(%q): err %v, want %q", content, err, want)
		}
	}
	f(`{"id":"a","text":"x"}`+"\n"+`{"id":"b"}`, `queries.ndjson:2: query "b" has neither text nor image_file`)
	f(`{"text":"x"}`, "queries.ndjson:1: query has no id")
	f(`{"id":"a","text":"x"}`+"\n\n"+`{"id":"a","text":"y"}`, `queries.ndjson:3: query id "a" repeats line 1`)
	f(`{"id":"a","txt":"x"}`, `queries.ndjson:1: cannot parse query: json: unknown field "txt"`)
	f("", "queries.ndjson: no queries")
}

func FuzzParseQrels(f *testing.F) {
	f.Add("q1 0 d1 1\nq1 0 d2 0\nq2 0 d3 2\n")
	f.Add("# comment\n\nq 0 d -1\n")
	f.Fuzz(func(t *testing.T, s string) {
		qr, err := ParseQrels(strings.NewReader(s), "fuzz")
		if err != nil {
			return
		}
		for q, m := range qr {
			if q == "" || len(m) == 0 {
				t.Fatalf("empty entry in %v", qr)
			}
		}
	})
}

func TestRunEval(t *testing.T) {
	qrels := Qrels{"t1": {"a": 2, "b": 1, "c": 0}, "t2": {"x": 1, "y": 1}}
	queries := []EvalQuery{{ID: "t1", Text: "red shirt"}, {ID: "t2", Text: "blue", Exclude: []string{"x"}}}
	var bodies []string
	search := func(body []byte, h map[string]string) (int, []byte, map[string]string, error) {
		bodies = append(bodies, string(body))
		good := h["X-VLProxy-Rerank"] == "on"
		switch {
		case strings.Contains(string(body), "red shirt") && good:
			return 200, []byte(`{"hits":{"hits":[{"_id":"a","_score":3},{"_id":"b","_score":2},{"_id":"c","_score":1}]}}`), map[string]string{"X-VLProxy-Rerank": "applied"}, nil
		case strings.Contains(string(body), "red shirt"):
			return 200, []byte(`{"hits":{"hits":[{"_id":"c","_score":3},{"_id":"b","_score":2},{"_id":"a","_score":1}]}}`), nil, nil
		case good:
			return 200, []byte(`{"hits":{"hits":[{"_id":"x","_score":3},{"_id":"y","_score":2}]}}`), nil, nil
		}
		return 500, []byte(`{"error":"boom"}`), nil, nil
	}
	cfg := DefaultEvalConfig()
	cfg.K, cfg.Permutations = 3, 1000
	cfg.Variants = []Variant{{Name: "bm25"}, {Name: "rerank", Headers: map[string]string{"X-VLProxy-Rerank": "on"}}}
	rep, err := RunEval(cfg, queries, qrels, search)
	if err != nil {
		t.Fatal(err)
	}
	if bodies[0] != `{"size":3,"query":{"multimodal":{"text":"red shirt"}}}` || bodies[2] != `{"size":4,"query":{"multimodal":{"text":"blue"}}}` {
		t.Fatalf("bodies %q", bodies)
	}
	base, rr := rep.Variants[0], rep.Variants[1]
	if base.Errors != 1 || rr.Errors != 0 || base.Queries[1].Error == "" {
		t.Fatalf("errors: base %d rerank %d", base.Errors, rr.Errors)
	}
	// t2 under rerank: x excluded, y at rank 1 → rr 1, recall 1/2.
	if q := rr.Queries[1]; len(q.Run) != 1 || q.Run[0].ID != "y" || q.Metrics["rr"] != 1 || q.Metrics["recall@3"] != 0.5 {
		t.Fatalf("t2 rerank %+v", q)
	}
	if got := rr.Queries[0].Headers["X-VLProxy-Rerank"]; got != "applied" {
		t.Fatalf("headers %v", rr.Queries[0].Headers)
	}
	// t1: rerank ideal ordering → ndcg 1; base c,b,a → (1/log2 3 + 2/2)/(2 + 1/log2 3)
	wantBase := (1/math.Log2(3) + 1) / (2 + 1/math.Log2(3))
	if math.Abs(base.Queries[0].Metrics["ndcg@3"]-wantBase) > 1e-9 || rr.Queries[0].Metrics["ndcg@3"] != 1 {
		t.Fatalf("t1 ndcg base %g rerank %g", base.Queries[0].Metrics["ndcg@3"], rr.Queries[0].Metrics["ndcg@3"])
	}
	if math.Abs(base.Mean["ndcg@3"]-wantBase/2) > 1e-9 {
		t.Fatalf("base mean ndcg %g", base.Mean["ndcg@3"])
	}
	var c Comparison
	for _, x := range rep.Comparisons {
		if x.Metric == "ndcg@3" {
			c = x
		}
	}
	if c.Variant != "rerank" || c.Better != 2 || c.Worse != 0 || c.MeanDiff <= 0 {
		t.Fatalf("comparison %+v", c)
	}
	var md strings.Builder
	WriteEvalMarkdown(&md, rep)
	for _, want := range []string{"| rerank | 0 |", "| rerank | ndcg@3 | +", "| t2 | +"} {
		if !strings.Contains(md.String(), want) {
			t.Fatalf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	var svg strings.Builder
	if err := WriteEvalSVG(&svg, "relevance", rep); err != nil || strings.Count(svg.String(), "<rect") != 1+2*len(rep.Metrics)+2 {
		t.Fatalf("svg (%v):\n%s", err, svg.String())
	}
	if _, err := RunEval(cfg, []EvalQuery{{ID: "zz", Text: "x"}}, qrels, search); err == nil || !strings.Contains(err.Error(), "queries without judgments in the qrels: zz") {
		t.Fatalf("unjudged query: %v", err)
	}
}

func TestParseVariant(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		v, err := ParseVariant(in)
		got := fmt.Sprint(v.Name, v.Headers)
		if err != nil {
			got = err.Error()
		}
		if got != want {
			t.Fatalf("ParseVariant(%q) = %q, want %q", in, got, want)
		}
	}
	f("bm25", "bm25map[]")
	f("rw:X-VLProxy-Rewrite=on, X-VLProxy-Rerank=off", "rwmap[X-VLProxy-Rerank:off X-VLProxy-Rewrite:on]")
	f(":X=1", `variant ":X=1": want name:Header=Value,…`)
	f("a:novalue", `variant "a:novalue": header "novalue" is not Header=Value`)
}

func TestRunEvalAllJudged(t *testing.T) {
	search := func(body []byte, h map[string]string) (int, []byte, map[string]string, error) {
		return 200, []byte(`{"hits":{"hits":[{"_id":"u","_score":2},{"_id":"r","_score":1}]}}`), nil, nil
	}
	for _, all := range []bool{false, true} {
		cfg := DefaultEvalConfig()
		cfg.K, cfg.AllJudged = 2, all
		rep, err := RunEval(cfg, []EvalQuery{{ID: "q", Text: "x"}}, Qrels{"q": {"r": 1}}, search)
		if err != nil {
			t.Fatal(err)
		}
		// u is unjudged unless all documents count as judged: then judged-only equals the plain metric.
		want := 1.0
		if all {
			want = 1 / math.Log2(3)
		}
		if got := rep.Variants[0].Mean["ndcg'@2"]; math.Abs(got-want) > 1e-12 {
			t.Fatalf("all_judged=%v: ndcg'@2 = %g, want %g", all, got, want)
		}
	}
}
