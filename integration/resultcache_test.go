package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/vlproxy/vlproxy/cache"
	"github.com/vlproxy/vlproxy/proxy"
	"github.com/vlproxy/vlproxy/proxy/resultcache"
	"github.com/vlproxy/vlproxy/testenv"
)

// startCachedProxy runs a proxy with the result cache wired as cmd/vlproxy does.
func startCachedProxy(t testing.TB, node string) string {
	t.Helper()
	c := cache.New(cache.Config{Name: "integration_results", TTL: time.Minute})
	return startProxy(t, node, proxy.WithResultCache(c, resultcache.DefaultConfig(), 30*time.Second),
		proxy.WithRefreshLag(time.Second))
}

// createIndex creates a one-shard, zero-replica index with the transparency mapping directly on
// the node, and deletes it when the test ends.
func createIndex(t testing.TB, node, idx string) {
	t.Helper()
	mustDo(t, rawClient(), 200, "PUT", node+"/"+idx, []byte(transparencyIndex))
	t.Cleanup(func() { deleteIndex(t, node, idx) })
}

type searchReply struct {
	total int64
	cache string // X-VLProxy-Cache
	body  []byte
}

func search(t testing.TB, c *http.Client, url, body string, hdr ...string) searchReply {
	t.Helper()
	r := mustDo(t, c, 200, "POST", url, []byte(body), hdr...)
	return searchReply{total: gjson.GetBytes(r.Body, "hits.total.value").Int(), cache: r.Header.Get("X-Vlproxy-Cache"), body: r.Body}
}

// warm searches twice and requires the second answer to come from the cache, so that a later
// fresh answer proves an invalidation rather than a cache that never stored anything. It
// returns the total; wantTotal < 0 accepts any.
func warm(t testing.TB, c *http.Client, url, body string, wantTotal int64, hdr ...string) int64 {
	t.Helper()
	first := search(t, c, url, body, hdr...)
	second := search(t, c, url, body, hdr...)
	if first.total != second.total || (wantTotal >= 0 && first.total != wantTotal) {
		t.Fatalf("POST %s: totals %d, %d, want %d", url, first.total, second.total, wantTotal)
	}
	if second.cache != "hit" {
		t.Fatalf("POST %s: the repeated search was a cache %q, want hit (first: %q)", url, second.cache, first.cache)
	}
	return first.total
}

const shirtQuery = `{"query":{"match":{"title":"shirt"}},"size":20}`

