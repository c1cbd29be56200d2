package pipeline_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vlproxy/vlproxy/cache/l2"
	"github.com/vlproxy/vlproxy/model/modeltest"
	"github.com/vlproxy/vlproxy/testenv"
)

func quietES(b *testing.B) *fakeES {
	es := startES(b)
	es.NoRecord = true
	return es
}

// BenchmarkFleet measures what fleet mode (Redis) costs on the paths it touches, through the
// in-process proxy against the fake ES and a real redis-server on loopback:
//
//	result-hit/local    a result-cache hit, generations in process only
//	result-hit/redis    the same hit with the fleet's generations read from Redis (one MGET)
//	keywords/l2-hit     a text rewrite whose keywords miss L1 (flushed each time) and hit Redis
//	keywords/model-call the same rewrite calling the (zero-latency) simulated model every time
//	keywords/model-call-150ms  the same with 150ms of simulated model time (a small VLM's answer)
func BenchmarkFleet(b *testing.B) {
	url := testenv.RedisURL(b)
	client := func(b *testing.B) *l2.Client {
		c, err := l2.New(l2.Config{URL: url, Prefix: fmt.Sprintf("bench%d", time.Now().UnixNano())}, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		return c
	}
	sim := modeltest.Config{Rules: []modeltest.Rule{seasideRule}, ScoreFunc: scoreByTitle}
	const plain = `{"query":{"match":{"title":"red dress"}},"size":10}`
	text := `{"query":` + seasideClause + `,"size":10}`

	run := func(b *testing.B, e *env, body string, each func(), wantCache string) {
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.Header.SetMethod("POST")
		req.SetRequestURI("/products/_search")
		req.Header.SetHost(e.Addr)
		req.Header.SetContentType("application/json")
		req.SetBody([]byte(body))
		do := func() {
			if err := e.c.DoTimeout(req, resp, 10*time.Second); err != nil || resp.StatusCode() != 200 {
				b.Fatalf("%v status %d %s", err, resp.StatusCode(), resp.Body())
			}
		}
		do() // fill whatever the case caches
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if each != nil {
				each()
			}
			do()
		}
		b.StopTimer()
		if got := string(resp.Header.Peek("X-VLProxy-Cache")); wantCache != "" && got != wantCache {
			b.Fatalf("X-VLProxy-Cache %q, want %q", got, wantCache)
		}
	}
	b.Run("result-hit/local", func(b *testing.B) {
		e := start(b, setup{sim: sim, resultCache: true, es: quietES(b)})
		run(b, e, plain, nil, "hit")
	})
	b.Run("result-hit/redis", func(b *testing.B) {
		e := start(b, setup{sim: sim, resultCache: true, es: quietES(b), shared: client(b).Counters()})
		run(b, e, plain, nil, "hit")
	})
	b.Run("keywords/l2-hit", func(b *testing.B) {
		e := start(b, setup{sim: sim, es: quietES(b), kwTier: client(b).Tier("keywords")})
		calls := e.Sim.Calls()["/v1/chat/completions"]
		run(b, e, text, e.Keywords.Flush, "")
		if d := e.Sim.Calls()["/v1/chat/completions"] - calls; d != 1 {
			b.Fatalf("%d model calls, want 1 (the fill): the L2 tier did not answer", d)
		}
	})
	b.Run("keywords/model-call", func(b *testing.B) {
		e := start(b, setup{sim: sim, noKeywords: true, es: quietES(b)})
		run(b, e, text, nil, "")
	})
	b.Run("keywords/model-call-150ms", func(b *testing.B) {
		slow := sim
		slow.Latency = modeltest.Latency{Base: modeltest.Duration(150 * time.Millisecond)}
		e := start(b, setup{sim: slow, noKeywords: true, es: quietES(b)})
		run(b, e, text, nil, "")
	})
}
