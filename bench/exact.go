package bench

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/olivere/elastic/v7"
	"github.com/tidwall/gjson"
)

// LoadVectors reads every document's vector from field of index (ids from _id), walking the
// index with search_after on _id... sorted by the id field ("id" keyword in the fashion
// mappings) so it needs no point in time.
func LoadVectors(ctx context.Context, url, index, field, sortField string) (map[string][]float32, error) {
	c, err := elastic.NewClient(elastic.SetURL(url), elastic.SetSniff(false), elastic.SetHealthcheck(false))
	if err != nil {
		return nil, fmt.Errorf("cannot connect to %s: %w", url, err)
	}
	out := map[string][]float32{}
	var after []any
	for {
		svc := c.Search(index).Query(elastic.NewExistsQuery(field)).Size(500).Sort(sortField, true).
			FetchSourceContext(elastic.NewFetchSourceContext(true).Include(field))
		if after != nil {
			svc = svc.SearchAfter(after...)
		}
		res, err := svc.Do(ctx)
		if err != nil {
			return nil, fmt.Errorf("cannot read vectors of %s: %w", index, err)
		}
		if len(res.Hits.Hits) == 0 {
			return out, nil
		}
		for _, h := range res.Hits.Hits {
			arr := gjson.GetBytes(h.Source, gjson.Escape(field)).Array()
			v := make([]float32, len(arr))
			for i, x := range arr {
				v[i] = float32(x.Float())
			}
			out[h.Id] = v
		}
		after = res.Hits.Hits[len(res.Hits.Hits)-1].Sort
	}
}

// ExactCosine ranks every vector against each image query's own vector (the query is a
// catalogue photo whose product is in the index) by exact cosine similarity, best first, the
// query's excluded documents left out, and evaluates the runs like RunEval. It is the
// reference the engine's approximate kNN is measured against.
func ExactCosine(vectors map[string][]float32, queries []EvalQuery, qrels Qrels, k, recallAt int, name string) (*EvalReport, error) {
	ids := make([]string, 0, len(vectors))
	for id := range vectors {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	norms := map[string]float64{}
	for _, id := range ids {
		var n float64
		for _, x := range vectors[id] {
			n += float64(x) * float64(x)
		}
		norms[id] = math.Sqrt(n)
	}
	depth := max(k, recallAt)
	rep := &EvalReport{Index: "(exact cosine over stored vectors)", K: k, Queries: len(queries), Metrics: MetricNames(k)}
	if recallAt > k {
		rep.Metrics = append(rep.Metrics, "recall@"+itoa(recallAt))
	}
	vr := &VariantResult{Variant: Variant{Name: name}, Mean: map[string]float64{}}
	rep.Variants = []*VariantResult{vr}
	for _, q := range queries {
		qid := strings.TrimPrefix(q.ID, "image-")
		qv, ok := vectors[qid]
		judged, jok := qrels[q.ID]
		if !ok || !jok {
			return nil, fmt.Errorf("query %s: no stored vector or no judgments for product %s", q.ID, qid)
		}
		excl := map[string]bool{}
		for _, e := range q.Exclude {
			excl[e] = true
		}
		run := make([]RankedDoc, 0, len(ids))
		for _, id := range ids {
			if excl[id] {
				continue
			}
			d := vectors[id]
			if len(d) != len(qv) || norms[id] == 0 {
				continue
			}
			var dot float64
			for i := range d {
				dot += float64(d[i]) * float64(qv[i])
			}
			run = append(run, RankedDoc{ID: id, Score: dot / (norms[id] * norms[qid])})
		}
		run = TrecOrder(run)
		if len(run) > depth {
			run = run[:depth]
		}
		for _, d := range run {
			if _, ok := judged[d.ID]; !ok {
				judged[d.ID] = 0
			}
		}
		vr.Queries = append(vr.Queries, QueryResult{Query: q.ID, Run: run, Metrics: EvaluateDeep(run, judged, k, recallAt)})
	}
	for _, m := range rep.Metrics {
		s := 0.0
		for _, q := range vr.Queries {
			s += q.Metrics[m]
		}
		if len(vr.Queries) > 0 {
			vr.Mean[m] = s / float64(len(vr.Queries))
		}
	}
	return rep, nil
}