func TestResultCacheSeesWritesThroughProxy(t *testing.T) {
	node := testenv.URL(t)
	prox := startCachedProxy(t, node)
	c := rawClient()
	idx := uniqueName("vlp-rc")
	createIndex(t, node, idx)
	var nd bytes.Buffer
	for _, d := range transparencyDocs {
		fmt.Fprintf(&nd, `{"index":{"_id":%q}}`+"\n%s\n", d.ID, d.Source)
	}
	mustDo(t, c, 200, "POST", prox+"/"+idx+"/_bulk?refresh=true", nd.Bytes(), "Content-Type", "application/x-ndjson")
	url := prox + "/" + idx + "/_search"

	// f warms the cache, applies a write through the proxy, and requires the very next identical
	// search to see it.
	total := int64(3) // "shirt" in docs 1, 2, 5
	f := func(name string, delta int64, write func()) {
		t.Helper()
		warm(t, c, url, shirtQuery, total)
		write()
		total += delta
		got := search(t, c, url, shirtQuery)
		if got.total != total || got.cache == "hit" {
			t.Errorf("%s: the next search saw %d hits (cache %s), want %d from upstream", name, got.total, got.cache, total)
			total = got.total
		}
	}
	f("PUT doc, then POST _refresh", 1, func() {
		// No periodic refresh during this step (reset below): the default 1 s one would race
		// the check that the write is not yet searchable.
		mustDo(t, c, 200, "PUT", node+"/"+idx+"/_settings", []byte(`{"index":{"refresh_interval":"-1"}}`))
		defer mustDo(t, c, 200, "PUT", node+"/"+idx+"/_settings", []byte(`{"index":{"refresh_interval":"1s"}}`))
		mustDo(t, c, 201, "PUT", prox+"/"+idx+"/_doc/7", []byte(`{"title":"green shirt","brand":"acme"}`))
		// A search between the write and the refresh may cache the old view...
		if got := search(t, c, url, shirtQuery); got.total != 3 {
			t.Fatalf("before refresh: %d hits, want 3", got.total)
		}
		// ...and the refresh must drop it.
		mustDo(t, c, 200, "POST", prox+"/"+idx+"/_refresh", nil)
	})
	f("POST _doc?refresh=true", 1, func() {
		mustDo(t, c, 201, "POST", prox+"/"+idx+"/_doc?refresh=true", []byte(`{"title":"shirt with an auto id"}`))
	})
	f("POST _create?refresh=wait_for", 1, func() {
		mustDo(t, c, 201, "PUT", prox+"/"+idx+"/_create/8?refresh=wait_for", []byte(`{"title":"created shirt"}`))
	})
	f("POST _update", -1, func() {
		mustDo(t, c, 200, "POST", prox+"/"+idx+"/_update/8?refresh=true", []byte(`{"doc":{"title":"created blouse"}}`))
	})
	f("DELETE doc", -1, func() {
		mustDo(t, c, 200, "DELETE", prox+"/"+idx+"/_doc/7?refresh=true", nil)
	})
	f("_update_by_query", -1, func() {
		mustDo(t, c, 200, "POST", prox+"/"+idx+"/_update_by_query?refresh=true",
			[]byte(`{"query":{"term":{"_id":"1"}},"script":{"source":"ctx._source.title = 'red cotton tee'"}}`))
	})
	f("_delete_by_query", -1, func() {
		mustDo(t, c, 200, "POST", prox+"/"+idx+"/_delete_by_query?refresh=true", []byte(`{"query":{"term":{"_id":"2"}}}`))
	})
	f("_bulk to the index path", 2, func() {
		body := `{"index":{"_id":"b1"}}` + "\n" + `{"title":"bulk shirt one"}` + "\n" +
			`{"create":{"_id":"b2"}}` + "\n" + `{"title":"bulk shirt two"}` + "\n"
		mustDo(t, c, 200, "POST", prox+"/"+idx+"/_bulk?refresh=true", []byte(body), "Content-Type", "application/x-ndjson")
	})
	f("gzip _bulk", 1, func() {
		body := gzipBytes(t, []byte(`{"index":{"_index":"`+idx+`","_id":"g1"}}`+"\n"+`{"title":"gzip shirt"}`+"\n"))
		mustDo(t, c, 200, "POST", prox+"/_bulk?refresh=true", body, "Content-Type", "application/x-ndjson", "Content-Encoding", "gzip")
	})
	f("delete and recreate the index", -total, func() {
		mustDo(t, c, 200, "DELETE", prox+"/"+idx, nil)
		mustDo(t, c, 200, "PUT", prox+"/"+idx, []byte(transparencyIndex))
	})
}

