package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/vlproxy/vlproxy/cache"
	"github.com/vlproxy/vlproxy/enrich"
	"github.com/vlproxy/vlproxy/model"
	"github.com/vlproxy/vlproxy/model/modeltest"
	"github.com/vlproxy/vlproxy/proxy"
	"github.com/vlproxy/vlproxy/rewrite"
	"github.com/vlproxy/vlproxy/testenv"
)

// solidJPEG is a w x h JPEG of one colour with a small seed-dependent mark, so photos of one
// colour differ in their bytes (and hashes).
func solidJPEG(t testing.TB, c color.RGBA, seed int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 48, 64))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, 255
	}
	img.SetRGBA(seed%48, seed/48, color.RGBA{255 - c.R, 255 - c.G, 255 - c.B, 255})
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func imageHash(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func dataURIOf(b []byte) string {
	return "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(b)
}

type vectorEnv struct {
	node, prox, idx string
	sim             *modeltest.Server
	queries         map[string][]byte // name → query photo (not indexed)
}

// newVectorEnv indexes nine products (three colours × three photos), enriches their photos
// with the simulator's keywords and vectors through the proxy, and starts a proxy whose
// profile names the vector field. The simulator's vectors are hashed bags of the words it
// "sees" (modeltest.Config.Images), so photos seen as the same words have the same vector.
func newVectorEnv(t *testing.T, dims int, embedURL string) *vectorEnv {
	node := testenv.URL(t)
	c := rawClient()
	env := &vectorEnv{node: node, idx: uniqueName("vlp-vector"), queries: map[string][]byte{}}
	mustDo(t, c, 200, "PUT", node+"/"+env.idx, []byte(`{"settings":{"number_of_shards":1,"number_of_replicas":0,"index.knn":true},
		"mappings":{"properties":{"title":{"type":"text"},"colour":{"type":"keyword"},"price":{"type":"integer"},"image":{"type":"keyword"},"vl_keywords":{"type":"text"}}}}`))
	t.Cleanup(func() { deleteIndex(t, node, env.idx) })

	dir := t.TempDir()
	kinds := []struct {
		colour string
		c      color.RGBA
		seen   []string // what the simulated model sees, per photo
	}{
		{"red", color.RGBA{200, 20, 30, 255}, []string{"red dress", "red dress evening", "red dress maxi"}},
		{"blue", color.RGBA{20, 40, 200, 255}, []string{"blue jeans", "blue jeans denim", "blue jeans slim"}},
		{"green", color.RGBA{30, 160, 40, 255}, []string{"green bag", "green bag leather", "green bag tote"}},
	}
	cfg := modeltest.Config{EmbedDim: 16, Images: map[string]modeltest.Output{}}
	var bulk bytes.Buffer
	for k, kind := range kinds {
		for i, seen := range kind.seen {
			photo := solidJPEG(t, kind.c, 10*k+i)
			id := fmt.Sprintf("%s-%d", kind.colour, i)
			mustf(t, os.WriteFile(filepath.Join(dir, id+".jpg"), photo, 0o644), "write photo")
			cfg.Images[imageHash(photo)] = modeltest.Output{Keywords: []string{seen}}
			// Titles say nothing of colour except one blue product titled "red" on purpose,
			// so the lexical side and the vector side disagree on a known document.
			title := fmt.Sprintf("product %d%d", k, i)
			if id == "blue-2" {
				title = "red dress lookalike"
			}
			fmt.Fprintf(&bulk, `{"index":{"_id":%q}}`+"\n"+`{"title":%q,"colour":%q,"price":%d,"image":"%s.jpg"}`+"\n", id, title, kind.colour, 10*(k+1)+i, id)
		}
		q := solidJPEG(t, kind.c, 40+k)
		cfg.Images[imageHash(q)] = modeltest.Output{Keywords: []string{kind.seen[0]}}
		env.queries[kind.colour] = q
	}
	mustDo(t, c, 200, "POST", node+"/"+env.idx+"/_bulk?refresh=true", bulk.Bytes(), "Content-Type", "application/x-ndjson")

	env.sim = modeltest.NewServer(cfg)
	t.Cleanup(env.sim.Close)
	quiet := slog.New(slog.DiscardHandler)
	client := func(role, url string) *model.Client {
		mc := model.DefaultConfig()
		mc.URL, mc.HealthInterval, mc.API = url, -1, model.APIOpenAI
		mc.Breaker.Failures = -1
		m, err := model.New(role, mc, quiet)
		mustf(t, err, "model client")
		t.Cleanup(m.Close)
		return m
	}
	chat, emb := client(model.RoleChat, env.sim.URL), client(model.RoleEmbed, env.sim.URL)

	ecfg := enrich.DefaultConfig()
	ecfg.ESURL, ecfg.Index, ecfg.ImageDir, ecfg.VectorField = node, env.idx, dir, "image_vec"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := enrich.RunModels(ctx, ecfg, enrich.Models{Chat: chat, Embed: emb}, &bytes.Buffer{})
	mustf(t, err, "enrich (stats %+v)", st)
	mustDo(t, c, 200, "POST", node+"/"+env.idx+"/_refresh", nil)
	// Resume: every document has both fields, so a second run asks no model anything.
	before := fmt.Sprint(env.sim.Calls())
	ecfg.Resume = true
	if st, err := enrich.RunModels(ctx, ecfg, enrich.Models{Chat: chat, Embed: emb}, &bytes.Buffer{}); err != nil || st.Total != 0 {
		t.Fatalf("enrich -resume: %v %+v", err, st)
	}
	if after := fmt.Sprint(env.sim.Calls()); after != before {
		t.Fatalf("enrich -resume called the model: %s -> %s", before, after)
	}
	mapping := mustDo(t, c, 200, "GET", node+"/"+env.idx+"/_mapping", nil)
	if f := gjson.GetBytes(mapping.Body, "*.mappings.properties.image_vec"); f.Get("type").String() != "knn_vector" || f.Get("dimension").Int() != 16 || f.Get("method.engine").String() != "lucene" {
		t.Fatalf("enrich created the vector field as %s", f.Raw)
	}

	rcfg := rewrite.DefaultConfig()
	rcfg.Profiles = []rewrite.Profile{
		{Index: env.idx, Fields: []string{"title", "vl_keywords"}, Vector: &rewrite.VectorProfile{Field: "image_vec", Dims: dims}},
		{Index: "*", Fields: []string{"title"}},
	}
	rw, err := rewrite.New(rcfg, chat, cache.New(cache.Config{Name: "it-kw"}), quiet)
	mustf(t, err, "rewriter")
	if embedURL == "" {
		embedURL = env.sim.URL
	}
	rw.SetEmbedder(client(model.RoleEmbed, embedURL), cache.New(cache.Config{Name: "it-emb"}))
	env.prox = startProxy(t, node, proxy.WithRewriter(rw))
	return env
}

func (env *vectorEnv) search(t *testing.T, want int, body string, hdr ...string) reply {
	t.Helper()
	return mustDo(t, rawClient(), want, "POST", env.prox+"/"+env.idx+"/_search", []byte(body), hdr...)
}

func (env *vectorEnv) clause(colour, extra string) string {
	return `{"multimodal":{"image":"` + dataURIOf(env.queries[colour]) + `"` + extra + `}}`
}

func ids(body []byte) []string {
	var out []string
	for _, v := range gjson.GetBytes(body, "hits.hits.#._id").Array() {
		out = append(out, v.String())
	}
	return out
}

func TestVectorSearch(t *testing.T) {
	env := newVectorEnv(t, 16, "")

	// A red photo finds the red products through kNN alone.
	r := env.search(t, 200, `{"size":3,"query":`+env.clause("red", `,"mode":"vector"`)+`}`)
	if got := r.Header.Get("X-VLProxy-Retrieval"); got != "vector" {
		t.Fatalf("X-VLProxy-Retrieval %q, want vector", got)
	}
	got := ids(r.Body)
	sort.Strings(got)
	if strings.Join(got, ",") != "red-0,red-1,red-2" {
		t.Fatalf("red photo, kNN top 3 = %v, want the red products (%s)", got, r.Body)
	}
	if ids(r.Body)[0] != "red-0" {
		t.Errorf("the photo seen as exactly %q should rank red-0 first: %v", "red dress", ids(r.Body))
	}

	// A client filter applies to the kNN side: only blue products, nearest to red first.
	r = env.search(t, 200, `{"size":10,"query":{"bool":{"must":[`+env.clause("red", `,"mode":"vector"`)+`],"filter":[{"term":{"colour":"blue"}}]}}}`)
	if got := ids(r.Body); len(got) != 3 || !allPrefix(got, "blue-") {
		t.Fatalf("filtered kNN = %v, want the 3 blue products", got)
	}

	// Paging: from/size cut the same ranking.
	all := ids(env.search(t, 200, `{"size":6,"query":`+env.clause("green", `,"mode":"vector"`)+`}`).Body)
	p1 := ids(env.search(t, 200, `{"from":0,"size":3,"query":`+env.clause("green", `,"mode":"vector"`)+`}`).Body)
	p2 := ids(env.search(t, 200, `{"from":3,"size":3,"query":`+env.clause("green", `,"mode":"vector"`)+`}`).Body)
	if len(all) != 6 || fmt.Sprint(append(p1, p2...)) != fmt.Sprint(all) {
		t.Fatalf("kNN pages %v + %v, want %v", p1, p2, all)
	}
}

func allPrefix(ss []string, p string) bool {
	for _, s := range ss {
		if !strings.HasPrefix(s, p) {
			return false
		}
	}
	return true
}

// Hybrid: the lexical and the kNN side in one _msearch, fused by RRF in the proxy. The
// expected order is computed here from the two sides run on their own (mode keywords and
// mode vector through the same proxy) with RRF written out independently.
func TestHybridSearch(t *testing.T) {
	env := newVectorEnv(t, 16, "")
	filter := `"filter":[{"range":{"price":{"lte":32}}}]`
	body := func(mode, extra string, from, size int) string {
		return fmt.Sprintf(`{"from":%d,"size":%d,"query":{"bool":{"must":[%s],%s}}}`, from, size,
			`{"multimodal":{"image":"`+dataURIOf(env.queries["red"])+`","text":"red dress","mode":"`+mode+`"`+extra+`}}`, filter)
	}
	lex := env.search(t, 200, body("keywords", "", 0, 20))
	vec := env.search(t, 200, body("vector", "", 0, 20))
	if lex.Header.Get("X-VLProxy-Retrieval") != "keywords" || vec.Header.Get("X-VLProxy-Retrieval") != "vector" {
		t.Fatalf("side runs: retrieval %q / %q", lex.Header.Get("X-VLProxy-Retrieval"), vec.Header.Get("X-VLProxy-Retrieval"))
	}
	lexIDs, vecIDs := ids(lex.Body), ids(vec.Body)
	if len(lexIDs) == 0 || len(vecIDs) == 0 {
		t.Fatalf("a side found nothing: lexical %v vector %v", lexIDs, vecIDs)
	}
	want := rrf(lexIDs, vecIDs, 10)

	r := env.search(t, 200, body("hybrid", `,"fusion":{"method":"rrf","rank_constant":10}`, 0, 20))
	if got := r.Header.Get("X-VLProxy-Retrieval"); got != "hybrid" {
		t.Fatalf("X-VLProxy-Retrieval %q, want hybrid", got)
	}
	got := ids(r.Body)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("hybrid order %v\nwant (RRF k=10 of lexical %v and vector %v) %v", got, lexIDs, vecIDs, want)
	}
	// hits.total is the lexical side's; every hit passed the filter (price ≤ 32: no blue-2... tote).
	if a, b := gjson.GetBytes(r.Body, "hits.total.value").Int(), gjson.GetBytes(lex.Body, "hits.total.value").Int(); a != b {
		t.Errorf("hybrid hits.total %d, lexical side %d", a, b)
	}
	for _, h := range gjson.GetBytes(r.Body, "hits.hits").Array() {
		if h.Get("_source.price").Int() > 32 {
			t.Errorf("hit %s breaks the filter: %s", h.Get("_id"), h.Raw)
		}
	}
	// from/size page over the fused list.
	p := ids(env.search(t, 200, body("hybrid", `,"fusion":{"method":"rrf","rank_constant":10}`, 2, 3)).Body)
	if fmt.Sprint(p) != fmt.Sprint(want[2:min(5, len(want))]) {
		t.Errorf("hybrid page from 2 size 3 = %v, want %v", p, want[2:min(5, len(want))])
	}
	// explain: per hit lexical rank, vector rank, fused score.
	r = env.search(t, 200, strings.Replace(body("hybrid", `,"fusion":{"method":"rrf","rank_constant":10}`, 0, 20), `{"from"`, `{"ext":{"vlproxy":{"explain":true}},"from"`, 1))
	ex := gjson.GetBytes(r.Body, "ext.vlproxy.hybrid.hits")
	if int(ex.Get("#").Int()) != len(want) {
		t.Fatalf("explain: %s", gjson.GetBytes(r.Body, "ext.vlproxy").Raw)
	}
	for i, h := range ex.Array() {
		id := h.Get("_id").String()
		lr, vr := indexOf(lexIDs, id)+1, indexOf(vecIDs, id)+1
		if id != want[i] || h.Get("lexical_rank").Int() != int64(lr) || h.Get("vector_rank").Int() != int64(vr) || h.Get("fused_score").Float() <= 0 {
			t.Errorf("explain hit %d = %s, want %s with lexical rank %d, vector rank %d", i, h.Raw, want[i], lr, vr)
		}
	}
	// Linear fusion, vector side only: the vector order.
	r = env.search(t, 200, body("hybrid", `,"fusion":{"method":"linear","weights":[0,1]}`, 0, len(vecIDs)))
	if got := ids(r.Body)[:len(vecIDs)]; fmt.Sprint(got) != fmt.Sprint(vecIDs) {
		t.Errorf("linear [0,1] = %v, want the vector order %v", got, vecIDs)
	}

	// Inside _msearch too: one hybrid search and one plain one.
	ms := `{"index":"` + env.idx + `"}` + "\n" + compactJSON(body("hybrid", `,"fusion":{"method":"rrf","rank_constant":10}`, 0, 20)) + "\n" +
		`{"index":"` + env.idx + `"}` + "\n" + `{"query":{"match_all":{}},"size":1}` + "\n"
	mr := mustDo(t, rawClient(), 200, "POST", env.prox+"/_msearch", []byte(ms), "Content-Type", "application/x-ndjson")
	if n := gjson.GetBytes(mr.Body, "responses.#").Int(); n != 2 {
		t.Fatalf("_msearch: %d responses: %s", n, mr.Body)
	}
	if got := ids([]byte(gjson.GetBytes(mr.Body, "responses.0").Raw)); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("_msearch hybrid order %v, want %v", got, want)
	}
	if mr.Header.Get("X-VLProxy-Retrieval") != "hybrid, skipped" {
		t.Errorf("_msearch X-VLProxy-Retrieval %q", mr.Header.Get("X-VLProxy-Retrieval"))
	}
}

