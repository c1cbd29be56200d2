package bench

import (
	"context"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestOpenLoopAchievesRate(t *testing.T) {
	addr := startFake(t, DefaultFakeESConfig())
	cfg := DefaultLoadConfig()
	cfg.Targets = []Target{{Name: "fake", URL: "http://" + addr}}
	cfg.Rate, cfg.Duration, cfg.Warmup, cfg.Workers = 2000, 2*time.Second, 200*time.Millisecond, 64
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Targets[0]
	// The measured span ends at the last answer, so one scheduler stall of a few tens of ms on
	// a shared machine (or under -race) costs about 1 %; a generator that falls behind its
	// schedule drops requests or loses far more.
	if r.Achieved < 0.97*cfg.Rate || r.Achieved > 1.01*cfg.Rate || r.Dropped != 0 {
		t.Fatalf("achieved %.1f req/s for a target of %g (dropped %d)", r.Achieved, cfg.Rate, r.Dropped)
	}
	if r.Requests != 4000 || r.OK != r.Requests {
		t.Fatalf("requests=%d ok=%d, want 4000 all ok (errors %v)", r.Requests, r.OK, r.Errors)
	}
	if r.Statuses["200"] != 4000 {
		t.Fatalf("statuses %v", r.Statuses)
	}
	if _, ok := r.CPUPerReq["vlbench"]; !ok {
		t.Fatalf("no CPU of the generator itself: %v", r.CPUPerReq)
	}
}

// With 2 ms on 9 of 10 requests and 30 ms on every 10th, the percentiles are known.
func TestOpenLoopInjectedDelays(t *testing.T) {
	fc := DefaultFakeESConfig()
	fc.Delay, fc.SlowDelay, fc.SlowEvery = 2*time.Millisecond, 30*time.Millisecond, 10
	addr := startFake(t, fc)
	cfg := DefaultLoadConfig()
	cfg.Targets = []Target{{Name: "slowfake", URL: "http://" + addr}}
	cfg.Rate, cfg.Count, cfg.Duration, cfg.Warmup, cfg.Workers = 200, 500, 0, 0, 64
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Targets[0]
	if r.Requests != 500 {
		t.Fatalf("requests = %d, want 500", r.Requests)
	}
	within := func(name string, got, lo, hi float64) {
		t.Helper()
		if got < lo || got > hi {
			t.Errorf("%s = %s, want within [%s, %s]", name, FormatMicros(got), FormatMicros(lo), FormatMicros(hi))
		}
	}
	// A busy machine only adds latency, so the lower bounds are exact (no request can be faster
	// than its injected delay) and the upper bounds only say the classes stay apart: most
	// requests are fast (p50 below the slow delay), one in ten is slow (p95 at or above it).
	slow := float64(fc.SlowDelay.Microseconds())
	within("p50", r.Latency.P50, 2000, slow)
	within("p95", valueAt(r.Curve, 95), slow, math.Inf(1))
	within("p99", r.Latency.P99, slow, math.Inf(1))
	within("max", r.Latency.Max, slow, math.Inf(1))
}

func valueAt(c []CurvePoint, q float64) float64 {
	// The curve is sampled on a log scale; take the first point at or above q.
	for _, p := range c {
		if p.Percentile >= q {
			return p.Micros
		}
	}
	return -1
}

// A target slower than the rate: latency keeps counting the time requests waited for their turn
// (no coordinated omission), and the run is marked invalid.
func TestOpenLoopNoCoordinatedOmission(t *testing.T) {
	fc := DefaultFakeESConfig()
	fc.Delay = 20 * time.Millisecond
	addr := startFake(t, fc)
	cfg := DefaultLoadConfig()
	cfg.Targets = []Target{{Name: "stalled", URL: "http://" + addr}}
	// One worker can serve 50 req/s; 100 req/s are scheduled for 1 s.
	cfg.Rate, cfg.Duration, cfg.Warmup, cfg.Workers = 100, time.Second, 0, 1
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Targets[0]
	if !r.Invalid {
		t.Fatalf("achieved %.0f of 100 req/s but not marked invalid", r.Achieved)
	}
	// The last of 100 requests is scheduled at 990 ms but completes near 2 s: ~1 s of waiting.
	if r.Latency.Max < 700_000 {
		t.Fatalf("max latency %s hides the queueing", FormatMicros(r.Latency.Max))
	}
	if r.Service.P99 > 200_000 {
		t.Fatalf("service time p99 %s, want about 20ms", FormatMicros(r.Service.P99))
	}
}

func TestClosedLoopAndHeaders(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		n++ // one connection in this test: no race
		if n%2 == 0 {
			ctx.Response.Header.Set("X-VLProxy-Cache", "hit")
		} else {
			ctx.Response.Header.Set("X-VLProxy-Cache", "miss")
		}
		ctx.Response.Header.Set("X-VLProxy-Rewrite", "applied")
		ctx.Response.Header.Set("Server-Timing", "rewrite;dur=1.5, search;desc=\"es\";dur=2, total;dur=4.25")
		if string(ctx.Path()) == "/bad" {
			ctx.SetStatusCode(503)
		}
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { _ = srv.Shutdown() })
	dir := t.TempDir()
	mixFile := filepath.Join(dir, "mix.ndjson")
	if err := os.WriteFile(mixFile, []byte(`{"path":"/ok","weight":3}`+"\n"+`{"path":"/bad","weight":1}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mix, err := LoadMix(mixFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultLoadConfig()
	cfg.Targets = []Target{{Name: "h", URL: "http://" + ln.Addr().String()}}
	cfg.Mix, cfg.Concurrency, cfg.Count, cfg.Duration, cfg.Warmup = mix, 1, 400, 0, 0
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Targets[0]
	if r.Requests != 400 || r.Mode != "closed" || r.Invalid {
		t.Fatalf("requests=%d mode=%s invalid=%v", r.Requests, r.Mode, r.Invalid)
	}
	if r.Headers["X-VLProxy-Rewrite=applied"] != 400 || r.Headers["X-VLProxy-Cache=hit"] != 200 || r.CacheHits != 200 {
		t.Fatalf("headers %v cache_hits=%d", r.Headers, r.CacheHits)
	}
	if r.Errors["5xx"] == 0 || r.Errors["5xx"] != r.Statuses["503"] || r.OK+r.Errors["5xx"] != 400 {
		t.Fatalf("errors %v statuses %v ok %d", r.Errors, r.Statuses, r.OK)
	}
	// about a quarter of requests go to /bad
	if bad := r.Errors["5xx"]; bad < 60 || bad > 140 {
		t.Fatalf("%d of 400 requests hit the weight-1 entry, want about 100", bad)
	}
	want := map[string]float64{"rewrite": 1500, "search": 2000, "total": 4250}
	for k, v := range want {
		s := r.Stages[k]
		if s.N != 400 || s.P50 < v*0.99 || s.P50 > v*1.01 {
			t.Fatalf("stage %s = %+v, want p50 %g µs over 400", k, s, v)
		}
	}
}

func TestParseServerTiming(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		var got []string
		parseServerTiming([]byte(in), func(name []byte, us int64) {
			got = append(got, string(name)+"="+FormatMicros(float64(us)))
		})
		if strings.Join(got, " ") != want {
			t.Fatalf("parseServerTiming(%q) = %q, want %q", in, strings.Join(got, " "), want)
		}
	}
	f("", "")
	f("total;dur=1.5", "total=1.50ms")
	f("a;dur=0.25,b;desc=x;dur=3", "a=250µs b=3.00ms")
	f("cache;desc=hit, miss, db;dur=-1, c;dur=abc, d ; DUR=2", "d=2.00ms")
}

func FuzzParseServerTiming(f *testing.F) {
	f.Add("rewrite;dur=1.5, model;dur=0.3, search;dur=2, rerank;dur=0.1, total;dur=4")
	f.Add("a;desc=\"x,y\";dur=1")
	f.Fuzz(func(t *testing.T, s string) {
		parseServerTiming([]byte(s), func(name []byte, us int64) {
			if us < 0 || len(name) == 0 {
				t.Fatalf("bad metric %q=%d", name, us)
			}
		})
	})
}

func TestParseTarget(t *testing.T) {
	f := func(in string, remote bool, want, wantErr string) {
		t.Helper()
		got, err := ParseTarget(in, remote)
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Fatalf("ParseTarget(%q): err %v, want %q", in, err, wantErr)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if g := got.Name + " " + got.URL; g != want {
			t.Fatalf("ParseTarget(%q) = %q, want %q", in, g, want)
		}
	}
	f("direct=http://127.0.0.1:9200/", false, "direct http://127.0.0.1:9200", "")
	f("http://localhost:8080", false, "localhost:8080 http://localhost:8080", "")
	f("v6=http://[::1]:80", false, "v6 http://[::1]:80", "")
	f("es=http://10.0.0.1:9200", false, "", "not a loopback address (pass -allow-remote")
	f("es=http://10.0.0.1:9200", true, "es http://10.0.0.1:9200", "")
	f("nginx", false, "", `target "nginx": cannot parse URL`)
	f("x=ftp://127.0.0.1/", false, "", "cannot parse URL")
}

func TestRunBadConfig(t *testing.T) {
	f := func(cfg LoadConfig, want string) {
		t.Helper()
		_, err := Run(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err %v, want %q", err, want)
		}
	}
	f(LoadConfig{}, "no targets")
	tg := Target{Name: "a", URL: "http://127.0.0.1:1"}
	f(LoadConfig{Targets: []Target{tg, tg}}, `target name "a" is given twice`)
	f(LoadConfig{Targets: []Target{tg}, Pids: map[string]int{"gone": 1 << 30}}, "pid gone=1073741824")
	f(LoadConfig{Targets: []Target{tg}, Rate: -1}, "rate must be >= 0")
}

// A refused connection is an error of class "dial", not a crash or a hang.
func TestRunConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := DefaultLoadConfig()
	cfg.Targets = []Target{{Name: "dead", URL: "http://" + addr}}
	cfg.Concurrency, cfg.Count, cfg.Duration, cfg.Warmup = 2, 20, 0, 0
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Targets[0]
	if r.OK != 0 || r.Errors["dial"] != r.Requests || r.Requests == 0 {
		t.Fatalf("ok=%d requests=%d errors=%v", r.OK, r.Requests, r.Errors)
	}
}
