package resultcache

import (
	"os"
	"strings"
	"testing"
	"time"
)

func describe(w Write) string {
	var parts []string
	if w.All {
		parts = append(parts, "ALL")
	}
	if len(w.Indices) > 0 {
		parts = append(parts, strings.Join(w.Indices, ","))
	}
	if w.Topology {
		parts = append(parts, "TOPOLOGY")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

func TestWrites(t *testing.T) {
	f := func(method, target, body, want string) {
		t.Helper()
		path, query, _ := strings.Cut(target, "?")
		w := Writes([]byte(method), []byte(path), []byte(query), []byte(body))
		if got := describe(w); got != want {
			t.Fatalf("Writes(%s %s) = %s; want %s", method, target, got, want)
		}
		if w.IsWrite() != (want != "none") {
			t.Fatalf("IsWrite() = %v for %s", w.IsWrite(), want)
		}
	}
	// Reads.
	f("GET", "/products/_search", "", "none")
	f("POST", "/products/_search", `{"query":{"match_all":{}}}`, "none")
	f("POST", "/_search", `{}`, "none")
	f("POST", "/_msearch", "{}\n{}\n", "none")
	f("POST", "/products/_count", "", "none")
	f("POST", "/products/_mget", `{"ids":["1"]}`, "none")
	f("POST", "/_mget", `{"docs":[]}`, "none")
	f("POST", "/products/_explain/1", `{}`, "none")
	f("POST", "/products/_search/template", `{}`, "none")
	f("POST", "/_search/scroll", `{"scroll_id":"x"}`, "none")
	f("DELETE", "/_search/scroll", `{"scroll_id":"x"}`, "none")
	f("POST", "/products/_pit?keep_alive=1m", "", "none")
	f("DELETE", "/_pit", `{"id":"x"}`, "none")
	f("POST", "/products/_search/point_in_time?keep_alive=1m", "", "none")
	f("DELETE", "/_search/point_in_time", `{"pit_id":["x"]}`, "none")
	f("POST", "/products/_validate/query", `{}`, "none")
	f("POST", "/products/_field_caps?fields=*", "", "none")
	f("POST", "/_analyze", `{"text":"x"}`, "none")
	f("POST", "/products/_flush", "", "none")
	f("POST", "/products/_cache/clear", "", "none")
	f("POST", "/_plugins/_sql", `{"query":"select 1"}`, "none")
	f("POST", "/_vlproxy/cache/_clear", "", "none")
	f("HEAD", "/products", "", "none")
	f("GET", "/_cat/indices", "", "none")

	// Document writes touch the path's index.
	f("PUT", "/products/_doc/1", `{"title":"a"}`, "products")
	f("POST", "/products/_doc", `{"title":"a"}`, "products")
	f("POST", "/products/_doc/1?refresh=true", `{"title":"a"}`, "products")
	f("PUT", "/products/_create/1", `{}`, "products")
	f("POST", "/products/_update/1", `{"doc":{"a":1}}`, "products")
	f("DELETE", "/products/_doc/1", "", "products")
	f("PUT", "/products/product/1", `{}`, "products") // mapping types (ES 6)
	f("PUT", "/my%2Dindex/_doc/1", `{}`, "my-index")
	f("POST", "/products/_doc?pipeline=enrich", `{}`, "ALL")

	// By-query writes, refresh, open/close, mappings.
	f("POST", "/products/_update_by_query", `{"script":{"source":"ctx._source.a=1"}}`, "products")
	f("POST", "/a,b/_delete_by_query", `{"query":{"match_all":{}}}`, "a,b")
	f("POST", "/products/_refresh", "", "products")
	f("GET", "/products/_refresh", "", "none") // GET _refresh is allowed by ES but it only makes visible what was written: see the README
	f("POST", "/_refresh", "", "ALL")
	f("POST", "/logs-*/_refresh", "", "ALL")
	f("POST", "/_all/_refresh", "", "ALL")
	f("POST", "/products/_close", "", "products")
	f("POST", "/products/_open", "", "products")
	f("PUT", "/products/_mapping", `{"runtime":{"x":{"type":"keyword"}}}`, "products")
	f("PUT", "/products/_settings", `{"index":{"number_of_replicas":0}}`, "products")
	f("POST", "/logs%2A/_delete_by_query", `{}`, "ALL")

	// Index creation and deletion change what names mean.
	f("PUT", "/products", `{"settings":{}}`, "products TOPOLOGY")
	f("DELETE", "/products", "", "products TOPOLOGY")
	f("DELETE", "/a,b", "", "a,b TOPOLOGY")
	f("DELETE", "/logs-*", "", "ALL TOPOLOGY")
	f("DELETE", "/_all", "", "ALL TOPOLOGY")
	f("POST", "/products/_clone/products-copy", "", "ALL TOPOLOGY")

	// Aliases and rollover.
	f("POST", "/_aliases", `{"actions":[{"add":{"index":"a","alias":"x"}}]}`, "ALL TOPOLOGY")
	f("PUT", "/products/_alias/current", "", "ALL TOPOLOGY")
	f("DELETE", "/products/_aliases/current", "", "ALL TOPOLOGY")
	f("POST", "/current/_rollover", "", "ALL TOPOLOGY")

	// Reindex.
	f("POST", "/_reindex", `{"source":{"index":"a"},"dest":{"index":"b"}}`, "b")
	f("POST", "/_reindex", `{"source":{"index":"a"},"dest":{"index":"b"},"script":{"source":"ctx._index='c'"}}`, "ALL")
	f("POST", "/_reindex", `{"source":{"index":"a"},"dest":{"index":"b","pipeline":"p"}}`, "ALL")
	f("POST", "/_reindex", `{"source":{"index":"a"}}`, "ALL")

	// Anything unknown at cluster level touches everything.
	f("PUT", "/_index_template/t", `{}`, "ALL TOPOLOGY")
	f("PUT", "/_data_stream/logs", "", "ALL TOPOLOGY")
	f("PUT", "/_cluster/settings", `{}`, "ALL TOPOLOGY")
	f("POST", "/_plugins/_security/api/roles/x", `{}`, "ALL TOPOLOGY")
	f("POST", "/", "", "ALL TOPOLOGY")
}

func TestWritesBulk(t *testing.T) {
	f := func(target, body, want string) {
		t.Helper()
		path, query, _ := strings.Cut(target, "?")
		if got := describe(Writes([]byte("POST"), []byte(path), []byte(query), []byte(body))); got != want {
			t.Fatalf("Writes(POST %s) with body\n%s= %s; want %s", target, body, got, want)
		}
	}
	f("/_bulk", "{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"t\":1}\n{\"delete\":{\"_index\":\"b\",\"_id\":\"2\"}}\n", "a,b")
	// The default index from the path, overridden per action.
	f("/a/_bulk", "{\"index\":{}}\n{\"t\":1}\n{\"create\":{\"_index\":\"c\"}}\n{\"t\":2}\n", "a,c")
	f("/a/_bulk", "{\"delete\":{\"_index\":\"b\",\"_id\":\"1\"}}\n", "b")
	f("/a/_bulk", "", "a")
	// A source line that looks like an action is a source all the same.
	f("/_bulk", "{\"index\":{\"_index\":\"a\"}}\n{\"index\":{\"_index\":\"trap\"}}\n{\"update\":{\"_index\":\"b\",\"_id\":\"1\"}}\n{\"doc\":{}}\n", "a,b")
	// Blank lines where an action is expected are skipped; CRLF; no final newline.
	f("/_bulk", "\n{\"index\":{\"_index\":\"a\"}}\r\n{}\r\n\n{\"delete\":{\"_index\":\"b\",\"_id\":\"1\"}}", "a,b")
	// Whitespace inside an action line.
	f("/_bulk", "{ \"index\" : { \"_index\" : \"a\" } }\n{}\n", "a")
	// No index anywhere, patterns, pipelines, garbage: everything.
	f("/_bulk", "{\"index\":{}}\n{}\n", "ALL")
	f("/_bulk", "{\"index\":{\"_index\":\"a*\"}}\n{}\n", "ALL")
	f("/_bulk?pipeline=p", "{\"index\":{\"_index\":\"a\"}}\n{}\n", "ALL")
	f("/_bulk", "{\"index\":{\"_index\":\"a\",\"pipeline\":\"p\"}}\n{}\n", "ALL")
	f("/_bulk", "{\"upsert\":{\"_index\":\"a\"}}\n{}\n", "ALL")
	f("/_bulk", "not json\n", "ALL")
	f("/_bulk", "{\"index\":{\"_index\":\"a\"},\"delete\":{}}\n{}\n", "ALL")
	f("/_bulk", "{\"index\":{\"_index\":1}}\n{}\n", "ALL")
	f("/a/product/_bulk", "{\"index\":{\"_index\":\"b\"}}\n{}\n", "b")

	// A real catalogue-loading body.
	body, err := os.ReadFile("testdata/bulk_two_indices.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	f("/_bulk?refresh=wait_for", string(body), "products,reviews")
}

func TestWritesVisible(t *testing.T) {
	f := func(method, uri string, want bool) {
		t.Helper()
		path, query, _ := strings.Cut(uri, "?")
		w := Writes([]byte(method), []byte(path), []byte(query), []byte(`{"index":{"_index":"a"}}`+"\n{}\n"))
		if !w.IsWrite() {
			t.Fatalf("%s %s: not a write", method, uri)
		}
		if w.Visible != want {
			t.Fatalf("%s %s: Visible = %v, want %v", method, uri, w.Visible, want)
		}
	}
	f("PUT", "/a/_doc/1", false)
	f("PUT", "/a/_doc/1?refresh=false", false)
	f("PUT", "/a/_doc/1?refresh", true)
	f("PUT", "/a/_doc/1?refresh=true", true)
	f("POST", "/a/_update/1?refresh=wait_for", true)
	f("POST", "/_bulk", false)
	f("POST", "/_bulk?refresh=wait_for", true)
	f("POST", "/a/_refresh", true)
	f("POST", "/_refresh", true)
	f("PUT", "/a", true)
	f("DELETE", "/a", true)
	f("POST", "/_aliases", true)
	f("POST", "/a/_delete_by_query", false)
}

// A write the cluster may not show yet (no ?refresh) dates the keys that depend on it; a
// visible one, or a write elsewhere, does not.
func TestKeyAtLastWrite(t *testing.T) {
	k := New(Config{AssumeConcrete: true})
	key := func(index string) time.Time {
		t.Helper()
		_, last, ok := k.KeyAt(nil, KeyInput{Method: []byte("POST"), Path: []byte("/" + index + "/_search"), Body: []byte(`{}`)})
		if !ok {
			t.Fatal("no key")
		}
		return last
	}
	if !key("a").IsZero() {
		t.Fatal("lastWrite set before any write")
	}
	k.Invalidate(Writes([]byte("PUT"), []byte("/a/_doc/1"), []byte("refresh=true"), nil))
	if !key("a").IsZero() {
		t.Fatal("a visible write dated the key")
	}
	before := time.Now()
	k.Invalidate(Writes([]byte("PUT"), []byte("/a/_doc/2"), nil, nil))
	if got := key("a"); got.Before(before) || time.Since(got) > time.Minute {
		t.Fatalf("lastWrite of a = %v, want about %v", got, before)
	}
	if !key("b").IsZero() {
		t.Fatal("a write to a dated the key of a search on b")
	}
	if key("*").IsZero() {
		t.Fatal("a pattern search must depend on every write")
	}
}
