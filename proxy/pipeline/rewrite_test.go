package pipeline_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/vlproxy/vlproxy/model/modeltest"
)

// seasideRule makes the simulator answer two keyword phrases for any text mentioning "seaside".
var seasideRule = modeltest.Rule{Text: "seaside", Output: modeltest.Output{Keywords: []string{"floral dress", "straw hat"}}}

const fieldsJSON = `"fields":["title^3","description"]`

// seasideQuery is what the clause {"text":"outfit for a seaside holiday"} becomes with seasideRule.
const seasideQuery = `{"bool":{"should":[` +
	`{"multi_match":{"query":"outfit for a seaside holiday",` + fieldsJSON + `,"boost":2}},` +
	`{"multi_match":{"query":"floral dress",` + fieldsJSON + `,"type":"best_fields"}},` +
	`{"multi_match":{"query":"straw hat",` + fieldsJSON + `,"type":"best_fields"}}],"minimum_should_match":1}}`

// seasideText is the plain-text query the clause becomes when rewriting is off or failed.
const seasideText = `{"multi_match":{"query":"outfit for a seaside holiday",` + fieldsJSON + `}}`

const seasideClause = `{"multimodal":{"text":"outfit for a seaside holiday"}}`

func TestPlainSearchForwardedByteForByte(t *testing.T) {
	e := start(t, setup{resultCache: true})
	f := func(uri, body string, wantRerank string) {
		t.Helper()
		r := e.do(t, "POST", uri, []byte(body))
		if r.Status != 200 {
			t.Fatalf("%s: status %d %s", uri, r.Status, r.Body)
		}
		got := e.ES.last(t)
		if string(got.Body) != body || got.URI != uri {
			t.Fatalf("upstream got %s %q, want %s %q", got.URI, got.Body, uri, body)
		}
		wantHeaders(t, r, "X-VLProxy-Rewrite", "skipped", "X-VLProxy-Rerank", wantRerank, "X-VLProxy-Cache", "miss")
		if st := r.h("Server-Timing"); !strings.HasPrefix(st, "upstream;dur=") || strings.HasPrefix(st, "upstream;dur=0.000") ||
			strings.Contains(st, "search;dur=") || !strings.Contains(st, "total;dur=") {
			t.Fatalf("Server-Timing %q", st)
		}
		if r.h("X-VLProxy-Variant") != "" {
			t.Fatalf("variant header without experiments: %q", r.h("X-VLProxy-Variant"))
		}
	}
	f("/products/_search", "{ \"query\" : {\"match\":{\"title\":\"red  dress\"}},\n \"size\": 3 }", "off")
	f("/products/_search?size=2&q=title:red", `{"_source":["title"]}`, "off")
	f("/_search", `{"query":{"match_all":{}}}`, "off")
	f("/products/_count", `{"query":{"term":{"colour":"red"}}}`, "skipped:count")
	f("/_msearch", "{\"index\":\"products\"}\n{\"query\":{\"match_all\":{}}}\n{}\n{\"size\":1}\n", "off")
}

func TestTextRewrite(t *testing.T) {
	e := start(t, setup{sim: modeltest.Config{Rules: []modeltest.Rule{seasideRule}}})
	const before, after = "{ \"query\" :  ", " ,\n  \"size\": 5 , \"_source\":[\"title\"] }"
	r := e.search(t, before+seasideClause+after)
	wantHeaders(t, r, "X-VLProxy-Rewrite", "applied", "X-VLProxy-Rerank", "off", "X-VLProxy-Cache", "bypass")
	up := e.ES.last(t)
	if want := before + seasideQuery + after; string(up.Body) != want {
		t.Fatalf("upstream body\n%s\nwant\n%s", up.Body, want)
	}
	// Without explain the client gets exactly what ES answered.
	if want := e.ES.searchResponse(up.Body, nil, ""); string(r.Body) != string(want) {
		t.Fatalf("response\n%s\nwant ES's\n%s", r.Body, want)
	}
	st := r.h("Server-Timing")
	for _, s := range []string{"upstream;dur=", "rewrite;dur=", "model;dur=", "total;dur="} {
		if !strings.Contains(st, s) {
			t.Fatalf("Server-Timing %q lacks %s", st, s)
		}
	}
	wantDisjointTiming(t, st)
	calls := e.Sim.Calls()["/v1/chat/completions"]

	// The same clause again: keywords from the cache, no model call, same upstream body.
	r = e.search(t, before+seasideClause+after)
	wantHeaders(t, r, "X-VLProxy-Rewrite", "cached", "X-VLProxy-Cache", "bypass")
	if got := e.Sim.Calls()["/v1/chat/completions"]; got != calls {
		t.Fatalf("model calls %d after a cached rewrite, want %d", got, calls)
	}
	if up2 := e.ES.last(t); string(up2.Body) != string(up.Body) {
		t.Fatalf("cached rewrite forwarded %s, want %s", up2.Body, up.Body)
	}
}

