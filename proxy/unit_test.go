package proxy

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/vlproxy/vlproxy/internal/eserr"
	"github.com/vlproxy/vlproxy/internal/httphdr"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestClassifyRoute(t *testing.T) {
	f := func(method, uri string, want routeClass, retryable bool) {
		t.Helper()
		got := classifyRoute([]byte(method), []byte(uri), "/metrics")
		if got.class != want || got.retryable != retryable {
			t.Fatalf("%s %s: got %s retryable=%v, want %s retryable=%v", method, uri, got.class, got.retryable, want, retryable)
		}
	}
	f("POST", "/idx/_search", classSearch, true)
	f("GET", "/_search?q=x", classSearch, true)
	f("POST", "/a,b/_search/template", classOther, true)
	f("POST", "/_all/_search", classSearch, true)
	f("GET", "/_all/_count", classCount, true)
	f("POST", "/_all/_msearch", classMsearch, true)
	f("POST", "/_search/scroll", classOther, false)
	f("GET", "/_search/scroll?scroll_id=x", classOther, false)
	f("POST", "/idx/_search/point_in_time", classOther, false)
	f("POST", "/_msearch", classMsearch, true)
	f("GET", "/idx/_msearch/template", classOther, true)
	f("POST", "/idx/_count", classCount, true)
	f("POST", "/_mget", classOther, true)
	f("POST", "/_bulk", classBulk, false)
	f("PUT", "/idx/_bulk?refresh", classBulk, false)
	f("PUT", "/idx/_doc/1", classDocWrite, false)
	f("GET", "/idx/_doc/a%2Fb", classOther, true)
	f("HEAD", "/idx/_doc/1", classOther, true)
	f("DELETE", "/idx/_doc/1", classDocWrite, false)
	f("POST", "/idx/_update/1", classDocWrite, false)
	f("POST", "/idx/_create/1", classDocWrite, false)
	f("POST", "/idx/_delete_by_query", classDocWrite, false)
	f("POST", "/idx/_update_by_query?conflicts=proceed", classDocWrite, false)
	f("PUT", "/idx", classIndexAdmin, false)
	f("DELETE", "/idx", classIndexAdmin, false)
	f("HEAD", "/idx", classOther, true)
	f("PUT", "/idx/_mapping", classIndexAdmin, false)
	f("POST", "/idx/_refresh", classIndexAdmin, false)
	f("PUT", "/_index_template/t", classIndexAdmin, false)
	f("GET", "/idx/_mapping", classOther, true)
	f("GET", "/_cat/indices?v", classOther, true)
	f("GET", "/", classOther, true)
	f("POST", "/_cluster/reroute", classOther, false)
	f("GET", "/_vlproxy/health", classAdmin, false)
	f("GET", "/metrics", classAdmin, false)
	f("PUT", "/metrics", classIndexAdmin, false) // an index named metrics
	f("GET", "//idx//_search", classSearch, true)
	f("GET", "", classOther, true)
}

func TestRenderESErrorExactJSON(t *testing.T) {
	f := func(err error, wantStatus int, want string) {
		t.Helper()
		st, typ, reason := classify(err)
		got := string(eserr.Append(nil, st, typ, reason))
		if st != wantStatus || got != want {
			t.Fatalf("got %d %s\nwant %d %s", st, got, wantStatus, want)
		}
		if !json.Valid([]byte(got)) {
			t.Fatalf("invalid JSON %s", got)
		}
	}
	f(errBodyTooLarge(1<<20), 413, `{"error":{"root_cause":[{"type":"content_too_long_exception","reason":"request body is larger than max_body_size (1MiB); raise -max-body-size"}],"type":"content_too_long_exception","reason":"request body is larger than max_body_size (1MiB); raise -max-body-size"},"status":413}`)
	f(errNoHealthy, 503, `{"error":{"root_cause":[{"type":"no_healthy_upstream_exception","reason":"no healthy upstream node is available"}],"type":"no_healthy_upstream_exception","reason":"no healthy upstream node is available"},"status":503}`)
	f(fmt.Errorf("wrapped: %w", fasthttp.ErrTimeout), 504, `{"error":{"root_cause":[{"type":"timeout_exception","reason":"upstream did not answer within the deadline: wrapped: fasthttp: timeout"}],"type":"timeout_exception","reason":"upstream did not answer within the deadline: wrapped: fasthttp: timeout"},"status":504}`)
	f(&upstreamError{addr: "h:1", err: errors.New("the connection closed")}, 502, `{"error":{"root_cause":[{"type":"bad_gateway_exception","reason":"upstream h:1: the connection closed"}],"type":"bad_gateway_exception","reason":"upstream h:1: the connection closed"},"status":502}`)
	f(&dialError{addr: "h:1", err: errors.New("refused")}, 502, `{"error":{"root_cause":[{"type":"upstream_connect_exception","reason":"cannot connect to upstream h:1: refused"}],"type":"upstream_connect_exception","reason":"cannot connect to upstream h:1: refused"},"status":502}`)
	// Another package's error type renders through its ESError method, even wrapped.
	f(fmt.Errorf("rewrite: %w", foreignErr{}), 400, `{"error":{"root_cause":[{"type":"x_content_parse_exception","reason":"option \"ext.vlproxy.rerank.weight\": \"quoted\"\n\u0001"}],"type":"x_content_parse_exception","reason":"option \"ext.vlproxy.rerank.weight\": \"quoted\"\n\u0001"},"status":400}`)
	f(errors.New("boom"), 500, `{"error":{"root_cause":[{"type":"internal_proxy_exception","reason":"boom"}],"type":"internal_proxy_exception","reason":"boom"},"status":500}`)
}

