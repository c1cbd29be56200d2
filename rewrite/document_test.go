package rewrite

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/vlproxy/vlproxy/cache"
	"github.com/vlproxy/vlproxy/document/pdftest"
	"github.com/vlproxy/vlproxy/model"
	"github.com/vlproxy/vlproxy/model/modeltest"
)

var docRows = [][]string{
	{"Item", "Colour", "Size", "Brand", "Qty", "Price"},
	{"Denim Jacket", "Blue", "M", "Levis", "2", "59.90"},
	{"Running Shoes", "White", "42", "Nike", "1", "89.00"},
}

const rowsAnswer = `{"rows":[{"item":"Denim Jacket","attributes":{"colour":"Blue","size":"M","brand":"Levis"},"quantity":2,"price":59.9},` +
	`{"item":"Running Shoes","attributes":{"colour":"White"},"quantity":1,"price":89}]}`

func docConfig() Config {
	cfg := DefaultConfig()
	cfg.Profiles = []Profile{{Index: "products*", Fields: []string{"title^3"}, Attributes: []AttributeMapping{
		{Attribute: "colour", Field: "baseColour", As: "boost", Boost: 2},
		{Attribute: "brand", Field: "brand", As: "filter"},
	}}}
	return cfg
}

func docBody(doc []byte, extra string) []byte {
	return []byte(`{"query":{"multimodal":{"document":"data:application/pdf;base64,` + base64.StdEncoding.EncodeToString(doc) + `"` + extra + `}},"size":3}`)
}

