package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// node is one upstream ES/OpenSearch node with its own keep-alive connection pool.
type node struct {
	url    string
	addr   string
	client *fasthttp.HostClient
	m      nodeMetrics

	maxConns     int64
	healthy      atomic.Bool  // the active checks' verdict (fails/passes in a row); true at start
	ejectedUntil atomic.Int64 // unix nanoseconds; passive ejection after a refused connection
	inFlight     atomic.Int64
	lastCheck    atomic.Int64 // unix nanoseconds of the last active check
	lastErr      atomic.Pointer[string]
	// Consecutive failed and passed active checks; only the node's check goroutine writes them.
	fails, passes atomic.Int32
}

func newNode(rawURL string, cfg *Config, deadlines *sweeper) (*node, error) {
	addr, tls, err := parseUpstream(rawURL)
	if err != nil {
		return nil, err
	}
	n := &node{url: rawURL, addr: addr, maxConns: int64(cfg.MaxConnsPerUpstream), m: newNodeMetrics(addr)}
	dialTimeout := cfg.DialTimeout
	n.client = &fasthttp.HostClient{
		Addr:  addr,
		IsTLS: tls,
		// Dial errors are wrapped so the retry loop can tell "never sent" from "sent and failed".
		DialTimeout: func(addr string, timeout time.Duration) (net.Conn, error) {
			if timeout <= 0 || timeout > dialTimeout {
				timeout = dialTimeout
			}
			c, err := fasthttp.DialTimeout(addr, timeout)
			if err != nil {
				return nil, &dialError{addr: addr, err: err}
			}
			return deadlines.wrap(c), nil
		},
		MaxConns:            cfg.MaxConnsPerUpstream,
		MaxIdleConnDuration: cfg.MaxIdleConnDuration,
		MaxConnWaitTimeout:  cfg.DialTimeout,
		// The proxy retries itself, knowing which requests are safe to repeat.
		MaxIdemponentCallAttempts: 1,
		RetryIfErr:                func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
		ReadBufferSize:            int(cfg.MaxHeaderSize),
		WriteBufferSize:           32 << 10,
		MaxResponseBodySize:       int(cfg.MaxBufferedResponseSize),
		NoDefaultUserAgentHeader:  true,
		DisablePathNormalizing:    true,
		ConnPoolStrategy:          fasthttp.LIFO,
	}
	if tls && cfg.UpstreamCAFile != "" {
		if n.client.TLSConfig, err = upstreamTLS(cfg.UpstreamCAFile); err != nil {
			return nil, err
		}
	}
	n.healthy.Store(true)
	n.m.healthy.Set(1)
	return n, nil
}

// upstreamTLS verifies https nodes against the CAs of a PEM file.
func upstreamTLS(caFile string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("cannot read the upstream CA file (upstream_ca_file): %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("cannot use the upstream CA file %s (upstream_ca_file): no PEM certificate in it", caFile)
	}
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, nil
}

// Available reports whether the node may take a request now: healthy, not ejected, pool not full.
// Balancing and health meet only here (and in hasRoom, when the proxy fails open).
func (n *node) Available() bool {
	if !n.healthy.Load() || n.inFlight.Load() >= n.maxConns {
		return false
	}
	// Most of the time no node is ejected: read the clock only when one is, and clear an
	// ejection that has run out so the clock is not read again for it.
	eu := n.ejectedUntil.Load()
	if eu == 0 {
		return true
	}
	if time.Now().UnixNano() < eu {
		return false
	}
	if n.ejectedUntil.CompareAndSwap(eu, 0) {
		n.m.healthy.Set(1)
	}
	return true
}

// hasRoom reports whether the node's connection pool can take one more request, whatever its
// health: the choice left when no node is Available and the proxy fails open.
func (n *node) hasRoom() bool { return n.inFlight.Load() < n.maxConns }

// eject takes the node out of rotation for d after a refused connection.
func (n *node) eject(d time.Duration, reason string) bool {
	if d <= 0 {
		return false
	}
	until := time.Now().Add(d).UnixNano()
	prev := n.ejectedUntil.Load()
	n.lastErr.Store(&reason)
	if prev >= until || !n.ejectedUntil.CompareAndSwap(prev, until) {
		return false
	}
	n.m.ejection.Inc()
	n.m.healthy.Set(0)
	return true
}

// recordCheck counts one active check result. A healthy node is marked down after fails
// failures in a row, an unhealthy one up after passes passes in a row, so one missed check
// does not flap the node. A passing check also ends a passive ejection at once: the node has
// just accepted a connection and answered.
func (n *node) recordCheck(ok bool, reason string, fails, passes int) (changed bool) {
	n.lastCheck.Store(time.Now().UnixNano())
	healthy := n.healthy.Load()
	if ok {
		n.fails.Store(0)
		p := n.passes.Add(1)
		n.ejectedUntil.Store(0)
		if !healthy && int(p) >= passes {
			healthy, changed = true, true
		}
		if healthy {
			n.lastErr.Store(nil)
		}
	} else {
		n.passes.Store(0)
		f := n.fails.Add(1)
		n.lastErr.Store(&reason)
		if healthy && int(f) >= fails {
			healthy, changed = false, true
		}
	}
	n.healthy.Store(healthy)
	if healthy && n.ejectedUntil.Load() == 0 {
		n.m.healthy.Set(1)
	} else {
		n.m.healthy.Set(0)
	}
	return changed
}
