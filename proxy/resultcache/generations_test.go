package resultcache

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

func testTopology(t *testing.T) *Topology {
	t.Helper()
	body, err := os.ReadFile("testdata/alias_response.json")
	if err != nil {
		t.Fatal(err)
	}
	topo, err := ParseAliases(body)
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func TestParseAliases(t *testing.T) {
	topo := testTopology(t)
	wantIndices := map[string]struct{}{"products": {}, "reviews": {}, "logs-1": {}, "logs-2": {}, ".hidden": {}}
	if !reflect.DeepEqual(topo.indices, wantIndices) {
		t.Fatalf("indices = %v; want %v", topo.indices, wantIndices)
	}
	wantAliases := map[string][]string{"logs": {"logs-1", "logs-2"}, "catalog": {"products"}}
	if !reflect.DeepEqual(topo.aliases, wantAliases) {
		t.Fatalf("aliases = %v; want %v", topo.aliases, wantAliases)
	}
	f := func(body, wantErr string) {
		t.Helper()
		_, err := ParseAliases([]byte(body))
		if err == nil || err.Error() != wantErr {
			t.Fatalf("ParseAliases(%s) error = %v; want %q", body, err, wantErr)
		}
	}
	f(`{`, "cannot parse the _alias response: invalid JSON")
	f(`[]`, "cannot parse the _alias response: want a JSON object, got JSON")
	f(`{"a":1}`, `cannot parse the _alias response: index "a" is not an object`)
}

// write applies "METHOD /target" with body to k.
func write(k *Keyer, line, body string) {
	method, target, _ := strings.Cut(line, " ")
	path, query, _ := strings.Cut(target, "?")
	k.Invalidate(Writes([]byte(method), []byte(path), []byte(query), []byte(body)))
}

func TestInvalidationWithTopology(t *testing.T) {
	topo := testTopology(t)
	f := func(search, searchBody, writeLine, writeBody string, wantInvalidated bool) {
		t.Helper()
		k := New(DefaultConfig())
		if !k.SetTopology(k.TopologyVersion(), topo) {
			t.Fatal("SetTopology refused")
		}
		in := req(search, searchBody, nil)
		before := mustKey(t, k, in)
		write(k, writeLine, writeBody)
		after := mustKey(t, k, in)
		if got := !bytes.Equal(before, after); got != wantInvalidated {
			t.Fatalf("search %s after write %s: invalidated = %v; want %v", search, writeLine, got, wantInvalidated)
		}
	}
	const doc = `{"title":"x"}`
	// Concrete indices: only their own writes.
	f("POST /products/_search", `{}`, "PUT /products/_doc/1?refresh=true", doc, true)
	f("POST /products/_search", `{}`, "PUT /reviews/_doc/1?refresh=true", doc, false)
	f("POST /products/_search", `{}`, "POST /reviews/_refresh", "", false)
	f("POST /products/_search", `{}`, "POST /products/_refresh", "", true)
	f("POST /products/_search", `{}`, "POST /reviews/_search", `{}`, false)
	f("POST /products/_count", `{}`, "DELETE /products/_doc/1", "", true)
	f("GET /products,reviews/_search", ``, "POST /reviews/_update/1", `{"doc":{}}`, true)
	f("GET /products,reviews/_search", ``, "POST /logs-1/_doc", doc, false)
	f("POST /products/_search", `{}`, "POST /products/_delete_by_query", `{"query":{"match_all":{}}}`, true)
	f("POST /products/_search", `{}`, "POST /products/_close", ``, true)
	// _bulk touching two indices invalidates both and nothing else.
	bulk := "{\"index\":{\"_index\":\"reviews\"}}\n{}\n{\"delete\":{\"_index\":\"logs-1\",\"_id\":\"1\"}}\n"
	f("POST /products/_search", `{}`, "POST /_bulk", bulk, false)
	f("POST /reviews/_search", `{}`, "POST /_bulk", bulk, true)
	f("POST /logs-1/_search", `{}`, "POST /_bulk", bulk, true)
	f("POST /logs-2/_search", `{}`, "POST /_bulk", bulk, false)
	// Aliases depend on the indices behind them, and a write through an alias on those.
	f("POST /logs/_search", `{}`, "POST /logs-2/_doc", doc, true)
	f("POST /logs/_search", `{}`, "POST /products/_doc", doc, false)
	f("POST /logs-1/_search", `{}`, "POST /logs/_doc", doc, true)
	f("POST /catalog/_search", `{}`, "PUT /products/_doc/1", doc, true)
	// Patterns, _all and no index depend on every write.
	f("POST /_search", `{}`, "PUT /reviews/_doc/1", doc, true)
	f("POST /_all/_search", `{}`, "PUT /reviews/_doc/1", doc, true)
	f("POST /prod*/_search", `{}`, "PUT /reviews/_doc/1", doc, true)
	f("POST /prod%2A/_search", `{}`, "PUT /reviews/_doc/1", doc, true)
	f("POST /products,-reviews/_search", `{}`, "PUT /logs-1/_doc/1", doc, true)
	f("POST /%3Clogs-%7Bnow%2Fd%7D%3E/_search", `{}`, "PUT /reviews/_doc/1", doc, true)
	f("POST /remote:products/_search", `{}`, "PUT /reviews/_doc/1", doc, true)
	f("POST /unknown/_search", `{}`, "PUT /reviews/_doc/1", doc, true)
	f("POST /_search", `{}`, "POST /reviews/_search", `{}`, false)
	// Writes of unknown reach invalidate searches of concrete indices too.
	f("POST /products/_search", `{}`, "PUT /new-index/_doc/1", doc, true)
	f("POST /products/_search", `{}`, "POST /_refresh", ``, true)
	f("POST /products/_search", `{}`, "POST /_bulk", "{\"index\":{\"_index\":\"r*\"}}\n{}\n", true)
	f("POST /products/_search", `{}`, "POST /_aliases", `{"actions":[{"add":{"index":"reviews","alias":"products-2"}}]}`, true)
	f("POST /products/_search", `{}`, "PUT /_index_template/x", `{}`, true)
	// _msearch: the indices of every header, the path's for a header without one.
	ms := "{\"index\":\"products\"}\n{}\n{\"index\":[\"reviews\"]}\n{}\n"
	f("POST /_msearch", ms, "PUT /reviews/_doc/1", doc, true)
	f("POST /_msearch", ms, "PUT /logs-1/_doc/1", doc, false)
	f("POST /_msearch", "{\"index\":\"products\"}\n{}\n{}\n{}\n", "PUT /logs-1/_doc/1", doc, true)
	f("POST /products/_msearch", "{}\n{}\n\n{}\n", "PUT /logs-1/_doc/1", doc, false)
	f("POST /products/_msearch", "{}\n{}\n\n{}\n", "PUT /products/_doc/1", doc, true)
	f("POST /_msearch", "{\"index\":\"p*\"}\n{}\n", "PUT /logs-1/_doc/1", doc, true)
}

func TestInvalidationWithoutTopology(t *testing.T) {
	f := func(cfg Config, search, writeLine string, wantInvalidated bool) {
		t.Helper()
		k := New(cfg)
		in := req(search, `{}`, nil)
		before := mustKey(t, k, in)
		write(k, writeLine, `{}`)
		if got := !bytes.Equal(before, mustKey(t, k, in)); got != wantInvalidated {
			t.Fatalf("%+v: search %s after write %s: invalidated = %v; want %v", cfg, search, writeLine, got, wantInvalidated)
		}
	}
	// Without a topology any name may be an alias: every write invalidates every search.
	f(Config{}, "POST /products/_search", "PUT /reviews/_doc/1", true)
	f(Config{}, "POST /products/_search", "PUT /products/_doc/1", true)
	f(Config{}, "POST /products/_search", "POST /reviews/_search", false)
	// AssumeConcrete: plain names are indices.
	f(Config{AssumeConcrete: true}, "POST /products/_search", "PUT /reviews/_doc/1", false)
	f(Config{AssumeConcrete: true}, "POST /products/_search", "PUT /products/_doc/1", true)
	f(Config{AssumeConcrete: true}, "POST /p*/_search", "PUT /reviews/_doc/1", true)
	f(Config{AssumeConcrete: true}, "POST /products/_search", "POST /_refresh", true)
}

func TestTopologyChanges(t *testing.T) {
	topo := testTopology(t)
	k := New(DefaultConfig())
	v := k.TopologyVersion()
	write(k, "POST /_aliases", `{"actions":[{"add":{"index":"reviews","alias":"logs"}}]}`)
	if k.SetTopology(v, topo) {
		t.Fatal("SetTopology accepted a topology fetched before an alias change")
	}
	if !k.SetTopology(k.TopologyVersion(), topo) {
		t.Fatal("SetTopology refused a fresh topology")
	}
	in := req("POST /products/_search", `{}`, nil)
	before := mustKey(t, k, in)
	write(k, "PUT /reviews/_doc/1", `{}`)
	if !bytes.Equal(before, mustKey(t, k, in)) {
		t.Fatal("write to reviews invalidated a products search with a topology")
	}
	// Deleting an index drops the topology: names are unknown again until the next fetch.
	write(k, "DELETE /logs-1", ``)
	before = mustKey(t, k, in)
	write(k, "PUT /reviews/_doc/1", `{}`)
	if bytes.Equal(before, mustKey(t, k, in)) {
		t.Fatal("after DELETE /logs-1 the topology should be forgotten and every write invalidate")
	}
}

func TestTrackedIndicesBound(t *testing.T) {
	k := New(Config{AssumeConcrete: true})
	in := req("POST /products/_search", `{}`, nil)
	before := mustKey(t, k, in)
	for i := range maxTrackedIndices {
		k.Invalidate(Write{Indices: []string{fmt.Sprintf("i%d", i)}})
	}
	if !bytes.Equal(before, mustKey(t, k, in)) {
		t.Fatal("writes to other indices invalidated the search before the table was full")
	}
	k.Invalidate(Write{Indices: []string{"one-more"}})
	if bytes.Equal(before, mustKey(t, k, in)) {
		t.Fatal("emptying the full table must invalidate everything")
	}
	if n := len(k.gens.indices); n != 1 {
		t.Fatalf("table holds %d names after the reset; want 1", n)
	}
}

// TestConcurrentUse runs keys, writes and topology updates together for the race detector.
func TestConcurrentUse(t *testing.T) {
	k := New(DefaultConfig())
	topo := testTopology(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 300 {
			write(k, "PUT /products/_doc/1", `{}`)
			if i%10 == 0 {
				write(k, "POST /_aliases", `{}`)
			}
			k.SetTopology(k.TopologyVersion(), topo)
		}
	}()
	in := req("POST /_msearch", "{\"index\":\"products\"}\n{}\n{\"index\":\"logs\"}\n{}\n", nil)
	for range 300 {
		mustKey(t, k, in)
	}
	<-done
}
