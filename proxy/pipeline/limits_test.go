package pipeline_test

import (
	"bytes"
	"compress/zlib"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vlproxy/vlproxy/model/modeltest"
	"github.com/vlproxy/vlproxy/proxy/pipeline"
)

// modelCalls is every inference request the simulator received.
func modelCalls(e *env) int64 {
	var n int64
	for path, c := range e.Sim.Calls() {
		if strings.HasPrefix(path, "/v1/") || strings.HasPrefix(path, "/v2/") || path == "/rerank" {
			n += c
		}
	}
	return n
}

func clauses(n int, clause func(i int) string) string {
	var b strings.Builder
	b.WriteString(`{"query":{"bool":{"should":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(clause(i))
	}
	b.WriteString(`]}}}`)
	return b.String()
}

func textClause(i int) string { return fmt.Sprintf(`{"multimodal":{"text":"red dress %d"}}`, i) }

func png16(tb testing.TB, w, h int) []byte {
	tb.Helper()
	img := image.NewNRGBA64(image.Rect(0, 0, w, h))
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// TestLimitsRefuseBeforeAnyWork: a request over any per-request limit is an ES-shaped error
// naming the flag, and neither the upstream nor the model saw anything of it.
func TestLimitsRefuseBeforeAnyWork(t *testing.T) {
	pcfg := pipeline.DefaultConfig()
	pcfg.MaxDecodedBodySize = 1 << 20
	rw := testRewriteConfig()
	rw.Image.MaxDecodedBytes = 1 << 20
	e := start(t, setup{pipeline: &pcfg, rewrite: &rw})
	pic := dataURI("image/jpeg", jpegOf(t, 64, 64, 1))

	f := func(name string, status int, flag string, uri string, body []byte, hdr ...string) {
		t.Helper()
		es, sim := e.ES.Calls.Load(), modelCalls(e)
		r := e.do(t, "POST", uri, body, hdr...)
		wantESError(t, r, status, flag)
		if got := e.ES.Calls.Load() - es; got != 0 {
			t.Fatalf("%s: %d upstream calls, want none", name, got)
		}
		if got := modelCalls(e) - sim; got != 0 {
			t.Fatalf("%s: %d model calls, want none", name, got)
		}
	}
	bomb := gzipped(bytes.Repeat([]byte(" "), 8<<20))
	f("gzip bomb", 413, "-max-decoded-body-size", "/products/_search", bomb, "Content-Encoding", "gzip")
	// A trailer that understates the size: refused while inflating, at the limit.
	liar := append([]byte(nil), bomb...)
	copy(liar[len(liar)-4:], []byte{10, 0, 0, 0})
	f("gzip bomb with a lying trailer", 413, "-max-decoded-body-size", "/products/_search", liar, "Content-Encoding", "gzip")
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(bytes.Repeat([]byte(" "), 8<<20)) //nolint:errcheck
	zw.Close()
	f("deflate bomb", 413, "-max-decoded-body-size", "/products/_search", z.Bytes(), "Content-Encoding", "deflate")

	f("clauses", 400, "-max-clauses", "/products/_search", []byte(clauses(9, textClause)))
	var ms strings.Builder
	for i := 0; i < 5; i++ { // 5 searches of 2 clauses: 10 in the request
		ms.WriteString("{}\n" + clauses(2, textClause) + "\n")
	}
	f("msearch clauses", 400, "-max-clauses", "/products/_msearch", []byte(ms.String()), "Content-Type", "application/x-ndjson")
	f("text", 400, "-max-clause-text", "/products/_search", []byte(`{"query":{"multimodal":{"text":"`+strings.Repeat("a", 2049)+`"}}}`))
	f("images", 400, "-max-images", "/products/_search", []byte(clauses(5, func(int) string { return `{"multimodal":{"image":"` + pic + `"}}` })))
	// 600x600 is far inside max_pixels, but 16-bit RGBA is 8 bytes per pixel: 2.9 MB decoded.
	f("16-bit png", 400, "-image-max-decoded-bytes", "/products/_search", []byte(`{"query":{"multimodal":{"image":"`+dataURI("image/png", png16(t, 600, 600))+`"}}}`))

	// Within the limits the same shapes go through: 8 clauses, a plain deflate body.
	r := e.search(t, clauses(8, textClause))
	if r.Status != 200 {
		t.Fatalf("8 clauses: status %d: %s", r.Status, r.Body)
	}
	z.Reset()
	zw = zlib.NewWriter(&z)
	zw.Write([]byte(`{"query":{"multimodal":{"text":"red dress"}}}`)) //nolint:errcheck
	zw.Close()
	r = e.do(t, "POST", "/products/_search", z.Bytes(), "Content-Encoding", "deflate")
	wantHeaders(t, r, "X-VLProxy-Rewrite", "applied")
	if last := e.ES.last(t); last.ContentEncoding != "" || bytes.Contains(last.Body, []byte("multimodal")) {
		t.Fatalf("deflate body forwarded as %q %s", last.ContentEncoding, last.Body)
	}
}

// TestModelCallLimit: a request with more clauses than model calls allowed is refused up front.
func TestModelCallLimit(t *testing.T) {
	pcfg := pipeline.DefaultConfig()
	pcfg.MaxModelCalls = 2
	e := start(t, setup{pipeline: &pcfg})
	r := e.search(t, clauses(3, textClause))
	wantESError(t, r, 400, "-max-model-calls")
	if n := modelCalls(e); n != 0 || e.ES.Calls.Load() != 0 {
		t.Fatalf("%d model calls, %d upstream calls, want none", n, e.ES.Calls.Load())
	}
	r = e.search(t, clauses(2, textClause))
	wantHeaders(t, r, "X-VLProxy-Rewrite", "applied")
	if n := modelCalls(e); n != 2 {
		t.Fatalf("%d model calls, want 2", n)
	}
}

// wantDisjointTiming checks that the stages of a Server-Timing value sum to at most total and
// that no stage is named twice.
func wantDisjointTiming(tb testing.TB, st string) {
	tb.Helper()
	var sum, total float64
	seen := map[string]bool{}
	for _, m := range strings.Split(st, ", ") {
		name, dur, ok := strings.Cut(m, ";dur=")
		var d float64
		if _, err := fmt.Sscan(dur, &d); !ok || err != nil {
			tb.Fatalf("Server-Timing %q: cannot parse %q", st, m)
		}
		if seen[name] {
			tb.Fatalf("Server-Timing %q names %s twice", st, name)
		}
		seen[name] = true
		if name == "total" {
			total = d
		} else {
			sum += d
		}
	}
	if sum > total+0.002 { // three decimals of rounding per stage
		tb.Fatalf("Server-Timing %q: stages sum to %.3f ms, more than total", st, sum)
	}
}

// TestMsearchConcurrent: the searches of an _msearch are rewritten at once, under
// msearch_concurrency, and the response keeps their order. Overlap is counted at the model,
// not inferred from wall time.
func TestMsearchConcurrent(t *testing.T) {
	f := func(conc, wantOverlap int) {
		t.Helper()
		pcfg := pipeline.DefaultConfig()
		pcfg.MsearchConcurrency = conc
		rw := testRewriteConfig()
		rw.Timeout = 5 * time.Second
		e := start(t, setup{pipeline: &pcfg, rewrite: &rw, noKeywords: true,
			sim: modeltest.Config{Latency: modeltest.Latency{Base: modeltest.Duration(150 * time.Millisecond)}}})
		var ms strings.Builder
		for i := 0; i < 4; i++ {
			fmt.Fprintf(&ms, "{}\n{\"size\":%d,\"query\":%s}\n", i+1, textClause(i))
		}
		var peak atomic.Int64
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				if n := e.Sim.InFlight(); n > peak.Load() {
					peak.Store(n)
				}
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
			}
		}()
		r := e.do(t, "POST", "/products/_msearch", []byte(ms.String()), "Content-Type", "application/x-ndjson")
		close(stop)
		<-done
		wantHeaders(t, r, "X-VLProxy-Rewrite", "applied")
		if got := peak.Load(); got != int64(wantOverlap) {
			t.Fatalf("concurrency %d: %d model calls overlapped at most, want %d", conc, got, wantOverlap)
		}
		// Order kept: response i has i+1 hits, as its search asked.
		var resp struct {
			Responses []struct {
				Hits struct {
					Hits []json.RawMessage `json:"hits"`
				} `json:"hits"`
			} `json:"responses"`
		}
		if err := json.Unmarshal(r.Body, &resp); err != nil || len(resp.Responses) != 4 {
			t.Fatalf("responses %s (%v)", r.Body, err)
		}
		for i, sr := range resp.Responses {
			if len(sr.Hits.Hits) != i+1 {
				t.Fatalf("response %d has %d hits, want %d: order changed", i, len(sr.Hits.Hits), i+1)
			}
		}
		wantDisjointTiming(t, r.h("Server-Timing"))
	}
	f(4, 4)
	f(1, 1)
}

// TestMsearchRerankConcurrent: the searches of an _msearch are reranked at once too.
func TestMsearchRerankConcurrent(t *testing.T) {
	pcfg := pipeline.DefaultConfig()
	pcfg.MsearchConcurrency = 3
	e := start(t, setup{pipeline: &pcfg,
		sim: modeltest.Config{Latency: modeltest.Latency{Base: modeltest.Duration(150 * time.Millisecond)}}})
	var ms strings.Builder
	for i := 0; i < 6; i++ {
		fmt.Fprintf(&ms, "{}\n{\"size\":%d,\"query\":{\"match\":{\"title\":\"dress %d\"}}}\n", i+1, i)
	}
	var peak atomic.Int64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			if n := e.Sim.InFlight(); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	r := e.do(t, "POST", "/products/_msearch", []byte(ms.String()), "Content-Type", "application/x-ndjson", "X-VLProxy-Rerank", "on")
	close(stop)
	<-done
	if st := r.h("X-VLProxy-Rerank"); !strings.HasPrefix(st, "applied") {
		t.Fatalf("X-VLProxy-Rerank %q: %s", st, r.Body)
	}
	if got := peak.Load(); got != 3 {
		t.Fatalf("%d rerank calls overlapped at most, want 3 (msearch_concurrency)", got)
	}
	wantDisjointTiming(t, r.h("Server-Timing"))
}
