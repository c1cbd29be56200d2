// Package modeltest simulates the model servers vlproxy talks to (vLLM,
// SGLang, llama.cpp, Ollama, TEI) closely enough to test and benchmark the
// client and its consumers without a GPU: chat completions with images,
// rerank (vLLM/Jina/Cohere and TEI shapes), score, embeddings, health and
// model listing, with deterministic outputs, latency distributions, error
// injection in every body shape of ../../shared/reference/model-servers.md,
// and malformed outputs.
package modeltest

import (
	"fmt"
	"time"
)

// DefaultModel is the served model name when Config.Model is empty.
const DefaultModel = "Qwen/Qwen3-VL-4B-Instruct"

// Config drives the simulator. The zero value is usable; SetConfig replaces it at runtime.
type Config struct {
	// Model is the served model name (default DefaultModel). A request naming
	// another model gets vLLM's 404; an empty model is accepted.
	Model string `json:"model" yaml:"model"`
	// APIKey, when set, guards /v1/* and /v2/* like `vllm serve --api-key`
	// (401 {"error":"Unauthorized"}). Default: none.
	APIKey string `json:"api_key" yaml:"api_key"`
	// Latency added to every inference request (not /health). Default: none.
	Latency Latency `json:"latency" yaml:"latency"`
	// ErrorRate is the fraction of inference requests answered with RateFault (default 0).
	ErrorRate float64 `json:"error_rate" yaml:"error_rate"`
	// RateFault is the answer for ErrorRate (default: 500 in the vLLM nested shape).
	RateFault Fault `json:"rate_fault" yaml:"rate_fault"`
	// Faults are checked in order before a request is served; the first match answers.
	Faults []Fault `json:"faults" yaml:"faults"`
	// Rules decide chat keyword outputs; the first matching rule wins.
	Rules []Rule `json:"rules" yaml:"rules"`
	// Images maps the hex SHA-256 of image bytes to what the model "sees" in it.
	// Rerank and judge scores use these keywords as the image's text.
	Images map[string]Output `json:"images" yaml:"images"`
	// ScoreRules fix rerank/judge scores; the first matching rule wins, else
	// ScoreFunc, else the fraction of query words found in the document.
	ScoreRules []ScoreRule `json:"score_rules" yaml:"score_rules"`
	// ScoreFunc, when set, scores (query, document) for rerank, score and chat-judge calls.
	ScoreFunc func(query, doc Doc) float64 `json:"-" yaml:"-"`
	// QueryPattern is a regexp whose group 1 picks the text that default
	// keywords are derived from (default: the whole last user message text).
	QueryPattern string `json:"query_pattern" yaml:"query_pattern"`
	// MaxKeywords caps keywords derived from text (default 8).
	MaxKeywords int `json:"max_keywords" yaml:"max_keywords"`
	// MaxLogprobs is vLLM's --max-logprobs (default 20).
	MaxLogprobs int `json:"max_logprobs" yaml:"max_logprobs"`
	// MaxModelLen is vLLM's --max-model-len in tokens (default 16384).
	MaxModelLen int `json:"max_model_len" yaml:"max_model_len"`
	// MaxImages is --limit-mm-per-prompt image (default 4).
	MaxImages int `json:"max_images" yaml:"max_images"`
	// ImageTokens is the prompt tokens counted per image (default 256).
	ImageTokens int `json:"image_tokens" yaml:"image_tokens"`
	// MaxVideos is --limit-mm-per-prompt video (default 1); -1 refuses every video with
	// vLLM's 400, as a server started with '{"video":0}' (the README's image-only serve line) does.
	MaxVideos int `json:"max_videos" yaml:"max_videos"`
	// VideoTokens is the prompt tokens counted per video (default 2048).
	VideoTokens int `json:"video_tokens" yaml:"video_tokens"`
	// EmbedDim is the embedding dimension (default 16).
	EmbedDim int `json:"embed_dim" yaml:"embed_dim"`
	// EmbedImagesOnly refuses a text-only embedding with a 400, as an image-only encoder
	// (CLIP's vision half, EfficientNet) does. Default false.
	EmbedImagesOnly bool `json:"embed_images_only" yaml:"embed_images_only"`
	// Unhealthy makes /health answer 503 (vLLM's dead engine). Default false.
	Unhealthy bool `json:"unhealthy" yaml:"unhealthy"`
	// Seed seeds latency and error-rate draws (default 1), so runs repeat.
	Seed uint64 `json:"seed" yaml:"seed"`
}

// Latency is a distribution of simulated model time.
type Latency struct {
	// Dist is fixed (Base), uniform (Base + [0, Jitter)) or lognormal (median Base, Sigma). Default fixed.
	Dist string `json:"dist" yaml:"dist"`
	// Base is the fixed latency, the uniform minimum or the lognormal median. Default 0.
	Base Duration `json:"base" yaml:"base"`
	// Jitter is the width of the uniform distribution. Default 0.
	Jitter Duration `json:"jitter" yaml:"jitter"`
	// Sigma is the lognormal shape (default 0.5).
	Sigma float64 `json:"sigma" yaml:"sigma"`
}

