package integration

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/vlproxy/vlproxy/cache"
	"github.com/vlproxy/vlproxy/document/pdftest"
	"github.com/vlproxy/vlproxy/model"
	"github.com/vlproxy/vlproxy/proxy"
	"github.com/vlproxy/vlproxy/rewrite"
	"github.com/vlproxy/vlproxy/testenv"
)

// docProducts is the small catalogue: each price-list row has its product and a decoy with
// the same name under another brand, which the brand filter must keep out.
var docProducts = []struct{ id, title, colour, brand string }{
	{"jacket-levis", "Denim Jacket", "Blue", "Levis"},
	{"jacket-wrangler", "Denim Jacket", "Black", "Wrangler"},
	{"shoes-nike", "Running Shoes", "White", "Nike"},
	{"shoes-adidas", "Running Shoes", "Black", "Adidas"},
	{"belt-fossil", "Leather Belt", "Brown", "Fossil"},
	{"scarf-zara", "Wool Scarf", "Grey", "Zara"},
	{"backpack", "Canvas Backpack", "Green", "Herschel"},
	{"tie", "Silk Tie", "Navy", "Hugo"},
}

// docTable is the price list (header first) and, per row, the product it must find.
var docTable = [][]string{
	{"Item", "Colour", "Size", "Brand", "Qty", "Price"},
	{"Denim Jacket", "Blue", "M", "Levis", "2", "59.90"},
	{"Running Shoes", "White", "42", "Nike", "1", "89.00"},
	{"Leather Belt", "Brown", "L", "Fossil", "3", "24.50"},
	{"Wool Scarf", "Grey", "S", "Zara", "4", "19.99"},
}
var docWant = []string{"jacket-levis", "shoes-nike", "belt-fossil", "scarf-zara"}

