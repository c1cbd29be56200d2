package esshape

import (
	"testing"

	"github.com/tidwall/gjson"
)

func TestFilterPath(t *testing.T) {
	f := func(body, fp, want string) {
		t.Helper()
		p := ParseFilterPath(fp)
		got := string(p.Apply([]byte(body)))
		if got != want {
			t.Fatalf("filter_path=%s on %s\n got %s\nwant %s", fp, body, got, want)
		}
	}
	body := `{"took":1,"hits":{"total":{"value":2,"relation":"eq"},"max_score":2,"hits":[` +
		`{"_id":"a","_score":2,"_source":{"title":"x","tags":["t1","t2"],"obj":{"k":1,"j":2}}},` +
		`{"_id":"b","_score":1,"_source":{"title":"y"}}]},"aggregations":{"brands":{"buckets":[{"key":"acme","doc_count":1}]}}}`
	f(body, "took", `{"took":1}`)
	f(body, "hits.hits._id", `{"hits":{"hits":[{"_id":"a"},{"_id":"b"}]}}`)
	f(body, "hits.hits._id,took", `{"took":1,"hits":{"hits":[{"_id":"a"},{"_id":"b"}]}}`)
	f(body, "hits.hits._source.tags", `{"hits":{"hits":[{"_source":{"tags":["t1","t2"]}}]}}`)
	f(body, "hits.hits._source.obj.k", `{"hits":{"hits":[{"_source":{"obj":{"k":1}}}]}}`)
	f(body, "hits.*.value", `{"hits":{"total":{"value":2}}}`)
	f(body, "hits.hits._s*", `{"hits":{"hits":[{"_score":2,"_source":{"title":"x","tags":["t1","t2"],"obj":{"k":1,"j":2}}},{"_score":1,"_source":{"title":"y"}}]}}`)
	f(body, "**.key", `{"aggregations":{"brands":{"buckets":[{"key":"acme"}]}}}`)
	f(body, "**.title", `{"hits":{"hits":[{"_source":{"title":"x"}},{"_source":{"title":"y"}}]}}`)
	f(body, "aggregations.**", `{"aggregations":{"brands":{"buckets":[{"key":"acme","doc_count":1}]}}}`)
	f(body, "nothing", `{}`)
	f(body, "-hits,-took", `{"aggregations":{"brands":{"buckets":[{"key":"acme","doc_count":1}]}}}`)
	f(body, "-hits.hits._source,-aggregations,-took", `{"hits":{"total":{"value":2,"relation":"eq"},"max_score":2,"hits":[{"_id":"a","_score":2},{"_id":"b","_score":1}]}}`)
	f(body, "-**._source", `{"took":1,"hits":{"total":{"value":2,"relation":"eq"},"max_score":2,"hits":[{"_id":"a","_score":2},{"_id":"b","_score":1}]},"aggregations":{"brands":{"buckets":[{"key":"acme","doc_count":1}]}}}`)
	// Exclusions first, then inclusions.
	f(body, "hits.hits,-hits.hits._source", `{"hits":{"hits":[{"_id":"a","_score":2},{"_id":"b","_score":1}]}}`)
	f(`{"hits":{"hits":[]}}`, "hits.hits._id", `{}`)
	if ParseFilterPath(" , ") != nil || ParseFilterPath("-") != nil {
		t.Fatal("empty filter_path parsed as a filter")
	}
}

func TestSourceFilter(t *testing.T) {
	src := `{"title":"x","price":3,"brand":{"name":"acme","country":"fr"},"tags":["a","b"],"variants":[{"size":"m","sku":1},{"size":"l","sku":2}],"empty":{}}`
	f := func(flt Source, want string) {
		t.Helper()
		got := string(flt.AppendFiltered(nil, gjson.Parse(src)))
		if got != want {
			t.Fatalf("%+v\n got %s\nwant %s", flt, got, want)
		}
	}
	f(Source{Includes: []string{"title"}}, `{"title":"x"}`)
	f(Source{Includes: []string{"brand"}}, `{"brand":{"name":"acme","country":"fr"}}`)
	f(Source{Includes: []string{"brand.name", "price"}}, `{"price":3,"brand":{"name":"acme"}}`)
	f(Source{Includes: []string{"b*"}}, `{"brand":{"name":"acme","country":"fr"}}`)
	f(Source{Includes: []string{"*.name"}}, `{"brand":{"name":"acme"}}`)
	f(Source{Includes: []string{"variants.size"}}, `{"variants":[{"size":"m"},{"size":"l"}]}`)
	f(Source{Includes: []string{"variants.none"}}, `{}`)
	f(Source{Includes: []string{"empty"}}, `{"empty":{}}`)
	f(Source{Excludes: []string{"brand", "tags"}}, `{"title":"x","price":3,"variants":[{"size":"m","sku":1},{"size":"l","sku":2}],"empty":{}}`)
	f(Source{Excludes: []string{"brand.country", "variants.sku", "e*", "title", "price", "tags"}}, `{"brand":{"name":"acme"},"variants":[{"size":"m"},{"size":"l"}]}`)
	f(Source{Includes: []string{"brand", "title"}, Excludes: []string{"brand.name"}}, `{"title":"x","brand":{"country":"fr"}}`)

	k := func(flt Source, p string, want bool) {
		t.Helper()
		if got := flt.KeepsPath(p); got != want {
			t.Fatalf("%+v keepsPath(%s) = %v", flt, p, got)
		}
	}
	k(Source{}, "title", true)
	k(Source{Disabled: true}, "title", false)
	k(Source{Includes: []string{"ti*"}}, "title", true)
	k(Source{Includes: []string{"brand"}}, "brand.name", true)
	k(Source{Includes: []string{"brand.name"}}, "brand", false)
	k(Source{Excludes: []string{"brand.name"}}, "brand", false)
	k(Source{Excludes: []string{"brand"}}, "brand.name", false)
	k(Source{Excludes: []string{"price"}}, "title", true)
}

func TestGlob(t *testing.T) {
	f := func(pat, s string, match, prefix bool) {
		t.Helper()
		if globMatch(pat, s) != match || globPrefix(pat, s) != prefix {
			t.Fatalf("glob(%q,%q) = %v/%v", pat, s, globMatch(pat, s), globPrefix(pat, s))
		}
	}
	f("abc", "abc", true, true)
	f("abc", "ab", false, true)
	f("a*c", "abbbc", true, true)
	f("a*c", "abbbd", false, true)
	f("*", "", true, true)
	f("x.*", "x.", true, true)
	f("a*b*c", "aXbYbZc", true, true)
	f("abc", "abd", false, false)
	f("ab", "abc", false, false)
}