type foreignErr struct{}

func (foreignErr) Error() string { return "x" }
func (foreignErr) ESError() (int, string, string) {
	return 400, "x_content_parse_exception", "option \"ext.vlproxy.rerank.weight\": \"quoted\"\n\x01"
}

func TestServerTimingFormat(t *testing.T) {
	f := func(stages []string, durs []time.Duration, total time.Duration, want string) {
		t.Helper()
		var st serverTiming
		for i := range stages {
			st.add(stages[i], durs[i])
		}
		if got := string(st.appendHeader(nil, total)); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	f(nil, nil, 1500*time.Microsecond, "upstream;dur=0.000, total;dur=1.500")
	f([]string{"upstream"}, []time.Duration{1234567 * time.Nanosecond}, 2*time.Second, "upstream;dur=1.234, total;dur=2000.000")
	f([]string{"upstream", "upstream"}, []time.Duration{time.Millisecond, 2 * time.Millisecond}, 3*time.Millisecond, "upstream;dur=3.000, total;dur=3.000")
	f([]string{"rewrite", "upstream"}, []time.Duration{5 * time.Microsecond, time.Millisecond}, -1, "upstream;dur=0.000, rewrite;dur=0.005, upstream;dur=1.000, total;dur=0.000")
}

func TestServerTimingNoAllocs(t *testing.T) {
	var st serverTiming
	st.add("upstream", time.Millisecond)
	buf := make([]byte, 0, 128)
	if n := testing.AllocsPerRun(100, func() { buf = st.appendHeader(buf[:0], time.Second) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

func TestConnectionTokens(t *testing.T) {
	f := func(values []string, want string) {
		t.Helper()
		raw := "GET / HTTP/1.1\r\nHost: a\r\n"
		for _, v := range values {
			raw += "Connection: " + v + "\r\n"
		}
		var h fasthttp.RequestHeader
		if err := h.Read(bufio.NewReader(strings.NewReader(raw + "\r\n"))); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, tok := range connectionTokens(nil, h.All()) {
			got = append(got, string(tok))
		}
		if strings.Join(got, "|") != want {
			t.Fatalf("%q: got %q, want %q", values, strings.Join(got, "|"), want)
		}
	}
	f([]string{"close"}, "")
	f([]string{"keep-alive, X-A"}, "X-A")
	f([]string{" X-A ,, x-b,Close"}, "X-A|x-b")
	f([]string{"X-A", "X-B"}, "X-A|X-B")
}

func TestByteSizeString(t *testing.T) {
	f := func(in string, want ByteSize, back string) {
		t.Helper()
		got, err := ParseByteSize(in)
		if err != nil || got != want || got.String() != back {
			t.Fatalf("%q: got %d (%s) err %v, want %d (%s)", in, got, got.String(), err, want, back)
		}
	}
	f("0", 0, "0")
	f("1023", 1023, "1023")
	f("64KiB", 64<<10, "64KiB")
	f("1024MiB", 1<<30, "1GiB")
	f(" 3 GiB ", 3<<30, "3GiB")
	f("1KB", 1000, "1000")
	for _, bad := range []string{"", "KiB", "-1", "1XiB", "99999999999999999999", "1e30GiB"} {
		if _, err := ParseByteSize(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func FuzzClassifyRoute(f *testing.F) {
	for _, s := range []string{"/idx/_search", "/_search/scroll", "/idx/_doc/a%2Fb?x=1", "//", "/_vlproxy/", "?", "/_", "/a/_bulk/_b/c"} {
		f.Add("POST", s)
	}
	f.Fuzz(func(t *testing.T, method, uri string) {
		r := classifyRoute([]byte(method), []byte(uri), "/metrics")
		if r.class >= numClasses {
			t.Fatalf("class %d", r.class)
		}
		if r.retryable && (r.class == classBulk || r.class == classDocWrite || r.class == classIndexAdmin) {
			t.Fatalf("%s %s: a write is retryable", method, uri)
		}
	})
}

func FuzzConnectionTokens(f *testing.F) {
	f.Add("keep-alive, X-A")
	f.Add(" ,close,, TE")
	f.Fuzz(func(t *testing.T, v string) {
		var h fasthttp.RequestHeader
		h.Set("Connection", v)
		for _, tok := range connectionTokens(nil, h.All()) {
			if len(tok) == 0 || strings.ContainsAny(string(tok), ",") {
				t.Fatalf("%q: bad token %q", v, tok)
			}
		}
	})
}

// FuzzESError: whatever a reason contains (it quotes client input), the error body is valid JSON that
// round-trips the reason.
func FuzzESError(f *testing.F) {
	f.Add("illegal_argument_exception", "cannot parse \"x\"\n\x00\u2028")
	f.Add("t", "\xff\xfe")
	f.Fuzz(func(t *testing.T, typ, reason string) {
		b := eserr.Append(nil, 400, typ, reason)
		var e esErrorBody
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("invalid JSON %q: %s", b, err)
		}
		var want strings.Builder
		for _, r := range reason {
			want.WriteRune(r) // invalid bytes become U+FFFD one by one
		}
		if want.String() != e.Error.Reason || e.Status != 400 {
			t.Fatalf("reason %q came back as %q", reason, e.Error.Reason)
		}
	})
}

// TestRecordCheckFailsPasses: x is a failed check, . a passed one; want is the node's health
// after each (U up, D down).
func TestRecordCheckFailsPasses(t *testing.T) {
	f := func(seq string, fails, passes int, want string) {
		t.Helper()
		n := &node{m: newNodeMetrics("record-check-test")}
		n.healthy.Store(true)
		var got []byte
		for _, c := range seq {
			n.recordCheck(c == '.', "check failed", fails, passes)
			if n.healthy.Load() {
				got = append(got, 'U')
			} else {
				got = append(got, 'D')
			}
		}
		if string(got) != want {
			t.Fatalf("%q with fails %d, passes %d: %s, want %s", seq, fails, passes, got, want)
		}
	}
	f("x.xx.xxx..", 3, 2, "UUUUUUUDDU")
	f("xxx.x..", 3, 2, "UUDDDDU") // a failure between passes starts the rise again
	f("x.x", 1, 1, "DUD")
	f("xxxx....", 2, 3, "UDDDDDUU")
}

// TestPassingCheckEndsEjection: an ejected node is back at the next passed check, even while
// its health still needs more passes it already has; an ejection that ran out is cleared.
func TestPassingCheckEndsEjection(t *testing.T) {
	n := &node{maxConns: 1, m: newNodeMetrics("ejection-test")}
	n.healthy.Store(true)
	if !n.eject(time.Hour, "refused") || n.Available() {
		t.Fatal("an ejected node is available")
	}
	n.recordCheck(true, "", 3, 2)
	if !n.Available() {
		t.Fatal("a passed check did not end the ejection")
	}
	n.eject(time.Nanosecond, "refused")
	time.Sleep(time.Millisecond)
	if !n.Available() || n.ejectedUntil.Load() != 0 {
		t.Fatal("an ejection that ran out was not cleared")
	}
	n.inFlight.Store(1)
	if n.Available() || n.hasRoom() {
		t.Fatal("a node with a full pool takes requests")
	}
}

// isHopByHop filters on the first byte before comparing names: every name of httphdr.HopByHop, in
// any case, must still get through, and the fields seen on every request must not.
func TestIsHopByHop(t *testing.T) {
	f := func(name string, want bool) {
		t.Helper()
		for _, k := range []string{name, strings.ToLower(name), strings.ToUpper(name)} {
			if got := isHopByHop([]byte(k)); got != want {
				t.Errorf("isHopByHop(%q) = %v, want %v", k, got, want)
			}
		}
	}
	for _, h := range httphdr.HopByHop {
		f(h, true)
	}
	f("Content-Type", false)
	f("Content-Length", false)
	f("X-Elastic-Product", false)
	f("Host", false)
	f("", false)
}

func TestAppendMillis(t *testing.T) {
	f := func(d time.Duration, want string) {
		t.Helper()
		if got := string(appendMillis([]byte("x="), d)); got != "x="+want {
			t.Errorf("appendMillis(%v) = %q, want %q", d, got, "x="+want)
		}
	}
	f(0, "0.000")
	f(-time.Second, "0.000")
	f(999*time.Nanosecond, "0.000")
	f(7*time.Microsecond, "0.007")
	f(1234567*time.Nanosecond, "1.234")
	f(42*time.Millisecond+50*time.Microsecond, "42.050")
	f(3*time.Minute, "180000.000")
	f(time.Duration(1<<63-1), "9223372036854.775")
}
