package integration

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/vlproxy/vlproxy/testenv"
)

// fidelityIndex creates a one-shard index with a few documents directly on the node and returns
// its name; it is deleted when the test ends.
func fidelityIndex(t *testing.T, node string) string {
	t.Helper()
	c := rawClient()
	idx := uniqueName("vlp-fid")
	mustDo(t, c, 200, "PUT", node+"/"+idx, []byte(transparencyIndex))
	t.Cleanup(func() { deleteIndex(t, node, idx) })
	var nd bytes.Buffer
	for _, d := range transparencyDocs {
		fmt.Fprintf(&nd, `{"index":{"_id":%q}}`+"\n%s\n", d.ID, d.Source)
	}
	r := mustDo(t, c, 200, "POST", node+"/"+idx+"/_bulk?refresh=true", nd.Bytes(), "Content-Type", "application/x-ndjson")
	if gjson.GetBytes(r.Body, "errors").Bool() {
		t.Fatalf("bulk: %s", r.Body)
	}
	return idx
}

func TestPercentEncodedIDs(t *testing.T) {
	node := testenv.URL(t)
	prox := startProxy(t, node)
	idx := fidelityIndex(t, node)
	c := rawClient()

	f := func(escaped string) {
		t.Helper()
		want, err := url.PathUnescape(escaped)
		if err != nil {
			t.Fatalf("bad case %q: %v", escaped, err)
		}
		doc, _ := json.Marshal(map[string]string{"title": "id " + want})
		path := "/" + idx + "/_doc/" + escaped
		// Written through the proxy, read back directly: the node saw the id the client meant.
		mustDo(t, c, 201, "PUT", prox+path+"?refresh=true", doc)
		direct := mustDo(t, c, 200, "GET", node+path, nil)
		if got := gjson.GetBytes(direct.Body, "_id").String(); got != want {
			t.Errorf("PUT %s through the proxy stored _id %q, want %q", path, got, want)
		}
		proxied := mustDo(t, c, 200, "GET", prox+path, nil)
		if !bytes.Equal(direct.Body, proxied.Body) {
			t.Errorf("GET %s: direct %s, proxied %s", path, direct.Body, proxied.Body)
		}
		h := mustDo(t, c, 200, "HEAD", prox+path, nil)
		if len(h.Body) != 0 {
			t.Errorf("HEAD %s: a %d-byte body", path, len(h.Body))
		}
		mustDo(t, c, 200, "DELETE", prox+path+"?refresh=true", nil)
		mustDo(t, c, 404, "GET", node+path, nil)
	}
	f("a%2Fb")
	f("a%2F%2Fb")
	f("a%20b")
	f("a%2Bb")
	f("a%25b")
	f("a%3Fb%3Dc")
	f("a%23b")
	f("a%2Cb")
	f("%C3%BC%E6%9C%8D")
	f("..%2F_search")
}

// gzipBytes compresses b.
func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	mustf(t, w.Close(), "gzip")
	return buf.Bytes()
}

func gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(b))
	mustf(t, err, "gunzip")
	out, err := io.ReadAll(r)
	mustf(t, err, "gunzip")
	return out
}

