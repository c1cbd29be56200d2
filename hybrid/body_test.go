package hybrid

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

// placeholder stands for the rewritten clause in test bodies; Locate gets its offsets.
const placeholder = `{"match":{"kw":"red dress"}}`

func locate(t testing.TB, body string) ([]byte, error) {
	t.Helper()
	i := strings.Index(body, placeholder)
	if i < 0 {
		t.Fatalf("no placeholder in %s", body)
	}
	return Locate([]byte(body), i, i+len(placeholder))
}

func TestLocate(t *testing.T) {
	f := func(body, want string) {
		t.Helper()
		got, err := locate(t, body)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if string(got) != want {
			t.Errorf("%s:\n got %s\nwant %s", body, got, want)
		}
	}
	f(`{"query":`+placeholder+`}`, "")
	f(`{"query":{"bool":{"must":`+placeholder+`}}}`, "")
	f(`{"query":{"bool":{"must":[`+placeholder+`],"filter":[{"term":{"in_stock":true}}]}}}`,
		`{"bool":{"filter":[{"term":{"in_stock":true}}]}}`)
	f(`{"query":{"bool":{"should":[{"match":{"t":"x"}},`+placeholder+`],"filter":{"term":{"c":"red"}},"must_not":[{"term":{"g":"men"}}],"must":{"range":{"p":{"lt":50}}}}}}`,
		`{"bool":{"filter":[{"term":{"c":"red"}},{"range":{"p":{"lt":50}}}],"must_not":[{"term":{"g":"men"}}]}}`)
	f(`{"query":{"bool":{"must":[`+placeholder+`],"must_not":{"term":{"g":"men"}}}}}`,
		`{"bool":{"must_not":[{"term":{"g":"men"}}]}}`)

	bad := func(body string) {
		t.Helper()
		if _, err := locate(t, body); err != ErrPlacement {
			t.Errorf("%s: error %v, want ErrPlacement", body, err)
		}
	}
	bad(`{"query":{"function_score":{"query":` + placeholder + `}}}`)
	bad(`{"query":{"bool":{"filter":[` + placeholder + `]}}}`)
	bad(`{"query":{"bool":{"must":{"bool":{"must":` + placeholder + `}}}}}`)
	bad(`{"post_filter":` + placeholder + `,"query":{"match_all":{}}}`)
}

func TestAppendQuery(t *testing.T) {
	f := func(p Plan, k int, want string) {
		t.Helper()
		got := p.AppendQuery(nil, k)
		if string(got) != want {
			t.Errorf("\n got %s\nwant %s", got, want)
		}
		if !json.Valid(got) {
			t.Errorf("invalid JSON %s", got)
		}
	}
	v := []float32{0.5, -0.25, 1}
	f(Plan{Engine: OpenSearch, Field: "image_vec", Vector: v}, 10,
		`{"knn":{"image_vec":{"vector":[0.5,-0.25,1],"k":10}}}`)
	f(Plan{Engine: OpenSearch, Field: "image_vec", Vector: v, NumCandidates: 200, Filter: []byte(`{"term":{"a":1}}`)}, 20,
		`{"knn":{"image_vec":{"vector":[0.5,-0.25,1],"k":20,"method_parameters":{"ef_search":200},"filter":{"term":{"a":1}}}}}`)
	f(Plan{Engine: Elasticsearch, Field: "image_vec", Vector: v}, 10,
		`{"knn":{"field":"image_vec","query_vector":[0.5,-0.25,1],"k":10,"num_candidates":100}}`)
	f(Plan{Engine: Elasticsearch, Field: "v", Vector: v, Filter: []byte(`{"term":{"a":1}}`)}, 80,
		`{"knn":{"field":"v","query_vector":[0.5,-0.25,1],"k":80,"num_candidates":160,"filter":{"term":{"a":1}}}}`)
}

