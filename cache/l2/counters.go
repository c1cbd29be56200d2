package l2

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Counters are named generations shared by the fleet, with the time of each one's last bump:
// a replica bumps the names a write touched, and every replica reads the names a cached value
// depends on before serving it, so a write through one replica invalidates the others' values
// at once. Create them with Client.Counters.
//
// The counters live under {<Prefix>}:v1:gen:, without a TTL (keep maxmemory-policy at a
// volatile-* policy, so Redis evicts cached values and never counters). An incarnation number
// comes with every Load: it changes when Redis lost its data (a restart without persistence)
// and when any replica failed to publish a bump (it replaces the incarnation when Redis
// answers again), so values cached under older counters are never served after that; while
// Redis is down it is derived from the time the outage began, so each outage has its own.
type Counters struct {
	c        *Client
	prefix   string
	lost     atomic.Bool // a bump could not be published
	renewing atomic.Bool // a renew goroutine runs
}

// genPrefix starts every generation key (the counters, the incarnation, the clear generation).
// The braces are a Redis Cluster hash tag: all of them hash to one slot, so the one MGET per
// cached hit that reads them is legal on a cluster (keys of different slots are refused with
// CROSSSLOT).
func genPrefix(prefix string) string { return "{" + prefix + "}:v1:gen:" }

// Counters returns the fleet's write counters; all callers share one set.
func (c *Client) Counters() *Counters {
	k := &Counters{c: c, prefix: genPrefix(c.cfg.Prefix)}
	c.OnRejoin(func(ctx context.Context) {
		if k.lost.Load() {
			k.renewIncarnation(ctx)
		}
	})
	return k
}

// renewIncarnation publishes a new incarnation, which makes everything cached under the old
// counters unreachable fleet-wide; it clears lost on success.
func (k *Counters) renewIncarnation(ctx context.Context) bool {
	err := k.c.raw(ctx, "incarnation", func(ctx context.Context, r redis.UniversalClient) error {
		return r.Set(ctx, k.prefix+"incarnation", newIncarnation(), 0).Err()
	})
	if err == nil {
		k.lost.Store(false)
	}
	return err == nil
}

// renew retries renewIncarnation every ProbeEvery until it succeeds: after a bump that failed
// while Redis still counted as up (a timeout), no rejoin would come to publish it.
func (k *Counters) renew() {
	if !k.renewing.CompareAndSwap(false, true) {
		return
	}
	defer k.renewing.Store(false)
	for k.lost.Load() {
		if k.c.Up() && k.renewIncarnation(context.Background()) {
			return
		}
		select {
		case <-k.c.closed:
			return
		case <-time.After(k.c.cfg.ProbeEvery):
		}
	}
}

func newIncarnation() string {
	var b [8]byte
	rand.Read(b[:])
	return strconv.FormatUint(binary.LittleEndian.Uint64(b[:])|1, 10)
}

// Load appends to dst the incarnation, then for each name its generation and the unix
// nanoseconds of its last bump that was not visible at once (0 when none), in one round trip
// (MGET). ok is false when Redis cannot be read; dst then gains only a number naming the
// current outage.
func (k *Counters) Load(ctx context.Context, names []string, dst []uint64) ([]uint64, bool) {
	// The fleet's clear generation comes in the same MGET, so a clear through another replica
	// flushes this one's caches before the search that reads these counters goes on.
	keys := make([]string, 0, 2+2*len(names))
	keys = append(keys, k.prefix+"incarnation", k.c.clearKey)
	for _, n := range names {
		keys = append(keys, k.prefix+"g:"+n, k.prefix+"t:"+n)
	}
	var vals []any
	err := k.c.do(ctx, "load", func(ctx context.Context) error {
		var err error
		vals, err = k.c.rdb.MGet(ctx, keys...).Result()
		if err == nil && vals[0] == nil {
			// First use, or Redis lost its data: start a new incarnation (the first replica wins).
			p := k.c.rdb.Pipeline()
			p.SetNX(ctx, keys[0], newIncarnation(), 0)
			g := p.Get(ctx, keys[0])
			if _, err = p.Exec(ctx); err == nil {
				vals[0] = g.Val()
			}
		}
		return err
	})
	if err != nil {
		return append(dst, uint64(k.c.downSince.Load())|1<<63), false
	}
	k.c.observeClearValue(vals[1])
	vals = append(vals[:1], vals[2:]...)
	for _, v := range vals {
		s, _ := v.(string)
		n, _ := strconv.ParseUint(s, 10, 64)
		dst = append(dst, n)
	}
	return dst, true
}

// Bump increments each named generation; times[i] is the unix nanoseconds of a write the
// cluster may not show yet, or 0 for a visible one (a refresh). The time is written before the
// generation, so a reader that sees the new generation sees its time. A failed bump is tried
// once more; if that fails too it is remembered, and the fleet starts a new incarnation as soon
// as Redis takes writes again (at once if it still counts as up, else when it rejoins).
func (k *Counters) Bump(ctx context.Context, names []string, times []int64) error {
	bump := func(ctx context.Context) error {
		p := k.c.rdb.Pipeline()
		for i, n := range names {
			p.Set(ctx, k.prefix+"t:"+n, times[i], 0)
			p.Incr(ctx, k.prefix+"g:"+n)
		}
		_, err := p.Exec(ctx)
		return err
	}
	err := k.c.do(ctx, "bump", bump)
	if err != nil && k.c.Up() {
		// INCR is not idempotent, but a second bump only invalidates a little more.
		err = k.c.do(ctx, "bump", bump)
	}
	if err != nil {
		k.lost.Store(true)
		go k.renew()
	}
	return err
}

// Now is the time Bump callers record, in the fleet's one clock convention (unix nanoseconds).
func Now() int64 { return time.Now().UnixNano() }
