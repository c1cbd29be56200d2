package resultcache

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vlproxy/vlproxy/cache"
)

// fakeCluster counts documents per index and answers a search with the count of its index.
type fakeCluster struct {
	docs     map[string]int
	searches atomic.Int32
}

// proxyLike is the flow the proxy handler follows: key, single-flight lookup, store only 2xx
// entries, invalidate after writes.
type proxyLike struct {
	k *Keyer
	c *cache.Cache
	u *fakeCluster
}

func (p *proxyLike) do(line, body string, h hdr) (resp string, state string) {
	in := req(line, body, h)
	method, path, query := in.Method, in.Path, in.Query
	if RouteOf(method, path) == RouteNone {
		index := strings.Split(string(path), "/")[1]
		p.u.docs[index]++
		p.k.Invalidate(Writes(method, path, query, in.Body)) // after the upstream answered
		return "ok", "write"
	}
	key, ok := p.k.Key(nil, in)
	search := func(context.Context) ([]byte, error) {
		p.u.searches.Add(1)
		index := strings.Split(string(path), "/")[1]
		return AppendEntry(nil, &Entry{Status: 200, Stored: time.Now(), Body: fmt.Appendf(nil, `{"count":%d}`, p.u.docs[index])}), nil
	}
	if !ok {
		v, _ := search(context.Background())
		var e Entry
		_ = e.Decode(v)
		return string(e.Body), "bypass"
	}
	v, hit, err := p.c.Do(context.Background(), key, search)
	if err != nil {
		return err.Error(), "error"
	}
	var e Entry
	if err := e.Decode(v); err != nil {
		return err.Error(), "error"
	}
	state = "miss"
	if hit {
		state = "hit"
	}
	return string(e.Body), state
}

func TestWithCache(t *testing.T) {
	p := &proxyLike{
		k: New(DefaultConfig()),
		c: cache.New(cache.Config{Name: "resultcache_test", MaxBytes: 1 << 20, TTL: time.Hour}),
		u: &fakeCluster{docs: map[string]int{"products": 1, "reviews": 1}},
	}
	p.k.SetTopology(p.k.TopologyVersion(), NewTopology([]string{"products", "reviews"}, nil))
	f := func(line, body string, h hdr, wantResp, wantState string) {
		t.Helper()
		resp, state := p.do(line, body, h)
		if resp != wantResp || state != wantState {
			t.Fatalf("%s: got %s (%s); want %s (%s)", line, resp, state, wantResp, wantState)
		}
	}
	alice := hdr{"Authorization": "Basic YWxpY2U6cHc="}
	bob := hdr{"Authorization": "Basic Ym9iOnB3"}
	f("POST /products/_search", `{"size":1}`, alice, `{"count":1}`, "miss")
	f("POST /products/_search", "{ \"size\" : 1 }", alice, `{"count":1}`, "hit")
	f("POST /products/_search", `{"size":1}`, bob, `{"count":1}`, "miss")
	f("POST /products/_search", `{"size":1}`, bob, `{"count":1}`, "hit")
	f("POST /products/_search?request_cache=false", `{"size":1}`, alice, `{"count":1}`, "bypass")
	// A write elsewhere leaves it cached; a write to it is visible to the very next search.
	f("POST /reviews/_doc?refresh=true", `{}`, alice, "ok", "write")
	f("POST /products/_search", `{"size":1}`, alice, `{"count":1}`, "hit")
	f("POST /products/_doc?refresh=true", `{}`, alice, "ok", "write")
	f("POST /products/_search", `{"size":1}`, alice, `{"count":2}`, "miss")
	f("POST /products/_search", `{"size":1}`, bob, `{"count":2}`, "miss")
	f("POST /products/_search", `{"size":1}`, alice, `{"count":2}`, "hit")
	if got := p.u.searches.Load(); got != 5 {
		t.Fatalf("upstream searched %d times; want 5 (4 misses and 1 bypass)", got)
	}
}
