package pipeline_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/vlproxy/vlproxy/document/pdftest"
)

func TestGroupByRow(t *testing.T) {
	e := start(t, setup{})
	pdf := pdftest.TextTable("Order", [][]string{{"Item", "Colour", "Qty"}, {"Red Dress", "Red", "1"}, {"Straw Hat", "Beige", "2"}})
	clause := `{"multimodal":{"document":"` + base64.StdEncoding.EncodeToString(pdf) + `","group_by_row":true}}`
	r := e.search(t, `{"query":`+clause+`,"size":2}`)
	if r.Status != 200 {
		t.Fatalf("status %d %s", r.Status, r.Body)
	}
	wantHeaders(t, r, "X-VLProxy-Rewrite", "applied")
	reqs := e.ES.requests()
	if len(reqs) < 2 {
		t.Fatalf("%d upstream requests", len(reqs))
	}
	main, fan := reqs[len(reqs)-2], reqs[len(reqs)-1]
	if !strings.HasSuffix(main.URI, "/products/_search") || fan.URI != "/products/_msearch" {
		t.Fatalf("upstream %s then %s", main.URI, fan.URI)
	}
	lines := strings.Split(strings.TrimSpace(string(fan.Body)), "\n")
	if len(lines) != 4 || gjson.Get(lines[1], "query.bool.must.0.multi_match.query").Str != "Red Dress" ||
		gjson.Get(lines[3], "query.bool.must.0.multi_match.query").Str != "Straw Hat" || gjson.Get(lines[3], "size").Int() != 2 {
		t.Fatalf("fan-out body %s", fan.Body)
	}
	rows := gjson.GetBytes(r.Body, "ext.vlproxy.rows").Array()
	if len(rows) != 2 || rows[1].Get("row.item").Str != "Straw Hat" || rows[1].Get("row.quantity").Int() != 2 || !rows[1].Get("hits.hits").IsArray() {
		t.Fatalf("rows %s", gjson.GetBytes(r.Body, "ext.vlproxy"))
	}
	if !gjson.GetBytes(r.Body, "hits.hits").IsArray() {
		t.Fatalf("the response lost its own hits: %s", r.Body)
	}

	// _msearch cannot fan out inside a fan-out.
	body := "{\"index\":\"products\"}\n{\"query\":" + clause + "}\n"
	wantESError(t, e.do(t, "POST", "/_msearch", []byte(body), "Content-Type", "application/x-ndjson"), 400, "[group_by_row] is supported by _search only")
}
