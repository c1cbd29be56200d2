package document

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/vlproxy/vlproxy/document/pdftest"
)

func TestParseRows(t *testing.T) {
	f := func(content, want string) {
		t.Helper()
		rows, err := ParseRows(content, 3)
		got := "error"
		if err == nil {
			b, _ := json.Marshal(rows)
			got = string(b)
		}
		if got != want {
			t.Errorf("ParseRows(%q):\n got %s\nwant %s", content, got, want)
		}
	}
	f(`{"rows":[{"item":"Denim Jacket","attributes":{"colour":"Blue","size":"M","brand":"Levis"},"quantity":2,"price":59.9}]}`,
		`[{"item":"Denim Jacket","attributes":{"brand":"Levis","colour":"Blue","size":"M"},"quantity":2,"price":59.9}]`)
	f("Here you go:\n```json\n{\"rows\":[{\"name\":\" Belt \",\"color\":\"brown\",\"qty\":\"3 pcs\",\"price\":\"$24.50\"}]}\n```",
		`[{"item":"Belt","attributes":{"colour":"brown"},"quantity":3,"price":24.5}]`)
	f(`[{"item":"A","attributes":{"size":"unknown","brand":42}},{"item":""},{"item":"59.90"},{"item":"B","price":"¥1,299.00"}]`,
		`[{"item":"A","attributes":{"brand":"42"}},{"item":"B","price":1299}]`)
	f(`[{"item":"1"},{"item":"a"},{"item":"b"},{"item":"c"},{"item":"d"}]`, `[{"item":"a"},{"item":"b"},{"item":"c"}]`)
	f(`{"rows":[]}`, "error")
	f(`{"rows":"Denim"}`, "error")
	f(`{"rows":[{"item":"x{"}]}`, "error")
	f(`not json`, "error")
	f(`{"rows":[{"item":"A","quantity":-1,"price":1e300}]}`, `[{"item":"A"}]`)
}

func TestTextRows(t *testing.T) {
	doc, err := newReader(t, Limits{}).Read(context.Background(), pdftest.TextTable("Order", priceList))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(TextRows(doc, 10))
	want := `[{"item":"Denim Jacket","attributes":{"brand":"Levis","colour":"Blue","size":"M"},"quantity":2,"price":59.9},` +
		`{"item":"Running Shoes","attributes":{"brand":"Nike","colour":"White","size":"42"},"quantity":1,"price":89},` +
		`{"item":"Leather Belt","attributes":{"brand":"Fossil","colour":"Brown","size":"L"},"quantity":3,"price":24.5}]`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func FuzzParseRows(f *testing.F) {
	f.Add(`{"rows":[{"item":"Denim Jacket","attributes":{"colour":"Blue"},"quantity":2,"price":59.9}]}`)
	f.Add("```json\n[{\"name\":\"Belt\",\"qty\":\"3\"}]\n```")
	f.Add(`{"items":[{"商品":"牛仔夹克","颜色":"蓝色","数量":"2","单价":"¥59.90"}]}`)
	f.Fuzz(func(t *testing.T, s string) {
		rows, err := ParseRows(s, 5)
		if err == nil && (len(rows) == 0 || len(rows) > 5) {
			t.Fatalf("%d rows", len(rows))
		}
		for _, r := range rows {
			if r.Item == "" || r.Quantity < 0 || r.Price < 0 {
				t.Fatalf("bad row %+v", r)
			}
		}
	})
}
