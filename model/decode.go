package model

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// kindForStatus classifies an HTTP error status (reference §7: status first).
func kindForStatus(status int) string {
	switch {
	case status == 408 || status == 504:
		return KindTimeout
	case status == 429:
		return KindOverloaded
	case status >= 400 && status < 500:
		return KindBadRequest
	}
	return KindUnavailable
}

// decodeError turns an error response into an *Error. It reads every body
// shape of the reference: {"error":{"message",…}} (vLLM ≥0.10.1,
// llama.cpp, Ollama /v1), {"object":"error","message",…} (old vLLM, SGLang),
// {"error":"…"} (vLLM 401, Ollama native, TEI with "error_type"),
// {"detail":…} (FastAPI, string or validation list), and plain text.
func decodeError(status int, body []byte) *Error {
	return &Error{Kind: kindForStatus(status), Status: status, Message: errorMessage(status, body)}
}

func errorMessage(status int, body []byte) string {
	if len(body) == 0 {
		return fmt.Sprintf("empty body with status %d", status)
	}
	if !gjson.ValidBytes(body) {
		return clip(strings.TrimSpace(string(body)))
	}
	r := gjson.ParseBytes(body)
	if !r.IsObject() {
		return clip(r.String())
	}
	msg, typ := "", ""
	switch e := r.Get("error"); {
	case e.IsObject():
		msg, typ = e.Get("message").String(), e.Get("type").String()
	case e.Type == gjson.String:
		msg, typ = e.String(), r.Get("error_type").String()
	}
	if msg == "" && r.Get("object").String() == "error" {
		msg, typ = r.Get("message").String(), r.Get("type").String()
	}
	if msg == "" {
		switch d := r.Get("detail"); {
		case d.Type == gjson.String:
			msg = d.String()
		case d.IsArray():
			// FastAPI validation: [{"loc":[…],"msg":"…","type":"…"}]
			var parts []string
			for _, it := range d.Array() {
				loc := make([]string, 0, 3)
				for _, l := range it.Get("loc").Array() {
					loc = append(loc, l.String())
				}
				parts = append(parts, strings.Join(loc, ".")+": "+it.Get("msg").String())
			}
			msg = strings.Join(parts, "; ")
		case d.Exists():
			msg = d.Raw
		}
	}
	if msg == "" {
		msg = r.Get("message").String()
	}
	if msg == "" {
		return clip(string(body))
	}
	if typ != "" {
		msg = typ + ": " + msg
	}
	return clip(msg)
}

