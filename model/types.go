package model

import "encoding/json"

// This file is the contract between model/ and its consumers (rewrite/, rerank/, proxy/).
// Field names follow the OpenAI-compatible wire format (../shared/reference/model-servers.md).

// ChatRequest is one chat completion call. Model is filled from the client's config when empty.
type ChatRequest struct {
	Model       string    `json:"model,omitempty"`
	Messages    []Message `json:"messages"`
	MaxTokens   int       `json:"max_tokens"`
	Temperature float64   `json:"temperature"`
	TopP        float64   `json:"top_p"`
	Seed        *int64    `json:"seed,omitempty"`
	// ResponseFormat is sent as is, e.g. {"type":"json_schema","json_schema":{...}}.
	ResponseFormat json.RawMessage `json:"response_format,omitempty"`
	// Choices, when set, constrains the output to one of the strings (sent as
	// structured_outputs.choice for vLLM and guided_choice for older servers).
	Choices     []string `json:"-"`
	Logprobs    bool     `json:"logprobs,omitempty"`
	TopLogprobs int      `json:"top_logprobs,omitempty"`
}

// Message is a chat message. Content holds either a plain string (Text) or parts.
type Message struct {
	Role  string
	Text  string
	Parts []Part
}

// Part is one content part: Type "text" with Text, "image_url" with URL (a
// data:image/...;base64 URI or an http(s) URL), or "video_url" with URL (a
// data:video/mp4;base64 URI or an http(s) URL the server fetches; vLLM only, see
// Client.AcceptsVideo).
type Part struct {
	Type string
	Text string
	URL  string
}

// TextPart, ImagePart and VideoPart build content parts.
func TextPart(s string) Part        { return Part{Type: "text", Text: s} }
func ImagePart(dataURI string) Part { return Part{Type: "image_url", URL: dataURI} }
func VideoPart(url string) Part     { return Part{Type: "video_url", URL: url} }

// ChatResponse is the decoded first choice of a chat completion.
type ChatResponse struct {
	Model        string
	Content      string
	FinishReason string
	// TopLogprobs of the first generated token, token → logprob; nil when the server sent none.
	TopLogprobs      map[string]float64
	PromptTokens     int
	CompletionTokens int
}

// RerankRequest scores documents against a query (vLLM /v1/rerank, Jina/Cohere shape, or TEI /rerank).
type RerankRequest struct {
	Model string
	Query Document
	Docs  []Document
}

// Document is a query or candidate: text, image (data URI or URL), or both.
type Document struct {
	Text  string
	Image string
}

// RerankResponse holds one score per input document, in input order
// (servers return results sorted by score; the client maps them back by index).
type RerankResponse struct {
	Model  string
	Scores []float64
}

// EmbedRequest / EmbedResponse are the OpenAI-compatible /v1/embeddings call.
type EmbedRequest struct {
	Model string
	Input []string
}

type EmbedResponse struct {
	Model   string
	Vectors [][]float32
}
