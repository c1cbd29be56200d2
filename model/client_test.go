package model_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vlproxy/vlproxy/internal/promexp"
	"github.com/vlproxy/vlproxy/model"
	"github.com/vlproxy/vlproxy/model/modeltest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newClient(t testing.TB, role, url string, mod func(*model.Config)) *model.Client {
	t.Helper()
	cfg := model.DefaultConfig()
	cfg.URL = url
	cfg.HealthInterval = -1
	cfg.APIKeyEnv = "VLPROXY_TEST_NO_SUCH_ENV"
	if mod != nil {
		mod(&cfg)
	}
	c, err := model.New(role, cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// waitFor polls a condition that another goroutine makes true; it is not a timing assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 2000; i++ {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
		runtime.Gosched()
	}
	t.Fatalf("gave up waiting for %s", what)
}

func kindOf(err error) string {
	var me *model.Error
	if errors.As(err, &me) {
		return me.Kind
	}
	return "not a model.Error: " + err.Error()
}

var shoe = []byte("\xff\xd8\xff\xe0 red shoe")

func keywordRequest() *model.ChatRequest {
	seed := int64(42)
	return &model.ChatRequest{
		Messages: []model.Message{
			{Role: "system", Text: "You extract e-commerce search keywords. Reply with JSON only."},
			{Role: "user", Parts: []model.Part{
				model.ImagePart("data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(shoe)),
				model.TextPart("User query: 'running'. Return keywords."),
			}},
		},
		MaxTokens: 128, Temperature: 0.2, TopP: 0.8, Seed: &seed,
		ResponseFormat: json.RawMessage(`{"type":"json_schema","json_schema":{"name":"keywords","schema":{"type":"object","properties":{"keywords":{"type":"array","items":{"type":"string"}}},"required":["keywords"]},"strict":true}}`),
	}
}

func TestChatRequestJSON(t *testing.T) {
	f := func(api string, guided bool, req *model.ChatRequest, want string) {
		t.Helper()
		c := newClient(t, model.RoleChat, "http://127.0.0.1:1/v1", func(c *model.Config) {
			c.API, c.Model, c.GuidedChoice = api, "Qwen/Qwen3-VL-4B-Instruct", guided
		})
		got := string(c.AppendChatBody(nil, req))
		if got != want {
			t.Fatalf("%s\n got %s\nwant %s", api, got, want)
		}
		if !json.Valid([]byte(got)) {
			t.Fatalf("invalid JSON %s", got)
		}
	}
	img := "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(shoe)
	f(model.APIVLLM, false, keywordRequest(), `{"model":"Qwen/Qwen3-VL-4B-Instruct","messages":[{"role":"system","content":"You extract e-commerce search keywords. Reply with JSON only."},{"role":"user","content":[{"type":"image_url","image_url":{"url":"`+img+`"}},{"type":"text","text":"User query: 'running'. Return keywords."}]}],"max_tokens":128,"temperature":0.2,"top_p":0.8,"seed":42,"response_format":{"type":"json_schema","json_schema":{"name":"keywords","schema":{"type":"object","properties":{"keywords":{"type":"array","items":{"type":"string"}}},"required":["keywords"]},"strict":true}}}`)
	judge := func() *model.ChatRequest {
		return &model.ChatRequest{Model: "judge", Messages: []model.Message{{Role: "user", Text: "Query: red\nDocument: red shoe"}},
			MaxTokens: 1, Temperature: 0, TopP: 1, Choices: []string{"yes", "no"}, Logprobs: true, TopLogprobs: 5}
	}
	head := `{"model":"judge","messages":[{"role":"user","content":"Query: red\nDocument: red shoe"}],"max_tokens":1,"temperature":0,"top_p":1,"logprobs":true,"top_logprobs":5`
	f(model.APIVLLM, false, judge(), head+`,"structured_outputs":{"choice":["yes","no"]}}`)
	f(model.APIVLLM, true, judge(), head+`,"guided_choice":["yes","no"]}`)
	f(model.APISGLang, false, judge(), head+`,"regex":"(yes|no)"}`)
	f(model.APILlamaCpp, false, judge(), head+`,"grammar":"root ::= \"yes\" | \"no\""}`)
	f(model.APIOllama, false, judge(), head+`}`)
	f(model.APIOpenAI, false, judge(), head+`}`)
	// Zero MaxTokens/TopP take the configured max_tokens and 1.0; TopLogprobs implies logprobs.
	f(model.APIVLLM, false, &model.ChatRequest{Messages: []model.Message{{Role: "user", Text: "hi"}}, TopLogprobs: 2},
		`{"model":"Qwen/Qwen3-VL-4B-Instruct","messages":[{"role":"user","content":"hi"}],"max_tokens":256,"temperature":0,"top_p":1,"logprobs":true,"top_logprobs":2}`)
}

func TestChatAgainstSimulator(t *testing.T) {
	srv := modeltest.NewServer(modeltest.Config{
		APIKey:       "sekret",
		Images:       map[string]modeltest.Output{modeltest.ImageHash(shoe): {Keywords: []string{"red shoe"}, Category: "shoes"}},
		QueryPattern: `'([^']*)'`,
	})
	defer srv.Close()
	c := newClient(t, model.RoleChat, srv.URL, func(c *model.Config) { c.APIKey = "sekret" })
	resp, err := c.Chat(context.Background(), keywordRequest())
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"keywords":["red shoe","running"],"category":"shoes"}`; resp.Content != want || resp.FinishReason != "stop" {
		t.Fatalf("got %+v, want content %s", resp, want)
	}
	if resp.PromptTokens <= 256 || resp.CompletionTokens <= 0 || resp.Model != modeltest.DefaultModel {
		t.Fatalf("usage/model: %+v", resp)
	}
	// The simulator received exactly the body the client builds.
	if got, want := string(srv.LastRequest("/v1/chat/completions")), string(c.AppendChatBody(nil, keywordRequest())); got != want {
		t.Fatalf("wire body\n got %s\nwant %s", got, want)
	}
	// Without the key: vLLM's 401 {"error":"Unauthorized"}.
	noKey := newClient(t, model.RoleChat, srv.URL, nil)
	_, err = noKey.Chat(context.Background(), keywordRequest())
	var me *model.Error
	if !errors.As(err, &me) || me.Kind != model.KindBadRequest || me.Status != 401 || me.Message != "Unauthorized" {
		t.Fatalf("no key: %v", err)
	}
}

func TestChatJudgeLogprobs(t *testing.T) {
	srv := modeltest.NewServer(modeltest.Config{ScoreRules: []modeltest.ScoreRule{
		{Query: "red shoes", Doc: "pegasus", Score: 0.73},
		{Query: "red shoes", Doc: "sandal", Score: 0.05},
	}})
	defer srv.Close()
	for _, api := range []string{model.APIVLLM, model.APISGLang, model.APILlamaCpp} {
		c := newClient(t, model.RoleChat, srv.URL, func(c *model.Config) { c.API = api })
		f := func(doc string, want float64, wantContent string) {
			t.Helper()
			resp, err := c.Chat(context.Background(), &model.ChatRequest{
				Messages:  []model.Message{{Role: "user", Parts: []model.Part{model.TextPart("Query: red shoes\n"), model.TextPart("Document: " + doc)}}},
				MaxTokens: 1, TopP: 1, Choices: []string{"yes", "no"}, Logprobs: true, TopLogprobs: 5,
			})
			if err != nil {
				t.Fatal(err)
			}
			p, ok := choiceProb(resp, "yes", "no")
			if !ok || math.Abs(p-want) > 1e-6 || resp.Content != wantContent || len(resp.TopLogprobs) != 5 {
				t.Fatalf("%s %s: P(yes)=%v ok=%v content=%q top=%v", api, doc, p, ok, resp.Content, resp.TopLogprobs)
			}
		}
		f("Nike Pegasus 40", 0.73, "yes")
		f("beach sandal", 0.05, "no")
	}
}

func TestErrorKinds(t *testing.T) {
	srv := modeltest.NewServer(modeltest.Config{})
	defer srv.Close()
	c := newClient(t, model.RoleChat, srv.URL, func(c *model.Config) { c.Breaker.Failures = -1 })
	f := func(fault modeltest.Fault, wantKind string, wantStatus int, wantMsg string) {
		t.Helper()
		fault.Times = 1
		srv.SetConfig(modeltest.Config{Faults: []modeltest.Fault{fault}})
		_, err := c.Chat(context.Background(), keywordRequest())
		var me *model.Error
		if !errors.As(err, &me) || me.Kind != wantKind || me.Status != wantStatus || me.Message != wantMsg {
			t.Fatalf("%+v\n got %v\nwant %s %d %q", fault, err, wantKind, wantStatus, wantMsg)
		}
	}
	f(modeltest.Fault{Status: 400, Shape: modeltest.ShapeVLLM, Message: "bad"}, model.KindBadRequest, 400, "BadRequestError: bad")
	f(modeltest.Fault{Status: 404, Shape: modeltest.ShapeVLLM}, model.KindBadRequest, 404, "NotFoundError: The model `unknown` does not exist.")
	f(modeltest.Fault{Status: 500, Shape: modeltest.ShapeVLLM}, model.KindUnavailable, 500, "InternalServerError: EngineCore encountered an issue.")
	f(modeltest.Fault{Status: 501, Shape: modeltest.ShapeVLLM}, model.KindUnavailable, 501, "NotImplementedError: Only base64 data URLs are supported for now.")
	f(modeltest.Fault{Status: 400, Shape: modeltest.ShapeVLLMFlat, Message: "old"}, model.KindBadRequest, 400, "BadRequestError: old")
	f(modeltest.Fault{Status: 401, Shape: modeltest.ShapeUnauthorized}, model.KindBadRequest, 401, "Unauthorized")
	f(modeltest.Fault{Status: 404, Shape: modeltest.ShapeFastAPI, Message: "Not Found"}, model.KindBadRequest, 404, "Not Found")
	f(modeltest.Fault{Status: 500, Shape: modeltest.ShapeText}, model.KindUnavailable, 500, "Internal Server Error")
	f(modeltest.Fault{Status: 503, Shape: modeltest.ShapeLlamaCpp}, model.KindUnavailable, 503, "unavailable_error: Loading model")
	f(modeltest.Fault{Status: 400, Shape: modeltest.ShapeLlamaCpp, Message: "ctx"}, model.KindBadRequest, 400, "invalid_request_error: ctx")
	f(modeltest.Fault{Status: 404, Shape: modeltest.ShapeOllama, Message: "model not found"}, model.KindBadRequest, 404, "model not found")
	f(modeltest.Fault{Status: 400, Shape: modeltest.ShapeOllamaOpenAI, Message: "invalid image input"}, model.KindBadRequest, 400, "invalid_request_error: invalid image input")
	f(modeltest.Fault{Status: 429, Shape: modeltest.ShapeTEI}, model.KindOverloaded, 429, "Overloaded: Model is overloaded")
	f(modeltest.Fault{Status: 503, Shape: modeltest.ShapeEmpty}, model.KindUnavailable, 503, "empty body with status 503")
	f(modeltest.Fault{Status: 504, Shape: modeltest.ShapeText}, model.KindTimeout, 504, "Gateway Timeout")
	// Malformed 200 answers.
	f(modeltest.Fault{Output: modeltest.OutEmptyChoices}, model.KindBadOutput, 200, "cannot use chat response: no choices")
	f(modeltest.Fault{Output: modeltest.OutNullContent}, model.KindBadOutput, 200, `cannot use chat response: empty content (finish_reason "stop")`)
	srv.SetConfig(modeltest.Config{Faults: []modeltest.Fault{{Output: modeltest.OutBadBody}}})
	if _, err := c.Chat(context.Background(), keywordRequest()); kindOf(err) != model.KindBadOutput {
		t.Fatalf("truncated body: %v", err)
	}
	// Content the caller's parser must judge is returned with its finish reason.
	g := func(out, wantFinish string, wantJSON bool) {
		t.Helper()
		srv.SetConfig(modeltest.Config{Faults: []modeltest.Fault{{Output: out}}})
		resp, err := c.Chat(context.Background(), keywordRequest())
		if err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		if resp.FinishReason != wantFinish || json.Valid([]byte(resp.Content)) != wantJSON || resp.Content == "" {
			t.Fatalf("%s: %+v", out, resp)
		}
	}
	g(modeltest.OutLength, "length", false)
	g(modeltest.OutTruncated, "stop", false)
	g(modeltest.OutNonJSON, "stop", false)
	g(modeltest.OutPlainList, "stop", false)
	// Connection refused.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()
	dc := newClient(t, model.RoleChat, dead, nil)
	if _, err := dc.Chat(context.Background(), keywordRequest()); kindOf(err) != model.KindUnavailable {
		t.Fatalf("connection refused: %v", err)
	}
}

func TestLimiterQueue(t *testing.T) {
	srv := modeltest.NewServer(modeltest.Config{})
	defer srv.Close()
	c := newClient(t, model.RoleChat, srv.URL, func(c *model.Config) {
		c.MaxConcurrent, c.MaxQueue, c.QueueWait = 1, 1, time.Minute
	})
	srv.Pause()
	errs := make(chan error, 2)
	go func() { _, err := c.Chat(context.Background(), keywordRequest()); errs <- err }()
	waitFor(t, "one call at the server", func() bool { return srv.InFlight() == 1 })
	go func() { _, err := c.Chat(context.Background(), keywordRequest()); errs <- err }()
	waitFor(t, "one call queued", func() bool { return c.Health().Queued == 1 })
	if h := c.Health(); h.InFlight != 1 {
		t.Fatalf("health %+v", h)
	}
	_, err := c.Chat(context.Background(), keywordRequest())
	if kindOf(err) != model.KindOverloaded {
		t.Fatalf("third call: %v, want overloaded", err)
	}
	srv.Resume()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("queued call: %v", err)
		}
	}
	if n := srv.Calls()["/v1/chat/completions"]; n != 2 {
		t.Fatalf("server saw %d calls, want 2", n)
	}
}

func TestDeadlineAndCancel(t *testing.T) {
	srv := modeltest.NewServer(modeltest.Config{})
	defer srv.Close()
	c := newClient(t, model.RoleChat, srv.URL, func(c *model.Config) { c.Breaker.Failures = -1 })
	srv.Pause()
	defer srv.Resume()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Chat(ctx, keywordRequest())
	if kindOf(err) != model.KindTimeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
	waitFor(t, "the server to see the request canceled", func() bool { return srv.Canceled() == 1 })

	ctx2, cancel2 := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := c.Chat(ctx2, keywordRequest()); done <- err }()
	waitFor(t, "the call at the server", func() bool { return srv.InFlight() == 1 })
	cancel2()
	if err := <-done; kindOf(err) != model.KindCanceled {
		t.Fatalf("cancel: %v", err)
	}
	waitFor(t, "the server to see the second request canceled", func() bool { return srv.Canceled() == 2 })
	// The config timeout caps a context without deadline.
	tc := newClient(t, model.RoleChat, srv.URL, func(c *model.Config) { c.Timeout = 30 * time.Millisecond })
	if _, err := tc.Chat(context.Background(), keywordRequest()); kindOf(err) != model.KindTimeout {
		t.Fatalf("config timeout: %v", err)
	}
}

func TestBreakerOpensOnFailures(t *testing.T) {
	srv := modeltest.NewServer(modeltest.Config{Faults: []modeltest.Fault{
		{Status: 400, Shape: modeltest.ShapeVLLM, Times: 3},
		{Status: 500, Shape: modeltest.ShapeText},
	}})
	defer srv.Close()
	c := newClient(t, model.RoleChat, srv.URL, func(c *model.Config) { c.Breaker = model.BreakerConfig{Failures: 2, OpenFor: time.Hour} })
	want := []string{model.KindBadRequest, model.KindBadRequest, model.KindBadRequest, // 4xx do not count
		model.KindUnavailable, model.KindUnavailable, model.KindCircuitOpen, model.KindCircuitOpen}
	for i, w := range want {
		if _, err := c.Chat(context.Background(), keywordRequest()); kindOf(err) != w {
			t.Fatalf("call %d: %v, want %s", i, err, w)
		}
	}
	if n := srv.Calls()["/v1/chat/completions"]; n != 5 {
		t.Fatalf("server saw %d calls, want 5 (open circuit calls must not reach it)", n)
	}
	if h := c.Health(); h.Breaker != model.BreakerOpen || h.State != model.StateDown || h.LastError == "" {
		t.Fatalf("health %+v", h)
	}
}

func TestHealthProbe(t *testing.T) {
	srv := modeltest.NewServer(modeltest.Config{})
	defer srv.Close()
	c := newClient(t, model.RoleChat, srv.URL, nil)
	if s := c.Health().State; s != model.StateUnknown {
		t.Fatalf("before any probe: %s", s)
	}
	c.Probe()
	if h := c.Health(); h.State != model.StateUp || h.CheckedAt == "" {
		t.Fatalf("healthy: %+v", h)
	}
	srv.SetConfig(modeltest.Config{Unhealthy: true})
	c.Probe()
	if h := c.Health(); h.State != model.StateDown || h.LastError != "health probe /health: model unavailable (status 503): empty body with status 503" {
		t.Fatalf("unhealthy: %+v", h)
	}
	// No /health route (404): /v1/models answers.
	srv.SetConfig(modeltest.Config{Faults: []modeltest.Fault{{Route: modeltest.RouteHealth, Status: 404, Shape: modeltest.ShapeFastAPI, Message: "Not Found"}}})
	c.Probe()
	if c.Health().State != model.StateUp || srv.Calls()["/v1/models"] != 1 {
		t.Fatalf("fallback to /v1/models: %+v %v", c.Health(), srv.Calls())
	}
	oc := newClient(t, model.RoleChat, srv.URL, func(c *model.Config) { c.API = model.APIOllama })
	oc.Probe()
	if oc.Health().State != model.StateUp || srv.Calls()["/api/tags"] != 1 {
		t.Fatalf("ollama: %+v %v", oc.Health(), srv.Calls())
	}
	// Background probing.
	bg := newClient(t, model.RoleChat, srv.URL, func(c *model.Config) { c.HealthInterval = 10 * time.Millisecond })
	waitFor(t, "a background probe", func() bool { return bg.Health().State == model.StateUp })
	b, _ := json.Marshal(bg.Health())
	if !json.Valid(b) {
		t.Fatal(string(b))
	}
	srv.Close()
	c.Probe()
	if c.Health().State != model.StateDown {
		t.Fatalf("closed server: %+v", c.Health())
	}
}

func TestRerank(t *testing.T) {
	img := "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(shoe)
	srv := modeltest.NewServer(modeltest.Config{Model: "reranker",
		Images: map[string]modeltest.Output{modeltest.ImageHash(shoe): {Keywords: []string{"red", "running", "shoe"}}}})
	defer srv.Close()
	req := &model.RerankRequest{Query: model.Document{Text: "red running shoe"}, Docs: []model.Document{
		{Text: "blue shirt"}, {Text: "red shoe"}, {Image: img}, {Text: "running"},
	}}
	f := func(api string, req *model.RerankRequest, wantPath, wantBody, wantScores string) {
		t.Helper()
		c := newClient(t, model.RoleRerank, srv.URL, func(c *model.Config) { c.API, c.Model = api, "reranker" })
		body, err := c.AppendRerankBody(nil, req)
		if err != nil || string(body) != wantBody {
			t.Fatalf("%s body\n got %s %v\nwant %s", api, body, err, wantBody)
		}
		resp, err := c.Rerank(context.Background(), req)
		if err != nil {
			t.Fatalf("%s: %v", api, err)
		}
		got, _ := json.Marshal(resp.Scores)
		if string(got) != wantScores {
			t.Fatalf("%s scores %s, want %s", api, got, wantScores)
		}
		if string(srv.LastRequest(wantPath)) != wantBody {
			t.Fatalf("%s: %s did not receive the body", api, wantPath)
		}
	}
	// Results come back sorted by score; the client maps them to input order.
	f(model.APIVLLM, req, "/v1/rerank",
		`{"model":"reranker","query":"red running shoe","documents":["blue shirt","red shoe",{"content":[{"type":"image_url","image_url":{"url":"`+img+`"}}]},"running"]}`,
		`[0,0.6666666666666666,1,0.3333333333333333]`)
	text := &model.RerankRequest{Query: model.Document{Text: "red running shoe"}, Docs: []model.Document{{Text: "blue shirt"}, {Text: "red shoe"}, {Text: "running"}}}
	f(model.APITEI, text, "/rerank", `{"query":"red running shoe","texts":["blue shirt","red shoe","running"]}`, `[0,0.6666666666666666,0.3333333333333333]`)
	f(model.APIVLLMScore, text, "/score", `{"model":"reranker","text_1":"red running shoe","text_2":["blue shirt","red shoe","running"]}`, `[0,0.6666666666666666,0.3333333333333333]`)
	f(model.APIJina, &model.RerankRequest{Query: model.Document{Text: "red running shoe"}, Docs: []model.Document{{Text: "x", Image: img}}}, "/v1/rerank",
		`{"model":"reranker","query":"red running shoe","documents":[{"text":"x","image":"`+img+`"}]}`, `[1]`)

	tei := newClient(t, model.RoleRerank, srv.URL, func(c *model.Config) { c.API = model.APITEI })
	if _, err := tei.Rerank(context.Background(), req); kindOf(err) != model.KindBadRequest {
		t.Fatalf("image to TEI: %v", err)
	}
	srv.SetConfig(modeltest.Config{Model: "reranker", Faults: []modeltest.Fault{{Route: modeltest.RouteRerank, Output: modeltest.OutBadIndex}}})
	vc := newClient(t, model.RoleRerank, srv.URL, nil)
	if _, err := vc.Rerank(context.Background(), text); kindOf(err) != model.KindBadOutput {
		t.Fatalf("bad index: %v", err)
	}
}

func TestEmbed(t *testing.T) {
	srv := modeltest.NewServer(modeltest.Config{EmbedDim: 8})
	defer srv.Close()
	c := newClient(t, model.RoleEmbed, srv.URL, nil)
	resp, err := c.Embed(context.Background(), &model.EmbedRequest{Input: []string{"red shoe", "red shoe", "blue shirt"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Vectors) != 3 || len(resp.Vectors[0]) != 8 {
		t.Fatalf("shape %d", len(resp.Vectors))
	}
	var n float64
	for i, x := range resp.Vectors[0] {
		n += float64(x * x)
		if x != resp.Vectors[1][i] {
			t.Fatalf("identical inputs differ")
		}
	}
	if math.Abs(n-1) > 1e-3 {
		t.Fatalf("norm %v", n)
	}
	if got := string(srv.LastRequest("/v1/embeddings")); got != `{"input":["red shoe","red shoe","blue shirt"],"encoding_format":"float"}` {
		t.Fatalf("body %s", got)
	}
}

// The simulator reads the rerank helper's prompt layout: shared part first
// (query image, "Query: …"), then each candidate's image and "Product N: …".
func TestChatJudgeBatchedWithImages(t *testing.T) {
	sandal := []byte("\xff\xd8\xff\xe0 beach sandal")
	img := func(b []byte) string { return "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(b) }
	srv := modeltest.NewServer(modeltest.Config{Images: map[string]modeltest.Output{
		modeltest.ImageHash(shoe):   {Keywords: []string{"red running shoe"}},
		modeltest.ImageHash(sandal): {Keywords: []string{"sandal"}},
	}})
	defer srv.Close()
	c := newClient(t, model.RoleChat, srv.URL, nil)
	resp, err := c.Chat(context.Background(), &model.ChatRequest{
		Messages: []model.Message{{Role: "system", Text: "You judge products."}, {Role: "user", Parts: []model.Part{
			model.TextPart("Query: red shoe\n"),
			model.ImagePart(img(sandal)), model.TextPart("Product 1: summer item\n"),
			model.ImagePart(img(shoe)), model.TextPart("Product 2: footwear\n"),
			model.TextPart("Answer as JSON {\"scores\":[...]} in product order."),
		}}},
		MaxTokens: 40, TopP: 1, ResponseFormat: json.RawMessage(`{"type":"json_schema","json_schema":{"name":"scores","schema":{"type":"object"}}}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Content != `{"scores":[0,1]}` {
		t.Fatalf("content %s", resp.Content)
	}
}

