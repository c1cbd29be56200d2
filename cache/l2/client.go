// Package l2 is the shared tier of a vlproxy fleet, over Redis (or Valkey): a second cache
// level behind each process's in-process caches (Tier, a cache.Tier), fleet-wide single-flight
// locks, named write counters that every replica reads before it serves a cached result
// (Counters), and fleet-wide clears (Client.Clear, Client.OnClear). It knows nothing of
// Elasticsearch: keys, values and counter names are bytes.
//
// Redis is an optimisation, never a dependency of a request: every operation has a short
// deadline, and a fault or a timeout is a miss, a lost lock or a counter that cannot be read.
// After Config.DownAfter consecutive faults the client is down: operations return at once
// without touching the network, and a probe pings Redis every Config.ProbeEvery; when it
// answers the client is up again and the OnRejoin callbacks run.
package l2

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"
)

var (
	upGauge = promauto.NewGauge(prometheus.GaugeOpts{Name: "vlproxy_redis_up",
		Help: "1 while the shared tier (Redis) answers, 0 while the caches run L1-only and invalidation per instance."})
	opDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{Name: "vlproxy_redis_request_duration_seconds",
		Help:    "Duration of Redis operations, by operation.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25}}, []string{"op"})
	opErrors = promauto.NewCounterVec(prometheus.CounterOpts{Name: "vlproxy_redis_errors_total",
		Help: "Redis operations that failed or timed out (each one a miss, never a failed request), by operation."}, []string{"op"})
	skipped = promauto.NewCounterVec(prometheus.CounterOpts{Name: "vlproxy_redis_skipped_total",
		Help: "Redis operations not attempted because Redis was marked down, by operation."}, []string{"op"})
	transitions = promauto.NewCounterVec(prometheus.CounterOpts{Name: "vlproxy_redis_transitions_total",
		Help: "Changes of the shared tier's state, by new state (up, down)."}, []string{"state"})
)

func init() {
	// Every operation's error and skip counters exist from the start at 0.
	for _, op := range []string{"get", "set", "lock", "unlock", "await", "load", "bump", "incarnation", "clear"} {
		opErrors.WithLabelValues(op)
		skipped.WithLabelValues(op)
	}
	transitions.WithLabelValues("up")
	transitions.WithLabelValues("down")
}

// errDown is returned by operations while the client is down.
var errDown = errors.New("cannot use redis: marked down after repeated faults")

// Client is one connection pool to Redis with the fault handling described in the package
// doc. Create it with New; it is safe for concurrent use.
type Client struct {
	cfg Config
	rdb redis.UniversalClient
	log *slog.Logger
	// addr is what health shows: the URL without credentials.
	addr string

	up        atomic.Bool
	failures  atomic.Int32
	downSince atomic.Int64 // unix nanoseconds; 0 while up
	lastErr   atomic.Pointer[string]
	errors    atomic.Uint64

	// The fleet's clear generation as this replica knows it, and its keys (see clear.go).
	clearGen            atomic.Uint64
	pendingClear        atomic.Bool // a clear not yet published
	retrying            atomic.Bool // a retryClear goroutine runs
	clearKey, clearChan string

	mu       sync.Mutex
	onRejoin []func(ctx context.Context)
	onClear  []func()
	probing  bool
	closed   chan struct{}
	closeOne sync.Once
}

// New connects to cfg.URL. It does not fail when Redis is unreachable (the client then starts
// down and probes); only a malformed URL is an error.
func New(cfg Config, log *slog.Logger) (*Client, error) {
	cfg = cfg.withDefaults()
	opts, addr, err := parseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	opts.DialTimeout = 4 * cfg.Timeout
	opts.ReadTimeout = cfg.Timeout
	opts.WriteTimeout = cfg.Timeout
	opts.ContextTimeoutEnabled = true
	opts.MaxRetries = -1 // a retry doubles the wait; a miss is cheaper
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{cfg: cfg, rdb: redis.NewUniversalClient(opts), log: log, addr: addr, closed: make(chan struct{}),
		clearKey: genPrefix(cfg.Prefix) + "clear", clearChan: cfg.Prefix + ":v1:clear"}
	c.up.Store(true)
	upGauge.Set(1)
	ctx, cancel := context.WithTimeout(context.Background(), 4*cfg.Timeout)
	defer cancel()
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		c.markDown(err)
	} else {
		// The Tier namespace depends on the clear generation: learn it before the first lookup.
		c.do(ctx, "clear", func(ctx context.Context) error { return c.syncClear(ctx, c.rdb) })
	}
	c.OnRejoin(func(ctx context.Context) {
		c.raw(ctx, "clear", func(ctx context.Context, r redis.UniversalClient) error { return c.syncClear(ctx, r) })
	})
	go c.listenClears()
	return c, nil
}

