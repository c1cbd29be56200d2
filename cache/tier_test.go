package cache

import (
	"context"
	"sync"
	"testing"
	"time"
)

// memTier is a Tier in memory that records what is stored in it.
type memTier struct {
	mu   sync.Mutex
	vals map[string][]byte
}

func (m *memTier) Get(_ context.Context, key []byte) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.vals[string(key)]
	return v, ok
}

func (m *memTier) Set(_ context.Context, key, val []byte, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.vals[string(key)] = val
}

func (m *memTier) Acquire(context.Context, []byte) (func(), bool) { return func() {}, true }
func (m *memTier) Await(context.Context, []byte) ([]byte, bool)   { return nil, false }

// A value whose computation straddles a Flush (a fleet-wide clear seen meanwhile) is kept in
// neither level; one computed after it is kept in both.
func TestFillAcrossFlushNotShared(t *testing.T) {
	c := New(Config{Name: "tier_test", MaxBytes: 1 << 20, TTL: time.Minute})
	tier := &memTier{vals: map[string][]byte{}}
	c.SetTier(tier)
	ctx := context.Background()
	if _, _, err := c.Do(ctx, []byte("k"), func(context.Context) ([]byte, error) {
		c.Flush()
		return []byte("old"), nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, ok := tier.Get(ctx, []byte("k")); ok {
		t.Fatal("a value computed across a flush was stored in the tier")
	}
	if _, ok := c.Get([]byte("k")); ok {
		t.Fatal("a value computed across a flush was stored in process")
	}
	if _, _, err := c.Do(ctx, []byte("k"), func(context.Context) ([]byte, error) { return []byte("new"), nil }); err != nil {
		t.Fatal(err)
	}
	if v, ok := tier.Get(ctx, []byte("k")); !ok || string(v) != "new" {
		t.Fatalf("tier holds %q %v, want new", v, ok)
	}
}
