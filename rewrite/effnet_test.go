package rewrite

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/vlproxy/vlproxy/model"
	"github.com/vlproxy/vlproxy/testenv"
)

// TestRealImageModel rewrites a photo clause through the real local image model
// (testenv/effnet: EfficientNet-Lite0 labels mapped to catalogue words plus pixel colours):
// the rewriter's own prompt, schema and parser against a real server's answer.
func TestRealImageModel(t *testing.T) {
	url := testenv.EffnetURL(t)
	c, err := model.New(model.RoleChat, model.Config{URL: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := newTestRewriter(t, testConfig(), c, nil)
	// 29167: "United Colors of Benetton Girls Red Polka Dot Dress" (../shared/data/fashion)
	photo, err := os.ReadFile(filepath.Join("..", "..", "shared", "data", "fashion", "images", "29167.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	img := "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(photo)
	body := []byte(`{"query":{"multimodal":{"image":"` + img + `","attributes":true}}}`)
	res, err := r.Rewrite(context.Background(), Request{Index: "products", Body: body})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "applied" {
		t.Fatalf("status %q, explain %s", res.Status, res.Explain)
	}
	e := gjson.ParseBytes(res.Explain)
	kws := e.Get("keywords").Array()
	if len(kws) == 0 {
		t.Fatalf("no keywords: %s", res.Explain)
	}
	var joined []string
	for _, k := range kws {
		joined = append(joined, k.String())
	}
	if s := strings.Join(joined, "|"); !strings.Contains(s, "dress") || !strings.Contains(s, "red") {
		t.Errorf("keywords %q lack dress or red", s)
	}
	if e.Get("category").String() != "dress" || e.Get("attributes.colour").String() != "red" {
		t.Errorf("category/attributes: %s", res.Explain)
	}
	if q := gjson.GetBytes(res.Body, "query").Raw; !strings.Contains(q, "dress") {
		t.Errorf("rewritten query has no dress: %s", q)
	}
	t.Logf("explain: %s", res.Explain)
}