// parseURL accepts redis://, rediss:// and, for a cluster, several comma-separated hosts.
func parseURL(raw string) (*redis.UniversalOptions, string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return nil, "", fmt.Errorf("cannot use redis URL %q: want redis://host:port/db or rediss://… (several host:port separated by commas for a cluster)", redactURL(raw))
	}
	safe := u.Scheme + "://" + u.Host + u.Path
	hosts := strings.Split(u.Host, ",")
	one := *u
	one.Host = hosts[0]
	o, err := redis.ParseURL(one.String())
	if err != nil {
		return nil, "", fmt.Errorf("cannot use redis URL %q: %w", safe, err)
	}
	uo := &redis.UniversalOptions{Addrs: hosts, DB: o.DB, Username: o.Username, Password: o.Password, TLSConfig: o.TLSConfig, Protocol: 2}
	if len(hosts) > 1 {
		uo.IsClusterMode = true
		uo.DB = 0
	}
	return uo, safe, nil
}

func redactURL(raw string) string {
	if i := strings.LastIndexByte(raw, '@'); i >= 0 {
		if j := strings.Index(raw, "://"); j >= 0 && j < i {
			return raw[:j+3] + "…@" + raw[i+1:]
		}
	}
	return raw
}

// Close stops the probe and closes the pool.
func (c *Client) Close() error {
	c.closeOne.Do(func() { close(c.closed) })
	return c.rdb.Close()
}

// Up reports whether Redis is in use.
func (c *Client) Up() bool { return c.up.Load() }

// OnRejoin registers fn to run (with a deadline of a few timeouts) each time Redis answers
// again after being down.
func (c *Client) OnRejoin(fn func(ctx context.Context)) {
	c.mu.Lock()
	c.onRejoin = append(c.onRejoin, fn)
	c.mu.Unlock()
}

// Health is the shared tier's state for /_vlproxy/health.
type Health struct {
	State     string     `json:"state"` // up or down
	Addr      string     `json:"addr"`
	DownSince *time.Time `json:"down_since,omitempty"`
	LastError string     `json:"last_error,omitempty"`
	Errors    uint64     `json:"errors"`
}

// Health returns the current state.
func (c *Client) Health() Health {
	h := Health{State: "up", Addr: c.addr, Errors: c.errors.Load()}
	if !c.up.Load() {
		h.State = "down"
		if ds := c.downSince.Load(); ds > 0 {
			t := time.Unix(0, ds).UTC()
			h.DownSince = &t
		}
	}
	if e := c.lastErr.Load(); e != nil {
		h.LastError = *e
	}
	return h
}

// do runs one operation under the client's deadline and fault accounting. redis.Nil (a
// missing key) is not a fault.
func (c *Client) do(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	if !c.up.Load() {
		skipped.WithLabelValues(op).Inc()
		return errDown
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	start := time.Now()
	err := fn(ctx)
	opDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err == nil || errors.Is(err, redis.Nil) {
		c.failures.Store(0)
		return err
	}
	opErrors.WithLabelValues(op).Inc()
	c.errors.Add(1)
	msg := op + ": " + err.Error()
	c.lastErr.Store(&msg)
	if int(c.failures.Add(1)) >= c.cfg.DownAfter {
		c.markDown(err)
	}
	return err
}

func (c *Client) markDown(err error) {
	if !c.up.CompareAndSwap(true, false) {
		return
	}
	c.downSince.Store(time.Now().UnixNano())
	msg := err.Error()
	c.lastErr.Store(&msg)
	upGauge.Set(0)
	transitions.WithLabelValues("down").Inc()
	c.log.Warn("redis is down: caches run L1-only and invalidation per instance until it answers", "redis", c.addr, "error", msg)
	c.mu.Lock()
	start := !c.probing
	c.probing = true
	c.mu.Unlock()
	if start {
		go c.probe()
	}
}

func (c *Client) probe() {
	t := time.NewTicker(c.cfg.ProbeEvery)
	defer t.Stop()
	for {
		select {
		case <-c.closed:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 4*c.cfg.Timeout)
		err := c.rdb.Ping(ctx).Err()
		cancel()
		if err != nil {
			continue
		}
		c.mu.Lock()
		c.probing = false
		fns := append([]func(context.Context){}, c.onRejoin...)
		c.mu.Unlock()
		c.failures.Store(0)
		// Rejoin callbacks run before the tier is used again, so that what they publish (an
		// invalidation missed while down) is in place before this replica reads from Redis.
		ctx, cancel = context.WithTimeout(context.Background(), 4*c.cfg.Timeout)
		for _, fn := range fns {
			fn(ctx)
		}
		cancel()
		c.downSince.Store(0)
		c.up.Store(true)
		upGauge.Set(1)
		transitions.WithLabelValues("up").Inc()
		c.log.Info("redis answers again: the shared tier is back in use", "redis", c.addr)
		return
	}
}

// raw runs fn on the pool directly: for rejoin callbacks, which run while the client still
// counts as down.
func (c *Client) raw(ctx context.Context, op string, fn func(ctx context.Context, r redis.UniversalClient) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	err := fn(ctx, c.rdb)
	if err != nil && !errors.Is(err, redis.Nil) {
		opErrors.WithLabelValues(op).Inc()
	}
	return err
}
