package rerank

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/vlproxy/vlproxy/model"
)

const shardsJSON = `"took":3,"timed_out":false,"_shards":{"total":1,"successful":1,"skipped":0,"failed":0}`

func matchReq(body string) Request {
	return Request{Index: "products", Body: []byte(body)}
}

const qRed = `"query":{"match":{"title":"red running shoes"}}`

func TestApplyReorder(t *testing.T) {
	s := &fakeScorer{scores: modelScores}
	r := newTestReranker(t, testConfig(), s, nil)
	res, _ := run(t, r, matchReq(`{`+qRed+`,"size":3}`))
	want := `{` + shardsJSON + `,"hits":{"total":{"value":6,"relation":"eq"},"max_score":1,"hits":[` +
		`{"_index":"products","_id":"4","_score":1,"_source":{"title":"red running shoes","brand":"swift","price":90}},` +
		`{"_index":"products","_id":"3","_score":0.88235295,"_source":{"title":"red shoes","brand":"acme","price":70}},` +
		`{"_index":"products","_id":"6","_score":0.7647059,"_source":{"title":"white sneakers","brand":"swift","price":60}}]}}`
	if string(res.Body) != want {
		t.Fatalf("body\n got %s\nwant %s", res.Body, want)
	}
	if res.Status != StatusApplied || res.Explain != nil {
		t.Fatalf("status %q explain %s", res.Status, res.Explain)
	}
	if s.query.Text != "red running shoes" || s.docs.Load() != 6 {
		t.Fatalf("scorer saw query %q and %d docs", s.query.Text, s.docs.Load())
	}
	st := res.Shadow
	if st.K != 3 || st.Overlap != 1.0/3 || !st.Top1Changed || st.Scored != 6 || st.Displacement != 14.0/6 {
		t.Fatalf("stats %+v", st)
	}
}

func ids(t testing.TB, body []byte) string {
	t.Helper()
	var out []string
	for _, v := range gjson.GetBytes(body, "hits.hits.#._id").Array() {
		out = append(out, v.String())
	}
	return strings.Join(out, ",")
}

func TestApplyPagination(t *testing.T) {
	// ES order 1..6; model order of the whole set 4,3,6,1,2,5.
	f := func(window, from, size int, wantIDs string, wantFetch int) {
		t.Helper()
		r := newTestReranker(t, testConfig(), &fakeScorer{scores: modelScores}, nil)
		req := matchReq(`{` + qRed + `,"from":` + itoa(from) + `,"size":` + itoa(size) + `}`)
		req.Opts.WindowSize = &window
		res, plan := run(t, r, req)
		if plan.fetch != wantFetch {
			t.Fatalf("fetch %d, want %d", plan.fetch, wantFetch)
		}
		if got := ids(t, res.Body); got != wantIDs {
			t.Fatalf("window %d from %d size %d: ids %s, want %s", window, from, size, got, wantIDs)
		}
		if tot := gjson.GetBytes(res.Body, "hits.total.value").Int(); tot != 6 {
			t.Fatalf("total %d", tot)
		}
	}
	f(6, 0, 2, "4,3", 6)
	f(6, 2, 2, "6,1", 6)
	f(6, 4, 10, "2,5", 14)
	f(4, 0, 6, "4,3,1,2,5,6", 6) // window 1..4 reordered, 5 and 6 keep ES order after it
	f(4, 2, 3, "1,2,5", 5)       // straddles the window edge
	f(3, 1, 1, "1", 3)           // window 1..3: 3 (.8), 1 (.3), 2 (.1)
}

func itoa(n int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(n)) }

