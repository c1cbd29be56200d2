package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vlproxy/vlproxy/model/modeltest"
	"github.com/vlproxy/vlproxy/proxy"
)

// serveWired loads the config from args and env, wires it and serves it on a loopback port;
// it returns the proxy's address.
func serveWired(t *testing.T, args []string, env func(string) string) string {
	t.Helper()
	cfg, err := loadConfig(args, env, &bytes.Buffer{})
	if err != nil {
		t.Fatalf("args %v: %v", args, err)
	}
	opts, closeAll, err := wire(cfg, nil)
	if err != nil {
		t.Fatalf("args %v: %v", args, err)
	}
	srv, err := proxy.New(cfg.Proxy, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx) //nolint:errcheck
		closeAll()
	})
	return ln.Addr().String()
}

// TestCacheSizeZeroTurnsCacheOff: for every cache, a size (or largest entry, or TTL) of 0 from a
// flag, the environment or the file turns it off, and leaving it unset keeps the default. The
// caches that exist are the ones GET /_vlproxy/cache lists.
func TestCacheSizeZeroTurnsCacheOff(t *testing.T) {
	base := []string{"-upstream", "http://127.0.0.1:1", "-health-check-interval", "0", "-log-level", "error",
		"-model-url", "http://127.0.0.1:1", "-embed-url", "http://127.0.0.1:1"}
	f := func(args []string, env func(string) string, want string) {
		t.Helper()
		addr := serveWired(t, append(append([]string(nil), base...), args...), env)
		status, body, err := fasthttp.Get(nil, "http://"+addr+"/_vlproxy/cache")
		if err != nil || status != 200 {
			t.Fatalf("args %v: %d %v %s", args, status, err, body)
		}
		var stats struct {
			Caches map[string]json.RawMessage `json:"caches"`
		}
		if err := json.Unmarshal(body, &stats); err != nil {
			t.Fatal(err)
		}
		var names []string
		for n := range stats.Caches {
			names = append(names, n)
		}
		sort.Strings(names)
		if got := strings.Join(names, ","); got != want {
			t.Fatalf("args %v: caches %q, want %q", args, got, want)
		}
	}
	all := "embeddings,keywords,results,scores"
	f(nil, envOf(), all)
	f([]string{"-keyword-cache-size", "0"}, envOf(), "embeddings,results,scores")
	f([]string{"-embedding-cache-size", "0"}, envOf(), "keywords,results,scores")
	f([]string{"-score-cache-size", "0"}, envOf(), "embeddings,keywords,results")
	f([]string{"-result-cache-size", "0"}, envOf(), "embeddings,keywords,scores")
	f([]string{"-result-cache-ttl", "0s"}, envOf(), "embeddings,keywords,scores")
	f([]string{"-result-cache-max-entry", "0"}, envOf(), "embeddings,keywords,scores")
	f(nil, envOf("VLPROXY_KEYWORD_CACHE_SIZE", "0", "VLPROXY_SCORE_CACHE_SIZE", "0"), "embeddings,results")
	f([]string{"-config", writeFile(t, "cache:\n  embeddings: {max_bytes: 0}\n  keywords: {ttl: 2h}\n")}, envOf(), "keywords,results,scores")
	// A flag over the file's 0 turns it back on.
	f([]string{"-config", writeFile(t, "cache:\n  scores: {max_bytes: 0}\n"), "-score-cache-size", "1MiB"}, envOf(), all)

	if _, err := loadConfig([]string{"-upstream", "http://x", "-config", writeFile(t, "cache:\n  keywords: {max_bytes: -1}\n")},
		envOf(), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "cache.keywords") {
		t.Fatalf("a negative cache size: %v", err)
	}
}

// TestKeywordCacheOffCallsTheModelEachTime: with -keyword-cache-size 0 two identical text
// searches make two model calls (with the default cache, one).
func TestKeywordCacheOffCallsTheModelEachTime(t *testing.T) {
	sim := modeltest.NewServer(modeltest.Config{})
	t.Cleanup(sim.Close)
	es := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"took":1,"timed_out":false,"hits":{"total":{"value":0,"relation":"eq"},"max_score":null,"hits":[]}}`)
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go es.Serve(ln)                     //nolint:errcheck
	t.Cleanup(func() { es.Shutdown() }) //nolint:errcheck
	f := func(args []string, wantCalls int64) {
		t.Helper()
		before := sim.Calls()["/v1/chat/completions"]
		addr := serveWired(t, append([]string{"-upstream", "http://" + ln.Addr().String(), "-health-check-interval", "0",
			"-log-level", "error", "-model-url", sim.URL, "-result-cache-size", "0"}, args...), envOf())
		for range 2 {
			req := fasthttp.AcquireRequest()
			resp := fasthttp.AcquireResponse()
			req.Header.SetMethod("POST")
			req.SetRequestURI("http://" + addr + "/products/_search")
			req.Header.SetContentType("application/json")
			req.SetBodyString(`{"query":{"multimodal":{"text":"red summer dress"}}}`)
			if err := fasthttp.DoTimeout(req, resp, 10*time.Second); err != nil || resp.StatusCode() != 200 {
				t.Fatalf("args %v: %v %d %s", args, err, resp.StatusCode(), resp.Body())
			}
			if st := string(resp.Header.Peek("X-VLProxy-Rewrite")); st != "applied" && st != "cached" {
				t.Fatalf("args %v: X-VLProxy-Rewrite %q", args, st)
			}
			fasthttp.ReleaseRequest(req)
			fasthttp.ReleaseResponse(resp)
		}
		if got := sim.Calls()["/v1/chat/completions"] - before; got != wantCalls {
			t.Fatalf("args %v: %d model calls for two identical searches, want %d", args, got, wantCalls)
		}
	}
	f(nil, 1)
	f([]string{"-keyword-cache-size", "0"}, 2)
}
