package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/vlproxy/vlproxy/bench"
	"github.com/vlproxy/vlproxy/cache"
	"github.com/vlproxy/vlproxy/enrich"
	"github.com/vlproxy/vlproxy/model"
	"github.com/vlproxy/vlproxy/proxy"
	"github.com/vlproxy/vlproxy/rewrite"
	"github.com/vlproxy/vlproxy/testenv"
)

// redDress is the catalogue's one red dress (articleType Dresses, baseColour Red); its photo is
// the query and the product itself is left out of the index.
const redDress = "29167"

// fashionSubset is 200 products with photos: every dress but the query, then the lowest ids of
// the other types, so the dresses are a small minority (23 of 200) a random ranking rarely hits.
func fashionSubset(t *testing.T) (dir string, ps []bench.FashionProduct) {
	dir, err := bench.FindFashionDir("")
	mustf(t, err, "fashion dir")
	all, err := bench.LoadFashion(dir)
	if err != nil {
		t.Skipf("no fashion catalogue at %s: %v", dir, err)
	}
	var dresses, others []bench.FashionProduct
	for _, p := range all {
		switch {
		case !p.HasImage || p.ID == redDress || !isJPEG(filepath.Join(dir, "images", p.ID+".jpg")):
		case p.ArticleType == "Dresses":
			dresses = append(dresses, p)
		default:
			others = append(others, p)
		}
	}
	sort.Slice(others, func(i, j int) bool { return others[i].ID < others[j].ID })
	return dir, append(dresses, others[:200-len(dresses)]...)
}

