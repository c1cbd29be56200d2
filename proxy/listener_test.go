package proxy

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// gatedListener holds its first Accept until release is closed: connections pile up in the
// kernel's accept queue, as they do when the accept loop lags under load.
type gatedListener struct {
	*net.TCPListener
	release chan struct{}
}

func (l *gatedListener) Accept() (net.Conn, error) {
	<-l.release
	return l.TCPListener.Accept()
}

// Connections queued in the listen backlog when Shutdown starts are served, not reset: their
// clients have already sent their requests (the fault suite's SIGTERM test saw dozens of
// "connection reset by peer" per drain on a loaded machine before).
func TestShutdownServesTheBacklog(t *testing.T) {
	t.Run("accept loop resumes within the drain window", func(t *testing.T) {
		testShutdownServesTheBacklog(t, drainGrace+drainWindow/2)
	})
	// The accept loop is starved until the listener's deadline has passed: the connections
	// still queued are taken in the closing burst instead of being reset.
	t.Run("accept loop resumes after the drain window", func(t *testing.T) {
		testShutdownServesTheBacklog(t, drainGrace+drainWindow+200*time.Millisecond)
	})
}

func testShutdownServesTheBacklog(t *testing.T, stall time.Duration) {
	up := startFake(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(`{"ok":true}`) })
	cfg := DefaultConfig()
	cfg.Upstreams = []string{up.URL}
	cfg.HealthCheckInterval = 0
	s, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	gl := &gatedListener{TCPListener: ln, release: make(chan struct{})}
	served := make(chan error, 1)
	go func() { served <- s.Serve(gl) }()

	const n = 20
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("GET /idx/_doc/1 HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	time.Sleep(stall) // Shutdown has begun closing the listener (its deadline may have passed)
	close(gl.release)

	ok := 0
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Errorf("queued connection %d: %v", i, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			ok++
		}
	}
	if ok != n {
		t.Errorf("%d of %d queued requests were served", ok, n)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Errorf("still accepting after Shutdown")
	}
}