func TestSides(t *testing.T) {
	p := Plan{Mode: ModeHybrid, Engine: OpenSearch, Field: "v", Vector: []float32{1, 0}, K: 50,
		Filter: []byte(`{"bool":{"filter":[{"term":{"c":"red"}}]}}`)}
	body := `{"from":10,"size":5,"_source":["title"],"query":{"bool":{"must":[{"match":{"kw":"x"}}],"filter":[{"term":{"c":"red"}}]}},"aggs":{"c":{"terms":{"field":"c"}}},"track_total_hits":true}`
	lex, vec, from, size, err := p.Sides([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if from != 10 || size != 5 {
		t.Errorf("page %d/%d, want 10/5", from, size)
	}
	wantLex := `{"from":0,"size":15,"_source":["title"],"query":{"bool":{"must":[{"match":{"kw":"x"}}],"filter":[{"term":{"c":"red"}}]}},"aggs":{"c":{"terms":{"field":"c"}}},"track_total_hits":true}`
	wantVec := `{"from":0,"size":50,"_source":["title"],"query":{"knn":{"v":{"vector":[1,0],"k":50,"filter":{"bool":{"filter":[{"term":{"c":"red"}}]}}}}}}`
	if string(lex) != wantLex {
		t.Errorf("lexical\n got %s\nwant %s", lex, wantLex)
	}
	if string(vec) != wantVec {
		t.Errorf("vector\n got %s\nwant %s", vec, wantVec)
	}
	ms := AppendMsearch(nil, "products", `"preference":"u1"`, lex, vec)
	wantMs := `{"index":"products","preference":"u1"}` + "\n" + wantLex + "\n" + `{"index":"products","preference":"u1"}` + "\n" + wantVec + "\n"
	if string(ms) != wantMs {
		t.Errorf("msearch\n got %q\nwant %q", ms, wantMs)
	}

	vb, err := p.VectorBody([]byte(`{"size":70,"query":{"match":{"a":"b"}},"aggs":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"size":70,"query":{"knn":{"v":{"vector":[1,0],"k":70,"filter":{"bool":{"filter":[{"term":{"c":"red"}}]}}}}},"aggs":{}}`; string(vb) != want {
		t.Errorf("vector body\n got %s\nwant %s", vb, want)
	}
	for _, b := range []string{`{"size":-1}`, `{"from":"x"}`, `{"size":1.5}`} {
		if _, _, _, _, err := p.Sides([]byte(b)); err == nil || !strings.Contains(err.Error(), "cannot read [") {
			t.Errorf("%s: error %v, want one naming the field", b, err)
		}
	}
}

func response(took int, total int, hits ...string) string {
	return fmt.Sprintf(`{"took":%d,"timed_out":false,"_shards":{"total":1,"successful":1,"skipped":0,"failed":0},"hits":{"total":{"value":%d,"relation":"eq"},"max_score":9.5,"hits":[%s]},"aggregations":{"c":{"buckets":[]}}}`,
		took, total, strings.Join(hits, ","))
}

func hit(id string, score float64) string {
	return fmt.Sprintf(`{"_index":"p","_id":"%s","_score":%g,"_source":{"title":"t%s"}}`, id, score, id)
}

func TestMerge(t *testing.T) {
	lex := response(4, 321, hit("a", 9.5), hit("b", 7), hit("c", 1))
	vec := response(9, 3, hit("c", 0.9), hit("d", 0.8), hit("a", 0.2))
	p := &Plan{Fusion: Fusion{Method: RRF, RankConstant: 1}}
	var m Merger
	out, ex, err := m.Merge([]byte(lex), []byte(vec), p, 1, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	// k=1: a = 1/2+1/4 = .75, c = 1/4+1/2 = .75, b = 1/3, d = 1/3 → a c b d; page 1..2 = c b.
	want := `{"took":9,"timed_out":false,"_shards":{"total":1,"successful":1,"skipped":0,"failed":0},"hits":{"total":{"value":321,"relation":"eq"},"max_score":0.75,"hits":[` +
		`{"_index":"p","_id":"c","_score":0.75,"_source":{"title":"tc"}},{"_index":"p","_id":"b","_score":0.3333333333333333,"_source":{"title":"tb"}}]},"aggregations":{"c":{"buckets":[]}}}`
	if string(out) != want {
		t.Errorf("merged\n got %s\nwant %s", out, want)
	}
	wantEx := []Explained{{Index: "p", ID: "c", LexicalRank: 3, VectorRank: 1, Score: 0.75}, {Index: "p", ID: "b", LexicalRank: 2, Score: 1.0 / 3}}
	if fmt.Sprint(ex) != fmt.Sprint(wantEx) {
		t.Errorf("explain %v, want %v", ex, wantEx)
	}

	// A hit only the vector side found is taken from its answer; empty pages keep valid JSON.
	out, _, err = m.Merge([]byte(lex), []byte(vec), p, 3, 5, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := gjson.GetBytes(out, "hits.hits.#._id").Raw; got != `["d"]` {
		t.Errorf("page 3.. = %s, want [\"d\"]", got)
	}
	out, _, _ = m.Merge([]byte(lex), []byte(vec), p, 10, 5, false)
	if !json.Valid(out) || gjson.GetBytes(out, "hits.max_score").Raw != "null" || gjson.GetBytes(out, "hits.hits.#").Int() != 0 {
		t.Errorf("empty page: %s", out)
	}

	errResp := `{"error":{"root_cause":[{"type":"query_shard_exception","reason":"field [v] is not a knn_vector"}],"type":"search_phase_execution_exception","reason":"all shards failed"},"status":400}`
	_, _, err = m.Merge([]byte(lex), []byte(errResp), p, 0, 10, false)
	se, ok := err.(*SideError)
	if !ok || se.Side != "vector" || se.Status != 400 || !bytes.Equal(se.Body, []byte(errResp)) {
		t.Errorf("error side: %#v", err)
	}
}

func BenchmarkMerge(b *testing.B) {
	var lh, vh []string
	for i := range 100 {
		lh = append(lh, fmt.Sprintf(`{"_index":"products","_id":"doc-%d","_score":%g,"_source":{"title":"Red summer dress %d","price":%d}}`, i, 30-float64(i)*0.1, i, i))
		vh = append(vh, fmt.Sprintf(`{"_index":"products","_id":"doc-%d","_score":%g,"_source":{"title":"Red summer dress %d","price":%d}}`, 50+i, 0.99-float64(i)*0.005, 50+i, i))
	}
	lex, vec := []byte(response(5, 1000, lh...)), []byte(response(7, 100, vh...))
	p := &Plan{Fusion: Fusion{}}
	var m Merger
	b.ReportAllocs()
	b.SetBytes(int64(len(lex) + len(vec)))
	var ds []time.Duration
	for b.Loop() {
		s := time.Now()
		if _, _, err := m.Merge(lex, vec, p, 0, 10, true); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(s))
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(ds[len(ds)*99/100].Nanoseconds()), "p99-ns")
}

func FuzzLocateSides(f *testing.F) {
	for _, s := range []string{
		`{"query":` + placeholder + `}`,
		`{"from":3,"size":4,"query":{"bool":{"must":[` + placeholder + `],"filter":[{"term":{"a":1}}]}}}`,
		`{"query":{"bool":{"should":` + placeholder + `,"must_not":{"term":{"b":2}}}},"aggs":{"x":{}}}`,
		`{"query":{"nested":{"query":` + placeholder + `}}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		i := strings.Index(body, placeholder)
		if i < 0 || !json.Valid([]byte(body)) {
			return
		}
		filter, err := Locate([]byte(body), i, i+len(placeholder))
		if err != nil {
			return
		}
		if filter != nil && !json.Valid(filter) {
			t.Fatalf("invalid filter %s", filter)
		}
		p := Plan{Engine: OpenSearch, Field: "v", Vector: []float32{1}, Filter: filter}
		lex, vec, _, _, err := p.Sides([]byte(body))
		if err != nil {
			return
		}
		if !json.Valid(lex) || !json.Valid(vec) {
			t.Fatalf("invalid sides %s / %s", lex, vec)
		}
	})
}
