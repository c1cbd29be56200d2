package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/vlproxy/vlproxy/proxy"
	"github.com/vlproxy/vlproxy/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// startProxy runs a proxy in this process on 127.0.0.1:0 in front of upstream and returns its
// base URL. The proxy shuts down when the test ends.
func startProxy(t testing.TB, upstream string, opts ...proxy.Option) string {
	t.Helper()
	cfg := proxy.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Upstreams = []string{upstream}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := proxy.New(cfg, log, opts...)
	if err != nil {
		t.Fatalf("cannot create the proxy: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("cannot listen: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("proxy shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("proxy Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// uniqueName returns prefix-<random hex>, a fresh index name per run (several packages may
// share one node).
func uniqueName(prefix string) string {
	var b [4]byte
	rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// rawClient sends requests as they are: no transparent gzip, no redirects, one pool per test.
func rawClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 256},
		Timeout:   60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// do sends one request and returns the whole response. hdr holds name/value pairs.
func do(t testing.TB, c *http.Client, method, url string, body []byte, hdr ...string) reply {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatalf("cannot build %s %s: %v", method, url, err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: cannot read the body: %v", method, url, err)
	}
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// mustDo is do that fails the test unless the status is want.
func mustDo(t testing.TB, c *http.Client, want int, method, url string, body []byte, hdr ...string) reply {
	t.Helper()
	r := do(t, c, method, url, body, hdr...)
	if r.Status != want {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, url, r.Status, want, r.Body)
	}
	return r
}

// exchange is one recorded request and its response.
type exchange struct {
	Method, Path string // Path includes the query string
	Status       int
	Header       http.Header
	Body         []byte
}

func (e exchange) String() string { return e.Method + " " + e.Path }

// recorder is an http.RoundTripper that keeps every exchange, so that typed clients (which
// decode bodies into structs) can be compared on the bytes they received.
type recorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	log  []exchange
}

func newRecorder() *recorder {
	return &recorder{base: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16}}
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	r.mu.Lock()
	r.log = append(r.log, exchange{Method: req.Method, Path: req.URL.RequestURI(), Status: resp.StatusCode, Header: resp.Header.Clone(), Body: b})
	r.mu.Unlock()
	return resp, nil
}

func (r *recorder) exchanges() []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]exchange(nil), r.log...)
}

// variableFields are the JSON paths whose values legitimately differ between two runs of the
// same sequence against the same node: timings (took, and the cluster-wide task figures of
// cluster health; responses.N.took of _msearch) and scroll ids (an opaque handle per search context).
var variableFields = []string{
	"took",
	"_scroll_id",
	"task_max_waiting_in_queue_millis",
	"number_of_pending_tasks",
	"number_of_in_flight_fetch",
	"active_shards_percent_as_number",
}

// normalize removes variableFields from a JSON object body, keeping every other byte (key
// order, spacing) as it was. Non-JSON bodies are returned unchanged.
func normalize(body []byte) []byte {
	if len(body) == 0 || body[0] != '{' {
		return body
	}
	out := append([]byte(nil), body...)
	for _, p := range variableFields {
		if b, err := sjson.DeleteBytes(out, p); err == nil {
			out = b
		}
	}
	// _msearch: each response has its own took.
	if n := gjson.GetBytes(out, "responses.#").Int(); n > 0 {
		for i := range n {
			if b, err := sjson.DeleteBytes(out, "responses."+strconv.FormatInt(i, 10)+".took"); err == nil {
				out = b
			}
		}
	}
	return out
}

// normalizePath hides the scroll id of DELETE /_search/scroll/<id>.
func normalizePath(p string) string {
	if rest, ok := strings.CutPrefix(p, "/_search/scroll/"); ok && rest != "" {
		return "/_search/scroll/<scroll_id>"
	}
	return p
}

// compareExchanges checks that two recorded runs of one sequence made the same requests and got
// the same statuses and (normalized) bodies.
func compareExchanges(t *testing.T, direct, proxied []exchange) {
	t.Helper()
	if len(direct) != len(proxied) {
		t.Errorf("direct made %d requests, proxied %d", len(direct), len(proxied))
		for i, e := range direct {
			t.Logf("direct[%d] %s", i, e)
		}
		for i, e := range proxied {
			t.Logf("proxied[%d] %s", i, e)
		}
	}
	for i := range min(len(direct), len(proxied)) {
		d, p := direct[i], proxied[i]
		if d.Method != p.Method || normalizePath(d.Path) != normalizePath(p.Path) {
			t.Errorf("request %d: direct %s, proxied %s", i, d, p)
			continue
		}
		if d.Status != p.Status {
			t.Errorf("%d %s: direct status %d, proxied %d", i, d, d.Status, p.Status)
		}
		if nd, np := normalize(d.Body), normalize(p.Body); !bytes.Equal(nd, np) {
			t.Errorf("%d %s: bodies differ\ndirect:  %s\nproxied: %s", i, d, nd, np)
		}
		for _, e := range []exchange{d, p} {
			if cl := e.Header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(e.Body)) && e.Method != "HEAD" {
				t.Errorf("%d %s: Content-Length %s but a %d-byte body", i, e, cl, len(e.Body))
			}
		}
		// Guards against comparing a run with itself: only the proxied run went through vlproxy.
		if d.Header.Get("Server-Timing") != "" || p.Header.Get("Server-Timing") == "" {
			t.Errorf("%d %s: Server-Timing direct %q, proxied %q: was the second run proxied?", i, d, d.Header.Get("Server-Timing"), p.Header.Get("Server-Timing"))
		}
		if dh, ph := headerSet(d.Header), headerSet(p.Header); dh != ph {
			t.Errorf("%d %s: headers differ\ndirect:  %s\nproxied: %s", i, d, dh, ph)
		}
	}
}

// proxyAdded are response headers the proxy adds by contract (DESIGN.md: Server-Timing on every
// response, X-VLProxy-* on intercepted searches).
func proxyAdded(name string) bool {
	return name == "Server-Timing" || strings.HasPrefix(name, "X-Vlproxy-")
}

// hopByHop are the fields a proxy must not forward (RFC 9110 §7.6.1).
var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Proxy-Authenticate": true,
}

// variableHeaders have values that differ between two runs: Content-Length follows the length
// of `took` (checked against the body instead), and OpenSearch's Task_resource_usage reports
// task ids and CPU nanoseconds. Only their presence is compared.
var variableHeaders = map[string]bool{"Content-Length": true, "Task_resource_usage": true}

// headerSet renders the end-to-end response headers (names and values), minus what the proxy
// adds by contract, in a canonical order.
func headerSet(h http.Header) string {
	var lines []string
	for k, vs := range h {
		if hopByHop[k] || proxyAdded(k) {
			continue
		}
		for _, v := range vs {
			if variableHeaders[k] {
				v = "<variable>"
			}
			lines = append(lines, k+": "+v)
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, " | ")
}

// deleteIndex removes an index directly on the node, ignoring a 404.
func deleteIndex(t testing.TB, base, index string) {
	t.Helper()
	r := do(t, rawClient(), "DELETE", base+"/"+index, nil)
	if r.Status != 200 && r.Status != 404 {
		t.Errorf("cannot delete index %s: %d %s", index, r.Status, r.Body)
	}
}

func mustf(t testing.TB, err error, format string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(format, args...), err)
	}
}
