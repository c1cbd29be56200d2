package l2_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vlproxy/vlproxy/cache"
	"github.com/vlproxy/vlproxy/cache/l2"
	"github.com/vlproxy/vlproxy/internal/promexp"
	"github.com/vlproxy/vlproxy/testenv"
)

func newClient(t *testing.T, url string, mod ...func(*l2.Config)) *l2.Client {
	t.Helper()
	cfg := l2.Config{URL: url, ProbeEvery: 50 * time.Millisecond, Prefix: fmt.Sprintf("t%d", time.Now().UnixNano())}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := l2.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTierRoundTrip(t *testing.T) {
	url := testenv.RedisURL(t)
	c := newClient(t, url, func(c *l2.Config) { c.MaxValueBytes = 100 })
	tier := c.Tier("kw")
	ctx := context.Background()
	if _, ok := tier.Get(ctx, []byte("k")); ok {
		t.Fatal("hit in an empty tier")
	}
	tier.Set(ctx, []byte("k"), []byte("value"), time.Minute)
	if v, ok := tier.Get(ctx, []byte("k")); !ok || string(v) != "value" {
		t.Fatalf("got %q %v", v, ok)
	}
	// Another name is another namespace.
	if _, ok := c.Tier("scores").Get(ctx, []byte("k")); ok {
		t.Fatal("names share keys")
	}
	// Over the size bound: refused.
	big := make([]byte, 200)
	tier.Set(ctx, []byte("big"), big, time.Minute)
	if _, ok := tier.Get(ctx, []byte("big")); ok {
		t.Fatal("a value over max_value_bytes was stored")
	}
	// The TTL reaches Redis.
	tier.Set(ctx, []byte("short"), []byte("x"), 50*time.Millisecond)
	waitFor(t, "the short TTL", func() bool { _, ok := tier.Get(ctx, []byte("short")); return !ok })
}

func TestFaultIsMissAndRejoin(t *testing.T) {
	r := testenv.StartRedisT(t)
	c := newClient(t, r.URL, func(c *l2.Config) { c.DownAfter = 2 })
	tier := c.Tier("kw")
	ctx := context.Background()
	tier.Set(ctx, []byte("k"), []byte("v"), time.Minute)
	r.Kill()
	for i := range 5 {
		start := time.Now()
		if _, ok := tier.Get(ctx, []byte("k")); ok {
			t.Fatalf("get %d hit with redis killed", i)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Fatalf("get %d took %v with redis killed", i, d)
		}
	}
	if h := c.Health(); h.State != "down" || h.DownSince == nil || h.LastError == "" {
		t.Fatalf("health after faults: %+v", h)
	}
	if c.Up() {
		t.Fatal("still up")
	}
	if err := r.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rejoin", c.Up)
	tier.Set(ctx, []byte("k"), []byte("v2"), time.Minute)
	if v, ok := tier.Get(ctx, []byte("k")); !ok || string(v) != "v2" {
		t.Fatalf("after rejoin: %q %v", v, ok)
	}
	if h := c.Health(); h.State != "up" || h.DownSince != nil {
		t.Fatalf("health after rejoin: %+v", h)
	}
}

func TestCountersAcrossClients(t *testing.T) {
	r := testenv.StartRedisT(t)
	prefix := func(c *l2.Config) { c.Prefix = "shared"; c.DownAfter = 1 }
	a, b := newClient(t, r.URL, prefix), newClient(t, r.URL, prefix)
	ctx := context.Background()
	names := []string{"idx-1", "idx-2"}
	load := func(c *l2.Client) []uint64 {
		t.Helper()
		v, ok := c.Counters().Load(ctx, names, nil)
		if !ok || len(v) != 5 {
			t.Fatalf("load: %v %v", v, ok)
		}
		return v
	}
	b0 := load(b)
	if b0[0] == 0 || b0[1] != 0 || b0[3] != 0 {
		t.Fatalf("fresh counters %v", b0)
	}
	if err := a.Counters().Bump(ctx, []string{"idx-2"}, []int64{12345}); err != nil {
		t.Fatal(err)
	}
	b1 := load(b)
	if b1[0] != b0[0] || b1[1] != 0 || b1[3] != 1 || b1[4] != 12345 {
		t.Fatalf("after a bump through a: %v (before %v)", b1, b0)
	}

	// Redis loses its data: a new incarnation, so nothing cached under b1 matches again.
	r.Kill()
	if _, ok := b.Counters().Load(ctx, names, nil); ok {
		t.Fatal("load succeeded with redis killed")
	}
	if err := a.Counters().Bump(ctx, names, []int64{0, 0}); err == nil {
		t.Fatal("bump succeeded with redis killed")
	}
	if err := r.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rejoin of a", a.Up)
	waitFor(t, "rejoin of b", b.Up)
	b2 := load(b)
	if b2[0] == b1[0] {
		t.Fatalf("incarnation %d survived a restart", b2[0])
	}

	// A bump lost while Redis was unreachable (but kept its data) also changes the incarnation.
	b3 := load(b)
	r.Kill()
	a.Counters().Bump(ctx, names, []int64{0, 0})
	b.Counters().Load(ctx, names, nil)
	if err := r.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rejoin of a", a.Up)
	waitFor(t, "rejoin of b", b.Up)
	if b4 := load(b); b4[0] == b3[0] || b4[0] == 0 {
		t.Fatalf("incarnation %d unchanged after a lost bump", b4[0])
	}
}

// Three processes' caches (three clients) × 100 concurrent identical misses: one computation.
func TestFleetSingleFlight(t *testing.T) {
	url := testenv.RedisURL(t)
	prefix := fmt.Sprintf("sf%d", time.Now().UnixNano())
	var calls atomic.Int64
	var caches []*cache.Cache
	for range 3 {
		// One model call fleet-wide holds while Redis answers within the timeout; a slower answer
		// makes a replica compute on its own (by design). The test machine is shared and often
		// loaded, so the timeout is ten times the default here.
		c := newClient(t, url, func(c *l2.Config) { c.Prefix = prefix; c.Timeout = 500 * time.Millisecond })
		cc := cache.New(cache.Config{Name: "kw", MaxBytes: 1 << 20, TTL: time.Minute})
		cc.SetTier(c.Tier("kw"))
		caches = append(caches, cc)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 300)
	for _, cc := range caches {
		for range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, _, err := cc.Do(context.Background(), []byte("photo"), func(context.Context) ([]byte, error) {
					calls.Add(1)
					time.Sleep(150 * time.Millisecond)
					return []byte("red dress"), nil
				})
				if err == nil && string(v) != "red dress" {
					err = fmt.Errorf("got %q", v)
				}
				if err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 1 {
		var diag []string
		for _, l := range strings.Split(promexp.Text(), "\n") {
			if strings.HasPrefix(l, "vlproxy_l2_") || strings.HasPrefix(l, "vlproxy_redis_errors") || strings.HasPrefix(l, "vlproxy_redis_skipped") {
				diag = append(diag, l)
			}
		}
		t.Fatalf("%d computations for 300 identical misses over 3 caches, want 1\n%s", n, strings.Join(diag, "\n"))
	}
}

// With Redis gone, every Do still computes and answers (L1-only).
func TestFillWithoutRedis(t *testing.T) {
	r := testenv.StartRedisT(t)
	c := newClient(t, r.URL)
	r.Kill()
	cc := cache.New(cache.Config{Name: "kw", MaxBytes: 1 << 20, TTL: time.Minute})
	cc.SetTier(c.Tier("kw"))
	for i := range 10 {
		v, _, err := cc.Do(context.Background(), fmt.Appendf(nil, "k%d", i), func(context.Context) ([]byte, error) { return []byte("v"), nil })
		if err != nil || string(v) != "v" {
			t.Fatalf("do %d: %q %v", i, v, err)
		}
	}
}

// A bump that times out while Redis still counts as up (no rejoin will follow) still makes the
// fleet drop what it cached: a new incarnation is published once Redis takes writes.
func TestLostBumpWhileUpRenewsIncarnation(t *testing.T) {
	url := testenv.RedisURL(t)
	prefix := func(c *l2.Config) { c.Prefix = fmt.Sprintf("lost%d", time.Now().UnixNano()); c.DownAfter = 100 }
	a := newClient(t, url, prefix)
	ctx := context.Background()
	names := []string{"idx"}
	before, ok := a.Counters().Load(ctx, names, nil)
	if !ok {
		t.Fatal("load failed")
	}
	k := a.Counters()
	dead, cancel := context.WithCancel(ctx)
	cancel()
	if err := k.Bump(dead, names, []int64{0}); err == nil {
		t.Fatal("a bump with a canceled context succeeded")
	}
	if !a.Up() {
		t.Fatal("one failed bump marked redis down")
	}
	waitFor(t, "a new incarnation", func() bool {
		v, ok := a.Counters().Load(ctx, names, nil)
		return ok && v[0] != before[0]
	})
}