// A server that drops keep-alive connections after each answer (without
// "Connection: close") must not fail the next call: the client retries once
// on a fresh connection.
func TestStaleKeepAliveRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const answer = `{"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}`
	served := make(chan struct{}, 10)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			req, err := http.ReadRequest(bufio.NewReader(conn))
			if err == nil {
				io.Copy(io.Discard, req.Body)
				served <- struct{}{} // before the answer: the client may return as soon as it has it
				fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(answer), answer)
			}
			conn.Close()
		}
	}()
	c := newClient(t, model.RoleChat, "http://"+ln.Addr().String(), nil)
	for i := range 3 {
		resp, err := c.Chat(context.Background(), keywordRequest())
		if err != nil || resp.Content != "ok" {
			t.Fatalf("call %d: %v %+v", i, err, resp)
		}
	}
	if len(served) != 3 {
		t.Fatalf("served %d", len(served))
	}
}

func TestMetricsExposed(t *testing.T) {
	srv := modeltest.NewServer(modeltest.Config{Faults: []modeltest.Fault{{Status: 500, Shape: modeltest.ShapeText, Times: 1}}})
	defer srv.Close()
	tokens := func() float64 { return metricValue(t, `vlproxy_model_tokens_total{kind="prompt",role="embed"}`) }
	errs := func() float64 { return metricValue(t, `vlproxy_model_errors_total{kind="unavailable",role="embed"}`) }
	tokens0, errs0 := tokens(), errs()
	c := newClient(t, model.RoleEmbed, srv.URL, nil)
	c.Embed(context.Background(), &model.EmbedRequest{Input: []string{"a"}})
	if _, err := c.Embed(context.Background(), &model.EmbedRequest{Input: []string{"red shoe"}}); err != nil {
		t.Fatal(err)
	}
	text := promexp.Text()
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, want := range []string{
		`vlproxy_model_request_duration_seconds_count{endpoint="` + host + `",role="embed"} 2`,
		`vlproxy_model_in_flight{endpoint="` + host + `",role="embed"} 0`,
	} {
		if !strings.Contains(text, want) {
			t.Fatalf("metrics lack %s", want)
		}
	}
	if d := tokens() - tokens0; d != 3 {
		t.Fatalf("prompt tokens grew by %v, want 3", d)
	}
	if d := errs() - errs0; d != 1 {
		t.Fatalf("unavailable errors grew by %v, want 1", d)
	}
}