func TestResultCacheBulkInvalidatesEveryIndexItTouches(t *testing.T) {
	node := testenv.URL(t)
	prox := startCachedProxy(t, node)
	c := rawClient()
	a, b, other := uniqueName("vlp-rca"), uniqueName("vlp-rcb"), uniqueName("vlp-rco")
	for _, idx := range []string{a, b, other} {
		createIndex(t, node, idx)
	}
	for _, idx := range []string{a, b, other} {
		warm(t, c, prox+"/"+idx+"/_search", shirtQuery, 0)
	}
	warm(t, c, prox+"/"+a+","+b+"/_search", shirtQuery, 0)

	body := `{"index":{"_index":"` + a + `","_id":"1"}}` + "\n" + `{"title":"shirt in a"}` + "\n" +
		`{"index":{"_index":"` + b + `","_id":"1"}}` + "\n" + `{"title":"shirt in b"}` + "\n" +
		`{"index":{"_index":"` + b + `","_id":"2"}}` + "\n" + `{"title":"another shirt in b"}` + "\n"
	r := mustDo(t, c, 200, "POST", prox+"/_bulk?refresh=true", []byte(body), "Content-Type", "application/x-ndjson")
	if gjson.GetBytes(r.Body, "errors").Bool() {
		t.Fatalf("_bulk: %s", r.Body)
	}
	f := func(path string, want int64) {
		t.Helper()
		got := search(t, c, prox+path, shirtQuery)
		if got.total != want || got.cache == "hit" {
			t.Errorf("POST %s after the _bulk: %d hits (cache %s), want %d from upstream", path, got.total, got.cache, want)
		}
	}
	f("/"+a+"/_search", 1)
	f("/"+b+"/_search", 2)
	f("/"+a+","+b+"/_search", 3)
	// An index the _bulk did not touch keeps its entry (precision, not correctness: logged).
	if got := search(t, c, prox+"/"+other+"/_search", shirtQuery); got.cache != "hit" {
		t.Logf("note: a search on %s, which the _bulk did not touch, was a cache %s (invalidated anyway)", other, got.cache)
	}
}

func TestResultCacheWildcardSeesAnyWrite(t *testing.T) {
	node := testenv.URL(t)
	prox := startCachedProxy(t, node)
	c := rawClient()
	prefix := uniqueName("vlp-rcw")
	one, two := prefix+"-one", prefix+"-two"
	createIndex(t, node, one)
	createIndex(t, node, two)

	f := func(name, path string, delta int64, write func()) {
		t.Run(name, func(t *testing.T) {
			before := warm(t, c, prox+path, shirtQuery, -1)
			write()
			if got := search(t, c, prox+path, shirtQuery); got.total != before+delta || got.cache == "hit" {
				t.Errorf("POST %s saw %d hits (cache %s), want %d from upstream", path, got.total, got.cache, before+delta)
			}
		})
	}
	pattern := "/" + prefix + "-*/_search"
	f("doc in one", pattern, 1, func() {
		mustDo(t, c, 201, "PUT", prox+"/"+one+"/_doc/1?refresh=true", []byte(`{"title":"shirt one"}`))
	})
	f("doc in two", pattern, 1, func() {
		mustDo(t, c, 201, "PUT", prox+"/"+two+"/_doc/1?refresh=true", []byte(`{"title":"shirt two"}`))
	})
	f("_bulk without an index in the path", pattern, 1, func() {
		mustDo(t, c, 200, "POST", prox+"/_bulk?refresh=true", []byte(`{"index":{"_index":"`+two+`","_id":"2"}}`+"\n"+`{"title":"bulk shirt"}`+"\n"),
			"Content-Type", "application/x-ndjson")
	})
	f("new index matching the pattern", pattern, 1, func() {
		three := prefix + "-three"
		t.Cleanup(func() { deleteIndex(t, node, three) })
		mustDo(t, c, 201, "PUT", prox+"/"+three+"/_doc/1?refresh=true", []byte(`{"title":"shirt in an auto-created index"}`))
	})
	token := strings.ReplaceAll(prefix, "-", "")
	f("_all search", "/_all/_search?q=title:"+token, 1, func() {
		mustDo(t, c, 201, "PUT", prox+"/"+one+"/_doc/2?refresh=true", []byte(`{"title":"shirt `+token+`"}`))
	})
	f("search without an index", "/_search?q=title:"+token, 1, func() {
		mustDo(t, c, 201, "PUT", prox+"/"+two+"/_doc/3?refresh=true", []byte(`{"title":"shirt `+token+`"}`))
	})
	f("comma list with a pattern", "/"+one+","+prefix+"-t*/_search", 1, func() {
		mustDo(t, c, 201, "PUT", prox+"/"+two+"/_doc/4?refresh=true", []byte(`{"title":"shirt four"}`))
	})
}