func TestGzip(t *testing.T) {
	node := testenv.URL(t)
	prox := startProxy(t, node)
	idx := fidelityIndex(t, node)
	c := rawClient()

	t.Run("request body", func(t *testing.T) {
		// The same gzip-encoded requests, directly and through the proxy.
		f := func(method, path, body string, hdr ...string) {
			t.Helper()
			hdr = append(hdr, "Content-Encoding", "gzip")
			gz := gzipBytes(t, []byte(body))
			d := do(t, c, method, node+path, gz, hdr...)
			p := do(t, c, method, prox+path, gz, hdr...)
			if d.Status != p.Status || !bytes.Equal(normalize(d.Body), normalize(p.Body)) {
				t.Errorf("%s %s with a gzip body:\ndirect:  %d %s\nproxied: %d %s", method, path, d.Status, d.Body, p.Status, p.Body)
			}
			if d.Status >= 300 {
				t.Errorf("%s %s with a gzip body: status %d %s", method, path, d.Status, d.Body)
			}
		}
		f("POST", "/"+idx+"/_search", aggSearch)
		f("POST", "/"+idx+"/_count", `{"query":{"term":{"brand":"acme"}}}`)
		f("POST", "/"+idx+"/_msearch", "{}\n"+`{"query":{"match":{"title":"wool"}}}`+"\n", "Content-Type", "application/x-ndjson")
		f("POST", "/"+idx+"/_mget", `{"ids":["1","5"]}`)
		// Writes: the second (proxied) one updates what the first created; compare what the
		// node stored rather than the write responses (their versions differ by design).
		for side, base := range map[string]string{"direct": node, "proxied": prox} {
			gz := gzipBytes(t, []byte(`{"title":"gzip-encoded write","brand":"gz"}`))
			r := do(t, c, "PUT", base+"/"+idx+"/_doc/gz-"+side+"?refresh=true", gz, "Content-Encoding", "gzip")
			if r.Status != 201 {
				t.Errorf("PUT with a gzip body via %s: %d %s", base, r.Status, r.Body)
			}
			bulk := gzipBytes(t, []byte(`{"index":{"_id":"gzb-`+side+`"}}`+"\n"+`{"title":"gzip bulk","brand":"gz"}`+"\n"))
			r = do(t, c, "POST", base+"/"+idx+"/_bulk?refresh=true", bulk, "Content-Encoding", "gzip", "Content-Type", "application/x-ndjson")
			if r.Status != 200 || gjson.GetBytes(r.Body, "errors").Bool() {
				t.Errorf("gzip _bulk via %s: %d %s", base, r.Status, r.Body)
			}
		}
		r := mustDo(t, c, 200, "POST", node+"/"+idx+"/_count", []byte(`{"query":{"term":{"brand":"gz"}}}`))
		if n := gjson.GetBytes(r.Body, "count").Int(); n != 4 {
			t.Errorf("documents written with gzip bodies: %d, want 4", n)
		}
	})

	t.Run("response", func(t *testing.T) {
		f := func(method, path, body string, exactBytes bool) {
			t.Helper()
			var b []byte
			if body != "" {
				b = []byte(body)
			}
			d := do(t, c, method, node+path, b, "Accept-Encoding", "gzip")
			p := do(t, c, method, prox+path, b, "Accept-Encoding", "gzip")
			if d.Header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("%s %s: the node did not gzip its response (Content-Encoding %q)", method, path, d.Header.Get("Content-Encoding"))
			}
			if p.Header.Get("Content-Encoding") != "gzip" || d.Status != p.Status {
				t.Errorf("%s %s: proxied status %d Content-Encoding %q, direct %d %q", method, path,
					p.Status, p.Header.Get("Content-Encoding"), d.Status, d.Header.Get("Content-Encoding"))
				return
			}
			if exactBytes && !bytes.Equal(d.Body, p.Body) {
				t.Errorf("%s %s: the compressed bodies differ (%d vs %d bytes): the proxy re-encoded the response", method, path, len(d.Body), len(p.Body))
			}
			if dd, pp := normalize(gunzip(t, d.Body)), normalize(gunzip(t, p.Body)); !bytes.Equal(dd, pp) {
				t.Errorf("%s %s: decompressed bodies differ\ndirect:  %s\nproxied: %s", method, path, dd, pp)
			}
			if d.Header.Get("Content-Length") != strconv.Itoa(len(d.Body)) || p.Header.Get("Content-Length") != strconv.Itoa(len(p.Body)) {
				t.Errorf("%s %s: Content-Length direct %s (%d bytes), proxied %s (%d bytes)", method, path,
					d.Header.Get("Content-Length"), len(d.Body), p.Header.Get("Content-Length"), len(p.Body))
			}
		}
		f("GET", "/"+idx+"/_doc/1", "", true)
		f("GET", "/"+idx+"/_mapping", "", true)
		f("GET", "/_cat/indices/"+idx+"?h=index,pri,rep,docs.count", "", true)
		f("POST", "/"+idx+"/_mget", `{"ids":["1","2","3"]}`, true)
		f("GET", "/"+idx+"/_doc/missing", "", true)
		f("POST", "/"+idx+"/_search", aggSearch, false) // took differs
		f("POST", "/"+idx+"/_search", badQuery, true)
	})
}

func TestHEAD(t *testing.T) {
	node := testenv.URL(t)
	prox := startProxy(t, node)
	idx := fidelityIndex(t, node)
	c := rawClient()
	f := func(path string, want int) {
		t.Helper()
		d := do(t, c, "HEAD", node+path, nil)
		p := do(t, c, "HEAD", prox+path, nil)
		if d.Status != want || p.Status != want {
			t.Errorf("HEAD %s: direct %d, proxied %d, want %d", path, d.Status, p.Status, want)
		}
		if len(p.Body) != 0 {
			t.Errorf("HEAD %s: proxied response has a %d-byte body", path, len(p.Body))
		}
		// Content-Length of a HEAD response is the length GET would return: compared too.
		if dh, ph := strictHeaderSet(d.Header), strictHeaderSet(p.Header); dh != ph {
			t.Errorf("HEAD %s: headers differ\ndirect:  %s\nproxied: %s", path, dh, ph)
		}
	}
	f("/", 200)
	f("/"+idx, 200)
	f("/"+idx+"/_doc/1", 200)
	f("/"+idx+"/_doc/nope", 404)
	f("/"+uniqueName("vlp-missing"), 404)
	f("/_alias/"+uniqueName("vlp-missing"), 404)
	f("/"+idx+"/_source/2", 200)
}

