package modeltest

import (
	"encoding/base64"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

func post(t *testing.T, url, body string, hdr ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var pngBytes = []byte("\x89PNG\r\n\x1a\nfake-red-shoe")

func dataURI(b []byte) string { return "data:image/png;base64," + base64.StdEncoding.EncodeToString(b) }

func TestChatKeywords(t *testing.T) {
	srv := NewServer(Config{
		Rules:  []Rule{{Text: "beach", Output: Output{Keywords: []string{"sundress", "straw hat"}, Category: "dresses"}}},
		Images: map[string]Output{ImageHash(pngBytes): {Keywords: []string{"red shoe", "sneaker"}, Category: "shoes", Attributes: map[string]string{"colour": "red"}}},
	})
	defer srv.Close()
	f := func(body, wantContent string) {
		t.Helper()
		st, resp := post(t, srv.URL+"/v1/chat/completions", body)
		if st != 200 {
			t.Fatalf("status %d: %s", st, resp)
		}
		if got := gjson.Get(resp, "choices.0.message.content").String(); got != wantContent {
			t.Fatalf("content\n got %s\nwant %s", got, wantContent)
		}
	}
	f(`{"messages":[{"role":"system","content":"Reply with JSON only."},{"role":"user","content":"What to wear on the beach?"}],"max_tokens":100}`,
		`{"keywords":["sundress","straw hat"],"category":"dresses"}`)
	f(`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"`+dataURI(pngBytes)+`"}},{"type":"text","text":"Cheap running"}]}],"max_tokens":100}`,
		`{"keywords":["red shoe","sneaker","cheap","running"],"category":"shoes","attributes":{"colour":"red"}}`)
	f(`{"messages":[{"role":"user","content":"Blue denim jacket, blue"}],"max_tokens":100}`,
		`{"keywords":["blue","denim","jacket"]}`)
	// max_tokens cuts the output like a real model.
	st, resp := post(t, srv.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"Blue denim jacket"}],"max_tokens":3}`)
	if st != 200 || gjson.Get(resp, "choices.0.finish_reason").String() != "length" || gjson.Get(resp, "choices.0.message.content").String() != `{"keyword` {
		t.Fatalf("truncation by max_tokens: %d %s", st, resp)
	}
}

func TestChatJudge(t *testing.T) {
	srv := NewServer(Config{ScoreRules: []ScoreRule{{Query: "red shoes", Doc: "pegasus", Score: 0.8}}})
	defer srv.Close()
	st, resp := post(t, srv.URL+"/v1/chat/completions", `{"max_tokens":1,"temperature":0,"logprobs":true,"top_logprobs":5,
		"structured_outputs":{"choice":["yes","no"]},
		"messages":[{"role":"user","content":[{"type":"text","text":"Judge relevance.\nQuery: red shoes\n"},{"type":"text","text":"Document: Nike Pegasus 40"}]}]}`)
	if st != 200 {
		t.Fatalf("status %d: %s", st, resp)
	}
	if c := gjson.Get(resp, "choices.0.message.content").String(); c != "yes" {
		t.Fatalf("content %q", c)
	}
	top := gjson.Get(resp, "choices.0.logprobs.content.0.top_logprobs")
	if n := len(top.Array()); n != 5 {
		t.Fatalf("top_logprobs has %d entries: %s", n, top.Raw)
	}
	py := math.Exp(top.Get(`#(token=="yes").logprob`).Float())
	pn := math.Exp(top.Get(`#(token=="no").logprob`).Float())
	if math.Abs(py-0.8) > 1e-9 || math.Abs(pn-0.2) > 1e-9 {
		t.Fatalf("P(yes)=%v P(no)=%v, want 0.8/0.2", py, pn)
	}
	// Default score: fraction of query words found in the candidate; batched candidates.
	st, resp = post(t, srv.URL+"/v1/chat/completions", `{"max_tokens":50,"logprobs":true,"top_logprobs":2,
		"messages":[{"role":"user","content":"Query: blue denim jacket\nDocument 1: denim jacket\nDocument 2: red dress\nDocument 3: blue denim jacket"}]}`)
	if got := gjson.Get(resp, "choices.0.message.content").String(); st != 200 || got != `{"scores":[0.6667,0,1]}` {
		t.Fatalf("batched judge: %d %s", st, got)
	}
}