func fmtInt(n int) string {
	if n == 0 {
		return "0"
	}
	neg := n < 0
	if neg {
		n = -n
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	if neg {
		b = append([]byte{'-'}, b...)
	}
	return string(b)
}

func TestApplyMaxScoreBeyondWindow(t *testing.T) {
	r := newTestReranker(t, testConfig(), &fakeScorer{scores: modelScores}, nil)
	req := matchReq(`{` + qRed + `,"from":2,"size":3}`)
	req.Opts.WindowSize = ptr(4)
	res, _ := run(t, r, req)
	// Window 1..4 normalized over [0.1,0.9]: 4→1, 3→0.875, 1→0.25, 2→0; hit 5 keeps its ES score 2.
	want := `{` + shardsJSON + `,"hits":{"total":{"value":6,"relation":"eq"},"max_score":2,"hits":[` +
		`{"_index":"products","_id":"1","_score":0.25,"_source":{"title":"red dress","brand":"acme","price":30}},` +
		`{"_index":"products","_id":"2","_score":0,"_source":{"title":"blue jeans","brand":"denim co","price":50}},` +
		`{"_index":"products","_id":"5","_score":2,"_source":{"title":"green hat","brand":"acme","price":15}}]}}`
	if string(res.Body) != want {
		t.Fatalf("body\n got %s\nwant %s", res.Body, want)
	}
}

func TestApplyFusionAndMinScore(t *testing.T) {
	f := func(opts Options, wantIDs string) {
		t.Helper()
		r := newTestReranker(t, testConfig(), &fakeScorer{scores: modelScores}, nil)
		req := matchReq(`{` + qRed + `}`)
		req.Opts = opts
		res, _ := run(t, r, req)
		if got := ids(t, res.Body); got != wantIDs {
			t.Fatalf("opts %+v: ids %s, want %s", opts, got, wantIDs)
		}
		if tot := gjson.GetBytes(res.Body, "hits.total.value").Int(); tot != 6 {
			t.Fatalf("total %d", tot)
		}
	}
	f(Options{}, "4,3,6,1,2,5")
	f(Options{Weight: ptr(0.0)}, "1,2,3,4,5,6")
	f(Options{Weight: ptr(0.5)}, "3,4,1,2,6,5")
	f(Options{MinScore: ptr(0.5)}, "4,3,6")
	f(Options{MinScore: ptr(0.5), Weight: ptr(0.0)}, "3,4,6")
}

func TestApplySourceAndFilterPath(t *testing.T) {
	// Each case runs twice: rerank on (exact JSON of the reordered shape) and shadow, whose
	// body must equal what ES itself answers to the original request.
	f := func(body, args string, srcOf func(string) string, want string) {
		t.Helper()
		r := newTestReranker(t, testConfig(), &fakeScorer{scores: modelScores}, nil)
		req := matchReq(body)
		req.Args = QueryArgs(args)
		res, _ := run(t, r, req)
		if string(res.Body) != want {
			t.Fatalf("%s?%s on\n got %s\nwant %s", body, args, res.Body, want)
		}
		req.Mode = ModeShadow
		res, plan := run(t, r, req)
		off := esResponse(products, 0, plan.size, srcOf)
		if plan.fp != nil {
			off = plan.fp.Apply(off)
		}
		if string(res.Body) != string(off) || res.Status != StatusShadow {
			t.Fatalf("%s?%s shadow %s\n got %s\nwant %s", body, args, res.Status, res.Body, off)
		}
	}
	head := `{` + shardsJSON + `,"hits":{"total":{"value":6,"relation":"eq"},"max_score":1,"hits":[`
	f(`{`+qRed+`,"size":2,"_source":false}`, "", func(string) string { return "" },
		head+`{"_index":"products","_id":"4","_score":1},{"_index":"products","_id":"3","_score":0.88235295}]}}`)
	f(`{`+qRed+`,"size":2,"_source":["brand"]}`, "", func(s string) string { return `{"brand":` + gjson.Get(s, "brand").Raw + `}` },
		head+`{"_index":"products","_id":"4","_score":1,"_source":{"brand":"swift"}},{"_index":"products","_id":"3","_score":0.88235295,"_source":{"brand":"acme"}}]}}`)
	f(`{`+qRed+`,"size":2}`, "_source_excludes=title,brand", func(s string) string { return `{"price":` + gjson.Get(s, "price").Raw + `}` },
		head+`{"_index":"products","_id":"4","_score":1,"_source":{"price":90}},{"_index":"products","_id":"3","_score":0.88235295,"_source":{"price":70}}]}}`)
	f(`{`+qRed+`,"size":3}`, "filter_path=hits.hits._id,hits.total.value", nil,
		`{"hits":{"total":{"value":6},"hits":[{"_id":"4"},{"_id":"3"},{"_id":"6"}]}}`)
	f(`{`+qRed+`,"size":2,"_source":"price"}`, "filter_path=-took,-_shards,-hits.hits._index", func(s string) string { return `{"price":` + gjson.Get(s, "price").Raw + `}` },
		`{"timed_out":false,"hits":{"total":{"value":6,"relation":"eq"},"max_score":1,"hits":[{"_id":"4","_score":1,"_source":{"price":90}},{"_id":"3","_score":0.88235295,"_source":{"price":70}}]}}`)
	f(`{`+qRed+`,"size":1}`, "filter_path=**._id", nil, `{"hits":{"hits":[{"_id":"4"}]}}`)
}

func TestApplyPartial(t *testing.T) {
	s := &fakeScorer{scores: modelScores, block: map[string]bool{"red dress": true, "blue jeans": true}}
	r := newTestReranker(t, testConfig(), s, nil)
	req := matchReq(`{` + qRed + `}`)
	req.Opts.Timeout = ptr(20 * time.Millisecond)
	res, _ := run(t, r, req)
	// Scored in time: 3 (.8), 4 (.9), 5 (.05), 6 (.7); 1 and 2 keep ES order behind them.
	if got := ids(t, res.Body); got != "4,3,6,5,1,2" || res.Status != StatusPartial {
		t.Fatalf("ids %s status %s", got, res.Status)
	}
	if res.Shadow.Scored != 4 {
		t.Fatalf("scored %d", res.Shadow.Scored)
	}
	// The unscored hits keep their ES scores.
	if got := gjson.GetBytes(res.Body, "hits.hits.4._score").Raw; got != "6" {
		t.Fatalf("unscored hit score %s", got)
	}
}

func TestApplyFallback(t *testing.T) {
	f := func(s Scorer, want string) {
		t.Helper()
		r := newTestReranker(t, testConfig(), s, nil)
		req := matchReq(`{` + qRed + `,"size":3}`)
		req.Opts.Timeout = ptr(20 * time.Millisecond)
		req.Explain = true
		res, _ := run(t, r, req)
		if res.Status != want {
			t.Fatalf("status %q, want %q", res.Status, want)
		}
		if off := esResponse(products, 0, 3, nil); string(res.Body) != string(off) {
			t.Fatalf("fallback body\n got %s\nwant %s", res.Body, off)
		}
		if gjson.GetBytes(res.Explain, "hits.0.model_score").Type != gjson.Null || gjson.GetBytes(res.Explain, "status").String() != want {
			t.Fatalf("explain %s", res.Explain)
		}
	}
	f(&fakeScorer{err: &model.Error{Kind: model.KindCircuitOpen, Message: "open"}}, "fallback:circuit_open")
	f(&fakeScorer{err: &model.Error{Kind: model.KindUnavailable, Status: 503}}, "fallback:unavailable")
	f(&fakeScorer{err: context.DeadlineExceeded}, "fallback:timeout")
	all := map[string]bool{}
	for k := range modelScores {
		all[k] = true
	}
	f(&fakeScorer{scores: modelScores, block: all}, "fallback:timeout")
	f(NewAPIScorer(&fakeRerankAPI{fn: func(req *model.RerankRequest) (*model.RerankResponse, error) {
		return &model.RerankResponse{Scores: []float64{1, 2}}, nil // wrong count
	}}), "fallback:bad_output")
}

func TestApplyBadResponse(t *testing.T) {
	r := newTestReranker(t, testConfig(), &fakeScorer{scores: modelScores}, nil)
	plan, _, _, _, err := r.Prepare(Request{Index: "products", Body: []byte(`{` + qRed + `}`), Args: "filter_path=error.type"})
	if err != nil {
		t.Fatal(err)
	}
	f := func(es, wantBody, wantStatus string) {
		t.Helper()
		res, err := r.Apply(context.Background(), plan, []byte(es))
		if err != nil || string(res.Body) != wantBody || res.Status != wantStatus {
			t.Fatalf("Apply(%s) = %s %q %v", es, res.Body, res.Status, err)
		}
	}
	f(`{"error":{"type":"x","reason":"y"},"status":400}`, `{"error":{"type":"x"}}`, "fallback:bad_response")
	f(`{"hits":{"hits":[]}}`, `{}`, "applied")
	f(``, ``, "fallback:bad_response")
	f(`{"hits":{"hits":[{"_id":"1"`, `{"hits":{"hits":[{"_id":"1"`, "fallback:bad_response")
}

func TestApplyCached(t *testing.T) {
	s := &fakeScorer{scores: modelScores}
	c := newMapCache()
	r := newTestReranker(t, testConfig(), s, c)
	f := func(body string, wantStatus, wantIDs string, wantCalls int32) {
		t.Helper()
		res, _ := run(t, r, matchReq(body))
		if res.Status != wantStatus || ids(t, res.Body) != wantIDs || s.calls.Load() != wantCalls {
			t.Fatalf("%s: status %s ids %s calls %d", body, res.Status, ids(t, res.Body), s.calls.Load())
		}
	}
	f(`{`+qRed+`,"size":3}`, StatusApplied, "4,3,6", 1)
	f(`{`+qRed+`,"size":3}`, StatusCached, "4,3,6", 1)
	f(`{`+qRed+`,"size":2,"from":2}`, StatusCached, "6,1", 1)
	// Another query is another key.
	f(`{"query":{"match":{"title":"red shoes"}},"size":3}`, StatusApplied, "4,3,6", 2)

	// A changed document (content hash) is scored again, alone.
	products[0].src = `{"title":"red running shoes","brand":"acme","price":30}`
	defer func() { products[0].src = `{"title":"red dress","brand":"acme","price":30}` }()
	before := s.docs.Load()
	f(`{`+qRed+`,"size":3}`, StatusApplied, "1,4,3", 3)
	if n := s.docs.Load() - before; n != 1 {
		t.Fatalf("rescored %d docs, want 1", n)
	}
}

func TestApplyCachedSeqNo(t *testing.T) {
	s := &fakeScorer{scores: modelScores}
	r := newTestReranker(t, testConfig(), s, newMapCache())
	plan, _, _, _, _ := r.Prepare(matchReq(`{` + qRed + `,"size":1}`))
	es := func(seq string) []byte {
		return []byte(`{"hits":{"total":{"value":2,"relation":"eq"},"max_score":2,"hits":[` +
			`{"_index":"p","_id":"a","_seq_no":` + seq + `,"_score":2,"_source":{"title":"red dress"}},` +
			`{"_index":"p","_id":"b","_seq_no":7,"_score":1,"_source":{"title":"red shoes"}}]}}`)
	}
	f := func(seq, want string) {
		t.Helper()
		res, err := r.Apply(context.Background(), plan, es(seq))
		if err != nil || res.Status != want {
			t.Fatalf("seq %s: %q %v", seq, res.Status, err)
		}
	}
	f("3", StatusApplied)
	f("3", StatusCached)
	f("4", StatusApplied)
}

func TestApplyExplain(t *testing.T) {
	r := newTestReranker(t, testConfig(), &fakeScorer{scores: modelScores}, nil)
	req := matchReq(`{` + qRed + `,"size":2,"from":1}`)
	req.Explain = true
	res, _ := run(t, r, req)
	want := `{"scorer":"rerank","model":"fake-model","status":"applied","window":6,"hits":[` +
		`{"_index":"products","_id":"3","rank":2,"original_rank":3,"original_score":4,"model_score":0.8,"score":0.88235295},` +
		`{"_index":"products","_id":"6","rank":3,"original_rank":6,"original_score":1,"model_score":0.7,"score":0.7647059}]}`
	if string(res.Explain) != want {
		t.Fatalf("explain\n got %s\nwant %s", res.Explain, want)
	}
}

func TestApplyShadowIdenticalToOff(t *testing.T) {
	for _, body := range []string{`{` + qRed + `,"size":3}`, `{` + qRed + `,"size":2,"from":3}`, `{` + qRed + `,"size":20}`} {
		r := newTestReranker(t, testConfig(), &fakeScorer{scores: modelScores}, nil)
		req := matchReq(body)
		if _, _, _, skip, _ := r.Prepare(Request{Index: "products", Body: []byte(body), Mode: ModeOff}); skip != SkipDisabled {
			t.Fatalf("off: skip %q", skip)
		}
		req.Mode = ModeShadow
		res, plan := run(t, r, req)
		off := esResponse(products, plan.from, plan.size, nil) // ES's answer to the original request
		if string(res.Body) != string(off) || res.Status != StatusShadow {
			t.Fatalf("%s: shadow %s\n got %s\nwant %s", body, res.Status, res.Body, off)
		}
		if res.Shadow.Scored != 6 || !res.Shadow.Top1Changed {
			t.Fatalf("stats %+v", res.Shadow)
		}
	}
}
