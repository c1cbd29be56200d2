package l2_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vlproxy/vlproxy/cache/l2"
	"github.com/vlproxy/vlproxy/testenv"
)

// replicas returns n clients sharing one prefix, each counting its OnClear callbacks.
func replicas(t *testing.T, url, prefix string, n int) ([]*l2.Client, []*atomic.Int64) {
	t.Helper()
	var cs []*l2.Client
	var counts []*atomic.Int64
	for range n {
		c := newClient(t, url, func(c *l2.Config) { c.Prefix = prefix; c.Timeout = 500 * time.Millisecond })
		var n atomic.Int64
		c.OnClear(func() { n.Add(1) })
		cs, counts = append(cs, c), append(counts, &n)
	}
	return cs, counts
}

func uniquePrefix() string { return fmt.Sprintf("clr%d", time.Now().UnixNano()) }

// untilTold clears through c until told replicas listen (they subscribe in the background).
func untilTold(t *testing.T, c *l2.Client, told int64) uint64 {
	t.Helper()
	var gen uint64
	waitFor(t, fmt.Sprintf("%d subscribed replicas", told), func() bool {
		g, n, err := c.Clear(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		gen = g
		return n == told
	})
	return gen
}

// A clear through B: what A stored in the tier is gone for both, A's callbacks have run by the
// time its next lookup returns, and both share the new namespace.
func TestClearAcrossClients(t *testing.T) {
	cs, counts := replicas(t, testenv.RedisURL(t), uniquePrefix(), 2)
	a, b := cs[0], cs[1]
	ctx := context.Background()
	g0 := untilTold(t, b, 2)
	waitFor(t, "A to see the subscription clears", func() bool { return a.ClearGeneration() == g0 })

	ta, tb := a.Tier("kw"), b.Tier("kw")
	ta.Set(ctx, []byte("k"), []byte("before"), time.Minute)
	if v, ok := tb.Get(ctx, []byte("k")); !ok || string(v) != "before" {
		t.Fatalf("B reads A's value: %q %v", v, ok)
	}
	before := counts[0].Load()
	g, told, err := b.Clear(ctx)
	if err != nil || g != g0+1 || told != 2 {
		t.Fatalf("clear: generation %d (before %d), told %d, %v", g, g0, told, err)
	}
	if _, ok := ta.Get(ctx, []byte("k")); ok {
		t.Fatal("A still reads its value after a clear through B")
	}
	if a.ClearGeneration() != g || counts[0].Load() != before+1 {
		t.Fatalf("after its lookup A knows generation %d (want %d) and cleared %d times (want %d)",
			a.ClearGeneration(), g, counts[0].Load(), before+1)
	}
	if _, ok := tb.Get(ctx, []byte("k")); ok {
		t.Fatal("B reads the value from before its clear")
	}
	ta.Set(ctx, []byte("k"), []byte("after"), time.Minute)
	if v, ok := tb.Get(ctx, []byte("k")); !ok || string(v) != "after" {
		t.Fatalf("B does not read what A stored after the clear: %q %v", v, ok)
	}
}

// A raise nobody published (a lost message) is still seen by the MGET of the counters before
// a cached search and by every tier lookup: each returns after the caches were flushed.
func TestClearReadWithLookups(t *testing.T) {
	url := testenv.RedisURL(t)
	prefix := uniquePrefix()
	cs, counts := replicas(t, url, prefix, 2)
	a := cs[0]
	ctx := context.Background()
	// Once A has the message of a clear through B, its listener is past its subscription's own
	// read of the generation and idle.
	g0 := untilTold(t, cs[1], 2)
	waitFor(t, "A to see the subscription clears", func() bool { return a.ClearGeneration() == g0 })
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	raise := func() uint64 {
		t.Helper()
		g := a.ClearGeneration() + 1
		if err := rdb.Set(ctx, "{"+prefix+"}:v1:gen:clear", g, 0).Err(); err != nil {
			t.Fatal(err)
		}
		return g
	}

	g := raise()
	before := counts[0].Load()
	if _, ok := a.Counters().Load(ctx, []string{"idx"}, nil); !ok {
		t.Fatal("load failed")
	}
	if a.ClearGeneration() != g || counts[0].Load() != before+1 {
		t.Fatalf("after a load A knows generation %d (want %d), flushed %d times (want %d)", a.ClearGeneration(), g, counts[0].Load(), before+1)
	}

	tier := a.Tier("kw")
	tier.Set(ctx, []byte("k"), []byte("v"), time.Minute)
	g = raise()
	if _, ok := tier.Get(ctx, []byte("k")); ok {
		t.Fatal("a lookup after an unpublished clear hit")
	}
	if a.ClearGeneration() != g || counts[0].Load() != before+2 {
		t.Fatalf("after a lookup A knows generation %d (want %d), flushed %d times (want %d)", a.ClearGeneration(), g, counts[0].Load(), before+2)
	}
}

// An idle replica is told by the channel.
func TestClearPublishedToIdleReplica(t *testing.T) {
	cs, counts := replicas(t, testenv.RedisURL(t), uniquePrefix(), 2)
	untilTold(t, cs[1], 2)
	before := counts[0].Load()
	if _, _, err := cs[1].Clear(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the idle replica's flush", func() bool { return counts[0].Load() > before })
}

// A clear while Redis is down flushes this replica at once and the fleet when Redis is back.
func TestClearWhileRedisDown(t *testing.T) {
	r := testenv.StartRedisT(t)
	cs, counts := replicas(t, r.URL, uniquePrefix(), 2)
	a, b := cs[0], cs[1]
	ctx := context.Background()
	g0 := untilTold(t, b, 2)
	waitFor(t, "A to see the subscription clears", func() bool { return a.ClearGeneration() == g0 })
	r.Kill()
	beforeA, beforeB := counts[0].Load(), counts[1].Load()
	if _, _, err := b.Clear(ctx); err == nil {
		t.Fatal("a clear with redis killed reported success")
	}
	if counts[1].Load() != beforeB+1 {
		t.Fatal("the replica asked to clear did not flush its own caches while redis was down")
	}
	if err := r.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "A's flush after redis came back", func() bool { return counts[0].Load() > beforeA })
	if a.ClearGeneration() <= g0 || a.ClearGeneration() != b.ClearGeneration() {
		t.Fatalf("generations after the restart: A %d, B %d, before %d", a.ClearGeneration(), b.ClearGeneration(), g0)
	}
}

// A Redis that lost its data gets the fleet's generation back, so a replica started later
// shares the namespace of the running ones.
func TestClearGenerationSurvivesDataLoss(t *testing.T) {
	r := testenv.StartRedisT(t)
	prefix := uniquePrefix()
	cs, _ := replicas(t, r.URL, prefix, 1)
	a := cs[0]
	ctx := context.Background()
	var g uint64
	for range 3 {
		var err error
		if g, _, err = a.Clear(ctx); err != nil {
			t.Fatal(err)
		}
	}
	r.Kill()
	if err := r.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	opt, err := redis.ParseURL(r.URL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	key := "{" + prefix + "}:v1:gen:clear"
	waitFor(t, "the generation written back", func() bool {
		v, _ := rdb.Get(ctx, key).Uint64()
		return v == g
	})
	c := newClient(t, r.URL, func(c *l2.Config) { c.Prefix = prefix })
	if c.ClearGeneration() != g {
		t.Fatalf("a replica started after the data loss knows generation %d, want %d", c.ClearGeneration(), g)
	}
	a.Tier("kw").Set(ctx, []byte("k"), []byte("v"), time.Minute)
	if v, ok := c.Tier("kw").Get(ctx, []byte("k")); !ok || string(v) != "v" {
		t.Fatalf("the new replica does not share the namespace: %q %v", v, ok)
	}
}