// clip bounds a server message kept in errors and logs.
func clip(s string) string {
	const max = 300
	if len(s) <= max {
		return s
	}
	s = s[:max]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

func badOutput(format string, args ...any) *Error {
	return &Error{Kind: KindBadOutput, Status: 200, Message: fmt.Sprintf(format, args...)}
}

// errorIn200 handles a 200 body that carries an error object (SSE-style
// errors, proxies in front of the server).
func errorIn200(r gjson.Result) *Error {
	e := r.Get("error")
	if !e.Exists() || r.Get("choices").Exists() || r.Get("results").Exists() || r.Get("data").Exists() {
		return nil
	}
	status := int(e.Get("code").Int())
	if status < 400 || status > 599 {
		status = 500
	}
	return decodeError(status, []byte(r.Raw))
}

// decodeChat reads the first choice of a chat completion. Content is
// returned even when cut by max_tokens (FinishReason "length"): the caller's
// parser decides whether it can use it. No choices, or neither content nor
// logprobs, is KindBadOutput.
func decodeChat(body []byte, out *ChatResponse) error {
	if !gjson.ValidBytes(body) {
		return badOutput("cannot decode chat response: invalid JSON (%d bytes)", len(body))
	}
	r := gjson.ParseBytes(body)
	if !r.IsObject() {
		return badOutput("cannot decode chat response: not a JSON object")
	}
	if e := errorIn200(r); e != nil {
		return e
	}
	out.Model = r.Get("model").String()
	u := r.Get("usage")
	out.PromptTokens = int(u.Get("prompt_tokens").Int())
	out.CompletionTokens = int(u.Get("completion_tokens").Int())
	ch := r.Get("choices.0")
	if !ch.IsObject() {
		return badOutput("cannot use chat response: no choices")
	}
	out.FinishReason = ch.Get("finish_reason").String()
	if c := ch.Get("message.content"); c.Type == gjson.String {
		out.Content = c.String()
	}
	if lp := ch.Get("logprobs.content.0"); lp.IsObject() {
		tops := lp.Get("top_logprobs").Array()
		out.TopLogprobs = make(map[string]float64, len(tops)+1)
		for _, t := range tops {
			if v := t.Get("logprob"); v.Type == gjson.Number {
				out.TopLogprobs[t.Get("token").String()] = v.Float()
			}
		}
		// The sampled token is in the top list on vLLM; keep it when a server omits it.
		if tok, v := lp.Get("token").String(), lp.Get("logprob"); v.Type == gjson.Number {
			if _, ok := out.TopLogprobs[tok]; !ok {
				out.TopLogprobs[tok] = v.Float()
			}
		}
		if len(out.TopLogprobs) == 0 {
			out.TopLogprobs = nil
		}
	}
	if out.Content == "" && out.TopLogprobs == nil {
		return badOutput("cannot use chat response: empty content (finish_reason %q)", out.FinishReason)
	}
	return nil
}

// decodeScores maps scored results back to input order: items carry
// "index" and "relevance_score" (vLLM, Jina, Cohere, llama.cpp) or "score"
// (TEI, SGLang, vLLM /score). items is results[], data[] or a bare array.
func decodeScores(body []byte, n int) ([]float64, string, error) {
	if !gjson.ValidBytes(body) {
		return nil, "", badOutput("cannot decode rerank response: invalid JSON (%d bytes)", len(body))
	}
	r := gjson.ParseBytes(body)
	var items gjson.Result
	switch {
	case r.IsArray():
		items = r
	case r.IsObject():
		if e := errorIn200(r); e != nil {
			return nil, "", e
		}
		items = r.Get("results")
		if !items.Exists() {
			items = r.Get("data")
		}
	}
	if !items.IsArray() {
		return nil, "", badOutput("cannot use rerank response: no results")
	}
	scores := make([]float64, n)
	seen := make([]bool, n)
	got := 0
	var bad error
	items.ForEach(func(_, it gjson.Result) bool {
		idx := it.Get("index")
		s := it.Get("relevance_score")
		if !s.Exists() {
			s = it.Get("score")
		}
		i := int(idx.Int())
		switch {
		case idx.Type != gjson.Number || float64(i) != idx.Float() || i < 0 || i >= n:
			bad = badOutput("cannot use rerank response: index %s out of range [0,%d)", clip(idx.Raw), n)
		case seen[i]:
			bad = badOutput("cannot use rerank response: index %d appears twice", i)
		case s.Type != gjson.Number || math.IsNaN(s.Float()) || math.IsInf(s.Float(), 0):
			bad = badOutput("cannot use rerank response: score of index %d is %s", i, clip(s.Raw))
		default:
			scores[i], seen[i] = s.Float(), true
			got++
			return true
		}
		return false
	})
	if bad != nil {
		return nil, "", bad
	}
	if got != n {
		return nil, "", badOutput("cannot use rerank response: %d scores for %d documents", got, n)
	}
	return scores, r.Get("model").String(), nil
}

// decodeEmbeddings reads data[].embedding back into input order.
func decodeEmbeddings(body []byte, n int) ([][]float32, string, int, error) {
	if !gjson.ValidBytes(body) {
		return nil, "", 0, badOutput("cannot decode embeddings response: invalid JSON (%d bytes)", len(body))
	}
	r := gjson.ParseBytes(body)
	if e := errorIn200(r); e != nil {
		return nil, "", 0, e
	}
	data := r.Get("data")
	if !data.IsArray() {
		return nil, "", 0, badOutput("cannot use embeddings response: no data")
	}
	vecs := make([][]float32, n)
	var bad error
	data.ForEach(func(_, it gjson.Result) bool {
		idx := it.Get("index")
		i := int(idx.Int())
		if idx.Type != gjson.Number || float64(i) != idx.Float() || i < 0 || i >= n || vecs[i] != nil {
			bad = badOutput("cannot use embeddings response: bad index %s", clip(idx.Raw))
			return false
		}
		emb := it.Get("embedding")
		if !emb.IsArray() {
			bad = badOutput("cannot use embeddings response: embedding %d is not a list", i)
			return false
		}
		v := make([]float32, 0, 64)
		emb.ForEach(func(_, x gjson.Result) bool {
			// A string, null or object is not a zero, and a number beyond float32 is not ±Inf:
			// either would reach a kNN query as a silently wrong vector.
			f := float32(x.Float())
			if x.Type != gjson.Number || math.IsInf(float64(f), 0) {
				bad = badOutput("cannot use embeddings response: embedding %d holds %s, not a float32", i, clip(x.Raw))
				return false
			}
			v = append(v, f)
			return true
		})
		if bad != nil {
			return false
		}
		vecs[i] = v
		return true
	})
	if bad != nil {
		return nil, "", 0, bad
	}
	for i, v := range vecs {
		if v == nil {
			return nil, "", 0, badOutput("cannot use embeddings response: no vector for input %d", i)
		}
	}
	return vecs, r.Get("model").String(), int(r.Get("usage.prompt_tokens").Int()), nil
}
