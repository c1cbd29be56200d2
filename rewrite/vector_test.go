package rewrite

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vlproxy/vlproxy/cache"
	"github.com/vlproxy/vlproxy/hybrid"
	"github.com/vlproxy/vlproxy/internal/esjson"
	"github.com/vlproxy/vlproxy/media/mediatest"
	"github.com/vlproxy/vlproxy/model"
)

// fakeEmbedder returns a fixed vector per call, or err; it counts calls and can be slow.
type fakeEmbedder struct {
	vec   []float32
	err   error
	text  bool
	delay time.Duration
	calls atomic.Int64
	last  atomic.Value // model.EmbedInput
}

func (f *fakeEmbedder) Name() string { return "effnet" }
func (f *fakeEmbedder) EmbedInfo() model.EmbedConfig {
	return model.EmbedConfig{Form: "input", Text: f.text}
}
func (f *fakeEmbedder) EmbedOne(ctx context.Context, in model.EmbedInput) ([]float32, error) {
	f.calls.Add(1)
	f.last.Store(in)
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return nil, &model.Error{Kind: model.KindTimeout, Message: "deadline", Err: ctx.Err()}
		}
	}
	if f.err != nil {
		return nil, f.err
	}
	return append([]float32(nil), f.vec...), nil
}

func vectorConfig() Config {
	cfg := testConfig()
	cfg.Profiles = append([]Profile{{Index: "fashion*", Fields: []string{"title"},
		Vector: &VectorProfile{Field: "image_vec", Dims: 3}}}, cfg.Profiles...)
	return cfg
}

func vecRewriter(t testing.TB, emb *fakeEmbedder, c Cache) *Rewriter {
	r := newTestRewriter(t, vectorConfig(), newFake(), c)
	if emb != nil {
		r.SetEmbedder(emb, c)
	}
	return r
}

func imageClause(t testing.TB, extra string) []byte {
	img := dataURI("image/jpeg", mediatest.JPEG(t, 64, 64, 80))
	return []byte(`{"size":5,"query":{"bool":{"must":[{"multimodal":{"image":` + string(esjson.AppendString(nil, img)) + extra +
		`}}],"filter":[{"term":{"in_stock":true}}]}}}`)
}

