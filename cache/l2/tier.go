package l2

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"
)

// valueVersion starts every stored value; a value with another first byte is a miss, so a
// fleet can roll to a new encoding without reading old bytes as new ones.
const valueVersion byte = 1

var (
	tierLookups = promauto.NewCounterVec(prometheus.CounterOpts{Name: "vlproxy_l2_lookups_total",
		Help: "Shared-tier lookups after an in-process miss, by cache and result (hit, miss, error)."}, []string{"cache", "result"})
	tierStores = promauto.NewCounterVec(prometheus.CounterOpts{Name: "vlproxy_l2_stores_total",
		Help: "Values written to the shared tier, by cache and result (stored, refused over max_value_bytes, error)."}, []string{"cache", "result"})
	tierFills = promauto.NewCounterVec(prometheus.CounterOpts{Name: "vlproxy_l2_fills_total",
		Help: "Fleet-wide single-flight outcomes, by cache and role: leader (computed the value), waited (got the leader's value), fallback (waited in vain and computed it too), unlocked (Redis could not tell; computed)."},
		[]string{"cache", "role"})
)

// Tier is one named cache's shared level; it implements cache.Tier. Create it with
// Client.Tier.
type Tier struct {
	c      *Client
	name   string
	prefix string // <Prefix>:v1:<name>:

	hit, miss, lookupErr, stored, refused, storeErr prometheus.Counter
	leader, waited, fallback, unlocked              prometheus.Counter
}

// Tier returns the shared level of the cache called name (its keys do not collide with other
// names).
func (c *Client) Tier(name string) *Tier {
	return &Tier{c: c, name: name, prefix: c.cfg.Prefix + ":v1:" + name + ":",
		hit: tierLookups.WithLabelValues(name, "hit"), miss: tierLookups.WithLabelValues(name, "miss"),
		lookupErr: tierLookups.WithLabelValues(name, "error"),
		stored:    tierStores.WithLabelValues(name, "stored"), refused: tierStores.WithLabelValues(name, "refused"),
		storeErr: tierStores.WithLabelValues(name, "error"),
		leader:   tierFills.WithLabelValues(name, "leader"), waited: tierFills.WithLabelValues(name, "waited"),
		fallback: tierFills.WithLabelValues(name, "fallback"), unlocked: tierFills.WithLabelValues(name, "unlocked"),
	}
}

// key is <Prefix>:v1:<name>:<clear generation>:<key>: a fleet-wide clear moves every replica
// to a new namespace, and the values of the old one are left to expire.
func (t *Tier) key(key []byte) string {
	return t.prefix + strconv.FormatUint(t.c.clearGen.Load(), 10) + ":" + string(key)
}

func (t *Tier) lockKey(key []byte) string {
	return t.prefix + strconv.FormatUint(t.c.clearGen.Load(), 10) + ":lock:" + string(key)
}

// Get implements cache.Tier.
func (t *Tier) Get(ctx context.Context, key []byte) ([]byte, bool) {
	v, ok, err := t.get(ctx, key)
	switch {
	case err != nil:
		t.lookupErr.Inc()
	case ok:
		t.hit.Inc()
	default:
		t.miss.Inc()
	}
	return v, ok
}

// get reads the value and, in the same round trip, the fleet's clear generation: a value read
// under a generation the fleet has left is a miss (and this replica's caches are flushed).
func (t *Tier) get(ctx context.Context, key []byte) ([]byte, bool, error) {
	var b []byte
	gen := t.c.clearGen.Load()
	var seen string
	err := t.c.do(ctx, "get", func(ctx context.Context) error {
		p := t.c.rdb.Pipeline()
		g := p.Get(ctx, t.c.clearKey)
		v := p.Get(ctx, t.key(key))
		if _, err := p.Exec(ctx); err != nil && err != redis.Nil {
			return err
		}
		seen = g.Val()
		var err error
		b, err = v.Bytes()
		return err
	})
	t.c.observeClearValue(seen)
	if err != nil {
		if err == redis.Nil {
			return nil, false, nil
		}
		return nil, false, err
	}
	if t.c.clearGen.Load() != gen {
		return nil, false, nil
	}
	if len(b) == 0 || b[0] != valueVersion {
		return nil, false, nil
	}
	return b[1:], true, nil
}

// Set implements cache.Tier.
func (t *Tier) Set(ctx context.Context, key, val []byte, ttl time.Duration) {
	if len(val)+1 > t.c.cfg.MaxValueBytes {
		t.refused.Inc()
		return
	}
	if ttl <= 0 || ttl > t.c.cfg.MaxTTL {
		ttl = t.c.cfg.MaxTTL
	}
	b := make([]byte, 1+len(val))
	b[0] = valueVersion
	copy(b[1:], val)
	err := t.c.do(ctx, "set", func(ctx context.Context) error {
		return t.c.rdb.Set(ctx, t.key(key), b, ttl).Err()
	})
	if err != nil {
		t.storeErr.Inc()
		return
	}
	t.stored.Inc()
}

// unlockScript deletes the lock only if this process still holds it (its TTL may have run out
// and another replica taken it).
var unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// Acquire implements cache.Tier with SET NX PX Config.LockTTL.
func (t *Tier) Acquire(ctx context.Context, key []byte) (func(), bool) {
	var tok [12]byte
	rand.Read(tok[:])
	token := hex.EncodeToString(tok[:])
	lk := t.lockKey(key)
	var won bool
	err := t.c.do(ctx, "lock", func(ctx context.Context) error {
		var err error
		won, err = t.c.rdb.SetNX(ctx, lk, token, t.c.cfg.LockTTL).Result()
		return err
	})
	if err != nil {
		t.unlocked.Inc()
		return func() {}, true
	}
	if !won {
		return func() {}, false
	}
	t.leader.Inc()
	return func() {
		// Detached: the fill's context may be done by now, the lock should still go.
		t.c.do(context.Background(), "unlock", func(ctx context.Context) error {
			return unlockScript.Run(ctx, t.c.rdb, []string{lk}, token).Err()
		})
	}, true
}

// Await implements cache.Tier: it polls for the value (10ms, growing to 50ms) for up to
// Config.LockWait, and gives up early when the lock is gone without a value (the leader failed).
func (t *Tier) Await(ctx context.Context, key []byte) ([]byte, bool) {
	ctx, cancel := context.WithTimeout(ctx, t.c.cfg.LockWait)
	defer cancel()
	k, lk := t.key(key), t.lockKey(key)
	wait := 10 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			t.fallback.Inc()
			return nil, false
		case <-time.After(wait):
		}
		if wait < 50*time.Millisecond {
			wait += 10 * time.Millisecond
		}
		var val []byte
		var locked int64
		err := t.c.do(ctx, "await", func(ctx context.Context) error {
			p := t.c.rdb.Pipeline()
			g := p.Get(ctx, k)
			e := p.Exists(ctx, lk)
			_, err := p.Exec(ctx)
			if err != nil && err != redis.Nil {
				return err
			}
			val, _ = g.Bytes()
			locked = e.Val()
			return nil
		})
		if err != nil {
			t.fallback.Inc()
			return nil, false
		}
		if len(val) > 0 && val[0] == valueVersion {
			t.waited.Inc()
			return val[1:], true
		}
		if locked == 0 {
			// One more look: the leader stores the value before it unlocks.
			if v, ok, _ := t.get(ctx, key); ok {
				t.waited.Inc()
				return v, true
			}
			t.fallback.Inc()
			return nil, false
		}
	}
}
