package pipeline

import (
	"bufio"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vlproxy/vlproxy/cache"
	"github.com/vlproxy/vlproxy/proxy/resultcache"
)

// wireCtx is a RequestCtx whose request fasthttp parsed from raw bytes, as the server's are
// (ServeUntil's contract: the hit memo keys on the raw header block).
func wireCtx(t *testing.T, raw string) *fasthttp.RequestCtx {
	t.Helper()
	rc := new(fasthttp.RequestCtx)
	if err := rc.Request.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatalf("parse %q: %v", raw, err)
	}
	return rc
}

func wireSearch(auth, body string) string {
	h := "POST /products/_search?size=5 HTTP/1.1\r\nHost: es\r\nContent-Type: application/json\r\n"
	if auth != "" {
		h += "Authorization: " + auth + "\r\n"
	}
	return h + "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// Repeated hits are answered through the memo, which never holds what writes change: after a
// write to the index the same bytes are a miss, and a request that differs in one header byte
// (another caller) never gets the first caller's entry.
func TestHitMemo(t *testing.T) {
	fwd := &countingForwarder{}
	results := cache.New(cache.Config{Name: "pipeline_hitmemo_test", MaxBytes: 1 << 20})
	keys := resultcache.New(resultcache.Config{AssumeConcrete: true})
	p := New(Config{}, Deps{Forwarder: fwd, Results: results, Keys: keys, Log: slog.New(slog.DiscardHandler)})
	prepare := func(dst *fasthttp.RequestHeader, rc *fasthttp.RequestCtx) { rc.Request.Header.CopyTo(dst) }
	const body = `{ "query": {"match": {"title": "shirt"}} }`
	serve := func(raw, want string, wantCalls int64) {
		t.Helper()
		rc := wireCtx(t, raw)
		if _, err := p.ServeUntil(time.Now(), time.Time{}, rc, Search, prepare, rc.Request.Body()); err != nil {
			t.Fatalf("ServeUntil: %v", err)
		}
		if got := string(rc.Response.Header.Peek("X-VLProxy-Cache")); got != want || fwd.calls.Load() != wantCalls {
			t.Fatalf("X-VLProxy-Cache %q after %d upstream calls; want %q after %d", got, fwd.calls.Load(), want, wantCalls)
		}
	}
	alice := wireSearch("Basic YWxpY2U6eA==", body)
	serve(alice, "miss", 1)
	if len(p.memo.m) != 0 {
		t.Fatal("a miss was remembered; only hits are")
	}
	serve(alice, "hit", 1)
	if len(p.memo.m) != 1 {
		t.Fatalf("the memo holds %d requests after a hit; want 1", len(p.memo.m))
	}
	serve(alice, "hit", 1) // through the memo
	serve(wireSearch("Basic Ym9iOnk=", body), "miss", 2)

	keys.Invalidate(resultcache.Writes([]byte("POST"), []byte("/products/_doc"), []byte("refresh=true"), []byte(`{}`)))
	serve(alice, "miss", 3) // the memo's key parts, the generations of now
	serve(alice, "hit", 3)

	// Built in code rather than parsed: no raw header block, never remembered.
	p.memo = hitMemo{}
	rc := newCtx(body)
	for range 2 {
		rc.Response.Reset()
		if _, err := p.ServeUntil(time.Now(), time.Time{}, rc, Search, prepare, rc.Request.Body()); err != nil {
			t.Fatal(err)
		}
	}
	if len(p.memo.m) != 0 {
		t.Fatal("a request without a raw header block was remembered")
	}
}
