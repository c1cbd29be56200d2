package cache

import (
	"context"
	"encoding/binary"
	"testing"
)

func BenchmarkGetHit(b *testing.B) {
	c := New(Config{Name: "bench", MaxBytes: 64 << 20, TTL: -1})
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = binary.LittleEndian.AppendUint64([]byte("GET /products/_search?q=shirt&size=10 "), uint64(i))
		c.Set(keys[i], make([]byte, 2048))
	}
	b.ReportAllocs()
	reportCPU(b)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, ok := c.Get(keys[i&1023]); !ok {
			b.Fatal("miss")
		}
	}
}

func BenchmarkSetWithEviction(b *testing.B) {
	// 2 KiB values into a 1 MiB cache: after ~480 sets every Set evicts one entry.
	c := New(Config{Name: "bench", MaxBytes: 1 << 20, TTL: -1})
	val := make([]byte, 2048)
	key := []byte("GET /products/_search?q=shirt&size=10 ........")
	b.ReportAllocs()
	reportCPU(b)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		binary.LittleEndian.PutUint64(key[len(key)-8:], uint64(i))
		c.Set(key, val)
	}
	if c.Stats().Evictions == 0 {
		b.Fatal("no evictions")
	}
}

func BenchmarkDoHit(b *testing.B) {
	c := New(Config{Name: "bench", MaxBytes: 64 << 20, TTL: -1})
	key := []byte("GET /products/_search?q=shirt&size=10")
	fn := func(context.Context) ([]byte, error) { return make([]byte, 2048), nil }
	ctx := context.Background()
	c.Do(ctx, key, fn)
	b.ReportAllocs()
	reportCPU(b)
	b.ResetTimer()
	for b.Loop() {
		if _, hit, _ := c.Do(ctx, key, fn); !hit {
			b.Fatal("miss")
		}
	}
}

func BenchmarkGetHitParallel(b *testing.B) {
	c := New(Config{Name: "bench", MaxBytes: 64 << 20, TTL: -1})
	key := []byte("GET /products/_search?q=shirt&size=10")
	c.Set(key, make([]byte, 2048))
	b.ReportAllocs()
	reportCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Get(key)
		}
	})
}
