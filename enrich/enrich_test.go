package enrich

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/vlproxy/vlproxy/document/pdftest"
	"github.com/vlproxy/vlproxy/model"
)

// fakeES serves the few endpoints a run uses over an in-memory index:
// _count, point in time (Elasticsearch or OpenSearch flavour), _search with
// search_after, and _bulk updates.
type fakeES struct {
	opensearch bool
	mu         sync.Mutex
	docs       map[string]map[string]any
	pits       atomic.Int64
	mappings   []string // bodies of PUT _mapping
}

func (f *fakeES) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := readAll(r)
	p := r.URL.Path
	switch {
	case strings.HasSuffix(p, "/_count"):
		writeJSON(w, map[string]any{"count": len(f.matching(body, "query"))})
	case strings.HasSuffix(p, "/_pit") && r.Method == "POST":
		if f.opensearch {
			http.Error(w, `{"error":"no handler"}`, 400)
			return
		}
		f.pits.Add(1)
		writeJSON(w, map[string]any{"id": "es-pit"})
	case strings.HasSuffix(p, "/_search/point_in_time") && r.Method == "POST":
		f.pits.Add(1)
		writeJSON(w, map[string]any{"pit_id": "os-pit"})
	case (p == "/_pit" || p == "/_search/point_in_time") && r.Method == "DELETE":
		f.pits.Add(-1)
		writeJSON(w, map[string]any{"succeeded": true})
	case p == "/_search":
		sortField := "_id"
		if !f.opensearch {
			sortField = "_shard_doc"
		}
		if !strings.Contains(string(body), `"`+sortField+`"`) || gjson.GetBytes(body, "pit.id").Str == "" {
			http.Error(w, "bad search body "+string(body), 400)
			return
		}
		ids := f.matching(body, "query")
		after := gjson.GetBytes(body, "search_after.0").String()
		size := int(gjson.GetBytes(body, "size").Int())
		var hits []any
		for _, id := range ids {
			if after != "" && id <= after {
				continue
			}
			if len(hits) == size {
				break
			}
			src, _ := json.Marshal(f.docs[id])
			hits = append(hits, map[string]any{"_index": "products", "_id": id, "_source": json.RawMessage(src), "sort": []any{id}})
		}
		writeJSON(w, map[string]any{"hits": map[string]any{"total": map[string]any{"value": len(ids)}, "hits": hits}})
	case strings.Contains(p, "/_mapping/field/") && r.Method == "GET":
		writeJSON(w, map[string]any{}) // no field yet
	case strings.HasSuffix(p, "/_mapping") && r.Method == "PUT":
		f.mappings = append(f.mappings, string(body))
		writeJSON(w, map[string]any{"acknowledged": true})
	case p == "/_bulk":
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(nil, 1<<20)
		var items []any
		for sc.Scan() {
			meta := gjson.ParseBytes(sc.Bytes())
			sc.Scan()
			id := meta.Get("update._id").Str
			doc := gjson.GetBytes(sc.Bytes(), "doc")
			doc.ForEach(func(k, v gjson.Result) bool {
				f.docs[id][k.Str] = v.Value()
				return true
			})
			items = append(items, map[string]any{"update": map[string]any{"_index": "products", "_id": id, "status": 200}})
		}
		writeJSON(w, map[string]any{"errors": false, "items": items})
	default:
		http.Error(w, "unexpected "+r.Method+" "+p, 404)
	}
}

