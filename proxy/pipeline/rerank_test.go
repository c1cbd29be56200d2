package pipeline_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/vlproxy/vlproxy/model/modeltest"
	"github.com/vlproxy/vlproxy/proxy/experiment"
)

// modelScores are the simulator's rerank scores per catalogue title; the model order is
// p6,p3,p1,p5,p0,p9,p2,p7,p4,p8 while ES answers p0..p9.
var modelScores = map[string]float64{
	"blue denim jacket": 0.30, "red summer dress": 0.80, "black leather boots": 0.20,
	"red running shoes": 0.90, "green wool scarf": 0.10, "white linen shirt": 0.40,
	"red maxi dress": 0.95, "brown leather belt": 0.15, "yellow rain coat": 0.05, "grey hoodie": 0.25,
}

// modelOrder is the catalogue sorted by modelScores.
const modelOrder = "p6,p3,p1,p5,p0,p9,p2,p7,p4,p8"

func scoreByTitle(_, d modeltest.Doc) float64 {
	title, _, _ := strings.Cut(d.Text, "\n")
	if s, ok := modelScores[strings.TrimSpace(title)]; ok {
		return s
	}
	return 0
}

func rerankSim() modeltest.Config {
	return modeltest.Config{Rules: []modeltest.Rule{seasideRule}, ScoreFunc: scoreByTitle}
}

// page returns ids from..from+size of a comma-separated order.
func page(order string, from, size int) string {
	ids := strings.Split(order, ",")
	from, to := min(from, len(ids)), min(from+size, len(ids))
	return strings.Join(ids[from:to], ",")
}

func TestRerankSwitches(t *testing.T) {
	e := start(t, setup{sim: rerankSim()})
	const body = `{"query":{"match":{"title":"red"}},"size":4}`
	f := func(hdr, wantStatus, wantIDs string) []byte {
		t.Helper()
		r := e.search(t, body, "X-VLProxy-Rerank", hdr)
		wantHeaders(t, r, "X-VLProxy-Rerank", wantStatus, "X-VLProxy-Rewrite", "skipped")
		if got := ids(t, r.Body); got != wantIDs {
			t.Fatalf("rerank %s: ids %s, want %s", hdr, got, wantIDs)
		}
		if got := gjson.GetBytes(r.Body, "hits.total.value").Int(); got != int64(len(catalogue)) {
			t.Fatalf("rerank %s: hits.total %d", hdr, got)
		}
		if hdr != "off" && !strings.Contains(r.h("Server-Timing"), "rerank;dur=") {
			t.Fatalf("rerank %s: Server-Timing %q", hdr, r.h("Server-Timing"))
		}
		return r.Body
	}
	off := f("off", "off", "p0,p1,p2,p3")
	if up := e.ES.last(t); string(up.Body) != body {
		t.Fatalf("rerank off forwarded %s", up.Body)
	}
	f("on", "applied", page(modelOrder, 0, 4))
	if up := e.ES.last(t); gjson.GetBytes(up.Body, "size").Int() != 50 || gjson.GetBytes(up.Body, "query").Raw != `{"match":{"title":"red"}}` {
		t.Fatalf("rerank on forwarded %s, want size widened to the window", up.Body)
	}
	shadow := f("shadow", "shadow", "p0,p1,p2,p3")
	if string(shadow) != string(off) {
		t.Fatalf("shadow response\n%s\ndiffers from off\n%s", shadow, off)
	}
	// ES order is restored exactly: the response is what ES answers for the client's own body.
	if want := e.ES.searchResponse([]byte(body), nil, ""); string(off) != string(want) {
		t.Fatalf("off response %s, want %s", off, want)
	}
}

