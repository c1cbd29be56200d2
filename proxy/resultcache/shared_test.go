package resultcache

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// memShared is the Shared contract in memory: what several Keyers of one test share.
type memShared struct {
	mu          sync.Mutex
	gens        map[string]uint64
	times       map[string]int64
	down        bool
	incarnation uint64
}

func newMemShared() *memShared {
	return &memShared{gens: map[string]uint64{}, times: map[string]int64{}, incarnation: 7}
}

func (m *memShared) Load(_ context.Context, names []string, dst []uint64) ([]uint64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return append(dst, 99), false
	}
	dst = append(dst, m.incarnation)
	for _, n := range names {
		dst = append(dst, m.gens[n], uint64(m.times[n]))
	}
	return dst, true
}

func (m *memShared) Bump(_ context.Context, names []string, times []int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return errors.New("down")
	}
	for i, n := range names {
		m.gens[n]++
		m.times[n] = times[i]
	}
	return nil
}

func TestSharedGenerations(t *testing.T) {
	sh := newMemShared()
	topo := NewTopology([]string{"products", "logs"}, nil)
	replica := func() *Keyer {
		k := New(DefaultConfig())
		k.SetTopology(k.TopologyVersion(), topo)
		k.SetShared(sh)
		return k
	}
	a, b := replica(), replica()
	search := func(k *Keyer, index string) (string, time.Time) {
		t.Helper()
		key, last, ok := k.KeyAt(nil, KeyInput{Method: []byte("POST"), Path: []byte("/" + index + "/_search"), Body: []byte(`{"query":{"match_all":{}}}`)})
		if !ok {
			t.Fatal("not cacheable")
		}
		return string(key), last
	}
	b0, _ := search(b, "products")
	logs0, _ := search(b, "logs")
	if a0, _ := search(a, "products"); a0 != b0 {
		t.Fatal("two replicas build different keys for one search")
	}
	// A visible write through a (refresh=true): b's key changes at once, b's other index does not.
	a.Invalidate(Write{Indices: []string{"products"}, Visible: true})
	b1, last := search(b, "products")
	if b1 == b0 {
		t.Fatal("a write through replica a left replica b's key unchanged")
	}
	if !last.IsZero() {
		t.Fatalf("a visible write left a pending time %v", last)
	}
	if l, _ := search(b, "logs"); l != logs0 {
		t.Fatal("a write to products changed the key of a search of logs")
	}
	// A write without refresh: b learns its time, so it will not store what it fills now.
	before := time.Now()
	a.Invalidate(Write{Indices: []string{"products"}})
	if _, last := search(b, "products"); last.Before(before) {
		t.Fatalf("pending write time %v, want after %v", last, before)
	}
	// A pattern search depends on every write.
	all0, _ := search(b, "prod*")
	a.Invalidate(Write{Indices: []string{"logs"}, Visible: true})
	if all1, _ := search(b, "prod*"); all1 == all0 {
		t.Fatal("a write left a pattern search's key unchanged")
	}
	// Redis down: a key of its own, never one cached under the fleet's generations.
	up, _ := search(b, "products")
	sh.mu.Lock()
	sh.down = true
	sh.mu.Unlock()
	down, _ := search(b, "products")
	if down == up {
		t.Fatal("the key did not change when the shared generations became unavailable")
	}
	// Local invalidation still works while down.
	b.Invalidate(Write{Indices: []string{"products"}, Visible: true})
	if d2, _ := search(b, "products"); d2 == down {
		t.Fatal("a local write while down left the key unchanged")
	}
}
