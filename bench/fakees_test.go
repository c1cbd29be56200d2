package bench

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/tidwall/gjson"
	"github.com/valyala/fasthttp"
)

func fakeCtx(method, path, body string) *fasthttp.RequestCtx {
	ctx := &fasthttp.RequestCtx{}
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(path)
	if body != "" {
		ctx.Request.SetBodyString(body)
	}
	return ctx
}

func TestFakeSourceSize(t *testing.T) {
	f := func(id, n, want int) {
		t.Helper()
		b := FakeSource(id, n)
		if len(b) != want || !json.Valid(b) {
			t.Fatalf("FakeSource(%d, %d) = %q (%d bytes), want %d bytes of valid JSON", id, n, b, len(b), want)
		}
	}
	f(1, 200, 200)
	f(12345, 1000, 1000)
	f(7, 40, 40)
	f(7, 0, len(`{"id":7}`))
}

func TestFakeESResponses(t *testing.T) {
	cfg := DefaultFakeESConfig()
	cfg.Hits, cfg.SourceBytes = 3, 120
	es, err := NewFakeES(cfg)
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path, body string) []byte {
		t.Helper()
		ctx := fakeCtx(method, path, body)
		es.Handler(ctx)
		out := ctx.Response.Body()
		if !json.Valid(out) {
			t.Fatalf("%s %s: invalid JSON %q", method, path, out)
		}
		if ct := string(ctx.Response.Header.ContentType()); ct != "application/json; charset=UTF-8" {
			t.Fatalf("%s %s: content type %q", method, path, ct)
		}
		return append([]byte(nil), out...)
	}
	s := do("POST", "/products/_search", `{"query":{"match_all":{}}}`)
	if n := gjson.GetBytes(s, "hits.hits.#").Int(); n != 3 {
		t.Fatalf("search: %d hits, want 3", n)
	}
	for _, src := range gjson.GetBytes(s, "hits.hits.#._source").Array() {
		if len(src.Raw) != 120 {
			t.Fatalf("_source is %d bytes, want 120: %s", len(src.Raw), src.Raw)
		}
	}
	if got := gjson.GetBytes(s, "hits.hits.1._id").String(); got != "2" {
		t.Fatalf("second hit _id = %q", got)
	}
	if got := string(do("GET", "/idx/_count", "")); got != `{"count":3,"_shards":{"total":1,"successful":1,"skipped":0,"failed":0}}` {
		t.Fatalf("count = %s", got)
	}
	if got := gjson.GetBytes(do("GET", "/", ""), "version.number").String(); got != "7.10.2" {
		t.Fatalf("root version = %q", got)
	}
	if got := gjson.GetBytes(do("GET", "/_cluster/health", ""), "status").String(); got != "green" {
		t.Fatalf("health status = %q", got)
	}
	ms := do("POST", "/_msearch", "{}\n{\"query\":{}}\n{\"index\":\"a\"}\n{}\n")
	if n := gjson.GetBytes(ms, "responses.#").Int(); n != 2 {
		t.Fatalf("msearch: %d responses, want 2", n)
	}
	if n := gjson.GetBytes(ms, "responses.1.hits.hits.#").Int(); n != 3 {
		t.Fatalf("msearch response hits = %d", n)
	}
	if got := string(do("PUT", "/newindex", `{}`)); got != `{"acknowledged":true}` {
		t.Fatalf("other = %s", got)
	}
	doc := do("GET", "/products/_doc/7", "")
	if !gjson.GetBytes(doc, "found").Bool() || len(gjson.GetBytes(doc, "_source").Raw) != 120 {
		t.Fatalf("doc GET = %s", doc)
	}
	if got := string(do("PUT", "/products/_doc/7", `{}`)); got != `{"acknowledged":true}` {
		t.Fatalf("doc PUT = %s", got)
	}
}