func TestExplain(t *testing.T) {
	e := start(t, setup{sim: modeltest.Config{Rules: []modeltest.Rule{seasideRule}}})
	r := e.search(t, `{"query":`+seasideClause+`,"size":2,"ext":{"vlproxy":{"explain":true}}}`)
	wantHeaders(t, r, "X-VLProxy-Rewrite", "applied")
	up := e.ES.last(t)
	if want := `{"query":` + seasideQuery + `,"size":2}`; string(up.Body) != want {
		t.Fatalf("upstream body %s, want %s", up.Body, want)
	}
	// The response is ES's plus ext.vlproxy; nothing else changed.
	ext := gjson.GetBytes(r.Body, "ext.vlproxy")
	if got := ext.Get("rewrite.keywords").Raw; got != `["floral dress","straw hat"]` {
		t.Fatalf("explained keywords %s in %s", got, r.Body)
	}
	if got := ext.Get("rewrite.query").Raw; got != seasideQuery {
		t.Fatalf("explained query %s", got)
	}
	if got := ext.Get("status").Raw; got != `{"retrieval":"keywords","rewrite":"applied","rerank":"off"}` {
		t.Fatalf("explained status %s", got)
	}
	if got := ext.Get("rewrite.model").String(); got != modeltest.DefaultModel {
		t.Fatalf("explained model %q", got)
	}
	stripped := strings.Replace(string(r.Body), `,"ext":{"vlproxy":`+ext.Raw+`}`, "", 1)
	if want := e.ES.searchResponse(up.Body, nil, ""); stripped != string(want) {
		t.Fatalf("response without ext\n%s\nwant\n%s", stripped, want)
	}

	// ext.vlproxy is removed before forwarding even when nothing else is rewritten, and the
	// rest of ext stays.
	r = e.search(t, `{"query":{"match_all":{}},"ext":{"other":{"a":1},"vlproxy":{"explain":true}}}`)
	if up := e.ES.last(t); string(up.Body) != `{"query":{"match_all":{}},"ext":{"other":{"a":1}}}` {
		t.Fatalf("upstream body %s", up.Body)
	}
	wantHeaders(t, r, "X-VLProxy-Rewrite", "skipped", "X-VLProxy-Rerank", "off")
	if got := gjson.GetBytes(r.Body, "ext.vlproxy.status").Raw; got != `{"rewrite":"skipped","rerank":"off"}` {
		t.Fatalf("explain of a plain search: %s", r.Body)
	}
	for _, rq := range e.ES.requests() {
		if strings.Contains(string(rq.Body), "vlproxy") || strings.Contains(string(rq.Body), "multimodal") {
			t.Fatalf("forwarded %s", rq.Body)
		}
	}
}