// choiceProb returns P(a) / (P(a) + P(b)) from the first token's top logprobs (variants such
// as " Yes" summed); ok is false when neither is present. rerank.PYes is the production use.
func choiceProb(r *model.ChatResponse, a, b string) (p float64, ok bool) {
	var pa, pb float64
	for tok, lp := range r.TopLogprobs {
		switch t := strings.TrimSpace(tok); {
		case strings.EqualFold(t, a):
			pa, ok = pa+math.Exp(lp), true
		case strings.EqualFold(t, b):
			pb, ok = pb+math.Exp(lp), true
		}
	}
	if !ok || pa+pb == 0 {
		return 0, false
	}
	return pa / (pa + pb), true
}

func TestEmbedOne(t *testing.T) {
	red := []byte("\xff\xd8\xff\xe0 red dress")
	uri := "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(red)
	srv := modeltest.NewServer(modeltest.Config{Model: "emb", EmbedDim: 8, EmbedImagesOnly: true,
		Images: map[string]modeltest.Output{modeltest.ImageHash(red): {Keywords: []string{"red dress"}}}})
	defer srv.Close()
	norm := func(v []float32) float64 {
		var n float64
		for _, x := range v {
			n += float64(x) * float64(x)
		}
		return math.Sqrt(n)
	}

	// messages form (vLLM multimodal embedders), truncated to 4 and renormalised.
	c := newClient(t, model.RoleEmbed, srv.URL, func(c *model.Config) {
		c.Model, c.API, c.Embed.Dimensions = "emb", model.APIVLLM, 4
	})
	v, err := c.EmbedOne(context.Background(), model.EmbedInput{Image: uri})
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != 4 || math.Abs(norm(v)-1) > 1e-6 {
		t.Fatalf("messages form: %d dims, norm %v; want 4, 1", len(v), norm(v))
	}
	want := `{"model":"emb","messages":[{"role":"system","content":[{"type":"text","text":"Represent the user's input."}]},{"role":"user","content":[{"type":"image_url","image_url":{"url":"` + uri + `"}}]}],"encoding_format":"float"}`
	if got := string(srv.LastRequest("/v1/embeddings")); got != want {
		t.Fatalf("messages body\n got %s\nwant %s", got, want)
	}

	// input form: the data URI is the input; same image, same direction as the full vector's head.
	ci := newClient(t, model.RoleEmbed, srv.URL, func(c *model.Config) {
		c.Model, c.API, c.Embed.Form = "emb", model.APIOpenAI, model.EmbedFormInput
	})
	full, err := ci.EmbedOne(context.Background(), model.EmbedInput{Image: uri})
	if err != nil {
		t.Fatal(err)
	}
	if len(full) != 8 || math.Abs(norm(full)-1) > 1e-6 {
		t.Fatalf("input form: %d dims, norm %v", len(full), norm(full))
	}
	head, _ := model.Normalize(append([]float32(nil), full[:4]...), 0)
	for i := range head {
		if math.Abs(float64(head[i]-v[i])) > 1e-3 {
			t.Fatalf("truncated vector %v is not the normalised head %v of %v", v, head, full)
		}
	}
	if got := string(srv.LastRequest("/v1/embeddings")); got != `{"model":"emb","input":["`+uri+`"],"encoding_format":"float"}` {
		t.Fatalf("input body %s", got)
	}

	// An image-only server refuses text: a 400, not retried, breaker untouched.
	if _, err := ci.EmbedOne(context.Background(), model.EmbedInput{Text: "red dress"}); kindOf(err) != model.KindBadRequest {
		t.Fatalf("text on an image-only server: %v", err)
	}
	if _, err := ci.EmbedOne(context.Background(), model.EmbedInput{Text: "x", Image: uri}); kindOf(err) != model.KindBadRequest {
		t.Fatalf("text and image in the input form: %v", err)
	}
	if _, err := ci.EmbedOne(context.Background(), model.EmbedInput{}); kindOf(err) != model.KindBadRequest {
		t.Fatalf("empty input: %v", err)
	}

	// Server errors and deadlines come back as the client's kinds.
	srv.SetConfig(modeltest.Config{Model: "emb", EmbedDim: 8, Faults: []modeltest.Fault{{Route: modeltest.RouteEmbed, Status: 503}}})
	if _, err := ci.EmbedOne(context.Background(), model.EmbedInput{Image: uri}); kindOf(err) != model.KindUnavailable {
		t.Fatalf("503: %v", err)
	}
	srv.SetConfig(modeltest.Config{Model: "emb", EmbedDim: 8, Latency: modeltest.Latency{Base: modeltest.Duration(300 * time.Millisecond)}})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := ci.EmbedOne(ctx, model.EmbedInput{Image: uri}); kindOf(err) != model.KindTimeout {
		t.Fatalf("late: %v", err)
	}
}

