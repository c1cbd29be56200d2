package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/vlproxy/vlproxy/enrich"
	"github.com/vlproxy/vlproxy/model"
	"github.com/vlproxy/vlproxy/model/modeltest"
	"github.com/vlproxy/vlproxy/testenv"
)

// An enriched index answers a text query by what the product photos show: the titles say
// nothing about colour, the simulated model sees it in the photos, enrich writes it into
// vl_keywords, and a plain match on that field through the proxy finds the right product.
func TestEnrichedIndexAnswersByImageContent(t *testing.T) {
	node := testenv.URL(t)
	c := rawClient()
	idx := uniqueName("vlp-enrich")
	mustDo(t, c, 200, "PUT", node+"/"+idx, []byte(`{"settings":{"number_of_shards":1,"number_of_replicas":0},
		"mappings":{"properties":{"title":{"type":"text"},"image":{"type":"keyword"},"vl_keywords":{"type":"text"}}}}`))
	t.Cleanup(func() { deleteIndex(t, node, idx) })

	dir := t.TempDir()
	photos := map[string]struct {
		c  color.RGBA
		kw []string
	}{
		"a": {color.RGBA{200, 20, 30, 255}, []string{"crimson evening gown"}},
		"b": {color.RGBA{20, 40, 200, 255}, []string{"navy denim jacket"}},
		"c": {color.RGBA{30, 160, 40, 255}, []string{"olive hiking backpack"}},
	}
	cfg := modeltest.Config{Images: map[string]modeltest.Output{}}
	var bulk bytes.Buffer
	for id, p := range photos {
		img := image.NewRGBA(image.Rect(0, 0, 48, 64))
		for i := range img.Pix {
			img.Pix[i] = []uint8{p.c.R, p.c.G, p.c.B, 255}[i%4]
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, id+".jpg"), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(buf.Bytes())
		cfg.Images[hex.EncodeToString(sum[:])] = modeltest.Output{Keywords: p.kw}
		fmt.Fprintf(&bulk, `{"index":{"_id":%q}}`+"\n"+`{"title":"product %s","image":"%s.jpg"}`+"\n", id, id, id)
	}
	mustDo(t, c, 200, "POST", node+"/"+idx+"/_bulk?refresh=true", bulk.Bytes(), "Content-Type", "application/x-ndjson")

	sim := modeltest.NewServer(cfg)
	t.Cleanup(sim.Close)
	mc := model.DefaultConfig()
	mc.URL = sim.URL
	mc.HealthInterval = -1
	m, err := model.New(model.RoleChat, mc, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)

	prox := startProxy(t, node)
	ecfg := enrich.DefaultConfig()
	ecfg.ESURL, ecfg.Index, ecfg.ImageDir = prox, idx, dir // through the proxy, like any client
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := enrich.RunStats(ctx, ecfg, m, &bytes.Buffer{})
	if err != nil {
		t.Fatalf("enrich: %v (stats %+v)", err, st)
	}
	mustDo(t, c, 200, "POST", prox+"/"+idx+"/_refresh", nil)

	f := func(query, wantID string) {
		t.Helper()
		r := mustDo(t, c, 200, "POST", prox+"/"+idx+"/_search",
			[]byte(`{"query":{"match":{"vl_keywords":"`+query+`"}}}`), "Content-Type", "application/json")
		hits := gjson.GetBytes(r.Body, "hits.hits.#._id").Array()
		if len(hits) != 1 || hits[0].String() != wantID {
			t.Fatalf("text query %q on the enriched field: hits %v, want only %s (%s)", query, hits, wantID, r.Body)
		}
	}
	f("crimson gown", "a")
	f("denim", "b")
	f("backpack for hiking", "c")

	// Resume skips what is done: a second run makes no model call.
	calls := sim.Calls()
	ecfg.Resume = true
	if _, err := enrich.RunStats(ctx, ecfg, m, &bytes.Buffer{}); err != nil {
		t.Fatalf("enrich -resume: %v", err)
	}
	if after := sim.Calls(); fmt.Sprint(after) != fmt.Sprint(calls) {
		t.Fatalf("enrich -resume called the model again: calls %v -> %v", calls, after)
	}
}