// A text PDF, a scanned PDF and a photo of a generated price list find their products on the
// real node, the scans through the real OCR model (testenv/effnet, RapidOCR), each row on its
// own with group_by_row.
func TestDocumentFindsPriceListProducts(t *testing.T) {
	ocr := testenv.EffnetURL(t)
	node := testenv.URL(t)
	c := rawClient()
	idx := uniqueName("vlp-docs")
	mustDo(t, c, 200, "PUT", node+"/"+idx, []byte(`{"settings":{"number_of_shards":1,"number_of_replicas":0},
		"mappings":{"properties":{"title":{"type":"text"},"colour":{"type":"text"},"brand":{"type":"text"}}}}`))
	t.Cleanup(func() { deleteIndex(t, node, idx) })
	var bulk bytes.Buffer
	for _, p := range docProducts {
		fmt.Fprintf(&bulk, "{\"index\":{\"_id\":%q}}\n{\"title\":%q,\"colour\":%q,\"brand\":%q}\n", p.id, p.title, p.colour, p.brand)
	}
	mustDo(t, c, 200, "POST", node+"/"+idx+"/_bulk?refresh=true", bulk.Bytes(), "Content-Type", "application/x-ndjson")

	mc := model.DefaultConfig()
	mc.URL = ocr
	mc.HealthInterval = -1
	mc.Timeout = 60 * time.Second
	m, err := model.New(model.RoleChat, mc, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	cfg := rewrite.DefaultConfig()
	cfg.Profiles = []rewrite.Profile{{Index: idx, Fields: []string{"title"}, Attributes: []rewrite.AttributeMapping{
		{Attribute: "colour", Field: "colour", As: "boost", Boost: 2},
		{Attribute: "brand", Field: "brand", As: "filter"},
	}}}
	cfg.Document.Timeout = 60 * time.Second
	rw, err := rewrite.New(cfg, m, cache.New(cache.Config{Name: "doc-rows", MaxBytes: 1 << 20}), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	prox := startProxy(t, node, proxy.WithRewriter(rw))

	text := pdftest.TextTable("Spring order", docTable)
	jpg, w, h, err := pdftest.RenderTable("Spring order", docTable)
	if err != nil {
		t.Fatal(err)
	}
	scan := pdftest.Scan([][]byte{jpg}, [][2]int{{w, h}}, true)

	search := func(name string, doc []byte, mime, wantStatus string) {
		t.Helper()
		pages0, cpu0 := ocrStats(t, ocr)
		start := time.Now()
		body := `{"query":{"multimodal":{"document":"data:` + mime + `;base64,` + base64.StdEncoding.EncodeToString(doc) +
			`","group_by_row":true}},"size":3,"ext":{"vlproxy":{"explain":true}}}`
		r := mustDo(t, c, 200, "POST", prox+"/"+idx+"/_search", []byte(body))
		took := time.Since(start)
		pages1, cpu1 := ocrStats(t, ocr)
		if got := r.Header.Get("X-VLProxy-Rewrite"); got != wantStatus {
			t.Fatalf("%s: X-VLProxy-Rewrite %q, want %q; %s", name, got, wantStatus, gjson.GetBytes(r.Body, "ext.vlproxy.rewrite"))
		}
		rows := gjson.GetBytes(r.Body, "ext.vlproxy.rewrite.rows").Array()
		exact := 0
		for i, row := range rows {
			if i+1 < len(docTable) && rowMatches(row, docTable[i+1]) {
				exact++
			}
		}
		groups := gjson.GetBytes(r.Body, "ext.vlproxy.rows").Array()
		found := 0
		for i, g := range groups {
			if i < len(docWant) && g.Get("hits.hits.0._id").String() == docWant[i] {
				found++
			}
		}
		perPage := "no OCR call"
		if pages1 > pages0 {
			perPage = fmt.Sprintf("%.0f ms OCR CPU per page", (cpu1-cpu0)/(pages1-pages0))
		}
		t.Logf("%s: %d rows extracted, %d of %d exactly as printed; %d of %d rows find their product first; %s; %s",
			name, len(rows), exact, len(docWant), found, len(docWant), perPage, took.Round(time.Millisecond))
		if len(rows) != len(docWant) || len(groups) != len(docWant) || found != len(docWant) {
			t.Fatalf("%s: rows %s\ngroups %s", name, gjson.GetBytes(r.Body, "ext.vlproxy.rewrite.rows"), gjson.GetBytes(r.Body, "ext.vlproxy.rows"))
		}
		// Any row: the decoys under other brands stay out of the document's own hits.
		for _, id := range gjson.GetBytes(r.Body, "hits.hits.#._id").Array() {
			if strings.Contains("jacket-wrangler shoes-adidas", id.String()) {
				t.Fatalf("%s: decoy %s in the hits", name, id)
			}
		}
	}
	// The OCR model reads images only: it refuses the text of a text PDF (400), and the
	// rows come from the PDF's own text, visibly.
	search("text PDF", text, "application/pdf", "fallback:bad_request")
	search("scanned PDF", scan, "application/pdf", "applied")
	search("photo of the page", jpg, "image/jpeg", "applied")
	// The same scan again: rows from the cache, no OCR.
	search("scanned PDF again", scan, "application/pdf", "cached")

	// Hostile documents are 400s through the proxy too.
	bomb := pdftest.Bomb(1 << 30)
	r := do(t, c, "POST", prox+"/"+idx+"/_search", []byte(`{"query":{"multimodal":{"document":"`+base64.StdEncoding.EncodeToString(bomb)+`"}}}`))
	if r.Status != 400 || !strings.Contains(string(r.Body), "document.max_decoded_bytes") {
		t.Fatalf("bomb: %d %s", r.Status, r.Body)
	}
}

func rowMatches(row gjson.Result, want []string) bool {
	q, _ := strconv.ParseFloat(want[4], 64)
	p, _ := strconv.ParseFloat(want[5], 64)
	return strings.EqualFold(row.Get("item").String(), want[0]) &&
		strings.EqualFold(row.Get("attributes.colour").String(), want[1]) &&
		strings.EqualFold(row.Get("attributes.size").String(), want[2]) &&
		strings.EqualFold(row.Get("attributes.brand").String(), want[3]) &&
		row.Get("quantity").Float() == q && row.Get("price").Float() == p
}

// ocrStats reads the OCR pages and CPU milliseconds the model server has counted.
func ocrStats(t *testing.T, base string) (pages, cpuMS float64) {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("model server metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "effnet_ocr_pages_total":
			pages = v
		case "effnet_ocr_cpu_ms_total":
			cpuMS = v
		}
	}
	return pages, cpuMS
}