func TestRerankShapes(t *testing.T) {
	srv := NewServer(Config{Model: "reranker", Images: map[string]Output{ImageHash(pngBytes): {Keywords: []string{"red", "shoe"}}}})
	defer srv.Close()
	st, resp := post(t, srv.URL+"/v1/rerank", `{"model":"reranker","query":"red shoe","documents":["blue shirt",{"content":[{"type":"image_url","image_url":{"url":"`+dataURI(pngBytes)+`"}}]},"red shirt"]}`)
	if st != 200 {
		t.Fatalf("status %d %s", st, resp)
	}
	if got := gjson.Get(resp, "results.#.index").Raw; got != "[1,2,0]" {
		t.Fatalf("order %s in %s", got, resp)
	}
	if got := gjson.Get(resp, "results.#.relevance_score").Raw; got != "[1,0.5,0]" {
		t.Fatalf("scores %s", got)
	}
	st, resp = post(t, srv.URL+"/rerank", `{"query":"red shoe","texts":["blue shirt","red shirt"]}`)
	if want := `[{"index":1,"score":0.5},{"index":0,"score":0}]`; st != 200 || resp != want {
		t.Fatalf("TEI: %d %s, want %s", st, resp, want)
	}
	st, resp = post(t, srv.URL+"/score", `{"text_1":"red shoe","text_2":["blue shirt","red shirt"]}`)
	if got := gjson.Get(resp, "data.#.score").Raw; st != 200 || got != "[0,0.5]" {
		t.Fatalf("score: %d %s", st, resp)
	}
}