func compactJSON(s string) string { return strings.ReplaceAll(s, "\n", "") }

func indexOf(ss []string, s string) int {
	for i, x := range ss {
		if x == s {
			return i
		}
	}
	return -1
}

// rrf is reciprocal rank fusion written out on its own: score = Σ 1/(k+rank); ties by the
// better lexical rank, then the better vector rank.
func rrf(lex, vec []string, k int) []string {
	type doc struct {
		id     string
		s      float64
		lr, vr int
	}
	m := map[string]*doc{}
	get := func(id string) *doc {
		if m[id] == nil {
			m[id] = &doc{id: id, lr: 1 << 30, vr: 1 << 30}
		}
		return m[id]
	}
	for i, id := range lex {
		d := get(id)
		d.s += 1 / float64(k+i+1)
		d.lr = i
	}
	for i, id := range vec {
		d := get(id)
		d.s += 1 / float64(k+i+1)
		d.vr = i
	}
	var ds []*doc
	for _, d := range m {
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool {
		if ds[i].s != ds[j].s {
			return ds[i].s > ds[j].s
		}
		if ds[i].lr != ds[j].lr {
			return ds[i].lr < ds[j].lr
		}
		return ds[i].vr < ds[j].vr
	})
	var out []string
	for _, d := range ds {
		out = append(out, d.id)
	}
	return out
}

