package l2_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vlproxy/vlproxy/cache/l2"
	"github.com/vlproxy/vlproxy/testenv"
)

// BenchmarkGenerationCheck is the per-hit check fleet mode does before serving a cached result
// (Counters.Load: one MGET of the incarnation and two keys per index), against the alternative
// of keeping the generations in process and learning of bumps by pub/sub, whose read costs
// nothing but whose news arrives late: PubSubLag is the time from a bump's INCR+PUBLISH to
// its arrival at another client, the window in which that client would serve a stale result.
func BenchmarkGenerationCheck(b *testing.B) {
	url := testenv.RedisURL(b)
	ctx := context.Background()
	c, err := l2.New(l2.Config{URL: url, Prefix: fmt.Sprintf("bench%d", time.Now().UnixNano())}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	k := c.Counters()
	for _, n := range []int{1, 4} {
		names := make([]string, n)
		for i := range names {
			names[i] = "products-" + strconv.Itoa(i)
		}
		b.Run(fmt.Sprintf("mget/indices=%d", n), func(b *testing.B) {
			var buf [16]uint64
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := k.Load(ctx, names, buf[:0]); !ok {
					b.Fatal("load failed")
				}
			}
		})
	}
	b.Run("mget/parallel", func(b *testing.B) {
		names := []string{"products-0"}
		b.RunParallel(func(pb *testing.PB) {
			var buf [16]uint64
			for pb.Next() {
				if _, ok := k.Load(ctx, names, buf[:0]); !ok {
					b.Error("load failed")
					return
				}
			}
		})
	})
	b.Run("pubsub-lag", func(b *testing.B) {
		opt, err := redis.ParseURL(url)
		if err != nil {
			b.Fatal(err)
		}
		pub, sub := redis.NewClient(opt), redis.NewClient(opt)
		defer pub.Close()
		defer sub.Close()
		ps := sub.Subscribe(ctx, "bench-gens")
		defer ps.Close()
		if _, err := ps.Receive(ctx); err != nil {
			b.Fatal(err)
		}
		ch := ps.Channel()
		b.ReportAllocs()
		for b.Loop() {
			p := pub.Pipeline()
			p.Incr(ctx, "bench-gen")
			p.Publish(ctx, "bench-gens", "products")
			if _, err := p.Exec(ctx); err != nil {
				b.Fatal(err)
			}
			<-ch
		}
	})
}