func TestFakeESBulkItems(t *testing.T) {
	es, err := NewFakeES(DefaultFakeESConfig())
	if err != nil {
		t.Fatal(err)
	}
	f := func(body, want string) {
		t.Helper()
		ctx := fakeCtx("POST", "/_bulk", body)
		es.Handler(ctx)
		var got []string
		for _, it := range gjson.GetBytes(ctx.Response.Body(), "items").Array() {
			it.ForEach(func(k, _ gjson.Result) bool { got = append(got, k.String()); return false })
		}
		if strings.Join(got, ",") != want {
			t.Fatalf("bulk %q: items %v, want %s", body, got, want)
		}
		if gjson.GetBytes(ctx.Response.Body(), "errors").Bool() {
			t.Fatal("errors:true")
		}
	}
	f("", "")
	f("{\"index\":{\"_index\":\"a\"}}\n{\"f\":1}\n", "index")
	f("{\"delete\":{\"_id\":\"1\"}}\n{\"create\":{}}\n{\"x\":2}\n{ \"update\" : {}}\n{\"doc\":{}}", "delete,create,update")
	f("\n\n{\"index\":{}}\n\n{\"a\":1}\n", "index")
}

// The scanner must give the same answer whatever the chunk boundaries.
func TestBulkScannerChunks(t *testing.T) {
	body := strings.Repeat("{\"index\":{\"_index\":\"products\",\"_id\":\"abc\"}}\n{\"title\":\""+strings.Repeat("z", 100)+"\"}\n{\"delete\":{\"_id\":\"9\"}}\n", 50)
	for _, r := range []io.Reader{strings.NewReader(body), iotest.OneByteReader(strings.NewReader(body)), iotest.HalfReader(strings.NewReader(body))} {
		var sc bulkScanner
		n := 0
		buf := make([]byte, 7)
		emit := func(string) { n++ }
		for {
			k, err := r.Read(buf)
			sc.feed(buf[:k], emit)
			if err != nil {
				break
			}
		}
		sc.end(emit)
		if n != 100 {
			t.Fatalf("%T: %d actions, want 100", r, n)
		}
	}
}

func TestFakeESSearchAllocs(t *testing.T) {
	es, err := NewFakeES(DefaultFakeESConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := fakeCtx("POST", "/bench/_search", `{"query":{"match_all":{}}}`)
	es.Handler(ctx)
	if n := testing.AllocsPerRun(200, func() { ctx.Response.Reset(); es.Handler(ctx) }); n != 0 {
		t.Fatalf("search handler allocates %.1f times per request, want 0", n)
	}
}

// Over real loopback TCP, a 20 MB _bulk body is drained in chunks and answered.
func TestFakeESBulkStreamed(t *testing.T) {
	addr := startFake(t, DefaultFakeESConfig())
	var body bytes.Buffer
	for body.Len() < 20<<20 {
		body.WriteString("{\"index\":{}}\n{\"title\":\"" + strings.Repeat("y", 500) + "\"}\n")
	}
	want := strings.Count(body.String(), "\n") / 2
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + addr + "/_bulk")
	req.Header.SetMethod("POST")
	req.SetBody(body.Bytes())
	if err := fasthttp.Do(req, resp); err != nil {
		t.Fatal(err)
	}
	if n := int(gjson.GetBytes(resp.Body(), "items.#").Int()); n != want {
		t.Fatalf("%d items, want %d", n, want)
	}
}

func startFake(t testing.TB, cfg FakeESConfig) string {
	t.Helper()
	es, err := NewFakeES(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go es.Serve(ln)
	t.Cleanup(func() { _ = es.Shutdown() })
	return ln.Addr().String()
}

func BenchmarkFakeESSearch(b *testing.B) {
	es, err := NewFakeES(DefaultFakeESConfig())
	if err != nil {
		b.Fatal(err)
	}
	ctx := fakeCtx("POST", "/bench/_search", `{"query":{"match_all":{}}}`)
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Reset()
		es.Handler(ctx)
	}
}