func TestVectorBadOptions(t *testing.T) {
	env := newVectorEnv(t, 16, "")
	f := func(body, wantType, wantReason string) {
		t.Helper()
		r := env.search(t, 400, body)
		typ, reason := gjson.GetBytes(r.Body, "error.type").String(), gjson.GetBytes(r.Body, "error.reason").String()
		if typ != wantType || !strings.Contains(reason, wantReason) || gjson.GetBytes(r.Body, "status").Int() != 400 ||
			gjson.GetBytes(r.Body, "error.root_cause.0.type").String() != wantType {
			t.Errorf("%.80s…: %s, want %s naming %q", body, r.Body, wantType, wantReason)
		}
	}
	f(`{"query":`+env.clause("red", `,"mode":"semantic"`)+`}`, "parsing_exception", "[mode]")
	f(`{"query":`+env.clause("red", `,"k":-3`)+`}`, "parsing_exception", "[k]")
	f(`{"query":`+env.clause("red", `,"fusion":{"method":"linear","weights":[1,2,3]}`)+`}`, "parsing_exception", "[fusion.weights]")
	f(`{"query":{"function_score":{"query":`+env.clause("red", `,"mode":"hybrid"`)+`}}}`, "illegal_argument_exception", "top-level [bool]")
	f(`{"query":{"multimodal":{"text":"red dress","mode":"vector"}}}`, "illegal_argument_exception", "needs an [image]")

	// The profile of another index names no vector field.
	other := uniqueName("vlp-novec")
	mustDo(t, rawClient(), 200, "PUT", env.node+"/"+other, []byte(`{"settings":{"number_of_shards":1,"number_of_replicas":0}}`))
	t.Cleanup(func() { deleteIndex(t, env.node, other) })
	r := mustDo(t, rawClient(), 400, "POST", env.prox+"/"+other+"/_search", []byte(`{"query":`+env.clause("red", `,"mode":"vector"`)+`}`))
	if !strings.Contains(gjson.GetBytes(r.Body, "error.reason").String(), "needs a vector field") {
		t.Errorf("no vector field: %s", r.Body)
	}
}

