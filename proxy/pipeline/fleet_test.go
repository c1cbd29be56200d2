package pipeline_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/vlproxy/vlproxy/cache/l2"
	"github.com/vlproxy/vlproxy/model/modeltest"
	"github.com/vlproxy/vlproxy/testenv"
)

// Two replicas sharing one redis-server: a clear through B empties A's caches too. A's next
// search misses its result cache, its in-process keywords and the keywords A had stored in
// Redis, so A calls its model again.
func TestFleetClearReachesOtherReplica(t *testing.T) {
	url := testenv.RedisURL(t)
	prefix := fmt.Sprintf("clear%d", time.Now().UnixNano())
	es := startES(t)
	replica := func() *env {
		// A loaded machine may answer later than the 50ms default; a late answer is a miss.
		c, err := l2.New(l2.Config{URL: url, Prefix: prefix, Timeout: 500 * time.Millisecond}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return start(t, setup{sim: modeltest.Config{Rules: []modeltest.Rule{seasideRule}}, resultCache: true, es: es,
			shared: c.Counters(), kwTier: c.Tier("keywords"), fleet: c, adminToken: "s3cret"})
	}
	a, b := replica(), replica()
	calls := func(e *env) int64 { return e.Sim.Calls()["/v1/chat/completions"] }
	body := `{"query":` + seasideClause + `,"size":3}`
	clear := func() gjson.Result {
		t.Helper()
		r := b.do(t, "POST", "/_vlproxy/cache/_clear", nil, "Authorization", "Bearer s3cret")
		if r.Status != 200 || !gjson.GetBytes(r.Body, "fleet.cleared").Bool() {
			t.Fatalf("clear through B: %d %s", r.Status, r.Body)
		}
		return gjson.ParseBytes(r.Body)
	}
	// The replicas subscribe to the clear channel in the background: wait until both listen,
	// so that the count below is exact.
	deadline := time.Now().Add(10 * time.Second)
	for clear().Get("fleet.replicas_told").Int() != 2 {
		if time.Now().After(deadline) {
			t.Fatal("the two replicas never both listened to the clear channel")
		}
		time.Sleep(20 * time.Millisecond)
	}

	first := a.search(t, body)
	wantHeaders(t, first, "X-VLProxy-Rewrite", "applied", "X-VLProxy-Cache", "miss")
	wantHeaders(t, a.search(t, body), "X-VLProxy-Cache", "hit")
	wantHeaders(t, b.search(t, body), "X-VLProxy-Rewrite", "applied") // from A's keywords in Redis
	if calls(a) != 1 || calls(b) != 0 {
		t.Fatalf("model calls before the clear: A %d, B %d, want 1, 0", calls(a), calls(b))
	}

	res := clear()
	if g := res.Get("fleet.generation").Uint(); g == 0 {
		t.Fatalf("clear answered %s", res.Raw)
	}
	if n := res.Get("cleared").Int(); n != 2 { // the keyword and the result caches
		t.Fatalf("cleared %d caches, want 2: %s", n, res.Raw)
	}
	after := a.search(t, body)
	wantHeaders(t, after, "X-VLProxy-Rewrite", "applied", "X-VLProxy-Cache", "miss")
	if calls(a) != 2 {
		t.Fatalf("A made %d model calls, want 2: its keywords survived a clear through B", calls(a))
	}
	if string(after.Body) != string(first.Body) {
		t.Fatalf("after the clear A answered %s, before %s", after.Body, first.Body)
	}
	// B's own caches were cleared too, and it finds the keywords A stored after the clear.
	wantHeaders(t, b.search(t, body), "X-VLProxy-Rewrite", "applied", "X-VLProxy-Cache", "miss")
	if calls(b) != 0 {
		t.Fatalf("B made %d model calls, want 0 (A's new keywords are in Redis)", calls(b))
	}
}
