package esshape

import (
	"testing"

	"github.com/tidwall/gjson"
)

// What integration/faults TestSourceFilterPathDifferential found against OpenSearch 2.19, each
// case as the node answered it.
func TestMatchesTheNode(t *testing.T) {
	// filter_path exclusions: a container on an exclusion's path that is left empty, or was
	// empty to begin with, is not written; one off every exclusion's path is copied as is.
	fp := func(body, expr, want string) {
		t.Helper()
		if got := string(ApplyFilterPath([]byte(body), expr)); got != want {
			t.Fatalf("filter_path=%s on %s\n got %s\nwant %s", expr, body, got, want)
		}
	}
	fp(`{"hits":{"hits":[{"_id":"a","_source":{"b":{"x":1}}},{"_id":"b","_source":{"c":1}}]}}`, "-hits.hits._source.b",
		`{"hits":{"hits":[{"_id":"a"},{"_id":"b","_source":{"c":1}}]}}`)
	fp(`{"hits":{"hits":[{"_id":"a","_source":{"b":{},"e":{},"t":"x"}}]},"o":{}}`, "-**.y",
		`{"hits":{"hits":[{"_id":"a","_source":{"t":"x"}}]}}`)
	fp(`{"a":{"b":{}},"c":{}}`, "-a.x", `{"a":{"b":{}},"c":{}}`) // b is off the path: written whole
	fp(`{"a":[{"x":1},{"y":2}],"c":[]}`, "-a.x", `{"a":[{"y":2}],"c":[]}`)
	fp(`{"a":{"x":1}}`, "-a.x", `{}`)

	// _source: inside a list that is filtered (not copied whole), empty maps are dropped,
	// also those that were empty to begin with; the list itself stays when its path is included.
	src := func(s Source, doc, want string) {
		t.Helper()
		if got := string(s.AppendFiltered(nil, gjson.Parse(doc))); got != want {
			t.Fatalf("%+v on %s\n got %s\nwant %s", s, doc, got, want)
		}
	}
	src(Source{Includes: []string{"*"}, Excludes: []string{"*.x"}}, `{"c":[{"x":1},{"q":0}]}`, `{"c":[{"q":0}]}`)
	src(Source{Includes: []string{"*"}, Excludes: []string{"*.x"}}, `{"c":[{"x":1}]}`, `{"c":[]}`)
	src(Source{Excludes: []string{"c.x"}}, `{"c":[{},{"q":0}]}`, `{"c":[{"q":0}]}`)
	// Copied whole (no exclusion can reach inside): kept as stored, empty maps included.
	src(Source{Includes: []string{"c"}}, `{"c":[{},{"q":0}]}`, `{"c":[{},{"q":0}]}`)
}
