package pipeline_test

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vlproxy/vlproxy/model/modeltest"
)

func TestResultCache(t *testing.T) {
	e := start(t, setup{sim: rerankSim(), resultCache: true})
	const body = `{"query":{"match":{"title":"red"}},"size":3}`
	r := e.search(t, body)
	wantHeaders(t, r, "X-VLProxy-Cache", "miss")
	n := e.ES.Calls.Load()

	hit := e.search(t, body)
	wantHeaders(t, hit, "X-VLProxy-Cache", "hit", "X-VLProxy-Rewrite", "skipped", "X-VLProxy-Rerank", "off")
	if age, err := strconv.Atoi(hit.h("Age")); err != nil || age < 0 {
		t.Fatalf("Age %q on a hit", hit.h("Age"))
	}
	if e.ES.Calls.Load() != n || string(hit.Body) != string(r.Body) || hit.h("Content-Type") != r.h("Content-Type") {
		t.Fatalf("hit: %d upstream calls (want %d), body %s", e.ES.Calls.Load(), n, hit.Body)
	}
	// Insignificant whitespace is the same search.
	wantHeaders(t, e.search(t, "{ \"query\": {\"match\":{\"title\":\"red\"}},\n\"size\":3 }"), "X-VLProxy-Cache", "hit")

	// Another caller never gets this caller's entry.
	wantHeaders(t, e.search(t, body, "Authorization", "Basic YTpi"), "X-VLProxy-Cache", "miss")
	wantHeaders(t, e.search(t, body, "Authorization", "Basic YzpkCg=="), "X-VLProxy-Cache", "miss")
	wantHeaders(t, e.search(t, body, "Authorization", "Basic YTpi"), "X-VLProxy-Cache", "hit")

	// A write through the proxy to the index invalidates; one to another index does not.
	w := e.do(t, "POST", "/other/_doc", []byte(`{"title":"x"}`))
	if w.Status != 201 {
		t.Fatalf("write: %d %s", w.Status, w.Body)
	}
	wantHeaders(t, e.search(t, body), "X-VLProxy-Cache", "hit")
	w = e.do(t, "POST", "/products/_doc?refresh=true", []byte(`{"title":"new red hat"}`))
	if w.Status != 201 {
		t.Fatalf("write: %d %s", w.Status, w.Body)
	}
	n = e.ES.Calls.Load()
	wantHeaders(t, e.search(t, body), "X-VLProxy-Cache", "miss")
	if e.ES.Calls.Load() != n+1 {
		t.Fatal("a search after a write did not reach ES")
	}

	// Switches are part of the key: the same body reranked is another entry.
	rr := e.search(t, body, "X-VLProxy-Rerank", "on")
	wantHeaders(t, rr, "X-VLProxy-Cache", "miss", "X-VLProxy-Rerank", "applied")
	rr2 := e.search(t, body, "X-VLProxy-Rerank", "on")
	wantHeaders(t, rr2, "X-VLProxy-Cache", "hit", "X-VLProxy-Rerank", "applied")
	if ids(t, rr2.Body) != page(modelOrder, 0, 3) {
		t.Fatalf("cached rerank ids %s", ids(t, rr2.Body))
	}

	// Cache-Control: no-cache bypasses.
	wantHeaders(t, e.search(t, body, "Cache-Control", "no-cache"), "X-VLProxy-Cache", "bypass")
}

func TestResultCacheRewrite(t *testing.T) {
	e := start(t, setup{sim: modeltest.Config{Rules: []modeltest.Rule{seasideRule}}, resultCache: true})
	body := `{"query":` + seasideClause + `}`
	r := e.search(t, body)
	wantHeaders(t, r, "X-VLProxy-Cache", "miss", "X-VLProxy-Rewrite", "applied")
	es, model := e.ES.Calls.Load(), e.Sim.Calls()["/v1/chat/completions"]
	hit := e.search(t, body)
	wantHeaders(t, hit, "X-VLProxy-Cache", "hit", "X-VLProxy-Rewrite", "applied")
	if e.ES.Calls.Load() != es || e.Sim.Calls()["/v1/chat/completions"] != model || string(hit.Body) != string(r.Body) {
		t.Fatal("a result-cache hit called ES or the model")
	}
	// rewrite off is another entry, and not a rewritten one.
	off := e.search(t, body, "X-VLProxy-Rewrite", "off")
	wantHeaders(t, off, "X-VLProxy-Cache", "miss", "X-VLProxy-Rewrite", "off")
	if up := e.ES.last(t); string(up.Body) != `{"query":`+seasideText+`}` {
		t.Fatalf("upstream %s", up.Body)
	}
}

