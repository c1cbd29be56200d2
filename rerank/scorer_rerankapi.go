package rerank

import (
	"context"
	"math"

	"github.com/vlproxy/vlproxy/model"
)

// The rerank-endpoint scorer (vLLM /v1/rerank, TEI /rerank).

// APIOption configures NewAPIScorer.
type APIOption func(*apiScorer)

// WithAPIModel sets the model name sent in requests (default: the client's model).
func WithAPIModel(name string) APIOption { return func(s *apiScorer) { s.model = name } }

// WithAPIBatch splits the window into calls of at most n documents run on up to conc
// concurrent calls, so a deadline keeps the batches that finished (default: one call).
func WithAPIBatch(n, conc int) APIOption {
	return func(s *apiScorer) { s.batch, s.conc = n, conc }
}

type apiScorer struct {
	m     RerankAPI
	model string
	batch int
	conc  int
}

// NewAPIScorer scores with a rerank endpoint. Image documents travel as model.Document.Image
// (the client sends them as content parts for VL rerankers).
func NewAPIScorer(m RerankAPI, opts ...APIOption) Scorer {
	s := &apiScorer{m: m, conc: 4}
	for _, o := range opts {
		o(s)
	}
	return s
}

func (s *apiScorer) Name() string {
	if s.model != "" {
		return "rerank:" + s.model
	}
	return "rerank:" + s.m.Name()
}

func (s *apiScorer) Score(ctx context.Context, q model.Document, docs []model.Document) ([]float64, error) {
	if len(docs) == 0 {
		return nil, nil
	}
	batch := s.batch
	if batch <= 0 || batch > len(docs) {
		batch = len(docs)
	}
	n := (len(docs) + batch - 1) / batch
	c := newCollector(len(docs))
	runJobs(ctx, n, s.conc, func(i int) {
		lo := i * batch
		hi := min(lo+batch, len(docs))
		resp, err := s.m.Rerank(ctx, &model.RerankRequest{Model: s.model, Query: q, Docs: docs[lo:hi]})
		if err == nil {
			err = checkScores(resp, hi-lo)
		}
		if err != nil {
			c.set(0, nil, err)
			return
		}
		c.set(lo, resp.Scores, nil)
	})
	return c.snapshot(ctx.Err())
}

func checkScores(resp *model.RerankResponse, n int) error {
	if resp == nil {
		return badOutput("empty rerank response")
	}
	if len(resp.Scores) != n {
		return badOutput("rerank returned %d scores for %d documents", len(resp.Scores), n)
	}
	for i, v := range resp.Scores {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return badOutput("rerank score %d is %v", i, v)
		}
	}
	return nil
}
