package cache

import (
	"context"
	"time"
)

// Tier is a second cache level shared by several processes (cache/l2 implements it over
// Redis). Do consults it on an in-process miss and stores what it computes there, and it lets
// the processes agree on one filler per key. A Tier never fails a caller: a fault or a timeout
// is a miss, a lost lock, or a value not stored.
type Tier interface {
	// Get returns the value stored under key; false on a miss or a fault. The bytes belong to
	// the caller.
	Get(ctx context.Context, key []byte) ([]byte, bool)
	// Set stores val under key for ttl (a negative ttl: the tier's longest). It may refuse
	// values over its size bound.
	Set(ctx context.Context, key, val []byte, ttl time.Duration)
	// Acquire tries to become the one process that computes key. leader is true when it won,
	// and also when the tier cannot tell (a fault); release gives the lock up early.
	Acquire(ctx context.Context, key []byte) (release func(), leader bool)
	// Await waits, within the tier's own bound and ctx, for the leader of key to store its
	// value; false when it did not appear (the leader failed, was too slow, or a fault).
	Await(ctx context.Context, key []byte) ([]byte, bool)
}

// SetTier puts t behind the cache's single-flight fills (Do); nil removes it. Call it before
// the cache is used. Get and Set stay in-process.
func (c *Cache) SetTier(t Tier) { c.tier = t }

// fillThrough is what a Do fill runs: with a tier, the shared value if there is one, else one
// computation fleet-wide (the other processes wait for its value, then fall back to computing
// themselves), stored in both levels by the caller and here. gen is the cache generation the
// fill started in.
func (c *Cache) fillThrough(ctx context.Context, gen uint64, key []byte, fn Filler) ([]byte, error) {
	t := c.tier
	if t == nil {
		return call(ctx, fn)
	}
	if v, ok := t.Get(ctx, key); ok {
		return v, nil
	}
	release, leader := t.Acquire(ctx, key)
	if !leader {
		if v, ok := t.Await(ctx, key); ok {
			return v, nil
		}
		// The leader gave up or is too slow: compute here, but do not wait for anyone again.
		release = func() {}
	}
	defer release()
	val, err := call(ctx, fn)
	// A value computed across a Flush (a fleet-wide clear seen meanwhile) may predate the
	// clear: it is not published under the fleet's new namespace, as it is not kept in L1.
	if err == nil && c.gen.Load() == gen {
		t.Set(ctx, key, val, c.cfg.TTL)
	}
	return val, err
}
