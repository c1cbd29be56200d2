package faults

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vlproxy/vlproxy/testenv"
)

// slowClients holds n connections to addr that send a request one small piece every tick and
// never finish it: header slowloris (the request head never ends) or body slowloris (the head
// announces a body that trickles in). stop closes them and reports how many were still open
// (every write so far accepted) at the end.
func slowClients(t *testing.T, addr string, heads, bodies int, tick time.Duration) (stop func() (open int)) {
	t.Helper()
	done := make(chan struct{})
	var wg sync.WaitGroup
	var alive atomic.Int64
	run := func(head string, piece string) {
		defer wg.Done()
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return
		}
		defer c.Close()
		if _, err := c.Write([]byte(head)); err != nil {
			return
		}
		alive.Add(1)
		tk := time.NewTicker(tick)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
			}
			c.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := c.Write([]byte(piece)); err != nil {
				alive.Add(-1)
				return
			}
		}
	}
	for i := range heads {
		wg.Add(1)
		go run(fmt.Sprintf("GET /_search HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow-%d: ", i), "a")
	}
	for range bodies {
		wg.Add(1)
		go run("POST /_search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{\"query\":", " ")
	}
	return func() int {
		n := int(alive.Load())
		close(done)
		wg.Wait()
		return n
	}
}

// TestSlowClientsKeepOthersLatency: hundreds of slowloris connections (headers and bodies that
// trickle in, never finishing) must not slow down other clients: the p99 latency of an
// open-loop stream of searches under the attack stays within a generous ratio of the same
// stream's p99 without it, measured in the same test before and after. No absolute time is
// asserted.
func TestSlowClientsKeepOthersLatency(t *testing.T) {
	url := testenv.URL(t)
	index := shopIndex(t, url)
	p := startVLProxy(t, "-upstream", url, "-result-cache-size", "0")
	c := newClient(30 * time.Second)
	body := []byte(`{"query":{"match":{"title":"dress"}},"size":3}`)
	for range 20 { // warm connections and the node's caches
		must(t, c, "POST", p.URL+"/"+index+"/_search", body)
	}
	measure := func(phase string) (p99 time.Duration) {
		const n, interval = 300, 7 * time.Millisecond
		lat := make([]time.Duration, n)
		var failed atomic.Int64
		openLoop(n, interval, func(i int) {
			r := call(c, "POST", p.URL+"/"+index+"/_search", body)
			lat[i] = r.Took
			if r.Err != nil || r.Status != 200 {
				failed.Add(1)
			}
		})
		p99 = percentile(lat, 99)
		t.Logf("%s: %d searches, %d failed, p50 %s, p99 %s, max %s", phase, n, failed.Load(),
			percentile(lat, 50).Round(10*time.Microsecond), p99.Round(10*time.Microsecond), percentile(lat, 100).Round(10*time.Microsecond))
		if failed.Load() > 0 {
			t.Errorf("%s: %d searches failed", phase, failed.Load())
		}
		return p99
	}
	before := measure("baseline before")
	const heads, bodies = 300, 150
	stop := slowClients(t, strings.TrimPrefix(p.URL, "http://"), heads, bodies, 100*time.Millisecond)
	time.Sleep(500 * time.Millisecond)
	under := measure(fmt.Sprintf("under %d slow-header and %d slow-body connections", heads, bodies))
	open := stop()
	after := measure("baseline after")
	base := max(before, after)
	const ratio = 5.0
	t.Logf("slow connections still open at the end of the attack: %d of %d; p99 under attack / baseline p99 = %.2f (bound %.0f)",
		open, heads+bodies, float64(under)/float64(base), ratio)
	if open < (heads+bodies)*9/10 {
		t.Errorf("only %d of %d slow connections were held open: the attack did not take place", open, heads+bodies)
	}
	if float64(under) > ratio*float64(base) {
		t.Errorf("p99 under slow clients %s is over %.0f× the baseline p99 %s", under, ratio, base)
	}
}