func TestImageQuery(t *testing.T) {
	jpg := jpegOf(t, 64, 48, 1)
	pngImg := pngOf(t, 40, 40, 2)
	sim := modeltest.Config{Rules: []modeltest.Rule{
		{Image: modelHash(t, jpg), Output: modeltest.Output{Keywords: []string{"red dress", "maxi"}}},
		{Image: modelHash(t, pngImg), Output: modeltest.Output{Keywords: []string{"leather boots"}}},
	}}
	e := start(t, setup{sim: sim})
	f := func(img, want string) {
		t.Helper()
		r := e.search(t, `{"query":{"bool":{"must":[{"multimodal":{"image":"`+img+`","fields":["title"]}}],"filter":[{"term":{"in_stock":true}}]}}}`)
		wantHeaders(t, r, "X-VLProxy-Rewrite", "applied")
		if r.Status != 200 {
			t.Fatalf("status %d %s", r.Status, r.Body)
		}
		up := e.ES.last(t)
		if string(up.Body) != `{"query":{"bool":{"must":[`+want+`],"filter":[{"term":{"in_stock":true}}]}}}` {
			t.Fatalf("upstream body %s", up.Body)
		}
	}
	f(dataURI("image/jpeg", jpg), `{"bool":{"should":[`+
		`{"multi_match":{"query":"red dress","fields":["title"],"type":"best_fields"}},`+
		`{"multi_match":{"query":"maxi","fields":["title"],"type":"best_fields"}}],"minimum_should_match":1}}`)
	f(dataURI("image/png", pngImg)[len("data:image/png;base64,"):], // raw base64
		`{"bool":{"should":[{"multi_match":{"query":"leather boots","fields":["title"],"type":"best_fields"}}],"minimum_should_match":1}}`)
}

func TestRewriteFallbacks(t *testing.T) {
	jpg := jpegOf(t, 32, 32, 3)
	f := func(fault modeltest.Fault, wantStatus string) {
		t.Helper()
		e := start(t, setup{sim: modeltest.Config{Rules: []modeltest.Rule{seasideRule}, Faults: []modeltest.Fault{fault}}})
		r := e.search(t, `{"query":`+seasideClause+`}`)
		wantHeaders(t, r, "X-VLProxy-Rewrite", wantStatus)
		if up := e.ES.last(t); string(up.Body) != `{"query":`+seasideText+`}` {
			t.Fatalf("fault %+v: upstream body %s", fault, up.Body)
		}
		// An image-only clause has nothing to fall back on: 503, nothing forwarded.
		n := e.ES.Calls.Load()
		r = e.search(t, `{"query":{"multimodal":{"image":"`+dataURI("image/jpeg", jpg)+`"}}}`)
		wantESError(t, r, 503, strings.TrimPrefix(wantStatus, "fallback:"))
		if got := e.ES.Calls.Load(); got != n {
			t.Fatalf("fault %+v: an image-only failure reached ES (%d calls, want %d)", fault, got, n)
		}
	}
	f(modeltest.Fault{Route: modeltest.RouteChat, Status: 500}, "fallback:unavailable")
	f(modeltest.Fault{Route: modeltest.RouteChat, Delay: modeltest.Duration(3 * time.Second)}, "fallback:timeout")
	f(modeltest.Fault{Route: modeltest.RouteChat, Output: modeltest.OutEmptyChoices}, "fallback:bad_output")
	f(modeltest.Fault{Route: modeltest.RouteChat, Output: modeltest.OutTruncated}, "fallback:bad_output")
	f(modeltest.Fault{Route: modeltest.RouteChat, Output: modeltest.OutBadBody}, "fallback:bad_output")
}

func TestRewriteOffHeader(t *testing.T) {
	e := start(t, setup{sim: modeltest.Config{Rules: []modeltest.Rule{seasideRule}}})
	f := func(body, hdr, wantUp, wantRewrite string) {
		t.Helper()
		var h []string
		if hdr != "" {
			h = []string{"X-VLProxy-Rewrite", hdr}
		}
		r := e.search(t, body, h...)
		wantHeaders(t, r, "X-VLProxy-Rewrite", wantRewrite)
		if up := e.ES.last(t); string(up.Body) != wantUp {
			t.Fatalf("upstream body %s, want %s", up.Body, wantUp)
		}
	}
	f(`{"query":`+seasideClause+`}`, "off", `{"query":`+seasideText+`}`, "off")
	f(`{"query":`+seasideClause+`,"ext":{"vlproxy":{"rewrite":{"enabled":false}}}}`, "", `{"query":`+seasideText+`}`, "off")
	f(`{"query":`+seasideClause+`,"ext":{"vlproxy":{"rewrite":{"enabled":false}}}}`, "on", `{"query":`+seasideQuery+`}`, "applied")
	f(`{"query":{"multimodal":{"image":"`+dataURI("image/jpeg", jpegOf(t, 16, 16, 4))+`"}}}`, "off", `{"query":{"match_none":{}}}`, "off")
	f(`{"query":{"match_all":{}}}`, "off", `{"query":{"match_all":{}}}`, "off")
	if n := e.Sim.Calls()["/v1/chat/completions"]; n != 1 {
		t.Fatalf("model calls %d, want 1 (only the header 'on' request)", n)
	}
	for _, rq := range e.ES.requests() {
		if strings.Contains(string(rq.Body), "multimodal") {
			t.Fatalf("a raw multimodal clause was forwarded: %s", rq.Body)
		}
	}
}