func TestRerankPagesAndOptions(t *testing.T) {
	e := start(t, setup{sim: rerankSim()})
	f := func(body, wantIDs, wantStatus string) {
		t.Helper()
		r := e.search(t, body)
		wantHeaders(t, r, "X-VLProxy-Rerank", wantStatus)
		if r.Status != 200 {
			t.Fatalf("%s: status %d %s", body, r.Status, r.Body)
		}
		if got := ids(t, r.Body); got != wantIDs {
			t.Fatalf("%s: ids %s, want %s", body, got, wantIDs)
		}
		if got := gjson.GetBytes(r.Body, "hits.total.value").Int(); got != int64(len(catalogue)) {
			t.Fatalf("%s: hits.total %d", body, got)
		}
	}
	const q = `"query":{"match":{"title":"red"}}`
	f(`{`+q+`,"size":3,"ext":{"vlproxy":{"rerank":true}}}`, page(modelOrder, 0, 3), "applied")
	f(`{`+q+`,"from":2,"size":3,"ext":{"vlproxy":{"rerank":{"enabled":true}}}}`, page(modelOrder, 2, 3), "applied")
	// A window of 4: the top 4 ES hits reordered, the rest in ES order behind them.
	f(`{`+q+`,"size":6,"ext":{"vlproxy":{"rerank":{"enabled":true,"rank_window_size":4}}}}`, "p3,p1,p0,p2,p4,p5", "applied")
	f(`{`+q+`,"from":5,"size":3,"ext":{"vlproxy":{"rerank":{"enabled":true,"rank_window_size":4}}}}`, "p5,p6,p7", "skipped:beyond_window")
	f(`{`+q+`,"size":3,"sort":[{"price":"asc"}],"ext":{"vlproxy":{"rerank":true}}}`, "p0,p1,p2", "skipped:sort")
	f(`{`+q+`,"size":0,"ext":{"vlproxy":{"rerank":true}}}`, "", "skipped:size_zero")

	n := e.ES.Calls.Load()
	wantESError(t, e.search(t, `{`+q+`,"ext":{"vlproxy":{"rerank":{"enabled":true,"rank_window_size":501}}}}`),
		400, "rank_window_size")
	wantESError(t, e.search(t, `{`+q+`,"size":-1,"ext":{"vlproxy":{"rerank":true}}}`), 400, "size")
	if e.ES.Calls.Load() != n {
		t.Fatal("a bad rerank request was forwarded")
	}
}

func TestRerankExplain(t *testing.T) {
	e := start(t, setup{sim: rerankSim()})
	r := e.search(t, `{"query":`+seasideClause+`,"size":3,"ext":{"vlproxy":{"explain":true,"rerank":true}}}`)
	wantHeaders(t, r, "X-VLProxy-Rewrite", "applied", "X-VLProxy-Rerank", "applied")
	if got := ids(t, r.Body); got != page(modelOrder, 0, 3) {
		t.Fatalf("ids %s", got)
	}
	if up := e.ES.last(t); gjson.GetBytes(up.Body, "query").Raw != seasideQuery || gjson.GetBytes(up.Body, "size").Int() != 50 ||
		strings.Contains(string(up.Body), "vlproxy") {
		t.Fatalf("upstream body %s", up.Body)
	}
	ext := gjson.GetBytes(r.Body, "ext.vlproxy")
	var got []string
	for _, h := range ext.Get("rerank.hits").Array() {
		got = append(got, fmt.Sprintf("%s rank=%d original_rank=%d original_score=%s model_score=%s",
			h.Get("_id"), h.Get("rank").Int(), h.Get("original_rank").Int(), h.Get("original_score").Raw, h.Get("model_score").Raw))
	}
	want := []string{
		"p6 rank=1 original_rank=7 original_score=4 model_score=0.95",
		"p3 rank=2 original_rank=4 original_score=7 model_score=0.9",
		"p1 rank=3 original_rank=2 original_score=9 model_score=0.8",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("explained hits\n%s\nwant\n%s\nin %s", strings.Join(got, "\n"), strings.Join(want, "\n"), ext.Raw)
	}
	if ext.Get("rerank.scorer").String() == "" || ext.Get("status").Raw != `{"retrieval":"keywords","rewrite":"applied","rerank":"applied"}` ||
		ext.Get("rewrite.keywords").Raw != `["floral dress","straw hat"]` {
		t.Fatalf("explanation %s", ext.Raw)
	}
}

func TestMsearch(t *testing.T) {
	e := start(t, setup{sim: rerankSim()})
	body := "{\"index\":\"products\"}\n" + `{"query":` + seasideClause + `,"size":3}` + "\n" +
		"{\"index\":\"products\"}\n" + `{"query":{"match":{"title":"red"}},"size":3,"ext":{"vlproxy":{"rerank":true}}}` + "\n"
	r := e.do(t, "POST", "/_msearch", []byte(body), "Content-Type", "application/x-ndjson")
	if r.Status != 200 {
		t.Fatalf("status %d %s", r.Status, r.Body)
	}
	wantHeaders(t, r, "X-VLProxy-Rewrite", "applied, skipped", "X-VLProxy-Rerank", "off, applied")
	up := e.ES.last(t)
	wantUp := "{\"index\":\"products\"}\n" + `{"query":` + seasideQuery + `,"size":3}` + "\n" +
		"{\"index\":\"products\"}\n" + `{"query":{"match":{"title":"red"}},"size":50,"from":0}` + "\n"
	if string(up.Body) != wantUp {
		t.Fatalf("upstream body\n%s\nwant\n%s", up.Body, wantUp)
	}
	resps := gjson.GetBytes(r.Body, "responses").Array()
	if len(resps) != 2 {
		t.Fatalf("responses %s", r.Body)
	}
	if got := ids(t, []byte(resps[0].Raw)); got != "p0,p1,p2" {
		t.Fatalf("first response ids %s", got)
	}
	if got := ids(t, []byte(resps[1].Raw)); got != page(modelOrder, 0, 3) {
		t.Fatalf("second response ids %s", got)
	}
	if resps[1].Get("status").Int() != 200 || resps[1].Get("hits.total.value").Int() != 10 {
		t.Fatalf("second response %s", resps[1].Raw)
	}

	// Plain _msearch bodies are forwarded untouched.
	plain := "{}\n{\"query\":{\"match_all\":{}}}\n"
	r = e.do(t, "POST", "/products/_msearch", []byte(plain))
	wantHeaders(t, r, "X-VLProxy-Rewrite", "skipped", "X-VLProxy-Rerank", "off")
	if up := e.ES.last(t); string(up.Body) != plain {
		t.Fatalf("plain msearch forwarded %q", up.Body)
	}
}

