package model

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// FuzzDecodeScoresRoundTrip: scores written by a server in any of the shapes decodeScores
// reads (results[] with relevance_score or score, data[], a bare array; in any order, with
// extra fields) come back exactly, in input order.
func FuzzDecodeScoresRoundTrip(f *testing.F) {
	f.Add([]byte("\x01\x02\x03\x04\x05\x06\x07\x08\x09"), uint8(0))
	f.Add([]byte("seed bytes that become scores and a shuffle"), uint8(3))
	f.Fuzz(func(t *testing.T, raw []byte, shape uint8) {
		scores := floats(raw, 32)
		if len(scores) == 0 {
			return
		}
		rng := rand.New(rand.NewPCG(uint64(len(raw)), uint64(shape)))
		order := rng.Perm(len(scores))
		items := make([]map[string]any, len(scores))
		key := [...]string{"relevance_score", "score", "score", "relevance_score"}[shape%4]
		for j, i := range order {
			items[j] = map[string]any{"index": i, key: scores[i]}
			if shape&4 != 0 {
				items[j]["document"] = map[string]string{"text": "d"}
			}
		}
		var doc any
		switch shape % 4 {
		case 0:
			doc = map[string]any{"id": "rerank-1", "model": "m", "results": items, "usage": map[string]int{"total_tokens": 3}}
		case 1:
			doc = items
		case 2:
			doc = map[string]any{"object": "list", "data": items}
		case 3:
			doc = map[string]any{"results": items, "meta": map[string]any{"api_version": map[string]string{"version": "2"}}}
		}
		body, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := decodeScores(body, len(scores))
		if err != nil {
			t.Fatalf("decodeScores(%s): %v", body, err)
		}
		for i := range scores {
			if got[i] != scores[i] {
				t.Fatalf("score %d: %v came back as %v from %s", i, scores[i], got[i], body)
			}
		}
		// One document fewer or more than the server scored is an error, never a guess.
		if _, _, err := decodeScores(body, len(scores)+1); err == nil {
			t.Fatalf("%d scores accepted for %d documents", len(scores), len(scores)+1)
		}
	})
}

// floats turns fuzz bytes into up to max finite float64 values (8 bytes each; NaN and ±Inf,
// which no JSON server can send, are skipped).
func floats(raw []byte, max int) []float64 {
	var out []float64
	for len(raw) >= 8 && len(out) < max {
		v := math.Float64frombits(binary.LittleEndian.Uint64(raw))
		raw = raw[8:]
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			out = append(out, v)
		}
	}
	return out
}

// FuzzDecodeEmbeddingsValid: whatever the body, accepted embeddings are exactly what the body
// says: one vector per input, each element a JSON number that is finite as a float32 (a value
// out of float32 range must not become ±Inf), at an integral index in range.
func FuzzDecodeEmbeddingsValid(f *testing.F) {
	f.Add([]byte(`{"data":[{"index":0,"embedding":[0.1,0.2]}]}`), uint8(1))
	f.Add([]byte(`{"data":[{"index":1,"embedding":[1,2]},{"index":0,"embedding":[3,4]}],"model":"m","usage":{"prompt_tokens":4}}`), uint8(2))
	f.Add([]byte(`{"data":[{"index":0,"embedding":["a",{},null,true]}]}`), uint8(1))
	f.Add([]byte(`{"data":[{"index":0,"embedding":[1e39,-1e300]}]}`), uint8(1))
	f.Add([]byte(`{"data":[{"index":0.5,"embedding":[1]}]}`), uint8(1))
	f.Fuzz(func(t *testing.T, body []byte, n8 uint8) {
		n := int(n8%8) + 1
		vecs, _, _, err := decodeEmbeddings(body, n)
		if err != nil {
			return
		}
		if len(vecs) != n {
			t.Fatalf("%d vectors for %d inputs", len(vecs), n)
		}
		byIndex := map[int]gjson.Result{}
		for _, it := range gjson.GetBytes(body, "data").Array() {
			idx := it.Get("index")
			if idx.Type != gjson.Number || idx.Float() != math.Trunc(idx.Float()) {
				t.Fatalf("accepted a non-integral index %s in %s", idx.Raw, body)
			}
			byIndex[int(idx.Int())] = it.Get("embedding")
		}
		for i, v := range vecs {
			elems := byIndex[i].Array()
			if len(elems) != len(v) {
				t.Fatalf("vector %d has %d values, the body %d", i, len(v), len(elems))
			}
			for j, x := range elems {
				if x.Type != gjson.Number {
					t.Fatalf("vector %d value %d is %s, not a number, yet accepted as %v", i, j, x.Raw, v[j])
				}
				if math.IsInf(float64(v[j]), 0) || math.IsNaN(float64(v[j])) {
					t.Fatalf("vector %d value %d (%s) accepted as %v", i, j, x.Raw, v[j])
				}
				if v[j] != float32(x.Float()) {
					t.Fatalf("vector %d value %d: %s became %v", i, j, x.Raw, v[j])
				}
			}
		}
	})
}

