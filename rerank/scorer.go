package rerank

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/vlproxy/vlproxy/model"
)

// Chatter is the chat-completions part of the model client used by the judge scorer.
type Chatter interface {
	Chat(ctx context.Context, req *model.ChatRequest) (*model.ChatResponse, error)
	Name() string
}

// RerankAPI is the rerank-endpoint part of the model client (vLLM /v1/rerank, TEI /rerank).
// The client maps the server's results back to input order by index.
type RerankAPI interface {
	Rerank(ctx context.Context, req *model.RerankRequest) (*model.RerankResponse, error)
	Name() string
}

// Scorer scores candidates against a query. Score returns one score per document, higher is
// more relevant; NaN marks a document not scored before ctx's deadline. It returns by the
// deadline with what it has; an error means no score at all is usable.
type Scorer interface {
	Name() string
	Score(ctx context.Context, q model.Document, docs []model.Document) ([]float64, error)
}

// badOutput builds a model.Error of kind bad_output.
func badOutput(format string, args ...any) error {
	return &model.Error{Kind: model.KindBadOutput, Message: fmt.Sprintf(format, args...)}
}

// collector gathers scores from concurrent workers and hands out a snapshot at the deadline;
// late writes after the snapshot are dropped.
type collector struct {
	mu     sync.Mutex
	scores []float64
	closed bool
	errs   int
	err    error
}

func newCollector(n int) *collector {
	c := &collector{scores: make([]float64, n)}
	for i := range c.scores {
		c.scores[i] = math.NaN()
	}
	return c
}

func (c *collector) set(off int, s []float64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if err != nil {
		c.errs++
		if c.err == nil {
			c.err = err
		}
		return
	}
	copy(c.scores[off:], s)
}

func (c *collector) snapshot(ctxErr error) ([]float64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	out := append([]float64(nil), c.scores...)
	for _, s := range out {
		if !math.IsNaN(s) {
			return out, nil
		}
	}
	if c.err != nil {
		return nil, c.err
	}
	if ctxErr != nil {
		return nil, ctxErr
	}
	return nil, badOutput("no scores")
}

// runJobs runs fn for n jobs on at most conc workers and returns when all are done or ctx ends.
func runJobs(ctx context.Context, n, conc int, fn func(i int)) {
	if conc < 1 {
		conc = 1
	}
	if conc > n {
		conc = n
	}
	jobs := make(chan int, n)
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if ctx.Err() != nil {
					return
				}
				fn(i)
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}
