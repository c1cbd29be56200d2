package cache

import (
	"bytes"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vlproxy/vlproxy/internal/promexp"
)

func testConfig(maxBytes int64) Config {
	return Config{Name: "test", MaxBytes: maxBytes, MaxEntryBytes: maxBytes, TTL: -1}
}

// entryCost is what one entry with the given key and value charges against MaxBytes.
func entryCost(key, val string) int64 { return int64(len(key)+len(val)) + prefixLen + entryOverhead }

func TestSetGet(t *testing.T) {
	c := New(testConfig(1 << 20))
	f := func(key, val string) {
		t.Helper()
		if !c.Set([]byte(key), []byte(val)) {
			t.Fatalf("Set(%q) refused", key)
		}
		got, ok := c.Get([]byte(key))
		if !ok || string(got) != val {
			t.Fatalf("Get(%q) = %q, %v; want %q, true", key, got, ok, val)
		}
	}
	f("a", "1")
	f("", "empty key")
	f("b", "")
	f("a", "replaced")
	if _, ok := c.Get([]byte("missing")); ok {
		t.Fatalf("Get(missing) hit")
	}
	s := c.Stats()
	if s.Hits != 4 || s.Misses != 1 || s.Entries != 3 {
		t.Fatalf("stats %+v; want 4 hits, 1 miss, 3 entries", s)
	}
	if want := entryCost("a", "replaced") + entryCost("", "empty key") + entryCost("b", ""); s.Bytes != want {
		t.Fatalf("bytes %d; want %d", s.Bytes, want)
	}
}

func TestSetCopiesAndValueIsStable(t *testing.T) {
	c := New(testConfig(1 << 20))
	key, val := []byte("k"), []byte("value")
	c.Set(key, val)
	key[0], val[0] = 'x', 'X'
	got, ok := c.Get([]byte("k"))
	if !ok || string(got) != "value" {
		t.Fatalf("Get after caller modified its buffers = %q, %v", got, ok)
	}
	c.Set([]byte("k"), []byte("other"))
	if string(got) != "value" {
		t.Fatalf("a returned value changed after the entry was replaced: %q", got)
	}
}

func TestEvictionByBytes(t *testing.T) {
	per := entryCost("k0", "0123456789")
	c := New(testConfig(3 * per))
	set := func(k string) { c.Set([]byte(k), []byte("0123456789")) }
	has := func(k string) bool { _, ok := c.lookup(c.gen.Load(), []byte(k), false, time.Now()); return ok }
	set("k0")
	set("k1")
	set("k2")
	if s := c.Stats(); s.Evictions != 0 || s.Entries != 3 || s.Bytes != 3*per {
		t.Fatalf("stats after filling exactly %+v", s)
	}
	c.Get([]byte("k0")) // k0 becomes most recent: k1 is now the oldest
	set("k3")
	if has("k1") || !has("k0") || !has("k2") || !has("k3") {
		t.Fatalf("want k1 evicted and k0,k2,k3 kept: k0=%v k1=%v k2=%v k3=%v", has("k0"), has("k1"), has("k2"), has("k3"))
	}
	// One big entry pushes out as many old ones as needed.
	big := strings.Repeat("v", int(2*per-prefixLen-entryOverhead-2))
	if !c.Set([]byte("kb"), []byte(big)) {
		t.Fatal("big entry refused")
	}
	s := c.Stats()
	if s.Bytes > 3*per {
		t.Fatalf("bytes %d over budget %d", s.Bytes, 3*per)
	}
	if s.Evictions != 3 || s.Entries != 2 || !has("kb") || !has("k3") {
		t.Fatalf("after big set: %+v kb=%v k3=%v", s, has("kb"), has("k3"))
	}
}

func TestRefusal(t *testing.T) {
	c := New(Config{Name: "test", MaxBytes: 1 << 20, MaxEntryBytes: 100, TTL: -1})
	f := func(klen, vlen int, want bool) {
		t.Helper()
		before := c.Stats().Refused
		got := c.Set(bytes.Repeat([]byte("k"), klen), bytes.Repeat([]byte("v"), vlen))
		if got != want {
			t.Fatalf("Set(key %d, val %d) = %v; want %v", klen, vlen, got, want)
		}
		refused := c.Stats().Refused - before
		if (refused == 1) == want {
			t.Fatalf("refused counter moved by %d for Set = %v", refused, got)
		}
		_, ok := c.Get(bytes.Repeat([]byte("k"), klen))
		if ok != want {
			t.Fatalf("Get after Set = %v: ok = %v", got, ok)
		}
	}
	f(10, 90, true)
	f(11, 90, false)
	f(101, 0, false)
	// An entry under MaxEntryBytes but over the whole budget is refused too.
	small := New(Config{Name: "test", MaxBytes: 200, MaxEntryBytes: 1000, TTL: -1})
	if small.Set([]byte("k"), make([]byte, 150)) {
		t.Fatal("entry larger than MaxBytes with overhead accepted")
	}
	if small.Stats().Refused != 1 {
		t.Fatalf("refused = %d; want 1", small.Stats().Refused)
	}
}

func TestTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(Config{Name: "test", MaxBytes: 1 << 20, MaxEntryBytes: 1 << 10, TTL: time.Minute})
		defer c.fills.stop()
		c.Set([]byte("default"), []byte("1"))
		c.SetWithTTL([]byte("short"), []byte("2"), time.Second)
		c.SetWithTTL([]byte("forever"), []byte("3"), 0)
		f := func(key string, want bool) {
			t.Helper()
			if _, ok := c.Get([]byte(key)); ok != want {
				t.Fatalf("at %v Get(%q) = %v; want %v", time.Now(), key, ok, want)
			}
		}
		time.Sleep(999 * time.Millisecond)
		f("short", true)
		time.Sleep(time.Millisecond)
		f("short", false)
		f("default", true)
		time.Sleep(time.Minute)
		f("default", false)
		f("forever", true)
		time.Sleep(1000 * time.Hour)
		f("forever", true)
		s := c.Stats()
		if s.Expirations != 2 || s.Entries != 1 || s.Bytes != entryCost("forever", "3") {
			t.Fatalf("stats %+v; want 2 expirations and only the eternal entry left", s)
		}
	})
}

func TestCollisionIsAMiss(t *testing.T) {
	c := newWithHash(testConfig(1<<20), func([]byte) uint64 { return 42 })
	c.Set([]byte("alpha"), []byte("A"))
	if v, ok := c.Get([]byte("beta")); ok {
		t.Fatalf("colliding key returned the other key's value %q", v)
	}
	if v, ok := c.Get([]byte("alpha")); !ok || string(v) != "A" {
		t.Fatalf("Get(alpha) = %q, %v", v, ok)
	}
	// Same hash, same length, one byte apart.
	c.Set([]byte("key-1"), []byte("one"))
	if v, ok := c.Get([]byte("key-2")); ok {
		t.Fatalf("key-2 returned %q stored under key-1", v)
	}
	// A colliding Set replaces the slot; the replaced key is then a miss, not a wrong value.
	if _, ok := c.Get([]byte("alpha")); ok {
		t.Fatal("alpha still found after a colliding key took its slot")
	}
	if s := c.Stats(); s.Entries != 1 || s.Bytes != entryCost("key-1", "one") {
		t.Fatalf("stats %+v; want a single entry", s)
	}
}

func TestFlush(t *testing.T) {
	c := newWithHash(testConfig(1<<20), func(b []byte) uint64 { return uint64(len(b)) })
	for i := range 10 {
		c.Set(fmt.Appendf(nil, "key%d", i), []byte("old"))
	}
	c.Flush()
	for i := range 10 {
		if v, ok := c.Get(fmt.Appendf(nil, "key%d", i)); ok {
			t.Fatalf("key%d survived Flush with %q", i, v)
		}
	}
	c.Set([]byte("key0"), []byte("new"))
	if v, ok := c.Get([]byte("key0")); !ok || string(v) != "new" {
		t.Fatalf("Get after Flush and Set = %q, %v", v, ok)
	}
	// A value computed for the old generation is not stored.
	if c.set(0, []byte("late"), []byte("x"), -1) {
		t.Fatal("Set for a flushed generation accepted")
	}
}

func TestDefaults(t *testing.T) {
	c := New(Config{})
	if c.cfg != DefaultConfig() {
		t.Fatalf("zero Config became %+v; want %+v", c.cfg, DefaultConfig())
	}
}

var metricsRuns atomic.Int64

func TestMetrics(t *testing.T) {
	// Counters are process-wide: a name of its own per run keeps -count=N runs apart.
	name := fmt.Sprintf("metrics_test_%d", metricsRuns.Add(1))
	c := New(Config{Name: name, MaxBytes: 1 << 20, TTL: -1})
	c.Set([]byte("a"), []byte("b"))
	c.Get([]byte("a"))
	c.Get([]byte("a"))
	c.Get([]byte("x"))
	text := promexp.Text()
	for _, want := range []string{
		`vlproxy_cache_hits_total{cache="` + name + `"} 2`,
		`vlproxy_cache_misses_total{cache="` + name + `"} 1`,
		`vlproxy_cache_entries{cache="` + name + `"} 1`,
		fmt.Sprintf(`vlproxy_cache_bytes{cache="%s"} %d`, name, entryCost("a", "b")),
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestGetHitAllocs(t *testing.T) {
	c := New(Config{Name: "test", MaxBytes: 1 << 20, TTL: time.Hour})
	key := []byte("some/search/key?with=params")
	c.Set(key, []byte("value"))
	allocs := testing.AllocsPerRun(1000, func() {
		if _, ok := c.Get(key); !ok {
			t.Fatal("miss")
		}
	})
	if allocs != 0 {
		t.Fatalf("Get hit allocates %v times; want 0", allocs)
	}
}