// Duration is a time.Duration written as "20ms" in JSON and YAML rule files.
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("cannot parse duration %q: %w", b, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Rule maps a prompt to a keyword output.
type Rule struct {
	// Text matches when the user text contains it (case-insensitive). Empty matches any text.
	Text string `json:"text" yaml:"text"`
	// Image matches when the prompt carries an image with this hex SHA-256. Empty matches any.
	Image string `json:"image" yaml:"image"`
	// Output is what the model answers.
	Output Output `json:"output" yaml:"output"`
}

// Output is a keyword answer: rendered as
// {"keywords":[…],"category":"…","attributes":{…}} (empty fields omitted).
type Output struct {
	Keywords   []string          `json:"keywords" yaml:"keywords"`
	Category   string            `json:"category,omitempty" yaml:"category"`
	Attributes map[string]string `json:"attributes,omitempty" yaml:"attributes"`
	// Rows are what a table request (json_schema "vlproxy_table_rows") reads in the image.
	Rows []TableRow `json:"rows,omitempty" yaml:"rows"`
}

// ScoreRule fixes the score of matching (query, document) pairs.
type ScoreRule struct {
	// Query and Doc match when the query / document text contains them
	// (case-insensitive); Image when the document carries an image with this
	// hex SHA-256. Empty fields match anything.
	Query string  `json:"query" yaml:"query"`
	Doc   string  `json:"doc" yaml:"doc"`
	Image string  `json:"image" yaml:"image"`
	Score float64 `json:"score" yaml:"score"`
}

// Doc is a query or a document as the simulator sees it: its text and the
// hex SHA-256 of its images (for URLs: of the URL string).
type Doc struct {
	Text   string
	Images []string
}

// Route names for Fault.Route and Calls.
const (
	RouteChat   = "chat"   // /v1/chat/completions
	RouteRerank = "rerank" // /v1/rerank, /rerank, /v2/rerank (vLLM/Jina/Cohere or TEI body)
	RouteScore  = "score"  // /score, /v1/score
	RouteEmbed  = "embed"  // /v1/embeddings
	RouteHealth = "health" // /health
	RouteModels = "models" // /v1/models, /api/tags
)

// Error body shapes (reference §1.5, §2.5, §5).
const (
	ShapeVLLM         = "vllm"          // {"error":{"message","type","param","code"}} (vLLM ≥0.10.1)
	ShapeVLLMFlat     = "vllm_flat"     // {"object":"error","message","type","param","code"} (old vLLM, SGLang)
	ShapeUnauthorized = "unauthorized"  // {"error":"Unauthorized"} (vLLM --api-key)
	ShapeFastAPI      = "fastapi"       // {"detail":"Not Found"}
	ShapeText         = "text"          // text/plain "Internal Server Error"
	ShapeLlamaCpp     = "llamacpp"      // {"error":{"code","message","type"}}
	ShapeOllama       = "ollama"        // {"error":"message"} (native API)
	ShapeOllamaOpenAI = "ollama_openai" // {"error":{"message","type":"invalid_request_error","param":null,"code":null}}
	ShapeTEI          = "tei"           // {"error":"message","error_type":"Overloaded"}
	ShapeEmpty        = "empty"         // no body (vLLM /health 503)
)

// Malformed 200 outputs for Fault.Output.
const (
	OutNonJSON      = "non_json"      // content is prose, not JSON
	OutTruncated    = "truncated"     // content is JSON cut in the middle, finish_reason "stop"
	OutLength       = "length"        // content cut, finish_reason "length"
	OutEmptyChoices = "empty_choices" // "choices": []
	OutNullContent  = "null_content"  // "content": null
	OutPlainList    = "plain_list"    // content "red, shoes, running"
	OutBadBody      = "bad_body"      // the HTTP body itself is truncated JSON
	OutNoLogprobs   = "no_logprobs"   // logprobs requested but "logprobs": null
	OutBadIndex     = "bad_index"     // rerank result with an index out of range
)

// Fault injects an error or a malformed answer.
type Fault struct {
	// Route limits the fault to one route (Route* constants); empty: every inference route.
	Route string `json:"route" yaml:"route"`
	// Match limits the fault to request bodies containing this string; empty: any.
	Match string `json:"match" yaml:"match"`
	// Status is the HTTP status (default: by shape, else 500; 200 with Output).
	Status int `json:"status" yaml:"status"`
	// Shape is the error body shape (Shape* constants, default vllm).
	Shape string `json:"shape" yaml:"shape"`
	// Message is the error message (default: a realistic one for the status).
	Message string `json:"message" yaml:"message"`
	// Output, when set, answers 200 with a malformed output (Out* constants) instead of an error.
	Output string `json:"output" yaml:"output"`
	// Times stops the fault after this many answers (0: never stops).
	Times int `json:"times" yaml:"times"`
	// Delay is extra latency before the fault answers.
	Delay Duration `json:"delay" yaml:"delay"`
}

func (c *Config) withDefaults() Config {
	d := *c
	if d.Model == "" {
		d.Model = DefaultModel
	}
	if d.MaxKeywords <= 0 {
		d.MaxKeywords = 8
	}
	if d.MaxLogprobs <= 0 {
		d.MaxLogprobs = 20
	}
	if d.MaxModelLen <= 0 {
		d.MaxModelLen = 16384
	}
	if d.MaxImages <= 0 {
		d.MaxImages = 4
	}
	if d.ImageTokens <= 0 {
		d.ImageTokens = 256
	}
	if d.MaxVideos == 0 {
		d.MaxVideos = 1
	}
	if d.VideoTokens <= 0 {
		d.VideoTokens = 2048
	}
	if d.EmbedDim <= 0 {
		d.EmbedDim = 16
	}
	if d.Latency.Sigma <= 0 {
		d.Latency.Sigma = 0.5
	}
	if d.Seed == 0 {
		d.Seed = 1
	}
	if d.RateFault.Status == 0 && d.RateFault.Output == "" {
		d.RateFault.Status = 500
	}
	// Faults carry a use counter; copy them so SetConfig callers keep their slice.
	d.Faults = append([]Fault(nil), c.Faults...)
	return d
}
