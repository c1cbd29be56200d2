package faults

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// badUpstream is a loopback TCP server that reads one request per connection and then answers
// with answer (nil: never answers, keeping the connection open until Close).
type badUpstream struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startBadUpstream(t *testing.T, answer []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &badUpstream{ln: ln}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.conns = append(u.conns, c)
			u.mu.Unlock()
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				// Read the request head (enough to know it arrived), then misbehave.
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					c.Close()
					return
				}
				if answer != nil {
					c.Write(answer)
					c.Close()
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		u.mu.Lock()
		for _, c := range u.conns {
			c.Close()
		}
		u.mu.Unlock()
		u.wg.Wait()
	})
	return "http://" + ln.Addr().String()
}

// TestUpstreamHangsOrAnswersGarbage: an upstream that accepts and never answers is a 504, one
// that answers something that is not HTTP (or breaks off its response) is a 502, ES-shaped
// either way, for pass-through reads, searches (the pipeline) and writes, and within the
// request deadline: reads are retried until -request-timeout, writes are not retried.
func TestUpstreamHangsOrAnswersGarbage(t *testing.T) {
	const (
		attempt  = 700 * time.Millisecond
		deadline = 2 * time.Second
		slack    = 3 * time.Second // scheduling on a shared machine; the bound checked is deadline+slack
	)
	kinds := []struct {
		name   string
		answer []byte
		status int
	}{
		{"hangs", nil, 504},
		{"not HTTP", []byte("\x00\x01\x02 this is not HTTP at all\r\n\r\n"), 502},
		{"bad status line", []byte("HTTP/1.1 two hundred OK\r\nContent-Length: 2\r\n\r\n{}"), 502},
		{"broken-off body", []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"hits\":{\"hits\":["), 502},
		{"closes at once", []byte{}, 502},
	}
	requests := []struct {
		method, path, body string
		read               bool
	}{
		{"GET", "/", "", true},
		{"GET", "/shop/_doc/1", "", true},
		{"POST", "/shop/_search", `{"query":{"match":{"title":"red"}}}`, true},
		{"POST", "/shop/_msearch", "{}\n{\"query\":{\"match_all\":{}}}\n", true},
		{"PUT", "/shop/_doc/1", `{"title":"x"}`, false},
		{"POST", "/shop/_bulk", "{\"index\":{}}\n{\"title\":\"x\"}\n", false},
	}
	c := newClient(30 * time.Second)
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			up := startBadUpstream(t, k.answer)
			p := startVLProxy(t, "-upstream", up, "-result-cache-size", "0",
				"-upstream-timeout", attempt.String(), "-request-timeout", deadline.String(), "-eject-duration", "0s")
			for _, rq := range requests {
				var body []byte
				if rq.body != "" {
					body = []byte(rq.body)
				}
				r := call(c, rq.method, p.URL+rq.path, body)
				what := k.name + ": " + rq.method + " " + rq.path
				if r.Err != nil {
					t.Errorf("%s: no HTTP answer: %v", what, r.Err)
					continue
				}
				if r.Status != k.status {
					t.Errorf("%s: status %d, want %d: %s", what, r.Status, k.status, tail(string(r.Body), 300))
					continue
				}
				typ := esError(t, what, k.status, r.Body)
				if r.Took > deadline+slack {
					t.Errorf("%s: answered after %s, past the %s deadline", what, r.Took.Round(time.Millisecond), deadline)
				}
				if k.answer == nil && r.Took < attempt {
					t.Errorf("%s: a 504 after %s, before even one attempt's timeout (%s)", what, r.Took, attempt)
				}
				t.Logf("%s: %d %s after %s", what, r.Status, typ, r.Took.Round(time.Millisecond))
			}
		})
	}
}
