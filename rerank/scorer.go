package rerank

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
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

// JudgeConfig configures the chat-judge scorer.
type JudgeConfig struct {
	// Model sent in requests. Default: "" (the client's model).
	Model string `yaml:"model"`
	// Concurrency bounds the calls in flight for one window. Default: 8.
	Concurrency int `yaml:"concurrency"`
	// BatchSize > 1 judges that many candidates per call, asking for a JSON list of graded
	// scores instead of reading yes/no logprobs. Default: 1.
	BatchSize int `yaml:"batch_size"`
	// Instruction is the shared system prompt. Default: DefaultJudgeInstruction.
	Instruction string `yaml:"instruction"`
	// TopLogprobs requested for the yes/no token. Default: 5.
	TopLogprobs int `yaml:"top_logprobs"`
}

// DefaultJudgeInstruction is the system prompt of the chat judge.
const DefaultJudgeInstruction = "You judge whether a product matches a shopping search query. " +
	"Consider the query text and image, and the product text and image. Answer only yes or no."

// DefaultJudgeConfig returns the judge configuration with every default applied.
func DefaultJudgeConfig() JudgeConfig {
	return JudgeConfig{Concurrency: 8, BatchSize: 1, Instruction: DefaultJudgeInstruction, TopLogprobs: 5}
}

type judgeScorer struct {
	m   Chatter
	cfg JudgeConfig
}

// NewJudgeScorer scores with a generative VLM: one yes/no judgment per candidate, score =
// P(yes) from the first token's top logprobs restricted to yes/no. The prompt puts the shared
// part (instruction, query image, query text) first and the candidate last so the server's
// prefix cache reuses it across candidates. Zero fields of cfg take their defaults.
func NewJudgeScorer(m Chatter, cfg JudgeConfig) Scorer {
	d := DefaultJudgeConfig()
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = d.Concurrency
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = d.BatchSize
	}
	if cfg.Instruction == "" {
		cfg.Instruction = d.Instruction
	}
	if cfg.TopLogprobs <= 0 {
		cfg.TopLogprobs = d.TopLogprobs
	}
	return &judgeScorer{m: m, cfg: cfg}
}

func (s *judgeScorer) Name() string {
	if s.cfg.Model != "" {
		return "judge:" + s.cfg.Model
	}
	return "judge:" + s.m.Name()
}

func (s *judgeScorer) Score(ctx context.Context, q model.Document, docs []model.Document) ([]float64, error) {
	if len(docs) == 0 {
		return nil, nil
	}
	b := s.cfg.BatchSize
	n := (len(docs) + b - 1) / b
	c := newCollector(len(docs))
	runJobs(ctx, n, s.cfg.Concurrency, func(i int) {
		lo := i * b
		hi := min(lo+b, len(docs))
		var scores []float64
		var err error
		if b == 1 {
			var p float64
			p, err = s.judgeOne(ctx, q, docs[lo])
			scores = []float64{p}
		} else {
			scores, err = s.judgeBatch(ctx, q, docs[lo:hi])
		}
		c.set(lo, scores, err)
	})
	return c.snapshot(ctx.Err())
}

// sharedParts is the prompt prefix common to every candidate of a query.
func sharedParts(q model.Document) []model.Part {
	parts := make([]model.Part, 0, 4)
	if q.Image != "" {
		parts = append(parts, model.ImagePart(q.Image))
	}
	return append(parts, model.TextPart("Query: "+q.Text+"\n"))
}

func (s *judgeScorer) judgeOne(ctx context.Context, q model.Document, d model.Document) (float64, error) {
	parts := sharedParts(q)
	if d.Image != "" {
		parts = append(parts, model.ImagePart(d.Image))
	}
	parts = append(parts, model.TextPart("Product: "+d.Text+"\nIs the product relevant to the query? Answer yes or no."))
	resp, err := s.m.Chat(ctx, &model.ChatRequest{
		Model:       s.cfg.Model,
		Messages:    []model.Message{{Role: "system", Text: s.cfg.Instruction}, {Role: "user", Parts: parts}},
		MaxTokens:   1,
		Temperature: 0,
		TopP:        1,
		Choices:     []string{"yes", "no"},
		Logprobs:    true,
		TopLogprobs: s.cfg.TopLogprobs,
	})
	if err != nil {
		return 0, err
	}
	return PYes(resp)
}

