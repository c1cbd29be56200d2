package cache

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// BenchmarkZipfHitRatio replays a Zipf-distributed mix of 100k distinct queries (s=1.1, the
// long tail of e-commerce search) against result caches of three byte budgets and reports the
// hit ratio. Values are 4 KiB, the size of a 10-hit search response with small sources.
//
//	go test -run '^$' -bench ZipfHitRatio -benchtime 1x ./cache/
func BenchmarkZipfHitRatio(b *testing.B) {
	const (
		distinct = 100_000
		requests = 1_000_000
		valSize  = 4 << 10
	)
	val := make([]byte, valSize)
	for _, budget := range []int64{16 << 20, 64 << 20, 256 << 20} {
		b.Run(fmt.Sprintf("budget=%dMiB", budget>>20), func(b *testing.B) {
			for range b.N {
				c := New(Config{Name: "zipf", MaxBytes: budget, MaxEntryBytes: 1 << 20, TTL: time.Hour})
				z := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.1, 1, distinct-1)
				key := make([]byte, 0, 64)
				hits := 0
				for range requests {
					key = strconv.AppendUint(append(key[:0], `{"query":{"match":{"title":"q`...), z.Uint64(), 10)
					if _, ok := c.Get(key); ok {
						hits++
						continue
					}
					c.Set(key, val)
				}
				b.ReportMetric(float64(hits)/requests, "hit-ratio")
				b.ReportMetric(float64(c.Stats().Entries), "entries")
			}
		})
	}
}
