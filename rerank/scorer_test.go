package rerank

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vlproxy/vlproxy/model"
)

type fakeRerankAPI struct {
	fn   func(req *model.RerankRequest) (*model.RerankResponse, error)
	mu   sync.Mutex
	reqs []*model.RerankRequest
}

func (f *fakeRerankAPI) Name() string { return "bge" }
func (f *fakeRerankAPI) Rerank(ctx context.Context, req *model.RerankRequest) (*model.RerankResponse, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	return f.fn(req)
}

// byText scores documents by a table, like a reranker would.
func byText(req *model.RerankRequest) (*model.RerankResponse, error) {
	out := &model.RerankResponse{}
	for _, d := range req.Docs {
		out.Scores = append(out.Scores, modelScores[d.Text])
	}
	return out, nil
}

func TestAPIScorer(t *testing.T) {
	docs := []model.Document{{Text: "red dress"}, {Text: "red shoes", Image: "data:image/png;base64,AAAA"}, {Text: "green hat"}}
	q := model.Document{Text: "red running shoes", Image: "data:image/jpeg;base64,BBBB"}
	f := func(opts []APIOption, fn func(*model.RerankRequest) (*model.RerankResponse, error), want []float64, wantCalls int, wantErr string) {
		t.Helper()
		api := &fakeRerankAPI{fn: fn}
		s := NewAPIScorer(api, opts...)
		got, err := s.Score(context.Background(), q, docs)
		if wantErr != "" {
			if err == nil || model.Reason(err) != wantErr {
				t.Fatalf("err %v, want kind %s", err, wantErr)
			}
			return
		}
		if err != nil || len(got) != len(want) {
			t.Fatalf("Score = %v, %v", got, err)
		}
		for i := range want {
			if got[i] != want[i] && !(math.IsNaN(got[i]) && math.IsNaN(want[i])) {
				t.Fatalf("scores %v, want %v", got, want)
			}
		}
		if len(api.reqs) != wantCalls {
			t.Fatalf("%d calls, want %d", len(api.reqs), wantCalls)
		}
		for _, r := range api.reqs {
			if r.Query != q {
				t.Fatalf("query %+v", r.Query)
			}
		}
	}
	f(nil, byText, []float64{0.3, 0.8, 0.05}, 1, "")
	f([]APIOption{WithAPIBatch(2, 2), WithAPIModel("m")}, byText, []float64{0.3, 0.8, 0.05}, 2, "")
	f(nil, func(*model.RerankRequest) (*model.RerankResponse, error) {
		return &model.RerankResponse{Scores: []float64{1}}, nil
	}, nil, 0, model.KindBadOutput)
	f(nil, func(*model.RerankRequest) (*model.RerankResponse, error) {
		return &model.RerankResponse{Scores: []float64{1, math.NaN(), 2}}, nil
	}, nil, 0, model.KindBadOutput)
	f(nil, func(*model.RerankRequest) (*model.RerankResponse, error) { return nil, nil }, nil, 0, model.KindBadOutput)
	f(nil, func(*model.RerankRequest) (*model.RerankResponse, error) {
		return nil, &model.Error{Kind: model.KindOverloaded, Status: 429}
	}, nil, 0, model.KindOverloaded)
	// One failed batch out of two: the other batch's scores stand, the failed ones are NaN.
	f([]APIOption{WithAPIBatch(2, 1)}, func(r *model.RerankRequest) (*model.RerankResponse, error) {
		if len(r.Docs) == 1 {
			return nil, &model.Error{Kind: model.KindUnavailable}
		}
		return byText(r)
	}, []float64{0.3, 0.8, math.NaN()}, 2, "")

	// Image documents reach the client as model.Document.Image; the name carries the model.
	api := &fakeRerankAPI{fn: byText}
	if n := NewAPIScorer(api).Name(); n != "rerank:bge" {
		t.Fatalf("name %s", n)
	}
	NewAPIScorer(api).Score(context.Background(), q, docs)
	if api.reqs[0].Docs[1].Image != "data:image/png;base64,AAAA" {
		t.Fatalf("image lost: %+v", api.reqs[0].Docs[1])
	}
}