func TestNormalize(t *testing.T) {
	v, err := model.Normalize([]float32{3, 4, 12}, 2)
	if err != nil || len(v) != 2 || math.Abs(float64(v[0])-0.6) > 1e-6 || math.Abs(float64(v[1])-0.8) > 1e-6 {
		t.Fatalf("Normalize([3 4 12], 2) = %v, %v; want [0.6 0.8]", v, err)
	}
	if _, err := model.Normalize([]float32{0, 0}, 0); kindOf(err) != model.KindBadOutput {
		t.Fatalf("zero vector: %v", err)
	}
}

// metricValue reads one series (name with its labels, as exposed) from the exposition; 0 when absent.
func metricValue(t *testing.T, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(promexp.Text(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("cannot parse %q: %v", line, err)
			}
			return f
		}
	}
	return 0
}

// redBoxClip is an H.264 MP4 of 6 s at 1 fps: white, with a red box from second 3 on.
// It skips without ffmpeg unless the run requires it (make test sets REQUIRE_FFMPEG).
func redBoxClip(t *testing.T) []byte {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		if os.Getenv("REQUIRE_FFMPEG") != "" || os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	p := filepath.Join(t.TempDir(), "clip.mp4")
	out, err := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "color=c=white:s=160x120:r=1:d=6",
		"-vf", "drawbox=x=40:y=30:w=80:h=60:color=red:t=fill:enable='gte(t,3)'",
		"-c:v", "libx264", "-pix_fmt", "yuv420p", p).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A chat request with a video_url part reaches the (SIMULATED) vLLM, which answers the