// strictHeaderSet is headerSet with Content-Length compared by value.
func strictHeaderSet(h http.Header) string {
	return headerSet(h) + " | Content-Length=" + h.Get("Content-Length")
}

func TestResponseHeaders(t *testing.T) {
	node := testenv.URL(t)
	prox := startProxy(t, node)
	idx := fidelityIndex(t, node)
	c := rawClient()
	// between runs between the direct and the proxied request (to undo a write).
	var between func()
	f := func(method, path, body string, hdr ...string) {
		t.Helper()
		var b []byte
		if body != "" {
			b = []byte(body)
		}
		d := do(t, c, method, node+path, b, hdr...)
		if between != nil {
			between()
		}
		p := do(t, c, method, prox+path, b, hdr...)
		if d.Status != p.Status {
			t.Errorf("%s %s: direct %d, proxied %d", method, path, d.Status, p.Status)
		}
		if dh, ph := headerSet(d.Header), headerSet(p.Header); dh != ph {
			t.Errorf("%s %s: headers differ\ndirect:  %s\nproxied: %s", method, path, dh, ph)
		}
		for _, name := range []string{"Server", "Date"} {
			if p.Header.Get(name) != d.Header.Get(name) {
				t.Errorf("%s %s: proxied %s %q, direct %q", method, path, name, p.Header.Get(name), d.Header.Get(name))
			}
		}
		if p.Header.Get("Server-Timing") == "" {
			t.Errorf("%s %s: no Server-Timing through the proxy", method, path)
		}
		for _, opaque := range hdr {
			if opaque == "X-Opaque-Id" && p.Header.Get("X-Opaque-Id") == "" {
				t.Errorf("%s %s: X-Opaque-Id was not echoed through the proxy", method, path)
			}
		}
	}
	f("GET", "/", "")
	f("GET", "/"+idx+"/_doc/1", "")
	f("GET", "/"+idx+"/_doc/1", "", "X-Opaque-Id", "req-42")
	f("POST", "/"+idx+"/_search", aggSearch, "X-Opaque-Id", "req-43")
	f("POST", "/"+idx+"/_search", badQuery)
	f("GET", "/"+idx+"/_mapping", "")
	f("GET", "/_cat/indices/"+idx+"?v&h=index,docs.count", "")
	f("GET", "/_cat/indices/"+idx+"?format=yaml&h=index,docs.count", "")
	f("GET", "/"+uniqueName("vlp-missing")+"/_doc/1", "")
	between = func() { mustDo(t, c, 200, "DELETE", node+"/"+idx+"/_doc/hdr?refresh=true", nil) }
	f("PUT", "/"+idx+"/_doc/hdr?refresh=true", `{"title":"headers"}`) // 201 with Location
	between = nil
	f("GET", "/"+idx+"/_doc/1", "", "Accept-Encoding", "gzip")
	f("GET", "/_nodes/_local/http?filter_path=nodes.*.http.max_content_length_in_bytes", "")
	f("POST", "/"+idx+"/_doc/x", `{"a":`)
	f("GET", "/"+idx+"/_search?q=title:shirt&size=0", "", "Connection", "close")
	f("GET", "/"+idx+"/_doc/1", "", "Connection", "X-Drop-Me", "X-Drop-Me", "1")
}

// bulkGenerator yields n index actions of a fixed size without holding the body in memory.
type bulkGenerator struct {
	n, i int
	pad  string
	buf  []byte
}

func (g *bulkGenerator) Read(p []byte) (int, error) {
	for len(g.buf) == 0 {
		if g.i == g.n {
			return 0, io.EOF
		}
		g.buf = fmt.Appendf(g.buf[:0], `{"index":{"_id":"%08d"}}`+"\n"+`{"n":%d,"title":"doc %08d","pad":"%s"}`+"\n", g.i, g.i, g.i, g.pad)
		g.i++
	}
	k := copy(p, g.buf)
	g.buf = g.buf[k:]
	return k, nil
}