func TestAPIScorerDeadline(t *testing.T) {
	// The second batch never answers (ignores ctx); Score still returns at the deadline.
	release := make(chan struct{})
	defer close(release)
	api := &fakeRerankAPI{fn: func(r *model.RerankRequest) (*model.RerankResponse, error) {
		if r.Docs[0].Text == "green hat" {
			<-release
		}
		return byText(r)
	}}
	s := NewAPIScorer(api, WithAPIBatch(2, 2))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	got, err := s.Score(ctx, model.Document{Text: "q"}, []model.Document{{Text: "red dress"}, {Text: "red shoes"}, {Text: "green hat"}})
	if err != nil || got[0] != 0.3 || got[1] != 0.8 || !math.IsNaN(got[2]) {
		t.Fatalf("Score = %v, %v", got, err)
	}
}

type fakeChatter struct {
	mu   sync.Mutex
	reqs []*model.ChatRequest
	fn   func(req *model.ChatRequest) (*model.ChatResponse, error)
}

func (f *fakeChatter) Name() string { return "qwen3-vl" }
func (f *fakeChatter) Chat(ctx context.Context, req *model.ChatRequest) (*model.ChatResponse, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	return f.fn(req)
}

// candidateText finds the product line of a one-candidate judge prompt.
func candidateText(req *model.ChatRequest) string {
	parts := req.Messages[1].Parts
	s := parts[len(parts)-1].Text
	s = strings.TrimPrefix(s, "Product: ")
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func TestJudgeScorer(t *testing.T) {
	ch := &fakeChatter{fn: func(req *model.ChatRequest) (*model.ChatResponse, error) {
		p := modelScores[candidateText(req)]
		// Top logprobs as vLLM returns them: raw-model tokens, yes/no variants and noise.
		return &model.ChatResponse{Content: "yes", TopLogprobs: map[string]float64{
			"yes": math.Log(p * 0.9), " Yes": math.Log(p * 0.1), "no": math.Log((1 - p) * 0.5), "No": math.Log((1 - p) * 0.5), "maybe": math.Log(0.001),
		}}, nil
	}}
	s := NewJudgeScorer(ch, JudgeConfig{Concurrency: 3})
	q := model.Document{Text: "red running shoes", Image: "data:image/jpeg;base64,QQ=="}
	docs := []model.Document{{Text: "red dress"}, {Text: "red shoes", Image: "data:image/png;base64,AA=="}, {Text: "green hat"}, {Text: "white sneakers"}}
	got, err := s.Score(context.Background(), q, docs)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range docs {
		// P(yes) = p / (p + (1-p)) = p, up to float rounding.
		if math.Abs(got[i]-modelScores[d.Text]) > 1e-12 {
			t.Fatalf("doc %s: %v, want %v", d.Text, got[i], modelScores[d.Text])
		}
	}
	if s.Name() != "judge:qwen3-vl" || len(ch.reqs) != 4 {
		t.Fatalf("name %s, %d calls", s.Name(), len(ch.reqs))
	}
	// Every request: shared prefix (system, query image, query text) first, candidate last,
	// constrained to yes/no with logprobs and one token.
	for _, req := range ch.reqs {
		if req.MaxTokens != 1 || req.Temperature != 0 || !req.Logprobs || req.TopLogprobs != 5 ||
			strings.Join(req.Choices, "|") != "yes|no" {
			t.Fatalf("request knobs %+v", req)
		}
		m := req.Messages
		if len(m) != 2 || m[0].Role != "system" || m[0].Text != DefaultJudgeInstruction || m[1].Role != "user" {
			t.Fatalf("messages %+v", m)
		}
		p := m[1].Parts
		if p[0] != model.ImagePart(q.Image) || p[1] != model.TextPart("Query: red running shoes\n") {
			t.Fatalf("prefix %+v", p[:2])
		}
		last := p[len(p)-1]
		if last.Type != "text" || !strings.HasPrefix(last.Text, "Product: ") {
			t.Fatalf("candidate not last: %+v", p)
		}
		if candidateText(req) == "red shoes" && (len(p) != 4 || p[2] != model.ImagePart("data:image/png;base64,AA==")) {
			t.Fatalf("candidate image: %+v", p)
		}
	}
}

func TestPYes(t *testing.T) {
	f := func(resp *model.ChatResponse, want float64, wantErr bool) {
		t.Helper()
		got, err := PYes(resp)
		if (err != nil) != wantErr || (!wantErr && math.Abs(got-want) > 1e-12) {
			t.Fatalf("PYes(%+v) = %v, %v; want %v", resp, got, err, want)
		}
	}
	f(&model.ChatResponse{TopLogprobs: map[string]float64{"yes": math.Log(0.6), "no": math.Log(0.2)}}, 0.75, false)
	f(&model.ChatResponse{TopLogprobs: map[string]float64{"YES": math.Log(0.3), " no ": math.Log(0.3), "Yes": math.Log(0.3)}}, 2.0/3, false)
	f(&model.ChatResponse{TopLogprobs: map[string]float64{"yes": 0}, Content: "yes"}, 1, false)
	f(&model.ChatResponse{TopLogprobs: map[string]float64{"是": -0.1}, Content: "No."}, 0, false)
	f(&model.ChatResponse{Content: "Yes"}, 1, false)
	f(&model.ChatResponse{Content: "probably"}, 0, true)
	f(&model.ChatResponse{TopLogprobs: map[string]float64{"yes": math.NaN(), "no": 1}, Content: "?"}, 0, true)
	f(nil, 0, true)
}

func TestJudgeBatch(t *testing.T) {
	f := func(content string, want []float64, wantErr bool) {
		t.Helper()
		ch := &fakeChatter{fn: func(req *model.ChatRequest) (*model.ChatResponse, error) {
			return &model.ChatResponse{Content: content}, nil
		}}
		s := NewJudgeScorer(ch, JudgeConfig{BatchSize: 3})
		got, err := s.Score(context.Background(), model.Document{Text: "q"}, []model.Document{{Text: "a"}, {Text: "b"}, {Text: "c"}})
		if wantErr {
			if err == nil || model.Reason(err) != model.KindBadOutput {
				t.Fatalf("%s: err %v", content, err)
			}
			return
		}
		if err != nil || len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
			t.Fatalf("%s: %v %v", content, got, err)
		}
		req := ch.reqs[0]
		p := req.Messages[1].Parts
		if len(ch.reqs) != 1 || len(req.ResponseFormat) == 0 || p[0].Text != "Query: q\n" || p[1].Text != "Product 1: a\n" || p[3].Text != "Product 3: c\n" {
			t.Fatalf("batch request %+v", req)
		}
	}
	f(`{"scores":[0.9,0.1,0.5]}`, []float64{0.9, 0.1, 0.5}, false)
	f("```json\n[1.5, \"no\", \"yes\"]\n```", []float64{1, 0, 1}, false)
	f(`{"scores":[0.9,0.1]}`, nil, true)
	f(`not json`, nil, true)
	f(`{"scores":[0.9,"maybe",0.1]}`, nil, true)
}