func TestResultCacheAliasWrites(t *testing.T) {
	node := testenv.URL(t)
	prox := startCachedProxy(t, node)
	c := rawClient()
	idx := uniqueName("vlp-rcal")
	createIndex(t, node, idx)
	alias := idx + "-alias"
	mustDo(t, c, 200, "POST", prox+"/_aliases", []byte(`{"actions":[{"add":{"index":"`+idx+`","alias":"`+alias+`"}}]}`))
	warm(t, c, prox+"/"+alias+"/_search", shirtQuery, 0)
	// A write through the alias name and one through the concrete name both reach the alias.
	mustDo(t, c, 201, "PUT", prox+"/"+alias+"/_doc/1?refresh=true", []byte(`{"title":"shirt via alias"}`))
	if got := search(t, c, prox+"/"+alias+"/_search", shirtQuery); got.total != 1 {
		t.Errorf("alias search after a write through the alias: %d hits (cache %s), want 1", got.total, got.cache)
	}
	warm(t, c, prox+"/"+alias+"/_search", shirtQuery, 1)
	mustDo(t, c, 201, "PUT", prox+"/"+idx+"/_doc/2?refresh=true", []byte(`{"title":"shirt via index"}`))
	if got := search(t, c, prox+"/"+alias+"/_search", shirtQuery); got.total != 2 {
		t.Errorf("alias search after a write to the concrete index: %d hits (cache %s), want 2", got.total, got.cache)
	}
}

func TestResultCacheNeverSharedAcrossCallers(t *testing.T) {
	node := testenv.URL(t)
	prox := startCachedProxy(t, node)
	c := rawClient()
	idx := uniqueName("vlp-rcauth")
	createIndex(t, node, idx)
	mustDo(t, c, 201, "PUT", node+"/"+idx+"/_doc/1?refresh=true", []byte(`{"title":"shirt"}`))
	url := prox + "/" + idx + "/_search"

	f := func(want string, hdr ...string) {
		t.Helper()
		if got := search(t, c, url, shirtQuery, hdr...); got.cache != want {
			t.Errorf("search with %q: cache %q, want %q", hdr, got.cache, want)
		}
	}
	alice := []string{"Authorization", "Basic YWxpY2U6c2VjcmV0"}
	bob := []string{"Authorization", "Basic Ym9iOnNlY3JldA=="}
	bearer := []string{"Authorization", "Bearer token-of-carol"}
	apiKey := []string{"Authorization", "ApiKey ZGF2ZTprZXk="}
	f("miss", alice...)
	f("hit", alice...)
	f("miss", bob...) // same body, another caller
	f("hit", bob...)
	f("miss", bearer...)
	f("miss", apiKey...)
	f("miss") // anonymous
	f("hit")
	f("miss", "X-Api-Key", "eve")
	f("hit", alice...)
	f("hit", bob...)
	// Header name case does not matter to HTTP; the identity is the value.
	f("hit", "authorization", "Basic YWxpY2U6c2VjcmV0")
}

// queryTotal reads OpenSearch's own count of query phases run on idx's primaries.
func queryTotal(t testing.TB, node, idx string) int64 {
	t.Helper()
	r := mustDo(t, rawClient(), 200, "GET", node+"/"+idx+"/_stats/search", nil)
	v := gjson.GetBytes(r.Body, "_all.primaries.search.query_total")
	if !v.Exists() {
		t.Fatalf("no query_total in %s", r.Body)
	}
	return v.Int()
}