func TestErrorsAndValidation(t *testing.T) {
	srv := NewServer(Config{APIKey: "k", Faults: []Fault{
		{Match: "tei-overload", Status: 429, Shape: ShapeTEI},
		{Match: "flat", Status: 400, Shape: ShapeVLLMFlat, Message: "bad"},
		{Match: "once", Status: 503, Shape: ShapeLlamaCpp, Times: 1},
	}})
	defer srv.Close()
	auth := []string{"Authorization", "Bearer k"}
	f := func(path, body string, wantStatus int, want string) {
		t.Helper()
		st, resp := post(t, srv.URL+path, body, auth...)
		if st != wantStatus || resp != want {
			t.Fatalf("%s %s\n got %d %s\nwant %d %s", path, body, st, resp, wantStatus, want)
		}
	}
	f("/v1/chat/completions", `{"model":"x","messages":[]}`, 404, `{"error":{"message":"The model `+"`x`"+` does not exist.","type":"NotFoundError","param":null,"code":404}}`)
	f("/v1/chat/completions", `{}`, 400, `{"error":{"message":"[{'type': 'missing', 'loc': ('body', 'messages'), 'msg': 'Field required'}]","type":"BadRequestError","param":null,"code":400}}`)
	f("/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"top_logprobs":3}`, 400, `{"error":{"message":"when using `+"`top_logprobs`, `logprobs`"+` must be set to true.","type":"BadRequestError","param":null,"code":400}}`)
	f("/v1/chat/completions", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,@@"}}]}]}`, 400, `{"error":{"message":"cannot identify image file","type":"BadRequestError","param":null,"code":400}}`)
	f("/v1/chat/completions", `{"flat":1}`, 400, `{"object":"error","message":"bad","type":"BadRequestError","param":null,"code":400}`)
	f("/rerank", `{"query":"tei-overload","texts":["a"]}`, 429, `{"error":"Model is overloaded","error_type":"Overloaded"}`)
	f("/v1/chat/completions", `{"once":1}`, 503, `{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}`)
	f("/v1/chat/completions", `{"once":1}`, 400, `{"error":{"message":"[{'type': 'missing', 'loc': ('body', 'messages'), 'msg': 'Field required'}]","type":"BadRequestError","param":null,"code":400}}`)
	f("/nope", `{}`, 404, `{"detail":"Not Found"}`)
	st, resp := post(t, srv.URL+"/v1/chat/completions", `{}`)
	if st != 401 || resp != `{"error":"Unauthorized"}` {
		t.Fatalf("no key: %d %s", st, resp)
	}
	if c := srv.Calls()["/v1/chat/completions"]; c != 8 {
		t.Fatalf("calls = %d, want 8", c)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "rules.yaml")
	os.WriteFile(p, []byte("latency: {dist: uniform, base: 20ms, jitter: 5ms}\nrules:\n  - text: beach\n    output: {keywords: [sundress]}\n"), 0o644)
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Latency.Dist != "uniform" || cfg.Latency.Base != Duration(20e6) || cfg.Rules[0].Output.Keywords[0] != "sundress" {
		t.Fatalf("loaded %+v", cfg)
	}
	os.WriteFile(p, []byte("latncy: 1\n"), 0o644)
	if _, err := LoadConfig(p); err == nil {
		t.Fatal("unknown key accepted")
	}
}

func TestLatencyDistributions(t *testing.T) {
	s := &Server{}
	f := func(l Latency, lo, hi time.Duration) {
		t.Helper()
		cfg := Config{Latency: l}
		s.SetConfig(cfg)
		cfg = s.Config()
		var sum time.Duration
		for range 1000 {
			d := s.latency(cfg)
			if d < lo || d > hi {
				t.Fatalf("%+v: %v outside [%v,%v]", l, d, lo, hi)
			}
			sum += d
		}
		if l.Dist == "uniform" && (sum/1000 < l.Base.d()+l.Jitter.d()/3 || sum/1000 > l.Base.d()+2*l.Jitter.d()/3) {
			t.Fatalf("uniform mean %v", sum/1000)
		}
	}
	f(Latency{Base: Duration(20 * time.Millisecond)}, 20*time.Millisecond, 20*time.Millisecond)
	f(Latency{Dist: "uniform", Base: Duration(10 * time.Millisecond), Jitter: Duration(10 * time.Millisecond)}, 10*time.Millisecond, 20*time.Millisecond)
	f(Latency{Dist: "lognormal", Base: Duration(10 * time.Millisecond), Sigma: 0.3}, time.Millisecond, 100*time.Millisecond)
}

func (d Duration) d() time.Duration { return time.Duration(d) }

func TestSplitJudgeWithImages(t *testing.T) {
	q, c := splitJudge([]segment{
		{text: "Judge whether the Document meets the Query.\n"}, {image: strings.Repeat("a", 64)},
		{text: "<Query>: red shoe\n<Document>: Nike Pegasus"}, {image: strings.Repeat("b", 64)},
	})
	if q.Text != "red shoe" || len(q.Images) != 1 || q.Images[0][0] != 'a' || len(c) != 1 || c[0].Text != "Nike Pegasus" || len(c[0].Images) != 1 || c[0].Images[0][0] != 'b' {
		t.Fatalf("query %+v candidates %+v", q, c)
	}
}

func TestSplitJudgeImageBeforeMarker(t *testing.T) {
	a, b, c := strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64)
	q, cands := splitJudge([]segment{
		{image: a}, {text: "Query: red shoe\n"},
		{image: b}, {text: "Product 1: Nike Pegasus\n"},
		{text: "Product 2: sandal\n"}, {image: c},
		{text: "Rate each product."},
	})
	if q.Text != "red shoe" || len(q.Images) != 1 || q.Images[0] != a || len(cands) != 2 ||
		cands[0].Text != "Nike Pegasus" || len(cands[0].Images) != 1 || cands[0].Images[0] != b ||
		len(cands[1].Images) != 1 || cands[1].Images[0] != c || !strings.HasPrefix(cands[1].Text, "sandal") {
		t.Fatalf("query %+v candidates %+v", q, cands)
	}
}

func TestRunCommandFlags(t *testing.T) {
	if err := RunCommand([]string{"-latency-dist", "gamma"}); err == nil || !strings.Contains(err.Error(), "-latency-dist") {
		t.Fatalf("bad distribution: %v", err)
	}
	if err := RunCommand([]string{"-rules", "/nonexistent.yaml"}); err == nil {
		t.Fatal("missing rules file accepted")
	}
}

func TestExampleRulesFile(t *testing.T) {
	cfg, err := LoadConfig("testdata/rules.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if len(cfg.Rules) != 2 || cfg.Rules[0].Output.Category != "dresses" || len(cfg.Faults) != 3 || cfg.Faults[0].Delay != Duration(5*time.Second) ||
		cfg.ScoreRules[0].Score != 0.92 || cfg.Latency.Dist != "lognormal" {
		t.Fatalf("loaded %+v", cfg)
	}
}

// video_url values are checked like vLLM's: a base64 data URI; the simulator fetches no
// URL, and bytes that are no video are a 400 (what a corrupt upload gets).
func TestChatVideoRefused(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip(err)
	}
	srv := NewServer(Config{})
	defer srv.Close()
	f := func(url, want string) {
		t.Helper()
		st, resp := post(t, srv.URL+"/v1/chat/completions",
			`{"messages":[{"role":"user","content":[{"type":"video_url","video_url":{"url":"`+url+`"}}]}],"max_tokens":100}`)
		if st != 400 || !strings.Contains(gjson.Get(resp, "error.message").String(), want) {
			t.Fatalf("%.40s: %d %s, want 400 with %q", url, st, resp, want)
		}
	}
	f("https://cdn.example/v.mp4", "not fetched")
	f("data:video/mp4,AAAA", "Only base64 data URLs")
	f("data:video/mp4;base64,"+base64.StdEncoding.EncodeToString([]byte("not a video at all")), "cannot decode the video")
}
