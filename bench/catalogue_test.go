package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/vlproxy/vlproxy/testenv"
)

const miniStyles = `id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName,has_image_in_snapshot
1,Men,Apparel,Topwear,Shirts,Navy Blue,Fall,2011,Casual,Turtle Check Men Navy Blue Shirt,1
2,Women,Apparel,Topwear,Shirts,Navy Blue,Fall,2012,Casual,"Women Navy Shirt, slim",1
3,Men,Apparel,Topwear,Shirts,White,Fall,2012,Formal,Men White Shirt,1
4,Men,Apparel,Bottomwear,Jeans,Navy Blue,Summer,,Casual,Men Navy Jeans,0
5,Men,Apparel,Topwear,Shirts,Navy Blue,Fall,2011,Casual,Another Men Navy Blue Shirt,1
6,Men,Apparel,Topwear,Shirts,Navy Blue,Fall,2011,Casual,Third Men Navy Blue Shirt,1
`

func TestFashionQueriesAndQrels(t *testing.T) {
	ps, err := ParseFashion(strings.NewReader(miniStyles), "styles.csv", map[string]bool{"1": true, "3": true})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 6 || ps[1].Title != "Women Navy Shirt, slim" || ps[3].Year != 0 || !ps[0].HasImage || ps[1].HasImage {
		t.Fatalf("products %+v", ps)
	}
	qs, qr := FashionTextQueries(ps, 10, 1)
	// Only "Men Navy Blue Shirts" has at least 3 products.
	if len(qs) != 1 || qs[0].Text != "Men Navy Blue Shirts" {
		t.Fatalf("text queries %+v", qs)
	}
	if got := fmt.Sprint(qr[qs[0].ID]); got != "map[1:3 2:2 3:1 4:0 5:3 6:3]" {
		t.Fatalf("text qrels %s", got)
	}
	iq, ir := FashionImageQueries(ps, 10, 1, "/data")
	sort.Slice(iq, func(i, j int) bool { return iq[i].ID < iq[j].ID })
	if len(iq) != 2 || iq[0].ID != "image-1" || iq[0].ImageFile != "/data/images/1.jpg" || fmt.Sprint(iq[0].Exclude) != "[1]" {
		t.Fatalf("image queries %+v", iq)
	}
	// The query product is not judged; same type+colour 2, same type 1.
	if got := fmt.Sprint(ir["image-1"]); got != "map[2:2 3:1 4:0 5:2 6:2]" {
		t.Fatalf("image qrels %s", got)
	}
	dir := t.TempDir()
	if err := WriteQuerySet(filepath.Join(dir, "q.ndjson"), filepath.Join(dir, "r.txt"), qs, qr, true); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "r.txt"))
	if string(b) != "text-001 0 1 3\ntext-001 0 2 2\ntext-001 0 3 1\ntext-001 0 5 3\ntext-001 0 6 3\n" {
		t.Fatalf("qrels file:\n%s", b)
	}
	// The written files read back.
	back, err := LoadQueries(filepath.Join(dir, "q.ndjson"))
	if err != nil || len(back) != 1 || back[0].Text != "Men Navy Blue Shirts" {
		t.Fatalf("queries back %+v %v", back, err)
	}
	if _, err := LoadQrels(filepath.Join(dir, "r.txt")); err != nil {
		t.Fatal(err)
	}
	docs := FashionDocs(ps)
	if string(docs[0].Source) != `{"articleType":"Shirts","baseColour":"Navy Blue","gender":"Men","id":"1","image":"images/1.jpg","masterCategory":"Apparel","season":"Fall","subCategory":"Topwear","title":"Turtle Check Men Navy Blue Shirt","usage":"Casual","year":2011}` {
		t.Fatalf("doc %s", docs[0].Source)
	}
	if !json.Valid([]byte(FashionMappings)) {
		t.Fatal("FashionMappings is not valid JSON")
	}
}