func TestResultCacheSingleFlight(t *testing.T) {
	node := testenv.URL(t)
	prox := startCachedProxy(t, node)
	c := rawClient()
	idx := uniqueName("vlp-rcsf") // one shard: one search is one query phase
	createIndex(t, node, idx)
	mustDo(t, c, 201, "PUT", node+"/"+idx+"/_doc/1?refresh=true", []byte(`{"title":"single flight shirt"}`))

	// Control: two direct searches count two, so the delta below measures searches.
	before := queryTotal(t, node, idx)
	search(t, c, node+"/"+idx+"/_search", shirtQuery)
	search(t, c, node+"/"+idx+"/_search", shirtQuery)
	if d := queryTotal(t, node, idx) - before; d != 2 {
		t.Fatalf("two direct searches moved query_total by %d, want 2", d)
	}

	const n = 200
	body := `{"query":{"match":{"title":"shirt"}},"size":5,"_source":["title"],"track_total_hits":` + fmt.Sprint(time.Now().UnixNano()%1000+1000) + `}`
	before = queryTotal(t, node, idx)
	var (
		wg     sync.WaitGroup
		start  = make(chan struct{})
		mu     sync.Mutex
		states = map[string]int{}
		bodies = map[string]int{}
		fails  []string
	)
	for range n {
		wg.Go(func() {
			<-start
			req, _ := http.NewRequest("POST", prox+"/"+idx+"/_search", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := c.Do(req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				fails = append(fails, err.Error())
				return
			}
			defer resp.Body.Close()
			var buf bytes.Buffer
			buf.ReadFrom(resp.Body)
			if resp.StatusCode != 200 {
				fails = append(fails, fmt.Sprintf("%d %s", resp.StatusCode, buf.Bytes()))
				return
			}
			states[resp.Header.Get("X-Vlproxy-Cache")]++
			bodies[buf.String()]++
		})
	}
	close(start)
	wg.Wait()
	if len(fails) > 0 {
		t.Fatalf("%d of %d concurrent searches failed, e.g. %s", len(fails), n, fails[0])
	}
	delta := queryTotal(t, node, idx) - before
	t.Logf("%d concurrent identical cold searches: cache states %v, %d distinct bodies, upstream query_total delta %d", n, states, len(bodies), delta)
	if delta != 1 {
		t.Errorf("%d concurrent identical cold searches made %d upstream searches, want 1", n, delta)
	}
	if len(bodies) != 1 {
		t.Errorf("%d concurrent identical searches got %d different bodies", n, len(bodies))
	}
}

// With the cluster's aliases known (WithResultCache reads them at start and every 30s), a write
// invalidates only the searches that read what it wrote.
func TestResultCacheWriteKeepsUnrelatedEntries(t *testing.T) {
	node := testenv.URL(t)
	c := rawClient()
	written, other := uniqueName("vlp-rcp"), uniqueName("vlp-rcq")
	createIndex(t, node, written)
	createIndex(t, node, other)
	prox := startCachedProxy(t, node) // after the indices exist: its first topology read knows them

	deadline := time.Now().Add(5 * time.Second)
	for i := 0; ; i++ {
		warm(t, c, prox+"/"+other+"/_search", shirtQuery, 0)
		mustDo(t, c, 201, "PUT", prox+"/"+written+"/_doc/"+fmt.Sprint(i)+"?refresh=true", []byte(`{"title":"shirt"}`))
		got := search(t, c, prox+"/"+other+"/_search", shirtQuery)
		if got.cache == "hit" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("for 5s, every write to %s also invalidated the cached search on %s (cache %s): "+
				"the proxy never learnt the cluster's indices (see the proxy's warnings above)", written, other, got.cache)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A write without ?refresh becomes visible when the node refreshes on its own
// (index.refresh_interval), with no request through the proxy to invalidate anything. A search
// cached in between must not keep hiding the write once the node shows it.
func TestResultCacheSeesPeriodicRefresh(t *testing.T) {
	node := testenv.URL(t)
	prox := startCachedProxy(t, node)
	c := rawClient()
	idx := uniqueName("vlp-rcnrt")
	mustDo(t, c, 200, "PUT", node+"/"+idx, []byte(`{"settings":{"number_of_shards":1,"number_of_replicas":0,"refresh_interval":"200ms"}}`))
	t.Cleanup(func() { deleteIndex(t, node, idx) })
	url := "/" + idx + "/_search"
	warm(t, c, prox+url, shirtQuery, 0)

	mustDo(t, c, 201, "PUT", prox+"/"+idx+"/_doc/1", []byte(`{"title":"shirt written without refresh"}`))
	search(t, c, prox+url, shirtQuery) // may run before the node's refresh and be cached

	deadline := time.Now().Add(5 * time.Second)
	for search(t, c, node+url, shirtQuery).total != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the node did not refresh %s within 5s", idx)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := search(t, c, prox+url, shirtQuery); got.total != 1 {
		t.Errorf("after the node's own refresh, the direct search finds the document but the proxied one "+
			"finds %d (cache %s): the cached result hides a write made through the proxy", got.total, got.cache)
	}
}

// A _bulk too large to be buffered (over 64 KiB) streams through, its action lines scanned on
// the way: it invalidates the searches of the indices it writes (by _index, or the path's
// default index) and leaves the others cached. An action line that cannot be read invalidates
// everything.
func TestResultCacheStreamedBulkInvalidatesPerIndex(t *testing.T) {
	node := testenv.URL(t)
	c := rawClient()
	a, b, other := uniqueName("vlp-rsa"), uniqueName("vlp-rsb"), uniqueName("vlp-rso")
	for _, idx := range []string{a, b, other} {
		createIndex(t, node, idx)
	}
	prox := startCachedProxy(t, node) // after the indices exist: its first topology read knows them

	bulk := func(n int) []byte {
		var nd bytes.Buffer
		pad := strings.Repeat("cotton ", 60)
		for i := 0; i < n; i++ {
			if i%2 == 0 {
				fmt.Fprintf(&nd, `{"index":{"_id":"d%d"}}`+"\n", i) // the path's index
			} else {
				fmt.Fprintf(&nd, `{"index":{"_index":%q,"_id":"d%d"}}`+"\n", b, i)
			}
			fmt.Fprintf(&nd, `{"title":"shirt %d","description":%q}`+"\n", i, pad)
		}
		return nd.Bytes()
	}
	body := bulk(400)
	if len(body) <= 64<<10 {
		t.Fatalf("the bulk is %d bytes, not over 64 KiB", len(body))
	}
	deadline := time.Now().Add(5 * time.Second)
	for round := 0; ; round++ {
		warm(t, c, prox+"/"+a+"/_search", shirtQuery, -1)
		warm(t, c, prox+"/"+b+"/_search", shirtQuery, -1)
		warm(t, c, prox+"/"+other+"/_search", shirtQuery, 0)
		r := mustDo(t, c, 200, "POST", prox+"/"+a+"/_bulk?refresh=true", body, "Content-Type", "application/x-ndjson")
		if gjson.GetBytes(r.Body, "errors").Bool() {
			t.Fatalf("_bulk: %.300s", r.Body)
		}
		for _, idx := range []string{a, b} {
			got := search(t, c, prox+"/"+idx+"/_search", shirtQuery)
			if got.cache == "hit" || got.total != 200 {
				t.Fatalf("%s after the streamed _bulk: %d hits (cache %s), want 200 from upstream", idx, got.total, got.cache)
			}
		}
		if got := search(t, c, prox+"/"+other+"/_search", shirtQuery); got.cache == "hit" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("for 5s, every streamed _bulk to %s and %s also invalidated the search on %s (cache %s)", a, b, other, got.cache)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// An action line that cannot be read: everything goes (ES refuses the bulk, the cache
	// cannot know what it would have touched).
	bad := append([]byte(`{"index":{"_index":"`+a+`"}`+"\n{}\n"), body...)
	warm(t, c, prox+"/"+other+"/_search", shirtQuery, 0)
	do(t, c, "POST", prox+"/"+a+"/_bulk", bad, "Content-Type", "application/x-ndjson")
	if got := search(t, c, prox+"/"+other+"/_search", shirtQuery); got.cache == "hit" {
		t.Fatalf("a streamed _bulk with an unreadable action line left the search on %s cached", other)
	}
}
