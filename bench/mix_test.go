package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadMix(t *testing.T) {
	m, err := LoadMix("testdata/mix.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, e := range m.Entries {
		got = append(got, e.Name+" "+e.Method+" "+e.Path)
		_ = i
	}
	if want := "img POST /products/_search|count GET /products/_count|file POST /products/_search"; strings.Join(got, "|") != want {
		t.Fatalf("entries %q, want %q", strings.Join(got, "|"), want)
	}
	if b := string(m.Body(0)); b != `{"query":{"multimodal":{"image":"data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==","text":"red dress"}}}` {
		t.Fatalf("image body %s", b)
	}
	if b := string(m.Body(2)); b != `{"query":{"match":{"title":"shirt"}},"size":10}` {
		t.Fatalf("body_file body %s", b)
	}
	// weights 1,2,1 → cumulative 0.25, 0.75, 1
	f := func(u float64, want int) {
		t.Helper()
		if got := m.pick(u); got != want {
			t.Fatalf("pick(%g) = %d, want %d", u, got, want)
		}
	}
	f(0, 0)
	f(0.2499, 0)
	f(0.25, 1)
	f(0.7, 1)
	f(0.99, 2)
}

func TestParseMixErrors(t *testing.T) {
	dir := t.TempDir()
	f := func(content, want string) {
		t.Helper()
		path := filepath.Join(dir, "bad.ndjson")
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadMix(path)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("LoadMix(%q): err %v, want it to contain %q", content, err, want)
		}
	}
	ok := `{"path":"/"}` + "\n"
	f(ok+`{"path":"/x"`+"\n", "bad.ndjson:2: cannot parse mix entry")
	f(ok+ok+`{"path":"x"}`, `bad.ndjson:3: path must start with '/', got "x"`)
	f(`{"path":"/","bodyy":1}`, `bad.ndjson:1: cannot parse mix entry: json: unknown field "bodyy"`)
	f(`{"path":"/","body":{},"body_file":"q.json"}`, "bad.ndjson:1: body and body_file are mutually exclusive")
	f(`{"path":"/","body_file":"missing.json"}`, "bad.ndjson:1: cannot read body_file")
	f(`{"path":"/","weight":-1}`, "bad.ndjson:1: weight must be >= 0")
	f(`{"path":"/","weight":0}`, "bad.ndjson: mix weights sum to 0")
	f("# only a comment\n\n", "bad.ndjson: mix has no requests")
	f(`{"path":"/","method":"GE T"}`, `bad.ndjson:1: method "GE T" is not a valid HTTP method`)
	f(`{"path":"/","headers":{"Bad Name":"x"}}`, `bad.ndjson:1: header name "Bad Name" is invalid`)
	f(`{"path":"/","body":"x","image_file":"`+filepath.Join(dir, "bad.ndjson")+`"}`, "bad.ndjson:1: image_file is set but the body has no {{image}} placeholder")
	f(`{"path":"/"} {"path":"/"}`, "bad.ndjson:1: cannot parse mix entry: trailing data")
	if _, err := LoadMix(filepath.Join(dir, "none.ndjson")); err == nil || !strings.Contains(err.Error(), "none.ndjson") {
		t.Fatalf("missing file: %v", err)
	}
}

func FuzzParseMix(f *testing.F) {
	b, err := os.ReadFile("testdata/mix.ndjson")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(b))
	f.Add(`{"path":"/","body":"x","weight":2.5}`)
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMix(strings.NewReader(s), "fuzz", "testdata")
		if err != nil {
			return
		}
		if len(m.Entries) == 0 || len(m.cum) != len(m.Entries) || m.cum[len(m.cum)-1] != 1 {
			t.Fatalf("inconsistent mix %+v", m)
		}
		for _, e := range m.Entries {
			if e.Path == "" || e.Path[0] != '/' || e.Method == "" {
				t.Fatalf("bad entry %+v", e)
			}
		}
	})
}
