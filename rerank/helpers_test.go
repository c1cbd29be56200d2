package rerank

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/vlproxy/vlproxy/model"
)

// testHit is one indexed product in the fake ES.
type testHit struct {
	id    string
	score float64
	src   string
}

var products = []testHit{
	{"1", 6, `{"title":"red dress","brand":"acme","price":30}`},
	{"2", 5, `{"title":"blue jeans","brand":"denim co","price":50}`},
	{"3", 4, `{"title":"red shoes","brand":"acme","price":70}`},
	{"4", 3, `{"title":"red running shoes","brand":"swift","price":90}`},
	{"5", 2, `{"title":"green hat","brand":"acme","price":15}`},
	{"6", 1, `{"title":"white sneakers","brand":"swift","price":60}`},
}

// modelScores are what the fake model says for "red running shoes".
var modelScores = map[string]float64{
	"red running shoes": 0.9, "red shoes": 0.8, "white sneakers": 0.7,
	"red dress": 0.3, "blue jeans": 0.1, "green hat": 0.05,
}

// esResponse renders what ES answers for from/size over hits (sorted by score),
// with srcOf deciding each hit's _source ("" omits it).
func esResponse(hits []testHit, from, size int, srcOf func(string) string) []byte {
	var b strings.Builder
	maxScore := "null"
	if len(hits) > 0 {
		maxScore = strconv.FormatFloat(hits[0].score, 'g', -1, 64)
	}
	fmt.Fprintf(&b, `{"took":3,"timed_out":false,"_shards":{"total":1,"successful":1,"skipped":0,"failed":0},`+
		`"hits":{"total":{"value":%d,"relation":"eq"},"max_score":%s,"hits":[`, len(hits), maxScore)
	for i := from; i < from+size && i < len(hits); i++ {
		if i > from {
			b.WriteByte(',')
		}
		h := hits[i]
		fmt.Fprintf(&b, `{"_index":"products","_id":%q,"_score":%s`, h.id, strconv.FormatFloat(h.score, 'g', -1, 64))
		src := h.src
		if srcOf != nil {
			src = srcOf(h.src)
		}
		if src != "" {
			b.WriteString(`,"_source":`)
			b.WriteString(src)
		}
		b.WriteByte('}')
	}
	b.WriteString(`]}}`)
	return []byte(b.String())
}

type fakeScorer struct {
	name   string
	scores map[string]float64
	block  map[string]bool // these texts are scored only after ctx ends (i.e. never in time)
	err    error
	calls  atomic.Int32
	docs   atomic.Int32
	mu     sync.Mutex
	query  model.Document
}

func (f *fakeScorer) Name() string {
	if f.name == "" {
		return "rerank:fake-model"
	}
	return f.name
}

func (f *fakeScorer) Score(ctx context.Context, q model.Document, docs []model.Document) ([]float64, error) {
	f.calls.Add(1)
	f.docs.Add(int32(len(docs)))
	f.mu.Lock()
	f.query = q
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	out := make([]float64, len(docs))
	waited := false
	for i, d := range docs {
		if f.block[d.Text] {
			if !waited {
				<-ctx.Done()
				waited = true
			}
			out[i] = math.NaN()
			continue
		}
		s, ok := f.scores[d.Text]
		if !ok {
			s = math.NaN()
		}
		out[i] = s
	}
	return out, nil
}

// mapCache is a Cache with single-flight by key.
type mapCache struct {
	mu   sync.Mutex
	m    map[string][]byte
	sets atomic.Int32
}

func newMapCache() *mapCache { return &mapCache{m: map[string][]byte{}} }

func (c *mapCache) Get(key []byte) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[string(key)]
	return v, ok
}

func (c *mapCache) Set(key, val []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sets.Add(1)
	c.m[string(key)] = append([]byte(nil), val...)
	return true
}

func (c *mapCache) Do(ctx context.Context, key []byte, fn func(context.Context) ([]byte, error)) ([]byte, bool, error) {
	if v, ok := c.Get(key); ok {
		return v, true, nil
	}
	v, err := fn(ctx)
	if err != nil {
		return nil, false, err
	}
	c.Set(key, v)
	return v, false, nil
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Fields = FieldsConfig{Text: []string{"title"}}
	cfg.Indices = []string{"products*"}
	return cfg
}

func newTestReranker(t testing.TB, cfg Config, s Scorer, c Cache) *Reranker {
	t.Helper()
	r, err := New(cfg, s, c, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

// run prepares body/args, fakes ES for the upstream request and applies.
func run(t testing.TB, r *Reranker, req Request) (Result, *Plan) {
	t.Helper()
	plan, _, _, skip, err := r.Prepare(req)
	if err != nil || skip != "" {
		t.Fatalf("Prepare: skip=%q err=%v", skip, err)
	}
	es := esResponse(products, 0, plan.fetch, nil)
	res, err := r.Apply(context.Background(), plan, es)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return res, plan
}

func ptr[T any](v T) *T { return &v }

func gjsonParse(s string) gjson.Result { return gjson.Parse(s) }