func TestExperiments(t *testing.T) {
	exps := experiment.Config{Experiments: []experiment.Experiment{{
		Name: "rr",
		Variants: []experiment.Variant{
			{Name: "control", Weight: 1, Rerank: "off"},
			{Name: "treatment", Weight: 1, Rerank: "on"},
		},
	}}}
	e := start(t, setup{sim: rerankSim(), experiments: exps, resultCache: true})
	const body = `{"query":{"match":{"title":"red"}},"size":3}`
	want := map[string]string{"control": "p0,p1,p2", "treatment": page(modelOrder, 0, 3)}
	wantRerank := map[string]string{"control": "off", "treatment": "applied"}
	seen := map[string]int{}
	for i := range 20 {
		user := fmt.Sprintf("user-%d", i)
		var first string
		for j := range 3 {
			r := e.search(t, body, "X-User-Id", user)
			v := r.h("X-VLProxy-Variant")
			if want[v] == "" {
				t.Fatalf("%s: variant %q", user, v)
			}
			if j == 0 {
				first = v
				seen[v]++
			} else if v != first {
				t.Fatalf("%s: variant %s then %s", user, first, v)
			}
			wantHeaders(t, r, "X-VLProxy-Rerank", wantRerank[v])
			if got := ids(t, r.Body); got != want[v] {
				t.Fatalf("%s in %s: ids %s, want %s", user, v, got, want[v])
			}
		}
	}
	if seen["control"] == 0 || seen["treatment"] == 0 {
		t.Fatalf("20 users all in one variant: %v", seen)
	}
	// Without the key header: the default (first) variant.
	wantHeaders(t, e.search(t, body), "X-VLProxy-Variant", "control")
	// A forced variant wins over the key.
	for _, forced := range []string{"treatment", "rr/treatment"} {
		r := e.search(t, body, "X-User-Id", "user-1", "X-VLProxy-Variant", forced)
		wantHeaders(t, r, "X-VLProxy-Variant", "treatment", "X-VLProxy-Rerank", "applied")
		if got := ids(t, r.Body); got != want["treatment"] {
			t.Fatalf("forced %s: ids %s", forced, got)
		}
	}
	n := e.ES.Calls.Load()
	wantESError(t, e.search(t, body, "X-VLProxy-Variant", "nope"), 400, "nope")
	if e.ES.Calls.Load() != n {
		t.Fatal("a request forcing an unknown variant was forwarded")
	}
}

// The shape the client asked for survives the widening: URL size/from, _source filtering and
// filter_path are re-applied to the reranked page.
func TestRerankRestoresShape(t *testing.T) {
	e := start(t, setup{sim: rerankSim()})
	f := func(uri, body, want string) {
		t.Helper()
		r := e.do(t, "POST", uri, []byte(body), "X-VLProxy-Rerank", "on")
		wantHeaders(t, r, "X-VLProxy-Rerank", "applied")
		if got := compact(t, r.Body); got != want {
			t.Fatalf("%s %s:\n%s\nwant\n%s", uri, body, got, want)
		}
	}
	const q = `{"query":{"match":{"title":"red"}}}`
	f("/products/_search?size=2&from=1&filter_path=hits.hits._id", q, `{"hits":{"hits":[{"_id":"p3"},{"_id":"p1"}]}}`)
	if up := e.ES.last(t); up.URI != "/products/_search" || string(up.Body) != `{"query":{"match":{"title":"red"}},"size":50,"from":0}` {
		t.Fatalf("upstream URI %s body %s, want the window asked for from 0", up.URI, up.Body)
	}
	f("/products/_search?filter_path=hits.hits._source", `{"query":{"match":{"title":"red"}},"size":2,"_source":["description"]}`,
		`{"hits":{"hits":[{"_source":{"description":"floral print dress"}},{"_source":{"description":"lightweight trainers"}}]}}`)
	f("/products/_search?filter_path=hits.total,hits.hits._id&_source=false", `{"query":{"match":{"title":"red"}},"size":2}`,
		`{"hits":{"total":{"value":10,"relation":"eq"},"hits":[{"_id":"p6"},{"_id":"p3"}]}}`)
}