func (g *bulkGenerator) size() int64 {
	one := fmt.Appendf(nil, `{"index":{"_id":"%08d"}}`+"\n"+`{"n":%d,"title":"doc %08d","pad":"%s"}`+"\n", 0, 0, 0, g.pad)
	// %d of n varies in width: sum exactly.
	var total int64
	for i := range g.n {
		total += int64(len(one) - 1 + len(strconv.Itoa(i)))
	}
	return total
}

func TestBulk20MB(t *testing.T) {
	node := testenv.URL(t)
	prox := startProxy(t, node)
	c := rawClient()
	idx := uniqueName("vlp-bulk20")
	mustDo(t, c, 200, "PUT", node+"/"+idx, []byte(`{"settings":{"number_of_shards":1,"number_of_replicas":0,"refresh_interval":"-1"}}`))
	t.Cleanup(func() { deleteIndex(t, node, idx) })

	const docs = 20_000
	pad := string(bytes.Repeat([]byte("x"), 1000))
	size := (&bulkGenerator{n: docs, pad: pad}).size()
	if size < 20<<20 {
		t.Fatalf("the bulk body is %d bytes, want at least 20 MiB", size)
	}

	// A low GC target keeps HeapAlloc close to live memory: garbage from streamed chunks would
	// otherwise pile up to the default target (4 MiB minimum) and read as buffering.
	defer debug.SetGCPercent(debug.SetGCPercent(5))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	req, err := http.NewRequest("POST", prox+"/"+idx+"/_bulk?filter_path=errors,items.*.error", &bulkGenerator{n: docs, pad: pad})
	mustf(t, err, "request")
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/x-ndjson")
	began := time.Now()
	resp, err := c.Do(req)
	mustf(t, err, "20 MB _bulk through the proxy")
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	mustf(t, err, "reading the _bulk response")
	elapsed := time.Since(began)
	close(stop)
	wg.Wait()

	if resp.StatusCode != 200 || gjson.GetBytes(body, "errors").Bool() {
		t.Fatalf("_bulk: %d %.300s", resp.StatusCode, body)
	}
	growth := int64(peak.Load()) - int64(base)
	t.Logf("_bulk of %d bytes (%d docs) through the proxy in %v; peak heap growth of the test process (client + proxy) %d KiB",
		size, docs, elapsed.Round(time.Millisecond), growth/1024)
	if growth > size/4 {
		t.Errorf("heap grew by %d bytes while a %d-byte _bulk streamed through: the body was buffered", growth, size)
	}

	mustDo(t, c, 200, "POST", node+"/"+idx+"/_refresh", nil)
	r := mustDo(t, c, 200, "GET", prox+"/"+idx+"/_count", nil)
	if n := gjson.GetBytes(r.Body, "count").Int(); n != docs {
		t.Errorf("_count after the 20 MB _bulk: %d, want %d", n, docs)
	}
	r = mustDo(t, c, 200, "GET", node+"/"+idx+"/_doc/"+fmt.Sprintf("%08d", docs-1), nil)
	if got := gjson.GetBytes(r.Body, "_source.n").Int(); got != docs-1 {
		t.Errorf("last document: n=%d, want %d", got, docs-1)
	}
}

// rawExchange writes raw bytes on a fresh connection and returns everything the server sends
// until it closes the connection.
func rawExchange(t *testing.T, base, request string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 5*time.Second)
	mustf(t, err, "dial %s", base)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = io.WriteString(conn, request)
	mustf(t, err, "write")
	b, _ := io.ReadAll(conn)
	return string(b)
}

// HTTP/1.0 clients may omit Host; the node answers them.
func TestHTTP10WithoutHost(t *testing.T) {
	node := testenv.URL(t)
	prox := startProxy(t, node)
	idx := fidelityIndex(t, node)
	f := func(request string) {
		t.Helper()
		d, p := rawExchange(t, node, request), rawExchange(t, prox, request)
		status := func(s string) string { line, _, _ := strings.Cut(s, "\r\n"); return line }
		_, dBody, _ := strings.Cut(d, "\r\n\r\n")
		_, pBody, _ := strings.Cut(p, "\r\n\r\n")
		if !strings.HasSuffix(status(d), status(p)[len("HTTP/1.x"):]) || dBody != pBody {
			t.Errorf("%q:\ndirect:  %q\nproxied: %q", request, d, p)
		}
	}
	f("GET /" + idx + "/_doc/1 HTTP/1.0\r\n\r\n")
	f("HEAD /" + idx + " HTTP/1.0\r\n\r\n")
	f("GET /" + idx + "/_doc/1 HTTP/1.1\r\nHost: example.org\r\nConnection: close\r\n\r\n")
}
