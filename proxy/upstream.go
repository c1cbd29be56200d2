package proxy

import (
	"net"
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
	healthy      atomic.Bool  // result of the last active check; true until a check fails
	ejectedUntil atomic.Int64 // unix nanoseconds; passive ejection after a refused connection
	inFlight     atomic.Int64
	lastCheck    atomic.Int64 // unix nanoseconds of the last active check
	lastErr      atomic.Pointer[string]
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
	n.healthy.Store(true)
	n.m.healthy.Set(1)
	return n, nil
}

// Available reports whether the node may take a request now: healthy, not ejected, pool not full.
// Balancing and health meet only here.
func (n *node) Available() bool {
	if !n.healthy.Load() || n.inFlight.Load() >= n.maxConns {
		return false
	}
	// Most of the time no node is ejected: read the clock only when one is.
	eu := n.ejectedUntil.Load()
	return eu == 0 || time.Now().UnixNano() >= eu
}

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

// setHealth records an active check result; a passing check also ends a passive ejection.
func (n *node) setHealth(ok bool, reason string) (changed bool) {
	n.lastCheck.Store(time.Now().UnixNano())
	if ok {
		n.ejectedUntil.Store(0)
		n.lastErr.Store(nil)
		n.m.healthy.Set(1)
	} else {
		n.lastErr.Store(&reason)
		n.m.healthy.Set(0)
	}
	return n.healthy.Swap(ok) != ok
}
