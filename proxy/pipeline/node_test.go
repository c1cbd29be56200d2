package pipeline_test

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"
	"github.com/valyala/fasthttp"

	"github.com/vlproxy/vlproxy/model/modeltest"
	"github.com/vlproxy/vlproxy/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// shop is the real-node catalogue: id, title, colour, category.
var shop = [][4]string{
	{"e1", "red summer dress", "red", "dress"},
	{"e2", "red maxi dress", "red", "dress"},
	{"e3", "red evening dress", "red", "dress"},
	{"e4", "blue denim dress", "blue", "dress"},
	{"e5", "green floral dress", "green", "dress"},
	{"e6", "white beach dress", "white", "dress"},
	{"e7", "red running shoes", "red", "shoes"},
	{"e8", "black running shoes", "black", "shoes"},
	{"e9", "white leather sneakers", "white", "shoes"},
	{"e10", "brown leather boots", "brown", "shoes"},
	{"e11", "straw hat", "beige", "hat"},
	{"e12", "red wool scarf", "red", "accessories"},
	{"e13", "blue denim jacket", "blue", "jacket"},
	{"e14", "black leather jacket", "black", "jacket"},
	{"e15", "grey hoodie", "grey", "top"},
	{"e16", "white linen shirt", "white", "top"},
	{"e17", "red t-shirt", "red", "top"},
	{"e18", "yellow rain coat", "yellow", "jacket"},
	{"e19", "green cargo trousers", "green", "trousers"},
	{"e20", "blue jeans", "blue", "trousers"},
}

// shopScores are the simulator's rerank scores by title, all distinct.
var shopScores = map[string]float64{
	"red summer dress": 0.30, "red maxi dress": 0.90, "red evening dress": 0.60, "blue denim dress": 0.20,
	"green floral dress": 0.70, "white beach dress": 0.50, "red running shoes": 0.85, "black running shoes": 0.15,
	"white leather sneakers": 0.45, "brown leather boots": 0.35, "straw hat": 0.05, "red wool scarf": 0.65,
	"blue denim jacket": 0.25, "black leather jacket": 0.55, "grey hoodie": 0.10, "white linen shirt": 0.40,
	"red t-shirt": 0.75, "yellow rain coat": 0.08, "green cargo trousers": 0.12, "blue jeans": 0.18,
}

func shopScore(_, d modeltest.Doc) float64 {
	title, _, _ := strings.Cut(d.Text, "\n")
	return shopScores[strings.TrimSpace(title)]
}

var indexSeq atomic.Int64

// nodeIndex creates a 1-shard index holding shop on the real node and returns its name.
func nodeIndex(t *testing.T, url string) string {
	t.Helper()
	name := fmt.Sprintf("pipeline-shop-%d-%d", os.Getpid(), indexSeq.Add(1))
	c := &fasthttp.Client{}
	call := func(method, uri, ct, body string) []byte {
		t.Helper()
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.Header.SetMethod(method)
		req.SetRequestURI(url + uri)
		req.Header.SetContentType(ct)
		req.SetBodyString(body)
		if err := c.DoTimeout(req, resp, 60*time.Second); err != nil {
			t.Fatalf("%s %s: %s", method, uri, err)
		}
		if resp.StatusCode() >= 300 || gjson.GetBytes(resp.Body(), "errors").Bool() {
			t.Fatalf("%s %s: %d %s", method, uri, resp.StatusCode(), resp.Body())
		}
		return append([]byte(nil), resp.Body()...)
	}
	call("PUT", "/"+name, "application/json", `{"settings":{"number_of_shards":1,"number_of_replicas":0},
		"mappings":{"properties":{"title":{"type":"text"},"colour":{"type":"keyword"},"category":{"type":"keyword"}}}}`)
	t.Cleanup(func() { call("DELETE", "/"+name, "application/json", "") })
	var b strings.Builder
	for _, p := range shop {
		fmt.Fprintf(&b, "{\"index\":{\"_id\":%q}}\n{\"title\":%q,\"colour\":%q,\"category\":%q}\n", p[0], p[1], p[2], p[3])
	}
	call("POST", "/"+name+"/_bulk?refresh=true", "application/x-ndjson", b.String())
	return name
}