// FuzzDecodeChatRoundTrip: a chat completion in vLLM's shape comes back as written: content,
// finish reason, model, usage, and the first token's top logprobs (the sampled token included).
func FuzzDecodeChatRoundTrip(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", "chat_logprobs.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(b), "stop", "yes|no|maybe", []byte("\x00\x00\x00\x00\x00\x00\xe0\xbf"))
	f.Add("{\"keywords\":[\"红色\"]}", "length", "", []byte{})
	f.Add("", "stop", "Yes| yes|NO", []byte("12345678abcdefgh"))
	f.Fuzz(func(t *testing.T, content, finish, tokens string, lp []byte) {
		if !utf8.ValidString(content) || !utf8.ValidString(tokens) || !utf8.ValidString(finish) {
			return // JSON cannot carry them unchanged
		}
		var top []map[string]any
		want := map[string]float64{}
		vals := floats(lp, 8)
		for i, tok := range strings.Split(tokens, "|") {
			if tokens == "" || i >= len(vals) {
				break
			}
			if _, dup := want[tok]; dup {
				continue
			}
			v := -math.Abs(vals[i])
			top = append(top, map[string]any{"token": tok, "logprob": v})
			want[tok] = v
		}
		choice := map[string]any{"index": 0, "finish_reason": finish,
			"message": map[string]any{"role": "assistant", "content": content}}
		if len(top) > 0 {
			choice["logprobs"] = map[string]any{"content": []any{map[string]any{
				"token": top[0]["token"], "logprob": top[0]["logprob"], "top_logprobs": top}}}
		}
		body, err := json.Marshal(map[string]any{"id": "chatcmpl-1", "object": "chat.completion", "model": "qwen",
			"choices": []any{choice}, "usage": map[string]int{"prompt_tokens": 7, "completion_tokens": 3}})
		if err != nil {
			t.Fatal(err)
		}
		var r ChatResponse
		err = decodeChat(body, &r)
		if content == "" && len(top) == 0 {
			if err == nil {
				t.Fatalf("empty content and no logprobs accepted: %s", body)
			}
			return
		}
		if err != nil {
			t.Fatalf("decodeChat(%s): %v", body, err)
		}
		if r.Content != content || r.FinishReason != finish || r.Model != "qwen" || r.PromptTokens != 7 || r.CompletionTokens != 3 {
			t.Fatalf("decodeChat(%s) = %+v", body, r)
		}
		if len(want) == 0 {
			if r.TopLogprobs != nil {
				t.Fatalf("logprobs %v from a body without any", r.TopLogprobs)
			}
			return
		}
		if len(r.TopLogprobs) != len(want) {
			t.Fatalf("top logprobs %v, want %v", r.TopLogprobs, want)
		}
		for k, v := range want {
			if r.TopLogprobs[k] != v {
				t.Fatalf("top logprob %q = %v, want %v", k, r.TopLogprobs[k], v)
			}
		}
	})
}

// What FuzzDecodeEmbeddingsValid found: a fractional index, non-numbers and values beyond
// float32 were accepted (as index 0, zeros and ±Inf).
func TestDecodeEmbeddingsRejectsGarbage(t *testing.T) {
	for _, body := range []string{
		`{"data":[{"index":0.1,"embedding":[1]}]}`,
		`{"data":[{"index":0,"embedding":["a"]}]}`,
		`{"data":[{"index":0,"embedding":[null]}]}`,
		`{"data":[{"index":0,"embedding":[{}]}]}`,
		`{"data":[{"index":0,"embedding":[1e39]}]}`,
		`{"data":[{"index":0,"embedding":[-1e300]}]}`,
	} {
		if v, _, _, err := decodeEmbeddings([]byte(body), 1); err == nil {
			t.Errorf("%s accepted as %v", body, v)
		} else if Reason(err) != KindBadOutput {
			t.Errorf("%s: %v, want %s", body, err, KindBadOutput)
		}
	}
	v, _, _, err := decodeEmbeddings([]byte(`{"data":[{"index":0,"embedding":[3.4e38,-1.5,0]}]}`), 1)
	if err != nil || len(v[0]) != 3 {
		t.Fatalf("valid embedding: %v %v", v, err)
	}
}