func TestResultCacheNon2xx(t *testing.T) {
	e := start(t, setup{resultCache: true})
	e.ES.Status.Store(500)
	const body = `{"query":{"match_all":{}}}`
	for i := range 2 {
		r := e.search(t, body)
		if r.Status != 500 || r.h("X-VLProxy-Cache") != "miss" {
			t.Fatalf("call %d: status %d cache %q", i, r.Status, r.h("X-VLProxy-Cache"))
		}
		// ES's own error passes through unchanged.
		if want := `{"error":{"root_cause":[{"type":"fake","reason":"fake failure"}],"type":"fake","reason":"fake failure"},"status":500}`; string(r.Body) != want {
			t.Fatalf("body %s", r.Body)
		}
	}
	if n := e.ES.Calls.Load(); n != 2 {
		t.Fatalf("upstream calls %d, want 2 (a 500 must not be cached)", n)
	}
	e.ES.Status.Store(0)
	wantHeaders(t, e.search(t, body), "X-VLProxy-Cache", "miss")
	wantHeaders(t, e.search(t, body), "X-VLProxy-Cache", "hit")
}

func TestResultCacheStampede(t *testing.T) {
	e := start(t, setup{sim: modeltest.Config{Rules: []modeltest.Rule{seasideRule}}, resultCache: true})
	e.ES.Delay.Store(int64(200 * time.Millisecond))
	f := func(body string) {
		t.Helper()
		calls := e.ES.Calls.Load()
		collapsedBefore := metricValue(t, e, `vlproxy_result_cache_requests_total{state="collapsed"}`)
		const n = 1000
		var wg sync.WaitGroup
		states := make([]string, n)
		bodies := make([][]byte, n)
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := fasthttp.AcquireRequest()
				resp := fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(resp)
				req.Header.SetMethod("POST")
				req.SetRequestURI("/products/_search")
				req.Header.SetHost(e.Addr)
				req.SetBodyString(body)
				if errs[i] = e.c.DoTimeout(req, resp, 20*time.Second); errs[i] == nil {
					states[i] = string(resp.Header.Peek("X-VLProxy-Cache"))
					bodies[i] = append([]byte(nil), resp.Body()...)
				}
			}()
		}
		wg.Wait()
		count := map[string]int{}
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("request %d: %s", i, errs[i])
			}
			if string(bodies[i]) != string(bodies[0]) || (states[i] != "miss" && states[i] != "hit" && states[i] != "collapsed") {
				t.Fatalf("request %d: cache %q body %s", i, states[i], bodies[i])
			}
			count[states[i]]++
		}
		// Only the request whose fill went upstream says miss; the ones that waited for it say
		// collapsed (the upstream holds each answer 200ms, so most do), later ones hit.
		if count["miss"] != 1 || count["collapsed"] == 0 {
			t.Fatalf("%d concurrent identical cold searches: %v, want one miss and some collapsed", n, count)
		}
		// The metric counts what the header said.
		if got := metricValue(t, e, `vlproxy_result_cache_requests_total{state="collapsed"}`) - collapsedBefore; got != float64(count["collapsed"]) {
			t.Fatalf("collapsed metric grew by %v, the responses said collapsed %d times", got, count["collapsed"])
		}
		if got := e.ES.Calls.Load() - calls; got != 1 {
			t.Fatalf("%d concurrent identical cold searches made %d upstream calls, want 1", n, got)
		}
	}
	f(`{"query":{"match":{"title":"red"}}}`)
	f(`{"query":` + seasideClause + `}`)
	if got := e.Sim.Calls()["/v1/chat/completions"]; got != 1 {
		t.Fatalf("model calls %d, want 1", got)
	}
}

// TestResultCacheIdentityFailsClosed: cookies and impersonation separate callers; a header that
// looks like credentials and is in no identity list bypasses the cache.
func TestResultCacheIdentityFailsClosed(t *testing.T) {
	e := start(t, setup{resultCache: true})
	body := `{"query":{"match":{"title":"dress"}}}`
	wantHeaders(t, e.search(t, body, "Cookie", "sid=alice"), "X-VLProxy-Cache", "miss")
	wantHeaders(t, e.search(t, body, "Cookie", "sid=alice"), "X-VLProxy-Cache", "hit")
	wantHeaders(t, e.search(t, body, "Cookie", "sid=bob"), "X-VLProxy-Cache", "miss")
	wantHeaders(t, e.search(t, body, "Cookie", "sid=bob", "opendistro_security_impersonate_as", "carol"), "X-VLProxy-Cache", "miss")
	wantHeaders(t, e.search(t, body, "X-Proxy-User", "dave", "X-Proxy-Roles", "admin"), "X-VLProxy-Cache", "miss")
	wantHeaders(t, e.search(t, body, "X-Proxy-User", "dave", "X-Proxy-Roles", "reader"), "X-VLProxy-Cache", "miss")
	calls := e.ES.Calls.Load()
	for i := 0; i < 2; i++ {
		wantHeaders(t, e.search(t, body, "X-Auth-Token", "secret"), "X-VLProxy-Cache", "bypass")
	}
	if got := e.ES.Calls.Load() - calls; got != 2 {
		t.Fatalf("%d upstream calls for two bypassed searches, want 2", got)
	}
}

// metricValue reads one series from the proxy's /_vlproxy/metrics (0 when absent).
func metricValue(tb testing.TB, e *env, series string) float64 {
	tb.Helper()
	r := e.do(tb, "GET", "/_vlproxy/metrics", nil)
	for _, line := range strings.Split(string(r.Body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				tb.Fatalf("metric %s: %q", series, v)
			}
			return f
		}
	}
	return 0
}