func startOnNode(t *testing.T, sim modeltest.Config) (*env, string) {
	t.Helper()
	url := testenv.URL(t)
	e := start(t, setup{sim: sim, es: &fakeES{URL: url}})
	return e, nodeIndex(t, url)
}

// direct searches the node without the proxy.
func direct(t *testing.T, url, index, body string) []byte {
	t.Helper()
	c := &fasthttp.HostClient{Addr: strings.TrimPrefix(url, "http://")}
	return doAt(t, c, c.Addr, "POST", "/"+index+"/_search", []byte(body)).Body
}

// scoreOrder sorts ids by shopScores, highest first.
func scoreOrder(idList []string) []string {
	title := map[string]string{}
	for _, p := range shop {
		title[p[0]] = p[1]
	}
	out := slices.Clone(idList)
	slices.SortStableFunc(out, func(a, b string) int {
		sa, sb := shopScores[title[a]], shopScores[title[b]]
		switch {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return 0
	})
	return out
}

func topSet(t *testing.T, body []byte, n int) []string {
	t.Helper()
	got := strings.Split(ids(t, body), ",")
	if len(got) < n {
		t.Fatalf("%d hits, want at least %d: %s", len(got), n, body)
	}
	got = got[:n]
	slices.Sort(got)
	return got
}

func TestNodeRewrite(t *testing.T) {
	img := jpegOf(t, 96, 64, 7)
	sim := modeltest.Config{Rules: []modeltest.Rule{
		{Image: modelHash(t, img), Output: modeltest.Output{Keywords: []string{"red dress"}}},
		{Text: "海边", Output: modeltest.Output{Keywords: []string{"beach dress", "straw hat"}}},
		{Text: "jogging", Output: modeltest.Output{Keywords: []string{"running shoes"}}},
	}}
	e, index := startOnNode(t, sim)
	f := func(clause, status string, want ...string) {
		t.Helper()
		r := e.do(t, "POST", "/"+index+"/_search", []byte(`{"query":`+clause+`,"size":10}`))
		wantHeaders(t, r, "X-VLProxy-Rewrite", status)
		if r.Status != 200 {
			t.Fatalf("status %d %s", r.Status, r.Body)
		}
		if got := topSet(t, r.Body, len(want)); !slices.Equal(got, want) {
			t.Fatalf("%.80s: top %v, want %v (hits %s)", clause, got, want, ids(t, r.Body))
		}
	}
	const fields = `"fields":["title","colour","category"]`
	f(`{"multimodal":{"image":"`+dataURI("image/jpeg", img)+`",`+fields+`}}`, "applied", "e1", "e2", "e3")
	f(`{"multimodal":{"text":"适合海边度假穿",`+fields+`}}`, "applied", "e11", "e6")
	f(`{"multimodal":{"text":"shoes for jogging",`+fields+`}}`, "applied", "e7", "e8")
	// Inside bool, next to a filter the client wrote; the image's keywords come from the cache.
	f(`{"bool":{"must":[{"multimodal":{"image":"`+dataURI("image/jpeg", img)+`",`+fields+`}}],"filter":[{"term":{"colour":"red"}}]}}`, "cached", "e1", "e2", "e3")
}

func TestNodeRerank(t *testing.T) {
	e, index := startOnNode(t, modeltest.Config{ScoreFunc: shopScore})
	url := testenv.URL(t)

	// Every dress reordered by the model scores.
	r := e.do(t, "POST", "/"+index+"/_search", []byte(`{"query":{"match":{"title":"dress"}}}`), "X-VLProxy-Rerank", "on")
	wantHeaders(t, r, "X-VLProxy-Rerank", "applied")
	if got, want := ids(t, r.Body), "e2,e5,e3,e6,e1,e4"; got != want {
		t.Fatalf("reranked dresses %s, want %s", got, want)
	}

	// Pages with a window of 4 over a query whose ES order is read from the node itself.
	const q = `"query":{"match":{"title":"red dress shoes leather"}}`
	es := direct(t, url, index, `{`+q+`,"size":20}`)
	esIDs := strings.Split(ids(t, es), ",")
	esTotal := gjson.GetBytes(es, "hits.total").Raw
	if len(esIDs) < 10 {
		t.Fatalf("the node found %d hits: %s", len(esIDs), es)
	}
	const window = 4
	predicted := append(scoreOrder(esIDs[:window]), esIDs[window:]...)
	f := func(from, size int, wantStatus string, want []string) {
		t.Helper()
		body := fmt.Sprintf(`{%s,"from":%d,"size":%d,"ext":{"vlproxy":{"rerank":{"enabled":true,"rank_window_size":%d}}}}`, q, from, size, window)
		r := e.do(t, "POST", "/"+index+"/_search", []byte(body))
		wantHeaders(t, r, "X-VLProxy-Rerank", wantStatus)
		if got := ids(t, r.Body); got != strings.Join(want, ",") {
			t.Fatalf("from %d size %d: %s, want %s (ES order %v)", from, size, got, strings.Join(want, ","), esIDs)
		}
		if got := gjson.GetBytes(r.Body, "hits.total").Raw; got != esTotal {
			t.Fatalf("from %d size %d: hits.total %s, want %s", from, size, got, esTotal)
		}
	}
	f(0, 3, "applied", predicted[0:3])
	f(1, 2, "applied", predicted[1:3])
	f(2, 4, "applied", predicted[2:6]) // straddles the window's end
	f(window, 3, "skipped:beyond_window", esIDs[window:window+3])
	f(8, 5, "skipped:beyond_window", esIDs[8:min(13, len(esIDs))])

	// _source filtering: the reranker needs title, the client gets only colour.
	r = e.do(t, "POST", "/"+index+"/_search", []byte(`{"query":{"match":{"title":"dress"}},"size":3,"_source":["colour"]}`),
		"X-VLProxy-Rerank", "on")
	wantHeaders(t, r, "X-VLProxy-Rerank", "applied")
	var shapes []string
	for _, h := range gjson.GetBytes(r.Body, "hits.hits").Array() {
		shapes = append(shapes, h.Get("_id").String()+" "+h.Get("_source").Raw)
	}
	if got, want := strings.Join(shapes, "; "), `e2 {"colour":"red"}; e5 {"colour":"green"}; e3 {"colour":"red"}`; got != want {
		t.Fatalf("_source filtered hits %s, want %s", got, want)
	}
	// filter_path and _source=false in the URL.
	r = e.do(t, "POST", "/"+index+"/_search?filter_path=hits.hits._id,hits.hits._source&_source=false",
		[]byte(`{"query":{"match":{"title":"dress"}},"size":2}`), "X-VLProxy-Rerank", "on")
	if got := compact(t, r.Body); got != `{"hits":{"hits":[{"_id":"e2"},{"_id":"e5"}]}}` {
		t.Fatalf("filter_path response %s", got)
	}
	// Shadow returns exactly what rerank off returns.
	off := e.do(t, "POST", "/"+index+"/_search", []byte(`{`+q+`,"size":5}`), "X-VLProxy-Rerank", "off")
	shadow := e.do(t, "POST", "/"+index+"/_search", []byte(`{`+q+`,"size":5}`), "X-VLProxy-Rerank", "shadow")
	wantHeaders(t, shadow, "X-VLProxy-Rerank", "shadow")
	if ids(t, off.Body) != strings.Join(esIDs[:5], ",") || ids(t, shadow.Body) != ids(t, off.Body) {
		t.Fatalf("shadow %s, off %s, ES %v", ids(t, shadow.Body), ids(t, off.Body), esIDs[:5])
	}
}