func TestVectorModes(t *testing.T) {
	ctx := context.Background()
	emb := &fakeEmbedder{vec: []float32{0.6, 0.8, 0}}
	r := vecRewriter(t, emb, nil)

	// Default from the profile: hybrid, the lexical body keeps the keyword query.
	res, err := r.Rewrite(ctx, Request{Index: "fashion", Body: imageClause(t, "")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Retrieval != "hybrid" || res.Vector == nil || res.Vector.Mode != hybrid.ModeHybrid {
		t.Fatalf("default: retrieval %q plan %+v", res.Retrieval, res.Vector)
	}
	if got := string(res.Vector.Filter); got != `{"bool":{"filter":[{"term":{"in_stock":true}}]}}` {
		t.Errorf("filter %s", got)
	}
	if res.Vector.Field != "image_vec" || len(res.Vector.Vector) != 3 || res.Vector.Fusion.Method != hybrid.RRF || res.Vector.Fusion.RankConstant != 60 {
		t.Errorf("plan %+v", res.Vector)
	}
	if !strings.Contains(string(res.Body), "red maxi dress") {
		t.Errorf("hybrid lexical body lacks keywords: %s", res.Body)
	}

	// Explicit vector: no keyword call; options override the profile.
	chat := newFake()
	r2 := newTestRewriter(t, vectorConfig(), chat, nil)
	r2.SetEmbedder(emb, nil)
	res, err = r2.Rewrite(ctx, Request{Index: "fashion", Body: imageClause(t, `,"mode":"vector","k":40,"num_candidates":200,"fusion":{"method":"linear","weights":[0.3,0.7]}`)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Retrieval != "vector" || res.Vector.K != 40 || res.Vector.NumCandidates != 200 || res.Vector.Fusion.Weights != [2]float64{0.3, 0.7} {
		t.Fatalf("vector: %q %+v", res.Retrieval, res.Vector)
	}
	if chat.calls.Load() != 0 {
		t.Errorf("vector mode called the chat model %d times", chat.calls.Load())
	}

	// Text-only clauses: keywords (the embed model has no text tower).
	res, err = r.Rewrite(ctx, Request{Index: "fashion", Body: []byte(`{"query":{"multimodal":{"text":"red dress"}}}`)})
	if err != nil || res.Retrieval != "keywords" || res.Vector != nil {
		t.Fatalf("text only: %v %q %+v", err, res.Retrieval, res.Vector)
	}
	// Other indices: no vector field, keywords.
	res, err = r.Rewrite(ctx, Request{Index: "products", Body: imageClause(t, "")})
	if err != nil || res.Retrieval != "keywords" || res.Vector != nil {
		t.Fatalf("no vector profile: %v %q", err, res.Retrieval)
	}
	// The X-VLProxy-Retrieval request header wins over the clause and the profile.
	res, err = r.Rewrite(ctx, Request{Index: "fashion", Body: imageClause(t, `,"mode":"hybrid"`), Retrieval: "keywords"})
	if err != nil || res.Retrieval != "keywords" || res.Vector != nil {
		t.Fatalf("header keywords: %v %q", err, res.Retrieval)
	}
	res, err = r.Rewrite(ctx, Request{Index: "fashion", Body: imageClause(t, ""), Retrieval: "vector"})
	if err != nil || res.Retrieval != "vector" || res.Vector == nil || res.Vector.Mode != hybrid.ModeVector {
		t.Fatalf("header vector: %v %q", err, res.Retrieval)
	}
	// Explicit keywords wins over the profile.
	res, err = r.Rewrite(ctx, Request{Index: "fashion", Body: imageClause(t, `,"mode":"keywords"`)})
	if err != nil || res.Retrieval != "keywords" || res.Vector != nil {
		t.Fatalf("mode keywords: %v %q", err, res.Retrieval)
	}
}

func TestVectorFallback(t *testing.T) {
	ctx := context.Background()
	// The embed model down: keywords, visibly.
	emb := &fakeEmbedder{err: &model.Error{Kind: model.KindUnavailable, Message: "down"}}
	r := vecRewriter(t, emb, nil)
	for _, mode := range []string{"", `,"mode":"vector"`, `,"mode":"hybrid"`} {
		res, err := r.Rewrite(ctx, Request{Index: "fashion", Body: imageClause(t, mode)})
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if res.Retrieval != "fallback:unavailable" || res.Vector != nil || !strings.Contains(string(res.Body), "red maxi dress") {
			t.Errorf("%s: retrieval %q vector %v body %s", mode, res.Retrieval, res.Vector != nil, res.Body)
		}
	}
	// No embed model at all.
	r = vecRewriter(t, nil, nil)
	res, err := r.Rewrite(ctx, Request{Index: "fashion", Body: imageClause(t, `,"mode":"hybrid"`)})
	if err != nil || res.Retrieval != "fallback:no_embed_model" {
		t.Fatalf("no embed model: %v %q", err, res.Retrieval)
	}
	// The chat model down in hybrid: the image-only clause runs kNN alone.
	chat := newFake()
	chat.err = &model.Error{Kind: model.KindTimeout, Message: "late"}
	r = newTestRewriter(t, vectorConfig(), chat, nil)
	r.SetEmbedder(&fakeEmbedder{vec: []float32{1, 0, 0}}, nil)
	res, err = r.Rewrite(ctx, Request{Index: "fashion", Body: imageClause(t, "")})
	if err != nil || res.Retrieval != "vector" || res.Vector == nil || res.Vector.Mode != hybrid.ModeVector || res.Status != "fallback:timeout" {
		t.Fatalf("chat down: %v retrieval %q status %q", err, res.Retrieval, res.Status)
	}
}

func TestVectorBadOptions(t *testing.T) {
	r := vecRewriter(t, &fakeEmbedder{vec: []float32{1, 0, 0}}, nil)
	f := func(index, body, want string) {
		t.Helper()
		_, err := r.Rewrite(context.Background(), Request{Index: index, Body: []byte(body)})
		if err == nil {
			t.Fatalf("%s: no error", body)
		}
		st, _, reason := esStatus(t, err)
		if st != 400 || !strings.Contains(reason, want) {
			t.Errorf("%s: %d %q, want 400 naming %q", body, st, reason, want)
		}
	}
	img := string(esjson.AppendString(nil, dataURI("image/jpeg", mediatest.JPEG(t, 32, 32, 80))))
	clause := func(extra string) string { return `{"query":{"multimodal":{"image":` + img + extra + `}}}` }
	f("fashion", clause(`,"mode":"semantic"`), "[mode]")
	f("fashion", clause(`,"mode":3`), "[mode]")
	f("fashion", clause(`,"k":0`), "[k]")
	f("fashion", clause(`,"k":2.5`), "[k]")
	f("fashion", clause(`,"num_candidates":100000`), "[num_candidates]")
	f("fashion", clause(`,"fusion":"borda"`), "[fusion.method]")
	f("fashion", clause(`,"fusion":{"method":"rrf","weights":[1,1]}`), "[fusion.weights]")
	f("fashion", clause(`,"fusion":{"method":"linear","weights":[1]}`), "[fusion.weights]")
	f("fashion", clause(`,"fusion":{"method":"linear","rank_constant":3}`), "[fusion.rank_constant]")
	f("fashion", clause(`,"fusion":{"method":"rrf","rank_constant":-1}`), "[fusion.rank_constant]")
	f("fashion", clause(`,"fusion":{"rank_constant":5}`), "needs [method]")
	f("fashion", clause(`,"fusion":{"method":"rrf","x":1}`), "[fusion] does not support [x]")
	f("products", clause(`,"mode":"vector"`), "needs a vector field")
	f("fashion", `{"query":{"multimodal":{"text":"red dress","mode":"vector"}}}`, "needs an [image]")
	f("fashion", `{"query":{"function_score":{"query":{"multimodal":{"image":`+img+`,"mode":"hybrid"}}}}}`, "top-level [bool]")
	f("fashion", `{"query":{"bool":{"should":[{"multimodal":{"image":`+img+`,"mode":"hybrid"}},{"multimodal":{"text":"x"}}]}}}`, "only multimodal clause")

	// A vector of the wrong length is a 400 that names both sizes.
	r = vecRewriter(t, &fakeEmbedder{vec: []float32{1, 0}}, nil)
	_, err := r.Rewrite(context.Background(), Request{Index: "fashion", Body: []byte(clause(`,"mode":"vector"`))})
	if err == nil {
		t.Fatal("dimension mismatch: no error")
	}
	if st, _, reason := esStatus(t, err); st != 400 || !strings.Contains(reason, "gives 2 dimensions, the field has 3") {
		t.Errorf("dimension mismatch: %d %s", st, reason)
	}
}

// Concurrent identical image queries make one embedding call; a later one is a cache hit.
func TestEmbeddingCacheSingleFlight(t *testing.T) {
	emb := &fakeEmbedder{vec: []float32{0.6, 0.8, 0}, delay: 50 * time.Millisecond}
	r := vecRewriter(t, emb, cache.New(cache.Config{Name: "rewrite-test-embed"}))
	body := imageClause(t, `,"mode":"vector"`)
	done := make(chan error, 20)
	for range 20 {
		go func() {
			_, err := r.Rewrite(context.Background(), Request{Index: "fashion", Body: body})
			done <- err
		}()
	}
	for range 20 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := emb.calls.Load(); n != 1 {
		t.Fatalf("20 concurrent identical queries made %d embedding calls, want 1", n)
	}
	res, err := r.Rewrite(context.Background(), Request{Index: "fashion", Body: body})
	if err != nil || res.Status != "cached" || emb.calls.Load() != 1 {
		t.Fatalf("warm: %v status %q calls %d", err, res.Status, emb.calls.Load())
	}
	if v := res.Vector.Vector; len(v) != 3 || v[0] != 0.6 || v[1] != 0.8 {
		t.Fatalf("cached vector %v", v)
	}
	var ex map[string]any
	if json.Unmarshal(res.Explain, &ex) != nil || ex["retrieval"] != "vector" {
		t.Errorf("explain %s", res.Explain)
	}
}

// The embedding-cache hit against the keyword-cache hit, same photo, zero-latency models.
// A small photo keeps the image checks (hashing, header) small next to the difference.
func BenchmarkCacheHit(b *testing.B) {
	img := dataURI("image/jpeg", mediatest.JPEG(b, 96, 128, 80))
	vec := make([]float32, 1280)
	for i := range vec {
		vec[i] = float32(i%7) / 7
	}
	run := func(b *testing.B, extra string) {
		r := newTestRewriter(b, vectorConfig(), newFake(), cache.New(cache.Config{Name: "rewrite-bench-" + extra}))
		r.cfg.Profiles[0].Vector.Dims = 1280
		r.SetEmbedder(&fakeEmbedder{vec: vec}, nil)
		body := []byte(`{"query":{"multimodal":{"image":` + string(esjson.AppendString(nil, img)) + extra + `}}}`)
		req := Request{Index: "fashion", Body: body}
		if _, err := r.Rewrite(context.Background(), req); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			res, err := r.Rewrite(context.Background(), req)
			if err != nil || res.Status != "cached" {
				b.Fatal(err, res.Status)
			}
		}
	}
	b.Run("keywords", func(b *testing.B) { run(b, `,"mode":"keywords"`) })
	b.Run("vector", func(b *testing.B) { run(b, `,"mode":"vector"`) })
}