func TestJudgeDeadline(t *testing.T) {
	// Candidates "slow" never answer; the judge returns at the deadline with the others.
	release := make(chan struct{})
	defer close(release)
	ch := &fakeChatter{fn: func(req *model.ChatRequest) (*model.ChatResponse, error) {
		if candidateText(req) == "slow" {
			<-release
		}
		return &model.ChatResponse{TopLogprobs: map[string]float64{"yes": math.Log(0.5), "no": math.Log(0.5)}}, nil
	}}
	s := NewJudgeScorer(ch, JudgeConfig{Concurrency: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	got, err := s.Score(ctx, model.Document{Text: "q"}, []model.Document{{Text: "slow"}, {Text: "a"}, {Text: "b"}})
	if err != nil || !math.IsNaN(got[0]) || got[1] != 0.5 || got[2] != 0.5 {
		t.Fatalf("Score = %v, %v", got, err)
	}
	// Every call failing is an error, not NaNs.
	s = NewJudgeScorer(&fakeChatter{fn: func(*model.ChatRequest) (*model.ChatResponse, error) {
		return nil, &model.Error{Kind: model.KindCircuitOpen}
	}}, JudgeConfig{})
	if _, err := s.Score(context.Background(), model.Document{Text: "q"}, []model.Document{{Text: "a"}}); err == nil || model.Reason(err) != model.KindCircuitOpen {
		t.Fatalf("err %v", err)
	}
}