// PYes reads P(yes) from a one-token yes/no answer: from the top logprobs restricted to the
// yes and no tokens (case and surrounding spaces ignored), or, without logprobs, 1 or 0 from
// the answer text.
func PYes(resp *model.ChatResponse) (float64, error) {
	if resp == nil {
		return 0, badOutput("empty chat response")
	}
	var py, pn float64
	for tok, lp := range resp.TopLogprobs {
		if math.IsNaN(lp) || lp > 0 {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(tok)) {
		case "yes":
			py += math.Exp(lp)
		case "no":
			pn += math.Exp(lp)
		}
	}
	if py+pn > 0 {
		return py / (py + pn), nil
	}
	switch strings.ToLower(strings.Trim(strings.TrimSpace(resp.Content), ".!\"'")) {
	case "yes":
		return 1, nil
	case "no":
		return 0, nil
	}
	return 0, badOutput("judge answered %q, not yes or no", truncate(resp.Content, 40))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

var batchSchema = json.RawMessage(`{"type":"json_schema","json_schema":{"name":"scores","strict":true,"schema":` +
	`{"type":"object","properties":{"scores":{"type":"array","items":{"type":"number","minimum":0,"maximum":1}}},` +
	`"required":["scores"],"additionalProperties":false}}}`)

func (s *judgeScorer) judgeBatch(ctx context.Context, q model.Document, docs []model.Document) ([]float64, error) {
	parts := sharedParts(q)
	for i, d := range docs {
		if d.Image != "" {
			parts = append(parts, model.ImagePart(d.Image))
		}
		parts = append(parts, model.TextPart("Product "+strconv.Itoa(i+1)+": "+d.Text+"\n"))
	}
	parts = append(parts, model.TextPart(fmt.Sprintf("Rate how relevant each of the %d products is to the query, "+
		"from 0 (irrelevant) to 1 (exact match). Answer as JSON {\"scores\":[...]} in product order.", len(docs))))
	resp, err := s.m.Chat(ctx, &model.ChatRequest{
		Model:          s.cfg.Model,
		Messages:       []model.Message{{Role: "system", Text: s.cfg.Instruction}, {Role: "user", Parts: parts}},
		MaxTokens:      16 + 8*len(docs),
		Temperature:    0,
		TopP:           1,
		ResponseFormat: batchSchema,
	})
	if err != nil {
		return nil, err
	}
	return parseBatchScores(resp.Content, len(docs))
}

// parseBatchScores accepts {"scores":[...]} or a bare array of numbers or yes/no strings.
func parseBatchScores(content string, n int) ([]float64, error) {
	content = strings.TrimSpace(content)
	content = strings.TrimPrefix(strings.TrimSuffix(content, "```"), "```json")
	var obj struct {
		Scores []json.RawMessage `json:"scores"`
	}
	var items []json.RawMessage
	if err := json.Unmarshal([]byte(content), &obj); err == nil && obj.Scores != nil {
		items = obj.Scores
	} else if err := json.Unmarshal([]byte(content), &items); err != nil {
		return nil, badOutput("judge batch answer is not a score list: %q", truncate(content, 60))
	}
	if len(items) != n {
		return nil, badOutput("judge batch returned %d scores for %d products", len(items), n)
	}
	out := make([]float64, n)
	for i, it := range items {
		var f float64
		if err := json.Unmarshal(it, &f); err == nil && !math.IsNaN(f) {
			out[i] = math.Max(0, math.Min(1, f))
			continue
		}
		var s string
		if err := json.Unmarshal(it, &s); err == nil {
			switch strings.ToLower(strings.TrimSpace(s)) {
			case "yes":
				out[i] = 1
				continue
			case "no":
				out[i] = 0
				continue
			}
		}
		return nil, badOutput("judge batch score %d is %s", i, truncate(string(it), 20))
	}
	return out, nil
}