func TestDocumentQuery(t *testing.T) {
	fake := &fakeChatter{name: "m", text: rowsAnswer, withImage: rowsAnswer}
	r := newTestRewriter(t, docConfig(), fake, cache.New(cache.Config{Name: "doc-test"}))
	body := docBody(pdftest.TextTable("Order", docRows), "")
	res, err := r.Rewrite(context.Background(), Request{Index: "products", Body: body})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"query":{"bool":{"should":[` +
		`{"bool":{"must":[{"multi_match":{"query":"Denim Jacket","fields":["title^3"]}}],` +
		`"filter":[{"match":{"brand":{"query":"Levis","operator":"and"}}}],` +
		`"should":[{"match":{"baseColour":{"query":"Blue","boost":2}}},{"multi_match":{"query":"M","fields":["title^3"],"boost":0.5}}]}},` +
		`{"bool":{"must":[{"multi_match":{"query":"Running Shoes","fields":["title^3"]}}],"should":[{"match":{"baseColour":{"query":"White","boost":2}}}]}}` +
		`],"minimum_should_match":1}},"size":3}`
	if string(res.Body) != want {
		t.Fatalf("got  %s\nwant %s", res.Body, want)
	}
	if res.Status != "applied" {
		t.Fatalf("status %q", res.Status)
	}
	// The text of the page went to the model, with the rows schema.
	req := fake.lastRequest()
	if !strings.Contains(string(req.ResponseFormat), `"name":"vlproxy_table_rows"`) ||
		!strings.Contains(req.Messages[1].Parts[0].Text, "Denim Jacket | Blue | M | Levis | 2 | 59.90") {
		t.Fatalf("request %s %+v", req.ResponseFormat, req.Messages[1].Parts)
	}
	e := gjson.ParseBytes(res.Explain)
	if e.Get("rows.#").Int() != 2 || e.Get("rows.0.item").Str != "Denim Jacket" || e.Get("document.pages").Int() != 1 || !e.Get("document.text").Bool() {
		t.Fatalf("explain %s", res.Explain)
	}
	// Same document again: the rows come from the cache.
	res, err = r.Rewrite(context.Background(), Request{Index: "products", Body: body})
	if err != nil || res.Status != "cached" || fake.calls.Load() != 1 || string(res.Body) != want {
		t.Fatalf("second: %v %q calls %d", err, res.Status, fake.calls.Load())
	}
}

func TestDocumentScanGroupByRow(t *testing.T) {
	jpg, w, h, err := pdftest.RenderTable("Order", docRows)
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeChatter{name: "m", text: `{"rows":[]}`, withImage: rowsAnswer}
	r := newTestRewriter(t, docConfig(), fake, nil)
	body := docBody(pdftest.Scan([][]byte{jpg}, [][2]int{{w, h}}, true), `,"group_by_row":true`)
	res, err := r.Rewrite(context.Background(), Request{Index: "products", Body: body})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "applied" || len(res.Groups) != 2 {
		t.Fatalf("status %q, %d groups", res.Status, len(res.Groups))
	}
	// The scan went as an image within the pixel budget.
	parts := fake.lastRequest().Messages[1].Parts
	if parts[0].Type != "image_url" || !strings.HasPrefix(parts[0].URL, "data:image/jpeg;base64,") {
		t.Fatalf("parts %+v", parts[1:])
	}
	g := gjson.ParseBytes(res.Groups[1].Body)
	if g.Get("query.bool.must.0.multi_match.query").Str != "Running Shoes" || g.Get("size").Int() != 3 || res.Groups[1].Row.Price != 89 {
		t.Fatalf("group 1: %s", res.Groups[1].Body)
	}
}

func TestDocumentFallbacks(t *testing.T) {
	text := pdftest.TextTable("Order", docRows)
	jpg, w, h, _ := pdftest.RenderTable("Order", docRows)
	scan := pdftest.Scan([][]byte{jpg}, [][2]int{{w, h}}, false)
	down := &fakeChatter{name: "m", err: &model.Error{Kind: model.KindUnavailable, Message: "down"}}
	f := func(m Chatter, doc []byte, wantStatus string, wantErr int, wantItems ...string) {
		t.Helper()
		r := newTestRewriter(t, docConfig(), m, nil)
		res, err := r.Rewrite(context.Background(), Request{Index: "products", Body: docBody(doc, "")})
		if wantErr != 0 {
			if st, _, _ := esStatus(t, err); st != wantErr {
				t.Fatalf("status %d, want %d", st, wantErr)
			}
			return
		}
		if err != nil || res.Status != wantStatus {
			t.Fatalf("got %v %q, want %q", err, res.Status, wantStatus)
		}
		var items []string
		gjson.GetBytes(res.Body, "query.bool.should.#.bool.must.0.multi_match.query").ForEach(func(_, v gjson.Result) bool {
			items = append(items, v.Str)
			return true
		})
		if strings.Join(items, ",") != strings.Join(wantItems, ",") {
			t.Fatalf("items %q, want %q\n%s", items, wantItems, res.Body)
		}
	}
	// A text PDF keeps its table without the model, visibly.
	f(down, text, "fallback:unavailable", 0, "Denim Jacket", "Running Shoes")
	f(nil, text, "fallback:no_model", 0, "Denim Jacket", "Running Shoes")
	f(&fakeChatter{name: "m", text: "I cannot read this."}, text, "fallback:no_rows", 0, "Denim Jacket", "Running Shoes")
	// A scan without the model is like an image-only query: a 503.
	f(down, scan, "", 503)
	// Hostile documents are 400s, oversized ones 413s.
	f(down, pdftest.PageTreeLoop(), "", 400)
	f(down, []byte("%PDF-1.4 nothing"), "", 400)
	cfg := docConfig()
	cfg.Document.MaxBytes = 1000
	r := newTestRewriter(t, cfg, down, nil)
	_, err := r.Rewrite(context.Background(), Request{Index: "products", Body: docBody(text, "")})
	if st, _, reason := esStatus(t, err); st != 413 || !strings.Contains(reason, "document.max_bytes") {
		t.Fatalf("got %d %s", st, reason)
	}
}

func TestDocumentClauseErrors(t *testing.T) {
	r := newTestRewriter(t, docConfig(), nil, nil)
	f := func(body, want string) {
		t.Helper()
		_, err := r.Rewrite(context.Background(), Request{Index: "products", Body: []byte(body)})
		if st, _, reason := esStatus(t, err); st != 400 || !strings.Contains(reason, want) {
			t.Fatalf("%s: got %d %s, want 400 with %q", body, st, reason, want)
		}
	}
	f(`{"query":{"multimodal":{"document":5}}}`, "[document] must be a string")
	f(`{"query":{"multimodal":{"text":"a","group_by_row":true}}}`, "[group_by_row] needs a [document]")
	f(`{"query":{"multimodal":{"image":"aGVsbG8=","document":"aGVsbG8="}}}`, "not both")
	f(`{"query":{"multimodal":{"document":"data:text/html;base64,aGVsbG8="}}}`, "not a PDF or an image")
	f(`{"query":{"multimodal":{"document":"ftp://x/y.pdf"}}}`, "only data URIs")
	f(`{"query":{"multimodal":{"document":"http://127.0.0.1/a.pdf"}}}`, "allowed_hosts")
	f(`{"query":{"multimodal":{"document":"aGVsbG8="}}}`, "not a PDF")
}

func TestSplitJoined(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := splitJoined(in); got != want {
			t.Errorf("splitJoined(%q) = %q, want %q", in, got, want)
		}
	}
	f("WoolScarf", "Wool Scarf")
	f("Wool Scarf", "")
	f("USB Cable", "")
	f("iPhone Case", "i Phone Case")
	f("牛仔夹克", "")
}

// Through the model client and the simulator: text pages and scans both give rows.
func TestDocumentSimulator(t *testing.T) {
	jpg, w, h, err := pdftest.RenderTable("Order", docRows)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(jpg)
	sim := modeltest.NewServer(modeltest.Config{Images: map[string]modeltest.Output{
		hex.EncodeToString(sum[:]): {Rows: []modeltest.TableRow{{Item: "Running Shoes", Attributes: map[string]string{"brand": "Nike"}, Quantity: 1}}},
	}})
	t.Cleanup(sim.Close)
	mc := model.DefaultConfig()
	mc.URL, mc.HealthInterval = sim.URL, -1
	m, err := model.New(model.RoleChat, mc, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	r := newTestRewriter(t, docConfig(), m, nil)
	f := func(doc []byte, want string) {
		t.Helper()
		res, err := r.Rewrite(context.Background(), Request{Index: "products", Body: docBody(doc, "")})
		if err != nil || res.Status != "applied" {
			t.Fatalf("%v %q", err, res.Status)
		}
		if got := gjson.GetBytes(res.Explain, "rows").Raw; got != want {
			t.Fatalf("rows %s\nwant %s", got, want)
		}
	}
	f(pdftest.TextTable("Order", docRows), `[{"item":"Denim Jacket","attributes":{"brand":"Levis","colour":"Blue","size":"M"},"quantity":2,"price":59.9},`+
		`{"item":"Running Shoes","attributes":{"brand":"Nike","colour":"White","size":"42"},"quantity":1,"price":89}]`)
	f(pdftest.Scan([][]byte{jpg}, [][2]int{{w, h}}, true), `[{"item":"Running Shoes","attributes":{"brand":"Nike"},"quantity":1}]`)
}