// matching returns the sorted ids matching the body's query (match_all or must_not exists).
func (f *fakeES) matching(body []byte, path string) []string {
	missing := gjson.GetBytes(body, path+".bool.must_not.exists.field").Str
	if missing == "" {
		missing = gjson.GetBytes(body, path+".bool.must_not.0.exists.field").Str
	}
	var ids []string
	for id, d := range f.docs {
		if _, has := d[missing]; missing != "" && has {
			continue
		}
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func readAll(r *http.Request) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(r.Body)
	return b.Bytes(), err
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

type fakeChatter struct{ calls atomic.Int64 }

func (f *fakeChatter) Name() string { return "fake" }
func (f *fakeChatter) Chat(_ context.Context, req *model.ChatRequest) (*model.ChatResponse, error) {
	f.calls.Add(1)
	if len(req.Messages) != 2 || req.Messages[1].Parts[0].Type != "image_url" {
		return nil, &model.Error{Kind: model.KindBadRequest, Message: "no image"}
	}
	return &model.ChatResponse{Content: `{"keywords":["red dress","floral"],"category":"Dress","attributes":{"colour":"red","material":"Floral"}}`}, nil
}

func pngFile(t *testing.T, dir, name string) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 20, 10))
	for i := range img.Pix {
		img.Pix[i] = 200
	}
	img.Set(3, 3, color.RGBA{255, 0, 0, 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestRun(t *testing.T) {
	for _, opensearch := range []bool{false, true} {
		dir := t.TempDir()
		raw := pngFile(t, dir, "a.png")
		pngFile(t, dir, "b.png")
		es := &fakeES{opensearch: opensearch, docs: map[string]map[string]any{
			"1": {"title": "a", "img": "a.png"},
			"2": {"title": "b", "img": filepath.Join(dir, "b.png")},
			"3": {"title": "c", "img": "data:image/png;base64," + base64.StdEncoding.EncodeToString(raw)},
			"4": {"title": "d"},
			"5": {"title": "e", "img": "missing.png"},
			"6": {"title": "f", "img": "a.png"},
		}}
		srv := httptest.NewServer(es)
		m := &fakeChatter{}
		var progress bytes.Buffer
		cfg := Config{ESURL: srv.URL, Index: "products", ImageField: "img", ImageDir: dir, BatchSize: 2, Rate: 1000}
		st, err := RunStats(context.Background(), cfg, m, &progress)
		if err != nil {
			t.Fatalf("opensearch=%v: %v\n%s", opensearch, err, progress.String())
		}
		if st != (Stats{Total: 6, Done: 4, Failed: 1, NoImage: 1}) || m.calls.Load() != 4 {
			t.Fatalf("opensearch=%v: stats %+v, model calls %d\n%s", opensearch, st, m.calls.Load(), progress.String())
		}
		got, _ := json.Marshal(es.docs["1"]["vl_keywords"])
		if string(got) != `["red dress","floral","Dress","red"]` {
			t.Fatalf("keywords %s", got)
		}
		if !strings.Contains(progress.String(), "6/6 docs") || !strings.Contains(progress.String(), "doc 5:") {
			t.Fatalf("progress %q", progress.String())
		}
		if n := es.pits.Load(); n != 0 {
			t.Fatalf("%d points in time left open", n)
		}
		// Resume: only the two documents without keywords are walked again.
		cfg.Resume = true
		st, err = RunStats(context.Background(), cfg, m, &progress)
		// Every remaining image fails again (missing.png), which a run reports as an error.
		if err == nil || !strings.Contains(err.Error(), "all 1 documents failed") ||
			st != (Stats{Total: 2, Failed: 1, NoImage: 1}) || m.calls.Load() != 4 {
			t.Fatalf("resume: %v %+v calls %d", err, st, m.calls.Load())
		}
		srv.Close()
	}
}

func TestConfig(t *testing.T) {
	if _, err := (Config{}).withDefaults(); err == nil {
		t.Fatal("no index must be an error")
	}
	c, err := Config{Index: "x"}.withDefaults()
	if err != nil || c.TargetField != "vl_keywords" || c.BatchSize != 50 || c.ESURL == "" {
		t.Fatalf("%+v %v", c, err)
	}
	if err := Run(context.Background(), Config{Index: "x"}, nil, nil); err == nil {
		t.Fatal("no model must be an error")
	}
}

// PDF attachments: their text lands in a field, without a model; hostile ones are counted.
func TestRunPDFText(t *testing.T) {
	dir := t.TempDir()
	sheet := pdftest.TextTable("Spec sheet", [][]string{{"Material", "Cotton"}, {"Weight", "320 g"}})
	if err := os.WriteFile(filepath.Join(dir, "spec.pdf"), sheet, 0o644); err != nil {
		t.Fatal(err)
	}
	es := &fakeES{docs: map[string]map[string]any{
		"1": {"title": "a", "sheet": "spec.pdf"},
		"2": {"title": "b", "sheet": base64.StdEncoding.EncodeToString(sheet)},
		"3": {"title": "c", "sheet": base64.StdEncoding.EncodeToString(pdftest.PageTreeLoop())},
		"4": {"title": "d"},
	}}
	srv := httptest.NewServer(es)
	defer srv.Close()
	var progress bytes.Buffer
	cfg := Config{ESURL: srv.URL, Index: "products", ImageDir: dir, PDFField: "sheet", PDFTextField: "sheet_text"}
	st, err := RunStats(context.Background(), cfg, nil, &progress)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if st.PDFText != 2 || st.PDFFailed != 1 || st.Done != 0 {
		t.Fatalf("stats %+v\n%s", st, progress.String())
	}
	const want = "Spec sheet\nMaterial | Cotton\nWeight | 320 g"
	if got := es.docs["1"]["sheet_text"]; got != want || es.docs["2"]["sheet_text"] != want {
		t.Fatalf("text %q / %q", got, es.docs["2"]["sheet_text"])
	}
	if _, ok := es.docs["3"]["sheet_text"]; ok || !strings.Contains(progress.String(), "page tree loops") {
		t.Fatalf("hostile attachment: %v\n%s", es.docs["3"], progress.String())
	}
}
