package bench

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

const wrkSample = `Running 2s test @ http://127.0.0.1:38817/bench/_doc/1
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.07ms    0.98ms  16.93ms   92.90%
    Req/Sec    51.49k     9.78k   67.72k    75.00%
  Latency Distribution
     50%  841.00us
     75%    1.06ms
     90%    1.58ms
     99%    5.36ms
  102428 requests in 2.00s, 35.75MB read
  Socket errors: connect 0, read 3, write 1, timeout 2
  Non-2xx or 3xx responses: 4
Requests/sec:  51129.46
Transfer/sec:     17.85MB
`

func TestParseWrkOutput(t *testing.T) {
	r, err := ParseWrkOutput([]byte(wrkSample))
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 102428 || r.Elapsed != 2*time.Second || r.Errors != 10 || r.P99 != 5360*time.Microsecond {
		t.Fatalf("parsed %+v", r)
	}
	if rps := r.RPS(); rps < 51213 || rps > 51215 {
		t.Fatalf("rps = %f", rps)
	}
	r.CPU = 2048560 * time.Microsecond
	if c := r.CPUPerReq(); c != 20 {
		t.Fatalf("cpu/req = %f", c)
	}
	if _, err := ParseWrkOutput([]byte("wrk: connection refused")); err == nil {
		t.Fatal("no error for output without a request count")
	}
}

// With wrk installed (bench/scripts install it), a run against the fake ES counts requests, and
// the distinct-body script really sends a different body each time.
func TestRunWrkFakeES(t *testing.T) {
	bin, err := exec.LookPath("wrk")
	if err != nil {
		t.Skip("wrk is not installed (bench/scripts/passthrough.sh installs it)")
	}
	es, err := NewFakeES(DefaultFakeESConfig())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	bodies := map[string]map[string]bool{}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		mu.Lock()
		q := string(ctx.QueryArgs().Peek("s"))
		if bodies[q] == nil {
			bodies[q] = map[string]bool{}
		}
		bodies[q][string(ctx.PostBody())] = true
		mu.Unlock()
		es.Handler(ctx)
	}}
	go srv.Serve(ln) //nolint:errcheck
	defer srv.Shutdown()
	url := "http://" + ln.Addr().String()
	sc := DefaultWrkScenarios("bench", nil)
	for i := range sc {
		sc[i].Path += "?s=" + sc[i].Name
	}
	res, err := RunWrk(context.Background(), WrkConfig{Wrk: bin, Targets: []Target{{Name: "direct", URL: url}},
		Scenarios: sc, Rounds: 1, Duration: time.Second, Warmup: 0, Connections: 4, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sc {
		c := res.Cell(s.Name, "direct")
		if c == nil || len(c.Runs) != 1 || c.Runs[0].Requests < 100 || c.Runs[0].Errors != 0 {
			t.Fatalf("%s: %+v", s.Name, c)
		}
	}
	mu.Lock()
	miss, hit := len(bodies["search-miss"]), len(bodies["search-hit"])
	mu.Unlock()
	if want := res.Cell("search-miss", "direct").Runs[0].Requests; int64(miss) < want {
		t.Fatalf("search-miss sent %d distinct bodies in %d requests", miss, want)
	}
	if hit != 1 {
		t.Fatalf("search-hit sent %d distinct bodies, want 1", hit)
	}
	var b strings.Builder
	res.WriteMarkdown(&b)
	if !strings.Contains(b.String(), "**search-miss**") {
		t.Fatalf("markdown:\n%s", b.String())
	}
}

// TestWriteWrkScripts: one NAME.lua per scenario, a fixed body as wrk.body and a distinct one
// numbered from the script's argument.
func TestWriteWrkScripts(t *testing.T) {
	dir := t.TempDir()
	paths, err := WriteWrkScripts(dir, DefaultWrkScenarios("idx", nil))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"doc-get.lua":     {`wrk.path = "/idx/_doc/1"`},
		"search-miss.lua": {`wrk.path = "/idx/_search"`, "function init(args) n = tonumber(args[1])", `shirt %d`},
		"search-hit.lua":  {`wrk.body = "{\"query\":{\"match\":{\"title\":\"shirt\"}}}"`},
	}
	if len(paths) != len(want) {
		t.Fatalf("paths %v", paths)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		ws, ok := want[filepath.Base(p)]
		if !ok {
			t.Fatalf("unexpected script %s", p)
		}
		for _, w := range ws {
			if !strings.Contains(string(b), w) {
				t.Fatalf("%s lacks %q:\n%s", filepath.Base(p), w, b)
			}
		}
		if filepath.Dir(p) != dir {
			t.Fatalf("%s not in %s", p, dir)
		}
	}
}