// With the real image model (testenv/effnet, EfficientNet-Lite0): the photo of a red dress
// finds dresses through kNN on image vectors that enrich wrote; filters and paging hold.
func TestEffnetRedDressFindsDresses(t *testing.T) {
	effnet := testenv.EffnetURL(t)
	node := testenv.URL(t)
	c := rawClient()
	dir, ps := fashionSubset(t)
	idx := uniqueName("vlp-effnet")
	mustDo(t, c, 200, "PUT", node+"/"+idx, []byte(`{"settings":{"number_of_shards":1,"number_of_replicas":0,"index.knn":true},
		"mappings":{"properties":{"title":{"type":"text"},"articleType":{"type":"keyword"},"baseColour":{"type":"keyword"},"image":{"type":"keyword"},"vl_keywords":{"type":"text"}}}}`))
	t.Cleanup(func() { deleteIndex(t, node, idx) })
	var bulk bytes.Buffer
	for _, p := range ps {
		src, _ := json.Marshal(map[string]string{"title": p.Title, "articleType": p.ArticleType, "baseColour": p.BaseColour, "image": "images/" + p.ID + ".jpg"})
		fmt.Fprintf(&bulk, "{\"index\":{\"_id\":%q}}\n%s\n", p.ID, src)
	}
	mustDo(t, c, 200, "POST", node+"/"+idx+"/_bulk?refresh=true", bulk.Bytes(), "Content-Type", "application/x-ndjson")

	quiet := slog.New(slog.DiscardHandler)
	chat, emb := effnetClients(t, effnet)
	ecfg := enrich.DefaultConfig()
	ecfg.ESURL, ecfg.Index, ecfg.ImageDir, ecfg.VectorField, ecfg.Concurrency = node, idx, dir, "image_vec", 2
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	st, err := enrich.RunModels(ctx, ecfg, enrich.Models{Chat: chat, Embed: emb}, &progress)
	mustf(t, err, "enrich (stats %+v)", st)
	if st.Done != len(ps) {
		t.Fatalf("enrich: %+v, want %d done: %s", st, len(ps), progress.String())
	}
	mustDo(t, c, 200, "POST", node+"/"+idx+"/_refresh", nil)

	rcfg := rewrite.DefaultConfig()
	rcfg.Profiles = []rewrite.Profile{{Index: idx, Fields: []string{"title", "vl_keywords"},
		Vector: &rewrite.VectorProfile{Field: "image_vec", Dims: 1280}}}
	rw, err := rewrite.New(rcfg, chat, cache.New(cache.Config{Name: "it-effnet-kw"}), quiet)
	mustf(t, err, "rewriter")
	rw.SetEmbedder(emb, cache.New(cache.Config{Name: "it-effnet-emb"}))
	prox := startProxy(t, node, proxy.WithRewriter(rw))

	photo, err := os.ReadFile(filepath.Join(dir, "images", redDress+".jpg"))
	mustf(t, err, "query photo")
	clause := `{"multimodal":{"image":"` + dataURIOf(photo) + `","mode":"vector"}}`
	search := func(body string) []gjson.Result {
		t.Helper()
		r := mustDo(t, c, 200, "POST", prox+"/"+idx+"/_search", []byte(body))
		if got := r.Header.Get("X-VLProxy-Retrieval"); got != "vector" {
			t.Fatalf("X-VLProxy-Retrieval %q, want vector (%s)", got, r.Body)
		}
		return gjson.GetBytes(r.Body, "hits.hits").Array()
	}
	hits := search(`{"size":10,"_source":["articleType","baseColour"],"query":` + clause + `}`)
	var seen []string
	dresses := 0
	for _, h := range hits {
		at := h.Get("_source.articleType").String()
		seen = append(seen, h.Get("_id").String()+":"+at+"/"+h.Get("_source.baseColour").String())
		if at == "Dresses" {
			dresses++
		}
	}
	t.Logf("red dress photo, kNN top 10: %s", strings.Join(seen, " "))
	// 23 of 200 products are dresses: a random top 10 holds about 1.
	if len(hits) != 10 || dresses < 7 {
		t.Fatalf("the red dress photo found %d dresses in its kNN top 10, want at least 7: %v", dresses, seen)
	}

	// A filter applies inside the kNN search: only the filtered colour comes back, 10 of them.
	hits = search(`{"size":10,"_source":["baseColour"],"query":{"bool":{"must":[` + clause + `],"filter":[{"terms":{"baseColour":["Red","Pink","Magenta"]}}]}}}`)
	if len(hits) == 0 {
		t.Fatal("filtered kNN found nothing")
	}
	for _, h := range hits {
		if c := h.Get("_source.baseColour").String(); c != "Red" && c != "Pink" && c != "Magenta" {
			t.Errorf("filtered kNN returned %s with baseColour %s", h.Get("_id"), c)
		}
	}
	// Paging: two pages of 5 are the top 10.
	idsOf := func(hs []gjson.Result) (out []string) {
		for _, h := range hs {
			out = append(out, h.Get("_id").String())
		}
		return out
	}
	top := idsOf(search(`{"size":10,"query":` + clause + `}`))
	p1 := idsOf(search(`{"from":0,"size":5,"query":` + clause + `}`))
	p2 := idsOf(search(`{"from":5,"size":5,"query":` + clause + `}`))
	if fmt.Sprint(append(p1, p2...)) != fmt.Sprint(top) {
		t.Errorf("pages %v + %v, want %v", p1, p2, top)
	}
}

// isJPEG skips the catalogue's few photos that are not images (enrich counts them as failed).
func isJPEG(path string) bool {
	b, err := os.ReadFile(path)
	return err == nil && len(b) > 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF
}

// effnetClients returns chat and embed clients of the local image model at url (OpenAI API, no
// health probes), closed when the test ends.
func effnetClients(t *testing.T, url string) (chat, emb *model.Client) {
	t.Helper()
	client := func(role string) *model.Client {
		mc := model.DefaultConfig()
		mc.URL, mc.HealthInterval, mc.API = url, -1, model.APIOpenAI
		m, err := model.New(role, mc, slog.New(slog.DiscardHandler))
		mustf(t, err, "model client")
		t.Cleanup(m.Close)
		return m
	}
	return client(model.RoleChat), client(model.RoleEmbed)
}