func TestBadInputs(t *testing.T) {
	e := start(t, setup{sim: modeltest.Config{Rules: []modeltest.Rule{seasideRule}}})
	f := func(uri, body string, status int, reason string, hdr ...string) {
		t.Helper()
		n := e.ES.Calls.Load()
		r := e.do(t, "POST", uri, []byte(body), hdr...)
		wantESError(t, r, status, reason)
		if got := e.ES.Calls.Load(); got != n {
			t.Fatalf("%s: forwarded a bad request", body)
		}
	}
	f("/products/_search", `{"query":`+seasideClause+`,"ext":{"vlproxy":{"explian":true}}}`, 400, "ext.vlproxy.explian")
	f("/products/_search", `{"query":{"multimodal":{"text":"a","colour":"red"}}}`, 400, "colour")
	f("/products/_search", `{"query":{"multimodal":{}}}`, 400, "needs [text] or [image]")
	f("/products/_search", `{"query":`+seasideClause+`}`, 400, "X-VLProxy-Rerank", "X-VLProxy-Rerank", "sometimes")
	f("/products/_search", `{"query":{"match_all":{}}}`, 400, "X-VLProxy-Rewrite", "X-VLProxy-Rewrite", "maybe")
	f("/_msearch", "{\"index\":\"products\"}\n"+`{"query":`+seasideClause+`}`+"\n{\"index\":\n", 400, "line 3 (a header)")
	f("/_msearch", "{\"index\":\"products\"}\n{\"query\":{\"multimodal\":{\"text\":\"x\"}\n", 400, "line 2 (a body)")
	f("/products/_search", `{"query":{"multimodal":{"image":"data:image/png;base64,bm90IGFuIGltYWdl"}}}`, 400, "not a JPEG, PNG, WebP or GIF")
	f("/products/_search", `{"query":{"multimodal":{"image":"%%%not base64%%%"}}}`, 400, "invalid base64")
	f("/products/_search", `{"query":`+seasideClause+`,"ext":{"vlproxy":{"rerank":{"enabled":true,"window":3}}}}`, 400, "window")
	if n := e.Sim.Calls()["/v1/chat/completions"]; n != 0 {
		t.Fatalf("bad inputs made %d model calls", n)
	}
}

func TestGzipRequestBodies(t *testing.T) {
	e := start(t, setup{sim: modeltest.Config{Rules: []modeltest.Rule{seasideRule}}})
	plain := []byte(`{"query":{"match":{"title":"red"}}}`)
	gz := gzipped(plain)
	r := e.search(t, string(gz), "Content-Encoding", "gzip")
	wantHeaders(t, r, "X-VLProxy-Rewrite", "skipped")
	if up := e.ES.last(t); string(up.Body) != string(gz) || up.ContentEncoding != "gzip" {
		t.Fatalf("a gzip plain search was not forwarded unchanged: encoding %q, %d bytes", up.ContentEncoding, len(up.Body))
	}
	r = e.search(t, string(gzipped([]byte(`{"query":`+seasideClause+`}`))), "Content-Encoding", "gzip")
	wantHeaders(t, r, "X-VLProxy-Rewrite", "applied")
	if up := e.ES.last(t); string(up.Body) != `{"query":`+seasideQuery+`}` || up.ContentEncoding != "" {
		t.Fatalf("gzip multimodal search forwarded with encoding %q: %s", up.ContentEncoding, up.Body)
	}
	wantESError(t, e.search(t, "not gzip", "Content-Encoding", "gzip"), 400, "gzip")
}
