package faults

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vlproxy/vlproxy/model/modeltest"
	"github.com/vlproxy/vlproxy/testenv"
)

func uniqueName(prefix string) string {
	var b [4]byte
	rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// shopIndex creates an index of a few products on the node and returns its name (deleted when
// the test ends).
func shopIndex(t *testing.T, url string) string {
	t.Helper()
	c := newClient(60 * time.Second)
	name := uniqueName("faults-shop")
	must(t, c, "PUT", url+"/"+name, []byte(`{"settings":{"number_of_shards":1,"number_of_replicas":0},
		"mappings":{"properties":{"title":{"type":"text"},"colour":{"type":"keyword"}}}}`))
	t.Cleanup(func() { call(c, "DELETE", url+"/"+name, nil) })
	var b strings.Builder
	titles := []string{"red summer dress", "red maxi dress", "blue denim dress", "green floral dress",
		"red running shoes", "black running shoes", "white leather sneakers", "straw hat", "red wool scarf",
		"blue denim jacket", "grey hoodie", "white linen shirt"}
	for i, title := range titles {
		fmt.Fprintf(&b, "{\"index\":{\"_id\":\"p%d\"}}\n{\"title\":%q,\"colour\":%q}\n", i, title, strings.Fields(title)[0])
	}
	if r := must(t, c, "POST", url+"/"+name+"/_bulk?refresh=true", []byte(b.String())); strings.Contains(string(r.Body), `"errors":true`) {
		t.Fatalf("bulk: %s", r.Body)
	}
	return name
}

// TestSIGTERMUnderLoad: two vlproxy processes behind a client that, like a load balancer, sends
// to the first one and moves to the second when a connection is refused. SIGTERM to the first
// one in the middle of open-loop load (searches that wait 300 ms for the model, plain
// searches, writes by id): every request is answered with success, the requests in flight at the
// signal finish on the draining process, and it exits with status 0 within -drain-timeout.
func TestSIGTERMUnderLoad(t *testing.T) {
	url := testenv.URL(t)
	index := shopIndex(t, url)
	sim := modeltest.NewServer(modeltest.Config{Latency: modeltest.Latency{Base: modeltest.Duration(300 * time.Millisecond)}})
	defer sim.Close()
	const drain = 20 * time.Second // the in-flight model calls of a starved machine can take several seconds
	args := []string{"-upstream", url, "-model-url", sim.URL, "-drain-timeout", drain.String(),
		"-result-cache-size", "0", "-keyword-cache-size", "0"}
	a := startVLProxy(t, args...)
	b := startVLProxy(t, args...)
	c := newClient(30 * time.Second)

	const (
		n        = 400
		interval = 10 * time.Millisecond
		termAt   = 1500 * time.Millisecond
	)
	type result struct {
		kind         string
		viaA, failed bool // answered by a (after any failover), refused by a
		movedToB     bool
		start, end   time.Time
		reply        reply
	}
	results := make([]result, n)
	var (
		mu     sync.Mutex
		termed time.Time
	)
	gone := false // set once a refused a connection: later requests go to b directly, like an LB
	began := time.Now()
	timer := time.AfterFunc(termAt, func() {
		mu.Lock()
		termed = time.Now()
		mu.Unlock()
		if err := a.signal(syscall.SIGTERM); err != nil {
			t.Errorf("SIGTERM: %v", err)
		}
	})
	defer timer.Stop()
	openLoop(n, interval, func(i int) {
		r := &results[i]
		var method, path string
		var body []byte
		var hdr []string
		switch i % 4 {
		case 0, 1:
			// The model call keeps it in flight for 300 ms+; an ES client may send GET with a body.
			r.kind, method, path = "rewritten search", "GET", "/"+index+"/_search"
			body = fmt.Appendf(nil, `{"query":{"multimodal":{"text":"red dress %d","fields":["title"]}},"size":3}`, i)
		case 2:
			r.kind, method, path = "plain search", "GET", "/"+index+"/_search"
			body = []byte(`{"query":{"match":{"title":"dress"}},"size":3}`)
		case 3:
			// Idempotent by id, so a client may replay it on a connection closed while idle.
			r.kind, method, path = "write by id", "PUT", fmt.Sprintf("/%s/_doc/w%d", index, i)
			body = fmt.Appendf(nil, `{"title":"drain test %d","colour":"none"}`, i)
			hdr = []string{"Idempotency-Key", fmt.Sprint("w", i)}
		}
		r.start = time.Now()
		mu.Lock()
		toB := gone
		mu.Unlock()
		if !toB {
			r.reply = call(c, method, a.URL+path, body, hdr...)
			// Not accepted: refused, or reset while still in the closed listener's backlog
			// (the kernel resets those). Either way nothing was sent, and a balancer moves on.
			var op *net.OpError
			if r.reply.Err != nil && errors.As(r.reply.Err, &op) && op.Op == "dial" {
				mu.Lock()
				gone = true
				mu.Unlock()
				toB = true
				r.movedToB = true
			} else {
				r.viaA = true
			}
		}
		if toB {
			r.reply = call(c, method, b.URL+path, body, hdr...)
		}
		r.end = time.Now()
		ok := r.reply.Err == nil && r.reply.Status >= 200 && r.reply.Status < 300
		if ok && r.kind == "rewritten search" && strings.HasPrefix(r.reply.Header.Get("X-VLProxy-Rewrite"), "fallback:cancel") {
			ok = false // the drain must not cut the model call short either (other fallbacks: load)
		}
		r.failed = !ok
	})
	exitErr, exited := a.wait(drain + 10*time.Second)
	mu.Lock()
	termTime := termed
	mu.Unlock()
	stopped := a.exit.Sub(termTime)

	var viaA, viaB, inFlightAtTerm, moved, failed int
	rewrites := map[string]int{}
	var fails []string
	var all []reply
	for _, r := range results {
		all = append(all, r.reply)
		if r.viaA {
			viaA++
			if r.start.Before(termTime) && r.end.After(termTime) {
				inFlightAtTerm++
			}
		} else {
			viaB++
		}
		if r.kind == "rewritten search" && r.reply.Err == nil {
			rewrites[r.reply.Header.Get("X-VLProxy-Rewrite")]++
		}
		if r.movedToB {
			moved++
		}
		if r.failed {
			failed++
			if len(fails) < 5 {
				fails = append(fails, fmt.Sprintf("%s (via a: %v): %s rewrite=%q", r.kind, r.viaA, describe(r.reply), r.reply.Header.Get("X-VLProxy-Rewrite")))
			}
		}
	}
	t.Logf("load: %d requests in %s, SIGTERM %s after the start; statuses %s", n,
		time.Since(began).Round(time.Millisecond), termTime.Sub(began).Round(time.Millisecond), countByStatus(all))
	t.Logf("answered by the draining process: %d (%d of them in flight at SIGTERM), by the other: %d (%d moved after a refused or reset dial); failed: %d; rewrite statuses %v",
		viaA, inFlightAtTerm, viaB, moved, failed, rewrites)
	if !exited {
		t.Fatalf("vlproxy did not exit within -drain-timeout %s (+10s) after SIGTERM", drain)
	}
	if stopped > drain {
		t.Errorf("vlproxy took %s to exit after SIGTERM, over -drain-timeout %s", stopped, drain)
	}
	t.Logf("the draining process exited %s after SIGTERM (-drain-timeout %s), status %v", stopped.Round(time.Millisecond), drain, exitErr)
	if exitErr != nil {
		t.Errorf("vlproxy exit after SIGTERM: %v (want status 0: drain complete)", exitErr)
	}
	if failed > 0 {
		t.Errorf("%d failed requests, e.g.:\n%s", failed, strings.Join(fails, "\n"))
	}
	if inFlightAtTerm == 0 {
		t.Errorf("no request was in flight at SIGTERM: the test did not exercise the drain")
	}
	if viaB == 0 {
		t.Errorf("nothing reached the second process: the first one never stopped accepting")
	}
}
