package pipeline

import (
	"strings"
	"testing"

	"github.com/vlproxy/vlproxy/hybrid"
	"github.com/vlproxy/vlproxy/internal/eserr"
)

func TestHybridSearchRequest(t *testing.T) {
	hy := &hybridPart{lex: []byte(`{"size":10,"query":{"match":{"t":"x"}}}`), vec: []byte("{\"size\":10,\n\"query\":{}}")}
	path, q, body, fp, err := hybridSearch([]byte("/products/_search"), "routing=u1&typed_keys=true&filter_path=hits.hits._id", hy)
	if err != nil {
		t.Fatal(err)
	}
	if string(path) != "/products/_msearch" || q != "typed_keys=true" || fp != "hits.hits._id" {
		t.Errorf("path %s query %q filter_path %q", path, q, fp)
	}
	want := `{"routing":"u1"}` + "\n" + `{"size":10,"query":{"match":{"t":"x"}}}` + "\n" + `{"routing":"u1"}` + "\n" + `{"size":10,"query":{}}` + "\n"
	if string(body) != want {
		t.Errorf("body %q, want %q", body, want)
	}
	if p, _, _, _, _ := hybridSearch([]byte("/_search"), "", hy); string(p) != "/_msearch" {
		t.Errorf("/_search became %s", p)
	}
	_, _, _, _, err = hybridSearch([]byte("/products/_search"), "size=5", hy)
	if e, ok := err.(*eserr.Error); !ok || e.Status != 400 || !strings.Contains(e.Reason, "[size]") {
		t.Errorf("size URL parameter: %v", err)
	}
}

func TestFuseSideErrors(t *testing.T) {
	pt := &part{hy: &hybridPart{plan: &hybrid.Plan{Field: "image_vec"}, from: 0, size: 10}}
	ok := []byte(`{"took":1,"hits":{"total":{"value":0,"relation":"eq"},"max_score":null,"hits":[]}}`)
	bad := []byte(`{"error":{"root_cause":[{"type":"illegal_argument_exception","reason":"Field 'image_vec' is not knn_vector type."}],"type":"search_phase_execution_exception","reason":"all shards failed"},"status":400}`)
	_, err := fuse(pt, ok, bad)
	e, isErr := err.(*eserr.Error)
	if !isErr || e.Status != 400 || e.Type != "illegal_argument_exception" || !strings.Contains(e.Reason, "vector field [image_vec]") || !strings.Contains(e.Reason, "not knn_vector") {
		t.Fatalf("vector side error: %#v", err)
	}
	// A lexical failure is answered as the engine answered it.
	b, err := fuse(pt, bad, ok)
	if err != nil || string(b) != string(bad) {
		t.Fatalf("lexical side error: %v %s", err, b)
	}
	item := esErrorItem(&eserr.Error{Status: 400, Type: "t", Reason: "r \"q\""})
	if string(item) != `{"error":{"root_cause":[{"type":"t","reason":"r \"q\""}],"type":"t","reason":"r \"q\""},"status":400}` {
		t.Errorf("error item %s", item)
	}
}
