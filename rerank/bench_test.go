package rerank

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/vlproxy/vlproxy/model"
)

// zeroScorer answers instantly with a fixed permutation of the window as scores.
type zeroScorer struct{}

func (zeroScorer) Name() string { return "rerank:zero" }
func (zeroScorer) Score(_ context.Context, _ model.Document, docs []model.Document) ([]float64, error) {
	out := make([]float64, len(docs))
	for i := range out {
		out[i] = float64((i * 7919) % len(docs)) // a fixed permutation
	}
	return out, nil
}

// benchHits builds n hits whose _source is about srcBytes long.
func benchHits(n, srcBytes int) []testHit {
	hits := make([]testHit, n)
	for i := range hits {
		base := fmt.Sprintf(`{"title":"product %d red running shoes","brand":"brand %d","price":%d,"description":""}`, i, i%17, 10+i)
		pad := max(srcBytes-len(base), 0)
		desc := strings.Repeat("lightweight breathable mesh upper ", pad/34+1)[:pad]
		src := strings.Replace(base, `"description":""`, `"description":"`+desc+`"`, 1)
		hits[i] = testHit{id: fmt.Sprint(i), score: float64(n - i), src: src}
	}
	return hits
}

func BenchmarkApply(b *testing.B) {
	for _, window := range []int{10, 50, 100, 500} {
		for _, src := range []int{200, 2048, 16384} {
			b.Run(fmt.Sprintf("window=%d/source=%d", window, src), func(b *testing.B) {
				cfg := testConfig()
				cfg.Fields.Text = []string{"title", "description"}
				r := newTestReranker(b, cfg, zeroScorer{}, nil)
				req := matchReq(`{` + qRed + `,"size":10}`)
				req.Opts.WindowSize = &window
				plan, _, _, skip, err := r.Prepare(req)
				if err != nil || skip != "" {
					b.Fatal(skip, err)
				}
				es := esResponse(benchHits(window, src), 0, window, nil)
				ctx := context.Background()
				b.SetBytes(int64(len(es)))
				b.ReportAllocs()
				lat := make([]time.Duration, 0, 1024)
				b.ResetTimer()
				for b.Loop() {
					t0 := time.Now()
					res, err := r.Apply(ctx, plan, es)
					if len(lat) < cap(lat) {
						lat = append(lat, time.Since(t0))
					}
					if err != nil || res.Status != StatusApplied {
						b.Fatal(res.Status, err)
					}
				}
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
			})
		}
	}
}

// BenchmarkBaselineScan is the floor Apply is compared with: one gjson pass collecting the
// ids of the same responses, which any reranker must at least do.
func BenchmarkBaselineScan(b *testing.B) {
	for _, window := range []int{10, 50, 100, 500} {
		for _, src := range []int{200, 2048, 16384} {
			b.Run(fmt.Sprintf("window=%d/source=%d", window, src), func(b *testing.B) {
				es := esResponse(benchHits(window, src), 0, window, nil)
				b.SetBytes(int64(len(es)))
				b.ReportAllocs()
				for b.Loop() {
					if n := len(gjson.GetBytes(es, "hits.hits.#._id").Array()); n != window {
						b.Fatal(n)
					}
				}
			})
		}
	}
}

// BenchmarkApplyFiltered adds the restoration work: _source false and a filter_path.
func BenchmarkApplyFiltered(b *testing.B) {
	r := newTestReranker(b, testConfig(), zeroScorer{}, nil)
	req := matchReq(`{` + qRed + `,"size":10,"_source":["brand","price"]}`)
	req.Args = "filter_path=hits.hits._id,hits.hits._source,hits.total"
	plan, _, _, _, err := r.Prepare(req)
	if err != nil {
		b.Fatal(err)
	}
	es := esResponse(benchHits(50, 2048), 0, 50, nil)
	b.SetBytes(int64(len(es)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Apply(context.Background(), plan, es); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPrepare(b *testing.B) {
	r := newTestReranker(b, testConfig(), zeroScorer{}, nil)
	req := matchReq(`{"query":{"bool":{"must":[{"multi_match":{"query":"red running shoes","fields":["title^3","description"]}}],"filter":[{"term":{"in_stock":true}}]}},"size":10,"_source":["brand"]}`)
	req.Args = "filter_path=hits.hits._id&typed_keys=true"
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, skip, err := r.Prepare(req); err != nil || skip != "" {
			b.Fatal(skip, err)
		}
	}
}
