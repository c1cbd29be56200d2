package resultcache

import (
	"strings"
	"testing"
)

// Reads under an index pattern, _all or a list change nothing: before, the pattern check ran
// first and every `POST /logs-*/_field_caps` (or _mget, _search/template, …) passing through
// counted as a write to every index, flushing the whole result cache. Found by
// proxy.FuzzRouteProperties (a retried request must not be a write).
func TestWritesReadUnderPattern(t *testing.T) {
	f := func(method, target, want string) {
		t.Helper()
		path, query, _ := strings.Cut(target, "?")
		if got := describe(Writes([]byte(method), []byte(path), []byte(query), nil)); got != want {
			t.Fatalf("Writes(%s %s) = %s; want %s", method, target, got, want)
		}
	}
	f("POST", "/_all/_search", "none")
	f("POST", "/logs-*/_search/template", "none")
	f("POST", "/logs-*/_field_caps", "none")
	f("POST", "/a,b*/_mget", "none")
	f("POST", "/logs-*/_count", "none")
	f("DELETE", "/*/_pit", "none")
	// Writes under a pattern still touch everything, and deleting by pattern the topology.
	f("POST", "/logs-*/_delete_by_query", "ALL")
	f("POST", "/logs-*/_doc", "ALL")
	f("DELETE", "/logs-*", "ALL TOPOLOGY")
}

// The endpoint is the first segment starting with '_' (ES 7 mapping-type paths put a type
// before it), as in proxy's route classification.
func TestWritesTypedPaths(t *testing.T) {
	f := func(method, target, want string) {
		t.Helper()
		if got := describe(Writes([]byte(method), []byte(target), nil, nil)); got != want {
			t.Fatalf("Writes(%s %s) = %s; want %s", method, target, got, want)
		}
	}
	f("POST", "/idx/type/_search", "none")
	f("POST", "/idx/type/_count", "none")
	f("PUT", "/idx/type/1", "idx")
	f("POST", "/idx/type/1/_update", "idx")
	f("POST", "/idx/type/_bulk", "idx")
}
