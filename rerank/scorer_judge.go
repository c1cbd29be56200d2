package rerank

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/vlproxy/vlproxy/model"
)

// The chat-judge scorer and its prompt: one yes/no judgment per candidate by a generative VLM.

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