// The profile says 32 dimensions, the model gives 16: a clear 400 before any search runs.
func TestVectorDimensionMismatch(t *testing.T) {
	env := newVectorEnv(t, 32, "")
	r := env.search(t, 400, `{"query":`+env.clause("red", `,"mode":"vector"`)+`}`)
	if reason := gjson.GetBytes(r.Body, "error.reason").String(); !strings.Contains(reason, "gives 16 dimensions, the field has 32") {
		t.Fatalf("dimension mismatch: %s", r.Body)
	}
}

// The embed model down: hybrid and vector searches answer from keywords, and say so.
func TestVectorFallback(t *testing.T) {
	env := newVectorEnv(t, 16, "http://127.0.0.1:1")
	for _, mode := range []string{"", `,"mode":"vector"`, `,"mode":"hybrid"`} {
		r := env.search(t, 200, `{"size":3,"query":`+env.clause("red", mode)+`}`)
		if got := r.Header.Get("X-VLProxy-Retrieval"); got != "fallback:unavailable" {
			t.Errorf("mode %q: X-VLProxy-Retrieval %q, want fallback:unavailable", mode, got)
		}
		// Keywords ("red dress") match the red products' enriched keywords and the blue
		// product titled "red dress lookalike" — a lexical answer, not a visual one.
		got := ids(r.Body)
		red := 0
		for _, id := range got {
			if strings.HasPrefix(id, "red-") {
				red++
			}
		}
		if red < 2 || indexOf(got, "blue-2") < 0 {
			t.Errorf("mode %q: keyword fallback found %v, want red products and the lookalike title", mode, got)
		}
	}
}
