package rewrite

import (
	"context"
	"encoding/json"
	"flag"
	"github.com/vlproxy/vlproxy/media/mediatest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

var update = flag.Bool("update", false, "rewrite the golden .out.json files")

// TestGolden rewrites every testdata/golden/*.in.json and compares the body with
// the .out.json next to it byte for byte. IMAGE_PNG stands for a generated image.
func TestGolden(t *testing.T) {
	img := dataURI("image/png", mediatest.PNG(t, 64, 48))
	indexFor := map[string]string{"default_profile": "", "not_a_clause": "logs"}
	files, err := filepath.Glob("testdata/golden/*.in.json")
	if err != nil || len(files) < 10 {
		t.Fatalf("golden inputs: %v %d", err, len(files))
	}
	for _, in := range files {
		name := strings.TrimSuffix(filepath.Base(in), ".in.json")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			body := []byte(strings.ReplaceAll(string(raw), "IMAGE_PNG", img))
			index, ok := indexFor[name]
			if !ok {
				index = "products-2024"
			}
			r := newTestRewriter(t, testConfig(), newFake(), nil)
			res, err := r.Rewrite(context.Background(), Request{Index: index, Body: body})
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(res.Body) {
				t.Fatalf("output is not JSON: %s", res.Body)
			}
			if n, _ := findClauses(res.Body); len(n) != 0 {
				t.Fatalf("a multimodal clause survived: %s", res.Body)
			}
			got := strings.ReplaceAll(string(res.Body), img, "IMAGE_PNG") + "\n" // files end with a newline; bodies pass it through
			got = strings.TrimSuffix(got, "\n")
			outPath := strings.TrimSuffix(in, ".in.json") + ".out.json"
			if *update {
				if err := os.WriteFile(outPath, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(outPath)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Fatalf("body differs\ngot:  %s\nwant: %s", got, want)
			}
			if name == "not_a_clause" {
				if res.Found || res.Status != "skipped" || &res.Body[0] != &body[0] {
					t.Fatalf("a body without clauses must pass through as is: found=%v status=%s", res.Found, res.Status)
				}
			} else if !res.Found || res.Status != "applied" {
				t.Fatalf("found=%v status=%s", res.Found, res.Status)
			}
		})
	}
}

// TestClausePositions checks the byte ranges the walker finds on its own, apart
// from query building: each range must be exactly the query object holding the clause.
func TestClausePositions(t *testing.T) {
	f := func(body string, want ...string) {
		t.Helper()
		cs, err := findClauses([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		var got []string
		for _, c := range cs {
			got = append(got, body[c.start:c.end])
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("%s\ngot  %q\nwant %q", body, got, want)
		}
	}
	f(`{"query":{"multimodal":{"text":"a"}}}`, `{"multimodal":{"text":"a"}}`)
	f(` {"query": { "multimodal" : {"text":"a"} } }`, `{ "multimodal" : {"text":"a"} }`)
	f(`{"query":{"bool":{"must":[{"multimodal":{"text":"a"}},{"multimodal":{"text":"b"}}]}}}`,
		`{"multimodal":{"text":"a"}}`, `{"multimodal":{"text":"b"}}`)
	f(`{"query":{"has_child":{"type":"sku","query":{"multimodal":{"text":"a"}}}}}`, `{"multimodal":{"text":"a"}}`)
	f(`{"query":{"script_score":{"query":{"multimodal":{"text":"a"}},"script":{"source":"1"}}}}`, `{"multimodal":{"text":"a"}}`)
	f(`{"query":{"match":{"multimodal":"a"}}}`)
	f(`{"aggs":{"f":{"filter":{"multimodal":{"text":"a"}}}}}`) // not a query position we serve
	f(`{"knn":{"multimodal":{"text":"a"}}}`)
	f(`["multimodal"]`)
	f(`{"query":{"multimodal":{"text":"a"}},"query":{"multimodal":{"text":"b"}}}`, // duplicate keys: both replaced
		`{"multimodal":{"text":"a"}}`, `{"multimodal":{"text":"b"}}`)
}

func TestExplain(t *testing.T) {
	r := newTestRewriter(t, testConfig(), newFake(), nil)
	img := dataURI("image/png", mediatest.PNG(t, 64, 48))
	body := []byte(`{"query":{"bool":{"must":[{"multimodal":{"image":"` + img + `","text":"red","attributes":true}},{"multimodal":{"text":"x"}}]}}}`)
	res, err := r.Rewrite(context.Background(), Request{Index: "products", Body: body})
	if err != nil {
		t.Fatal(err)
	}
	e := gjson.ParseBytes(res.Explain)
	f := func(path, want string) {
		t.Helper()
		if got := e.Get(path).Raw; got != want {
			t.Fatalf("explain %s = %s, want %s\n%s", path, got, want, res.Explain)
		}
	}
	f("keywords", `["red maxi dress","floral print"]`)
	f("category", `"Dresses"`)
	f("attributes", `{"colour":"red","gender":"Women","material":"cotton"}`)
	f("model", `"qwen3-vl-4b"`)
	f("prompt_version", `"`+PromptVersion+`"`)
	f("clauses", `2`)
	f("query", gjson.GetBytes(res.Body, "query.bool.must.0").Raw)
	if res.Query.Text != "red" || !strings.HasPrefix(res.Query.Image, "data:image/jpeg;base64,") || len(res.Query.Key) != 32 {
		t.Fatalf("query = %+v", res.Query)
	}
}