func TestCountRewritten(t *testing.T) {
	e := start(t, setup{sim: rerankSim()})
	r := e.do(t, "POST", "/products/_count", []byte(`{"query":`+seasideClause+`}`), "X-VLProxy-Rerank", "on")
	wantHeaders(t, r, "X-VLProxy-Rewrite", "applied", "X-VLProxy-Rerank", "skipped:count")
	if r.Status != 200 || gjson.GetBytes(r.Body, "count").Int() != int64(len(catalogue)) {
		t.Fatalf("count: %d %s", r.Status, r.Body)
	}
	if up := e.ES.last(t); string(up.Body) != `{"query":`+seasideQuery+`}` {
		t.Fatalf("upstream %s", up.Body)
	}
}

func TestMsearchRerankHeader(t *testing.T) {
	e := start(t, setup{sim: rerankSim()})
	body := "{\"index\":\"products\"}\n{\"query\":{\"match\":{\"title\":\"red\"}},\"size\":2}\n" +
		"{\"index\":\"products\"}\n{\"query\":{\"match\":{\"title\":\"red\"}},\"size\":3,\"from\":1}\n"
	r := e.do(t, "POST", "/_msearch", []byte(body), "X-VLProxy-Rerank", "on")
	wantHeaders(t, r, "X-VLProxy-Rerank", "applied", "X-VLProxy-Rewrite", "skipped")
	resps := gjson.GetBytes(r.Body, "responses").Array()
	if len(resps) != 2 || ids(t, []byte(resps[0].Raw)) != page(modelOrder, 0, 2) || ids(t, []byte(resps[1].Raw)) != page(modelOrder, 1, 3) {
		t.Fatalf("responses %s", r.Body)
	}
}

// A variant's scorer picks the reranker: the explanation names the scorer that served it.
func TestExperimentScorer(t *testing.T) {
	exps := experiment.Config{Experiments: []experiment.Experiment{{
		Name: "scorers",
		Variants: []experiment.Variant{
			{Name: "by-api", Weight: 1, Rerank: "on", Scorer: "api"},
			{Name: "by-judge", Weight: 1, Rerank: "on", Scorer: "judge"},
			{Name: "by-default", Weight: 1, Rerank: "on"},
		},
	}}}
	e := start(t, setup{sim: rerankSim(), experiments: exps})
	const body = `{"query":{"match":{"title":"red"}},"size":3,"ext":{"vlproxy":{"explain":true}}}`
	f := func(variant, wantScorer string) {
		t.Helper()
		r := e.search(t, body, "X-VLProxy-Variant", variant)
		wantHeaders(t, r, "X-VLProxy-Variant", variant, "X-VLProxy-Rerank", "applied")
		if got := gjson.GetBytes(r.Body, "ext.vlproxy.rerank.scorer").String(); got != wantScorer {
			t.Fatalf("variant %s: scorer %q, want %q", variant, got, wantScorer)
		}
	}
	f("by-api", "rerank")
	f("by-judge", "judge")
	f("by-default", "rerank")
}

// An _msearch filter_path would strip the hits the reranker reads: it is taken off the upstream
// request and applied to the reranked response.
func TestMsearchRerankFilterPath(t *testing.T) {
	e := start(t, setup{sim: rerankSim()})
	body := "{\"index\":\"products\"}\n{\"query\":{\"match\":{\"title\":\"red\"}},\"size\":3}\n"
	r := e.do(t, "POST", "/_msearch?filter_path=responses.hits.hits._id&typed_keys=false", []byte(body), "X-VLProxy-Rerank", "on")
	wantHeaders(t, r, "X-VLProxy-Rerank", "applied")
	if up := e.ES.last(t); strings.Contains(up.URI, "filter_path") || !strings.Contains(up.URI, "typed_keys=false") {
		t.Fatalf("upstream URI %s: want filter_path removed and the other parameters kept", up.URI)
	}
	want := `{"responses":[{"hits":{"hits":[{"_id":"` + strings.Join(strings.Split(page(modelOrder, 0, 3), ","), `"},{"_id":"`) + `"}]}}]}`
	if string(r.Body) != want {
		t.Fatalf("body\n%s\nwant\n%s", r.Body, want)
	}
}
