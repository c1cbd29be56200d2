package rerank

import (
	"errors"
	"github.com/vlproxy/vlproxy/internal/eserr"
	"testing"
)

func TestPrepare(t *testing.T) {
	r := newTestReranker(t, testConfig(), &fakeScorer{}, nil)
	q := `"query":{"match":{"title":"red running shoes"}}`
	f := func(req Request, wantBody, wantQuery string) {
		t.Helper()
		if req.Index == "" {
			req.Index = "products"
		}
		_, body, qs, skip, err := r.Prepare(req)
		if err != nil || skip != "" {
			t.Fatalf("Prepare(%s?%s): skip=%q err=%v", req.Body, req.Args, skip, err)
		}
		if string(body) != wantBody {
			t.Fatalf("body\n got %s\nwant %s", body, wantBody)
		}
		if qs != wantQuery {
			t.Fatalf("query got %q want %q", qs, wantQuery)
		}
	}
	f(Request{Body: []byte(`{` + q + `,"size":3}`)}, `{`+q+`,"size":50,"from":0}`, "")
	f(Request{Body: []byte(`{` + q + `,"from":60,"size":10}`), Opts: Options{MinScore: ptr(0.1)}}, `{`+q+`,"from":0,"size":70}`, "")
	f(Request{Body: []byte(`{` + q + `}`), Args: "size=3&from=2&pretty&typed_keys=true"}, `{`+q+`,"size":50,"from":0}`, "pretty&typed_keys=true")
	f(Request{Body: []byte(`{` + q + `}`), Opts: Options{WindowSize: ptr(5)}, Args: "size=8"}, `{`+q+`,"size":8,"from":0}`, "")
	f(Request{Body: []byte(`{` + q + `}`), Args: "filter_path=hits.hits._id&q2=x"}, `{`+q+`,"size":50,"from":0}`, "q2=x")
	// _source variants that drop the title come back widened; ones that keep it stay untouched.
	f(Request{Body: []byte(`{` + q + `,"_source":false}`)}, `{`+q+`,"_source":{"includes":["title"],"excludes":[]},"size":50,"from":0}`, "")
	f(Request{Body: []byte(`{` + q + `,"_source":["brand","pr*"]}`)}, `{`+q+`,"_source":{"includes":["brand","pr*","title"],"excludes":[]},"size":50,"from":0}`, "")
	f(Request{Body: []byte(`{` + q + `,"_source":{"includes":["ti*"],"excludes":["price"]}}`)}, `{`+q+`,"_source":{"includes":["ti*"],"excludes":["price"]},"size":50,"from":0}`, "")
	f(Request{Body: []byte(`{` + q + `,"_source":{"excludes":["t*","price"]}}`)}, `{`+q+`,"_source":{"includes":[],"excludes":["price"]},"size":50,"from":0}`, "")
	f(Request{Body: []byte(`{` + q + `}`), Args: "_source=false&x=1"}, `{`+q+`,"_source":{"includes":["title"],"excludes":[]},"size":50,"from":0}`, "x=1")
	f(Request{Body: []byte(`{` + q + `}`), Args: "_source_excludes=title,price"}, `{`+q+`,"_source":{"includes":[],"excludes":["price"]},"size":50,"from":0}`, "")
	f(Request{Body: []byte(`{` + q + `}`), Args: "_source_includes=brand"}, `{`+q+`,"_source":{"includes":["brand","title"],"excludes":[]},"size":50,"from":0}`, "")
	f(Request{Body: []byte(`{` + q + `,"sort":[{"_score":{"order":"desc"}}]}`)}, `{`+q+`,"sort":[{"_score":{"order":"desc"}}],"size":50,"from":0}`, "")
	f(Request{Body: nil, Args: "q=red+shoes", Mode: ModeOn, Index: "other"}, `{"size":50,"from":0}`, "q=red+shoes")

	skip := func(req Request, want string) {
		t.Helper()
		if req.Index == "" {
			req.Index = "products"
		}
		plan, body, _, got, err := r.Prepare(req)
		if err != nil || got != want || plan != nil || body != nil {
			t.Fatalf("Prepare(%s?%s): skip=%q err=%v plan=%v, want skip %q", req.Body, req.Args, got, err, plan, want)
		}
	}
	skip(Request{Body: []byte(`{` + q + `,"size":0}`)}, SkipSizeZero)
	skip(Request{Body: []byte(`{` + q + `}`), Args: "size=0"}, SkipSizeZero)
	skip(Request{Body: []byte(`{` + q + `,"sort":[{"price":"asc"}]}`)}, SkipSort)
	skip(Request{Body: []byte(`{` + q + `,"sort":["_score","price"]}`)}, SkipSort)
	skip(Request{Body: []byte(`{` + q + `,"sort":{"_score":"asc"}}`)}, SkipSort)
	skip(Request{Body: []byte(`{` + q + `}`), Args: "sort=price:desc"}, SkipSort)
	skip(Request{Body: []byte(`{` + q + `,"search_after":[1]}`)}, SkipSearchAfter)
	skip(Request{Body: []byte(`{` + q + `}`), Args: "scroll=1m"}, SkipScroll)
	skip(Request{Body: []byte(`{` + q + `,"pit":{"id":"x"}}`)}, SkipPIT)
	skip(Request{Body: []byte(`{` + q + `,"collapse":{"field":"brand"}}`)}, SkipCollapse)
	skip(Request{Body: []byte(`{` + q + `}`), Index: "logs"}, SkipDisabled)
	skip(Request{Body: []byte(`{` + q + `}`), Mode: ModeOff}, SkipDisabled)
	skip(Request{Body: []byte(`{` + q + `}`), Opts: Options{Enabled: ptr(false)}}, SkipDisabled)
	skip(Request{Body: []byte(`{` + q + `}`), Opts: Options{Enabled: ptr(true)}, Mode: ModeOff}, SkipDisabled)
	skip(Request{Body: []byte(`{` + q + `,"from":50}`)}, SkipBeyondWindow)
	skip(Request{Body: []byte(`{"query":{"bool":{"filter":[{"match":{"title":"x"}}]}}}`)}, SkipNoQuery)
	skip(Request{Body: []byte(`[1,2]`)}, SkipInvalidBody)
	skip(Request{Body: []byte(`{"query":`)}, SkipInvalidBody)

	bad := func(req Request, wantReason string) {
		t.Helper()
		if req.Index == "" {
			req.Index = "products"
		}
		_, _, _, skip, err := r.Prepare(req)
		var e *eserr.Error
		if !errors.As(err, &e) || skip != "" {
			t.Fatalf("Prepare(%s?%s): skip=%q err=%v, want a 400", req.Body, req.Args, skip, err)
		}
		st, typ, reason := e.ESError()
		if st != 400 || typ != "illegal_argument_exception" || reason != wantReason {
			t.Fatalf("got %d %s %q, want 400 %q", st, typ, reason, wantReason)
		}
	}
	bad(Request{Body: []byte(`{` + q + `}`), Opts: Options{WindowSize: ptr(501)}}, "[ext.vlproxy.rerank.rank_window_size] must be between 1 and 500 (rerank.max_window_size), got 501")
	bad(Request{Body: []byte(`{` + q + `,"size":-1}`)}, "[size] parameter cannot be negative, found [-1]")
	bad(Request{Body: []byte(`{` + q + `}`), Args: "from=-5"}, "[from] parameter cannot be negative, found [-5]")
	bad(Request{Body: []byte(`{` + q + `,"size":"ten"}`)}, `[size] must be an integer, got "ten"`)
	bad(Request{Body: []byte(`{` + q + `,"size":[1]}`)}, `[size] must be an integer, got [1]`)
}

func TestExtractQueryText(t *testing.T) {
	f := func(body, want string) {
		t.Helper()
		if got := extractQueryText(gjsonParse(body).Get("query")); got != want {
			t.Fatalf("extractQueryText(%s) = %q, want %q", body, got, want)
		}
	}
	f(`{"query":{"match":{"title":"red shoes"}}}`, "red shoes")
	f(`{"query":{"match":{"title":{"query":"red shoes","operator":"and"}}}}`, "red shoes")
	f(`{"query":{"bool":{"must":[{"multi_match":{"query":"summer dress","fields":["a"]}}],"should":[{"match_phrase":{"d":"beach"}}],"filter":[{"match":{"x":"no"}}]}}}`, "summer dress beach")
	f(`{"query":{"function_score":{"query":{"simple_query_string":{"query":"hat"}}}}}`, "hat")
	f(`{"query":{"bool":{"should":[{"match":{"a":"x"}},{"match":{"b":"x"}}]}}}`, "x")
	f(`{"query":{"match_all":{}}}`, "")
}
