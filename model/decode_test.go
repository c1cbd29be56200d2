package model

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDecodeError(t *testing.T) {
	f := func(status int, body, wantKind, wantMsg string) {
		t.Helper()
		e := decodeError(status, []byte(body))
		if e.Kind != wantKind || e.Status != status || e.Message != wantMsg {
			t.Fatalf("%d %s\n got %s %d %q\nwant %s %d %q", status, body, e.Kind, e.Status, e.Message, wantKind, status, wantMsg)
		}
	}
	// vLLM ≥ 0.10.1
	f(404, `{"error":{"message":"The model `+"`x`"+` does not exist.","type":"NotFoundError","param":"model","code":404}}`, KindBadRequest, "NotFoundError: The model `x` does not exist.")
	f(500, `{"error":{"message":"boom","type":"InternalServerError","param":null,"code":500}}`, KindUnavailable, "InternalServerError: boom")
	// old vLLM, SGLang
	f(400, `{"object":"error","message":"bad logprobs","type":"BadRequestError","param":null,"code":400}`, KindBadRequest, "BadRequestError: bad logprobs")
	// vLLM 401
	f(401, `{"error":"Unauthorized"}`, KindBadRequest, "Unauthorized")
	// FastAPI
	f(404, `{"detail":"Not Found"}`, KindBadRequest, "Not Found")
	f(422, `{"detail":[{"loc":["body","messages"],"msg":"Field required","type":"missing"}]}`, KindBadRequest, "body.messages: Field required")
	// plain text
	f(500, "Internal Server Error\n", KindUnavailable, "Internal Server Error")
	f(502, "<html><body>Bad Gateway</body></html>", KindUnavailable, "<html><body>Bad Gateway</body></html>")
	// llama.cpp
	f(503, `{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}`, KindUnavailable, "unavailable_error: Loading model")
	f(400, `{"error":{"code":400,"message":"too long","type":"exceed_context_size_error","n_prompt_tokens":9000,"n_ctx":8192}}`, KindBadRequest, "exceed_context_size_error: too long")
	// Ollama native and /v1
	f(404, `{"error":"model \"qwen3-vl:4b\" not found, try pulling it first"}`, KindBadRequest, `model "qwen3-vl:4b" not found, try pulling it first`)
	f(400, `{"error":{"message":"image URLs are not currently supported","type":"invalid_request_error","param":null,"code":null}}`, KindBadRequest, "invalid_request_error: image URLs are not currently supported")
	// TEI
	f(429, `{"error":"Model is overloaded","error_type":"Overloaded"}`, KindOverloaded, "Overloaded: Model is overloaded")
	f(413, `{"error":"batch too large","error_type":"Validation"}`, KindBadRequest, "Validation: batch too large")
	f(424, `{"error":"backend","error_type":"Backend"}`, KindBadRequest, "Backend: backend")
	// others
	f(504, ``, KindTimeout, "empty body with status 504")
	f(503, ``, KindUnavailable, "empty body with status 503")
	f(501, `{"error":{"message":"Only base64 data URLs are supported for now.","type":"NotImplementedError","param":null,"code":501}}`, KindUnavailable, "NotImplementedError: Only base64 data URLs are supported for now.")
	f(400, `[1,2]`, KindBadRequest, "[1,2]")
}

func TestDecodeChat(t *testing.T) {
	f := func(file, wantContent, wantFinish string, wantTop map[string]float64, wantErrKind string) {
		t.Helper()
		body, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		var r ChatResponse
		err = decodeChat(body, &r)
		if wantErrKind != "" {
			if Reason(err) != wantErrKind {
				t.Fatalf("%s: err %v, want kind %s", file, err, wantErrKind)
			}
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if r.Content != wantContent || r.FinishReason != wantFinish || len(r.TopLogprobs) != len(wantTop) {
			t.Fatalf("%s: got %+v", file, r)
		}
		for k, v := range wantTop {
			if r.TopLogprobs[k] != v {
				t.Fatalf("%s: top[%q] = %v, want %v", file, k, r.TopLogprobs[k], v)
			}
		}
	}
	f("chat_vllm.json", `{"keywords":["red running shoes","nike"]}`, "stop", nil, "")
	f("chat_logprobs.json", "yes", "stop", map[string]float64{"yes": -0.2231435513142097, "no": -1.6094379124341003, "Yes": -20}, "")
	f("chat_length.json", `{"keywords":["red`, "length", nil, "")
	f("chat_empty_choices.json", "", "", nil, KindBadOutput)
	f("chat_null_content.json", "", "", nil, KindBadOutput)
	f("chat_error_in_200.json", "", "", nil, KindBadRequest)
}

func TestDecodeScores(t *testing.T) {
	f := func(body string, n int, want string) {
		t.Helper()
		s, _, err := decodeScores([]byte(body), n)
		got := ""
		if err != nil {
			got = "error: " + err.(*Error).Kind
		} else {
			for i, x := range s {
				if i > 0 {
					got += ","
				}
				got += string(appendFloat(nil, x))
			}
		}
		if got != want {
			t.Fatalf("%s\n got %s\nwant %s", body, got, want)
		}
	}
	f(`{"id":"rerank-1","model":"m","usage":{"total_tokens":56},"results":[{"index":1,"document":{"text":"b"},"relevance_score":0.9},{"index":0,"document":{"text":"a"},"relevance_score":0.1}]}`, 2, "0.1,0.9")
	f(`[{"index":2,"score":0.7},{"index":0,"score":0.5},{"index":1,"score":0.01}]`, 3, "0.5,0.01,0.7")
	f(`{"object":"list","data":[{"index":0,"object":"score","score":0.001},{"index":1,"object":"score","score":1}]}`, 2, "0.001,1")
	f(`{"results":[{"index":0,"relevance_score":0.98}],"meta":{"api_version":{"version":"2"}}}`, 1, "0.98")
	f(`{"results":[{"index":0,"relevance_score":0.98}]}`, 2, "error: bad_output")
	f(`{"results":[{"index":5,"relevance_score":0.98}]}`, 1, "error: bad_output")
	f(`{"results":[{"index":0,"relevance_score":0.5},{"index":0,"relevance_score":0.5}]}`, 2, "error: bad_output")
	f(`{"results":[{"index":0,"relevance_score":"high"}]}`, 1, "error: bad_output")
	f(`{"results":[{"index":0.5,"relevance_score":1}]}`, 1, "error: bad_output")
	f(`{"results":[{"index":0,"relevance_score":1}`, 1, "error: bad_output")
	f(`{"error":{"message":"x","type":"BadRequestError","code":400}}`, 1, "error: bad_request")
}

func FuzzDecodeResponses(f *testing.F) {
	for _, name := range []string{"chat_vllm.json", "chat_logprobs.json", "chat_length.json", "chat_empty_choices.json", "chat_null_content.json", "chat_error_in_200.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`[{"index":2,"score":0.7},{"index":0,"score":0.5}]`))
	f.Add([]byte(`{"data":[{"index":0,"embedding":[0.1,0.2]}]}`))
	f.Add([]byte(`{"detail":[{"loc":["body"],"msg":"x"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var r ChatResponse
		decodeChat(body, &r)
		decodeScores(body, 3)
		decodeEmbeddings(body, 2)
		if e := decodeError(500, body); e.Kind != KindUnavailable || len(e.Message) > 310 {
			t.Fatalf("decodeError: %+v", e)
		}
	})
}
