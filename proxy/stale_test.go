package proxy

import (
	"bufio"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// staleUpstream answers each connection's first request with a keep-alive response, then closes
// the connection without saying so, as a restarted node or an idle timeout on the node's side
// does: the proxy's pooled connection is dead when it is next used.
func staleUpstream(t *testing.T) (url string, requests *atomic.Int64) {
	return startRaw(t, func(c net.Conn, _ *bufio.Reader) {
		c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}"))
		time.Sleep(20 * time.Millisecond) // long enough for the proxy to pool it
	})
}

// A GET on a pooled connection the node has closed meanwhile is sent again on a new
// connection: the client sees 200, not a 502, and the node got each request once it could read.
func TestStalePooledConnectionIsRetriedForReads(t *testing.T) {
	url, requests := staleUpstream(t)
	// A RetryWait longer than the test's deadline: the retry must not wait for it.
	p := startProxy(t, []string{url}, func(c *Config) { c.HealthCheckInterval, c.RetryWait = 0, time.Minute })
	for i := 0; i < 5; i++ {
		start := time.Now()
		resp := p.do(t, "GET", "/idx/_doc/1", nil)
		if d := time.Since(start); d > 30*time.Second {
			t.Fatalf("GET %d waited %s: the stale connection's retry waited for RetryWait", i, d)
		}
		if resp.StatusCode() != 200 || string(resp.Body()) != `{"ok":true}` {
			t.Fatalf("GET %d through a stale pooled connection: %d %s", i, resp.StatusCode(), resp.Body())
		}
		time.Sleep(50 * time.Millisecond) // the node has closed the connection by now
	}
	if n := requests.Load(); n != 5 {
		t.Fatalf("the node read %d requests, want 5", n)
	}
	if !p.Logs.contains("retrying an idempotent read") {
		t.Fatalf("no retry logged: the test did not meet a stale connection\n%s", p.Logs)
	}
}