func TestReadCatalogue(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	docs, err := ReadCatalogue(write("c.csv", "sku,title,price\na1,Red shirt,10\na2,,12\n"), "sku")
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 || docs[1].ID != "a2" || string(docs[1].Source) != `{"price":"12","sku":"a2"}` {
		t.Fatalf("csv docs %+v", docs)
	}
	docs, err = ReadCatalogue(write("c.ndjson", "{\"id\":7,\"t\":\"x\"}\n\n{\"id\":\"b\"}\n"), "id")
	if err != nil || len(docs) != 2 || docs[0].ID != "7" || docs[1].ID != "b" {
		t.Fatalf("ndjson docs %+v %v", docs, err)
	}
	f := func(name, content, idField, want string) {
		t.Helper()
		_, err := ReadCatalogue(write(name, content), idField)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("ReadCatalogue(%q): %v, want %q", content, err, want)
		}
	}
	f("bad.ndjson", "{\"id\":1}\n{oops\n", "id", "bad.ndjson:2: cannot parse document")
	f("noid.ndjson", "{\"id\":1}\n{\"x\":1}\n", "id", `noid.ndjson:2: document has no id field "id"`)
	f("nocol.csv", "a,b\n1,2\n", "id", `nocol.csv:1: id field "id" is not a column`)
	f("emptyid.csv", "id,b\n1,2\n,3\n", "id", `emptyid.csv:3: empty id in column "id"`)
}

// The loader speaks real _bulk to the fake backend, which counts the documents it receives.
func TestLoadCatalogueAgainstFake(t *testing.T) {
	addr := startFake(t, DefaultFakeESConfig())
	ps, err := ParseFashion(strings.NewReader(miniStyles), "styles.csv", nil)
	if err != nil {
		t.Fatal(err)
	}
	var docs []Doc
	for i := 0; i < 500; i++ {
		docs = append(docs, FashionDocs(ps)...)
	}
	var last int64
	cfg := DefaultIndexConfig()
	cfg.URL, cfg.Recreate, cfg.BulkActions = "http://"+addr, true, 700
	cfg.Progress = func(done, total int64) { last = done }
	st, err := LoadCatalogue(context.Background(), cfg, docs)
	if err != nil {
		t.Fatal(err)
	}
	if st.Docs != 3000 || st.Failed != 0 || last != 3000 {
		t.Fatalf("stats %+v, progress %d", st, last)
	}
	// A backend that is not ES gives a clear error.
	_, err = LoadCatalogue(context.Background(), IndexConfig{URL: "http://127.0.0.1:1", Index: "x"}, docs)
	if err == nil || !strings.Contains(err.Error(), "cannot") {
		t.Fatalf("dead backend: %v", err)
	}
}

// Against a real node (VLPROXY_TEST_ES_URL, set by `make test`): load part of the fashion
// catalogue and evaluate a BM25 query set directly.
func TestIndexAndEvalOpenSearch(t *testing.T) {
	url := os.Getenv("VLPROXY_TEST_ES_URL")
	if url == "" {
		t.Skip("VLPROXY_TEST_ES_URL is not set")
	}
	// ../shared from the repository root; skipped without it, failed under CI=true.
	dir := testenv.Catalogue(t)
	if got, err := FindFashionDir(""); err != nil || got != dir {
		t.Fatalf("FindFashionDir = %q, %v; want %q", got, err, dir)
	}
	ps, err := LoadFashion(dir)
	if err != nil {
		t.Fatal(err)
	}
	ps = ps[:3000]
	cfg := DefaultIndexConfig()
	cfg.URL, cfg.Index, cfg.Recreate, cfg.Mappings = url, "vlbench-test-fashion", true, json.RawMessage(FashionMappings)
	st, err := LoadCatalogue(context.Background(), cfg, FashionDocs(ps))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI(url + "/" + cfg.Index)
		req.Header.SetMethod("DELETE")
		_ = fasthttp.Do(req, resp)
	})
	if st.Docs != 3000 {
		t.Fatalf("indexed %d", st.Docs)
	}
	qs, qr := FashionTextQueries(ps, 10, 1)
	ec := DefaultEvalConfig()
	ec.URL, ec.Index, ec.Permutations = url, cfg.Index, 100
	ec.Template = `{"size":{{size}},"query":{"multi_match":{"query":{{text}},"fields":["title","articleType","baseColour","gender"]}}}`
	rep, err := RunEval(ec, qs, qr, HTTPSearcher(ec))
	if err != nil {
		t.Fatal(err)
	}
	v := rep.Variants[0]
	// BM25 on attribute text finds relevant products for attribute-derived queries.
	if v.Errors != 0 || v.Mean["ndcg@10"] < 0.3 || v.Mean["p@10"] < 0.3 {
		t.Fatalf("errors %d, means %v", v.Errors, v.Mean)
	}
}
