package pipeline_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/vlproxy/vlproxy/model/modeltest"
	"github.com/vlproxy/vlproxy/proxy/pipeline"
)

// TestClientGoneStopsModelWork: a client that hangs up mid-rewrite has its model call in flight
// cancelled and no further one started, through the keyword cache's single-flight too.
func TestClientGoneStopsModelWork(t *testing.T) {
	f := func(keywords bool) {
		t.Helper()
		rw := testRewriteConfig()
		rw.Timeout = 10 * time.Second
		e := start(t, setup{rewrite: &rw, noKeywords: !keywords,
			sim: modeltest.Config{Latency: modeltest.Latency{Base: modeltest.Duration(400 * time.Millisecond)}}})
		// Eight clauses are rewritten one after another: 3.2 s of model calls.
		body := clauses(8, textClause)
		c, err := net.Dial("tcp", e.Addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /products/_search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		deadline := time.Now().Add(2 * time.Second)
		for e.Sim.InFlight() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("no model call started")
			}
			time.Sleep(5 * time.Millisecond)
		}
		c.Close()
		time.Sleep(1200 * time.Millisecond) // three more calls' worth, had the work gone on
		calls := e.Sim.Calls()["/v1/chat/completions"]
		if calls != 1 || e.Sim.Canceled() != 1 || e.ES.Calls.Load() != 0 {
			t.Fatalf("keyword cache %v: after the client left: %d model calls, %d cancelled, %d upstream calls; want 1, 1, 0",
				keywords, calls, e.Sim.Canceled(), e.ES.Calls.Load())
		}
	}
	f(false)
	f(true)
}

// TestDeadlineStopsModelWork: once the pipeline's deadline passes, no model call starts and
// nothing is forwarded; the client gets a 504.
func TestDeadlineStopsModelWork(t *testing.T) {
	rw := testRewriteConfig()
	rw.Timeout = 10 * time.Second
	pcfg := pipeline.DefaultConfig()
	pcfg.Timeout = 500 * time.Millisecond
	e := start(t, setup{rewrite: &rw, pipeline: &pcfg, noKeywords: true,
		sim: modeltest.Config{Latency: modeltest.Latency{Base: modeltest.Duration(300 * time.Millisecond)}}})
	r := e.search(t, clauses(8, textClause))
	wantESError(t, r, 504, "deadline")
	time.Sleep(700 * time.Millisecond) // two more calls' worth, had the work gone on
	if calls := e.Sim.Calls()["/v1/chat/completions"]; calls != 2 || e.ES.Calls.Load() != 0 {
		t.Fatalf("after the deadline: %d model calls, %d upstream calls; want 2, 0", calls, e.ES.Calls.Load())
	}
}
