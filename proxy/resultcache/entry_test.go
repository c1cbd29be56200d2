package resultcache

import (
	"bytes"
	"testing"
	"time"
)

func TestEntryRoundTrip(t *testing.T) {
	stored := time.Date(2025, 3, 1, 12, 0, 0, 123, time.UTC)
	in := Entry{
		Status:      200,
		Stored:      stored,
		ContentType: []byte("application/json; charset=UTF-8"),
		Rewrite:     []byte("skipped"),
		Rerank:      []byte("applied"),
		Headers: []Header{
			{Name: []byte("X-Elastic-Product"), Value: []byte("Elasticsearch")},
			{Name: []byte("Warning"), Value: []byte("299 Elasticsearch")},
			{Name: []byte("Warning"), Value: []byte("299 again")},
		},
		Body: []byte(`{"took":3,"hits":{"total":{"value":0,"relation":"eq"},"hits":[]}}`),
	}
	enc := AppendEntry([]byte("x"), &in)
	if enc[0] != 'x' {
		t.Fatal("AppendEntry overwrote dst")
	}
	var out Entry
	if err := out.Decode(enc[1:]); err != nil {
		t.Fatal(err)
	}
	if out.Status != 200 || !out.Stored.Equal(stored) || !bytes.Equal(out.Body, in.Body) || len(out.Headers) != 3 {
		t.Fatalf("decoded %+v", out)
	}
	if string(out.ContentType) != string(in.ContentType) || string(out.Rewrite) != "skipped" || string(out.Rerank) != "applied" || len(out.Retrieval) != 0 {
		t.Fatalf("fixed fields: Content-Type %q, rewrite %q, rerank %q, retrieval %q", out.ContentType, out.Rewrite, out.Rerank, out.Retrieval)
	}
	for i, h := range out.Headers {
		if string(h.Name) != string(in.Headers[i].Name) || string(h.Value) != string(in.Headers[i].Value) {
			t.Fatalf("header %d = %s: %s; want %s: %s", i, h.Name, h.Value, in.Headers[i].Name, in.Headers[i].Value)
		}
	}
	if age := out.Age(stored.Add(2999 * time.Millisecond)); age != 2 {
		t.Fatalf("Age = %d; want 2", age)
	}
	if age := out.Age(stored.Add(-time.Second)); age != 0 {
		t.Fatalf("Age before stored = %d; want 0", age)
	}
	// Decoding again reuses the header slice.
	if err := out.Decode(enc[1:]); err != nil || len(out.Headers) != 3 {
		t.Fatalf("second Decode: %v, %d headers", err, len(out.Headers))
	}
	allocs := testing.AllocsPerRun(100, func() { _ = out.Decode(enc[1:]) })
	if allocs != 0 {
		t.Fatalf("Decode into a used Entry allocates %v times", allocs)
	}
}

func TestEntryDecodeErrors(t *testing.T) {
	good := AppendEntry(nil, &Entry{Status: 200, Stored: time.Unix(1, 0), Headers: []Header{{Name: []byte("A"), Value: []byte("b")}}, Body: []byte("{}")})
	f := func(b []byte) {
		t.Helper()
		var e Entry
		if err := e.Decode(b); err == nil {
			t.Fatalf("Decode(%q) succeeded: %+v", b, e)
		}
	}
	f(nil)
	f([]byte{entryVersion})
	for n := 0; n < len(good); n++ {
		f(good[:n]) // every truncation loses the trailer
	}
	f(AppendEntry(nil, &Entry{Status: 5, Body: []byte("{}")}))
	old := append([]byte{}, good...)
	old[len(old)-1] = 1 // the version before the metadata moved behind the body
	f(old)
	old[len(old)-1] = 2 // the version before the fixed fields
	f(old)
}

// TestEntryMetaAfterBody: with spare capacity in the body's buffer, the entry is that buffer:
// storing a response copies none of its body.
func TestEntryMetaAfterBody(t *testing.T) {
	body := make([]byte, 0, 256)
	body = append(body, `{"hits":{"hits":[]}}`...)
	enc := AppendEntryMeta(body, &Entry{Status: 200, Headers: []Header{{Name: []byte("Content-Type"), Value: []byte("application/json")}}})
	if &enc[0] != &body[0] {
		t.Fatal("the entry was copied out of the body's buffer")
	}
	var e Entry
	if err := e.Decode(enc); err != nil || string(e.Body) != `{"hits":{"hits":[]}}` || e.Status != 200 || len(e.Headers) != 1 {
		t.Fatalf("Decode: %v %+v", err, e)
	}
	if cap(e.Body) != len(e.Body) {
		t.Fatal("the decoded body may be appended to over the metadata")
	}
}

func TestStoredHeader(t *testing.T) {
	f := func(name string, want bool) {
		t.Helper()
		if StoredHeader([]byte(name)) != want {
			t.Fatalf("StoredHeader(%s) = %v", name, !want)
		}
	}
	f("Content-Type", true)
	f("content-encoding", true)
	f("X-Elastic-Product", true)
	f("Warning", true)
	f("X-VLProxy-Rewrite", true)
	f("X-Opaque-Id", false)
	f("Date", false)
	f("Content-Length", false)
	f("Set-Cookie", false)
	f("Age", false)
	f("X-VLProxy-Cache", false)
	f("Server-Timing", false)
}
