package l2

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Fleet-wide clears. A clear (POST /_vlproxy/cache/_clear on any replica) raises one
// generation in Redis, {<Prefix>}:v1:gen:clear, and every replica flushes its in-process caches
// once it sees the generation rise. Tier keys include the generation, so the shared values
// written before a clear are unreachable at once (they expire with their TTL) without a scan.
//
// Replicas see a rise three ways: the Counters' MGET before every cached search reads it (so
// the very next search through any replica runs against cleared caches), every L2 lookup reads
// it in the same round trip, and a pub/sub message on <Prefix>:v1:clear tells idle replicas at
// once (a replica that lost its subscription reads the generation when it subscribes again).
//
// The generation only rises: raiseScript writes max(stored, known)+step, so a Redis that lost
// its data is given back the highest generation a replica knew instead of restarting below it.

// raiseScript sets KEYS[1] to max(its value, ARGV[1]) + ARGV[2] and returns the result.
var raiseScript = redis.NewScript(`local g = tonumber(redis.call("GET", KEYS[1]) or "0") or 0
local n = math.max(g, tonumber(ARGV[1])) + tonumber(ARGV[2])
if n ~= g then redis.call("SET", KEYS[1], n) end
return n`)

// OnClear registers fn to run when this replica learns of a fleet-wide clear (its own ones
// included): it should flush the in-process caches. fn must be quick and must not call Redis.
func (c *Client) OnClear(fn func()) {
	c.mu.Lock()
	c.onClear = append(c.onClear, fn)
	c.mu.Unlock()
}

// Clear flushes this replica's in-process caches (the OnClear callbacks), raises the fleet's
// clear generation and tells the subscribed replicas. It returns the new generation and how
// many replicas (this one included) were subscribed when it was published; in Redis Cluster
// only the subscribers of the node that took the message are counted. Told is a report, not
// the guarantee: every replica also reads the generation before its next cached search and
// with every L2 lookup. When Redis cannot be reached the error is returned, and the
// fleet-wide clear is published as soon as Redis takes writes again.
func (c *Client) Clear(ctx context.Context) (generation uint64, told int64, err error) {
	c.runClear()
	err = c.do(ctx, "clear", func(ctx context.Context) error {
		var err error
		generation, told, err = c.publishClear(ctx, c.rdb)
		return err
	})
	if err != nil {
		c.pendingClear.Store(true)
		if c.up.Load() {
			go c.retryClear() // a timeout while up: no rejoin will come to publish it
		}
	}
	return generation, told, err
}

// publishClear raises the generation and publishes it; r is the pool (raw during a rejoin).
// The caches were flushed when the clear was asked for, so they are not flushed again here.
func (c *Client) publishClear(ctx context.Context, r redis.UniversalClient) (generation uint64, told int64, err error) {
	g, err := raiseScript.Run(ctx, r, []string{c.clearKey}, c.clearGen.Load(), 1).Uint64()
	if err != nil {
		return 0, 0, err
	}
	c.pendingClear.Store(false)
	c.raiseClear(g)
	// The generation is what clears the fleet; a lost message only delays the flush of idle
	// replicas (to their next search or L2 lookup), so it does not fail the clear.
	n, _ := r.Publish(ctx, c.clearChan, strconv.FormatUint(g, 10)).Result()
	return g, n, nil
}

// retryClear publishes a pending clear every ProbeEvery until it is published or the client
// closes.
func (c *Client) retryClear() {
	if !c.retrying.CompareAndSwap(false, true) {
		return
	}
	defer c.retrying.Store(false)
	for c.pendingClear.Load() {
		select {
		case <-c.closed:
			return
		case <-time.After(c.cfg.ProbeEvery):
		}
		if c.up.Load() {
			c.do(context.Background(), "clear", func(ctx context.Context) error {
				_, _, err := c.publishClear(ctx, c.rdb)
				return err
			})
		}
	}
}

// ClearGeneration is the fleet clear generation this replica knows.
func (c *Client) ClearGeneration() uint64 { return c.clearGen.Load() }

// observeClear takes in a clear generation read from Redis: when it is above the one known,
// it becomes the known one and the in-process caches are flushed. Lower values (a Redis that
// lost its data, a late message) change nothing.
func (c *Client) observeClear(g uint64) {
	if c.raiseClear(g) {
		c.runClear()
	}
}

// raiseClear makes g the known generation when it is higher; it reports whether it was.
func (c *Client) raiseClear(g uint64) bool {
	for {
		known := c.clearGen.Load()
		if g <= known {
			return false
		}
		if c.clearGen.CompareAndSwap(known, g) {
			return true
		}
	}
}

func (c *Client) runClear() {
	c.mu.Lock()
	fns := append([]func(){}, c.onClear...)
	c.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// observeClearValue is observeClear for a value as Redis returns it (nil when the key is missing).
func (c *Client) observeClearValue(v any) {
	s, _ := v.(string)
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		c.observeClear(n)
	}
}

// syncClear reads the generation, giving Redis back the one known when it has a lower one
// (it lost its data), so replicas started since agree on the Tier namespace.
func (c *Client) syncClear(ctx context.Context, r redis.UniversalClient) error {
	if c.pendingClear.Load() {
		_, _, err := c.publishClear(ctx, r)
		return err
	}
	g, err := raiseScript.Run(ctx, r, []string{c.clearKey}, c.clearGen.Load(), 0).Uint64()
	if err == nil {
		c.observeClear(g)
	}
	return err
}

// listenClears follows the clear channel until Close. go-redis subscribes again by itself
// after a lost connection and then delivers a new subscription confirmation: each one is a
// cue to read the generation, which covers the clears published while unsubscribed.
func (c *Client) listenClears() {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-c.closed; cancel() }()
	ps := c.rdb.Subscribe(ctx, c.clearChan)
	defer ps.Close()
	for {
		msg, err := ps.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && c.up.Load() {
				c.do(ctx, "clear", func(ctx context.Context) error { return c.syncClear(ctx, c.rdb) })
			}
		case *redis.Message:
			if n, err := strconv.ParseUint(m.Payload, 10, 64); err == nil {
				c.observeClear(n)
			}
		}
		if err != nil {
			// Redis is unreachable; go-redis reconnects on the next Receive. Do not spin.
			select {
			case <-c.closed:
				return
			case <-time.After(c.cfg.ProbeEvery):
			}
		}
	}
}