// segments it decodes from the clip; a server started with no video allowed refuses it
// with a 400, the signal enrich's auto mode falls back to frames on.
func TestChatVideo(t *testing.T) {
	clip := redBoxClip(t)
	srv := modeltest.NewServer(modeltest.Config{})
	defer srv.Close()
	c := newClient(t, model.RoleChat, srv.URL, nil)
	req := &model.ChatRequest{MaxTokens: 512, TopP: 0.8, Messages: []model.Message{{Role: "user", Parts: []model.Part{
		model.VideoPart("data:video/mp4;base64," + base64.StdEncoding.EncodeToString(clip)),
		model.TextPart("Split this video into time-coded segments."),
	}}}}
	resp, err := c.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"segments":[{"start":0,"end":3,"description":"plain white background","keywords":["white"]},{"start":3,"end":6,"description":"red object in view","keywords":["red"]}]}`
	if resp.Content != want {
		t.Fatalf("content\n got %s\nwant %s", resp.Content, want)
	}
	if sent := string(srv.LastRequest("/v1/chat/completions")); !strings.Contains(sent, `{"type":"video_url","video_url":{"url":"data:video/mp4;base64,`) {
		t.Fatalf("request carries no video_url part: %.200s", sent)
	}

	srv.SetConfig(modeltest.Config{MaxVideos: -1})
	_, err = c.Chat(context.Background(), req)
	var me *model.Error
	if !errors.As(err, &me) || me.Kind != model.KindBadRequest || !strings.Contains(me.Message, "At most 0 video(s)") {
		t.Fatalf("video refused: %v, want a bad_request naming the video limit", err)
	}

	f := func(role, api string, want bool) {
		t.Helper()
		if got := newClient(t, role, srv.URL, func(c *model.Config) { c.API = api }).AcceptsVideo(); got != want {
			t.Errorf("%s %s: AcceptsVideo %v, want %v", role, api, got, want)
		}
	}
	f(model.RoleChat, model.APIVLLM, true)
	for _, api := range []string{model.APIOpenAI, model.APISGLang, model.APILlamaCpp, model.APIOllama} {
		f(model.RoleChat, api, false)
	}
	f(model.RoleEmbed, model.APIVLLM, false)
}
