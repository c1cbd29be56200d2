package model

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"
)

// Client calls one model endpoint in one role. It is safe for concurrent use.
type Client struct {
	role   string
	cfg    Config
	log    *slog.Logger
	path   string // endpoint path including the URL's prefix
	prefix string
	uri    string // scheme://host
	auth   string // "Bearer …" or ""

	tr        *transport
	tlsConfig *tls.Config // nil for http
	lim       *limiter
	brk       *breaker
	met       *clientMetrics
	health    healthState
	stop      chan struct{}
	stopped   sync.WaitGroup
	bufs      sync.Pool
}

// New creates a client for role ("chat", "rerank" or "embed"). Zero config
// fields take DefaultConfig values; the API key is read from
// cfg.APIKeyEnv when cfg.APIKey is empty. Health probes start when
// HealthInterval > 0; Close stops them.
func New(role string, cfg Config, log *slog.Logger) (*Client, error) {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.Default()
	}
	path, err := endpointPath(role, cfg.API)
	if err != nil {
		return nil, err
	}
	if cfg.URL == "" {
		return nil, fmt.Errorf("cannot create %s model client: url is empty", role)
	}
	scheme, host, prefix, err := baseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.APIKey == "" && cfg.APIKeyEnv != "" {
		cfg.APIKey = os.Getenv(cfg.APIKeyEnv)
	}
	c := &Client{
		role: role, cfg: cfg, log: log.With("role", role), path: prefix + path, prefix: prefix,
		uri:  scheme + "://" + host,
		lim:  newLimiter(cfg.MaxConcurrent, cfg.MaxQueue, cfg.QueueWait),
		brk:  newBreaker(cfg.Breaker),
		met:  newClientMetrics(role, host),
		stop: make(chan struct{}),
	}
	c.lim.gauge = c.met.queued
	if scheme == "https" {
		h, _, _ := net.SplitHostPort(host)
		c.tlsConfig = &tls.Config{ServerName: h, MinVersion: tls.VersionTLS12}
	}
	c.tr = newTransport(c.tlsConfig, cfg.DialTimeout, cfg.MaxConcurrent+2)
	if cfg.APIKey != "" {
		c.auth = "Bearer " + cfg.APIKey
	}
	c.health.state = StateUnknown
	if cfg.HealthInterval > 0 {
		c.stopped.Add(1)
		go c.probeLoop()
	}
	c.log.Info("model client ready", "config", cfg)
	return c, nil
}

// Name is the configured model name.
func (c *Client) Name() string { return c.cfg.Model }

// AcceptsVideo reports whether the server flavour takes video_url content parts in chat:
// only vLLM does among the chat APIs (reference §1.2); a vLLM started with
// --limit-mm-per-prompt '{"video":0}' still refuses them with a 400, which callers
// detect on their first video.
func (c *Client) AcceptsVideo() bool { return c.role == RoleChat && c.cfg.API == APIVLLM }

// Close stops health probes and closes idle connections.
func (c *Client) Close() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	c.stopped.Wait()
	c.tr.close()
}

func (c *Client) getBuf() *[]byte {
	if b, ok := c.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 4096)
	return &b
}

func (c *Client) putBuf(b *[]byte) {
	if cap(*b) <= 1<<20 {
		*b = (*b)[:0]
		c.bufs.Put(b)
	}
}

// Chat sends a chat completion and decodes its first choice.
// MaxTokens 0 sends the configured max_tokens; TopP 0 (invalid on every
// server) sends 1.0; TopLogprobs > 0 implies logprobs. Choices are sent in
// the server's own constraint syntax (see appendChoices).
func (c *Client) Chat(ctx context.Context, req *ChatRequest) (*ChatResponse, error) {
	if c.role != RoleChat {
		return nil, &Error{Kind: KindBadRequest, Message: "cannot chat: this client's role is " + c.role}
	}
	if len(req.ResponseFormat) > 0 && !gjson.ValidBytes(req.ResponseFormat) {
		return nil, &Error{Kind: KindBadRequest, Message: "response_format is not valid JSON"}
	}
	bp := c.getBuf()
	defer c.putBuf(bp)
	*bp = c.appendChat((*bp)[:0], req)
	resp := &ChatResponse{}
	err := c.call(ctx, *bp, func(body []byte) error { return decodeChat(body, resp) })
	if err != nil {
		return nil, err
	}
	c.met.promptTokens.Add(float64(resp.PromptTokens))
	c.met.completionTokens.Add(float64(resp.CompletionTokens))
	return resp, nil
}

// AppendChatBody appends the JSON body Chat would send for req (for tests and debugging).
func (c *Client) AppendChatBody(dst []byte, req *ChatRequest) []byte { return c.appendChat(dst, req) }

func (c *Client) appendChat(dst []byte, req *ChatRequest) []byte {
	dst = append(dst, '{')
	if m := cmp(req.Model, c.cfg.Model); m != "" {
		dst = append(dst, `"model":`...)
		dst = appendString(dst, m)
		dst = append(dst, ',')
	}
	dst = append(dst, `"messages":`...)
	dst = appendMessages(dst, req.Messages)
	maxTokens := req.MaxTokens
	if maxTokens <= 0 {
		maxTokens = c.cfg.MaxTokens
	}
	topP := req.TopP
	if topP <= 0 {
		topP = 1
	}
	dst = append(dst, `,"max_tokens":`...)
	dst = strconv.AppendInt(dst, int64(maxTokens), 10)
	dst = append(dst, `,"temperature":`...)
	dst = appendFloat(dst, req.Temperature)
	dst = append(dst, `,"top_p":`...)
	dst = appendFloat(dst, topP)
	if req.Seed != nil {
		dst = append(dst, `,"seed":`...)
		dst = strconv.AppendInt(dst, *req.Seed, 10)
	}
	if len(req.ResponseFormat) > 0 {
		dst = append(dst, `,"response_format":`...)
		dst = append(dst, req.ResponseFormat...)
	}
	if req.Logprobs || req.TopLogprobs > 0 {
		dst = append(dst, `,"logprobs":true`...)
	}
	if req.TopLogprobs > 0 {
		dst = append(dst, `,"top_logprobs":`...)
		dst = strconv.AppendInt(dst, int64(req.TopLogprobs), 10)
	}
	if len(req.Choices) > 0 {
		dst = c.appendChoices(dst, req.Choices)
	}
	return append(dst, '}')
}

// appendChoices constrains the output to one of choices, per server
// (reference §1.2, §2.4, §5):
//   - vllm: "structured_outputs":{"choice":[…]} (≥0.10.2), or "guided_choice":[…]
//     with guided_choice: true (≤0.11; removed in 0.12);
//   - sglang: "regex":"(a|b)" (SGLang's extra; it has no choice field);
//   - llamacpp: a GBNF "grammar" (llama-server takes /completion's grammar);
//   - openai, ollama: nothing — neither has a choice constraint; the prompt
//     must ask for one word, and logprobs are still read.
func (c *Client) appendChoices(dst []byte, choices []string) []byte {
	switch c.cfg.API {
	case APIVLLM:
		if c.cfg.GuidedChoice {
			dst = append(dst, `,"guided_choice":`...)
			return appendStrings(dst, choices)
		}
		dst = append(dst, `,"structured_outputs":{"choice":`...)
		dst = appendStrings(dst, choices)
		return append(dst, '}')
	case APISGLang:
		var b strings.Builder
		b.WriteByte('(')
		for i, ch := range choices {
			if i > 0 {
				b.WriteByte('|')
			}
			b.WriteString(regexp.QuoteMeta(ch))
		}
		b.WriteByte(')')
		dst = append(dst, `,"regex":`...)
		return appendString(dst, b.String())
	case APILlamaCpp:
		var b strings.Builder
		b.WriteString("root ::= ")
		for i, ch := range choices {
			if i > 0 {
				b.WriteString(" | ")
			}
			b.WriteString(strconv.Quote(ch))
		}
		dst = append(dst, `,"grammar":`...)
		return appendString(dst, b.String())
	}
	return dst
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Rerank scores req.Docs against req.Query and returns the scores in input order.
// Image documents need a multimodal reranker API (vllm or jina).
func (c *Client) Rerank(ctx context.Context, req *RerankRequest) (*RerankResponse, error) {
	if c.role != RoleRerank {
		return nil, &Error{Kind: KindBadRequest, Message: "cannot rerank: this client's role is " + c.role}
	}
	if len(req.Docs) == 0 {
		return &RerankResponse{Model: c.cfg.Model, Scores: []float64{}}, nil
	}
	bp := c.getBuf()
	defer c.putBuf(bp)
	body, err := c.appendRerank((*bp)[:0], req)
	if err != nil {
		return nil, err
	}
	*bp = body
	resp := &RerankResponse{}
	err = c.call(ctx, body, func(b []byte) error {
		var err error
		resp.Scores, resp.Model, err = decodeScores(b, len(req.Docs))
		return err
	})
	if err != nil {
		return nil, err
	}
	if resp.Model == "" {
		resp.Model = c.cfg.Model
	}
	return resp, nil
}

// AppendRerankBody appends the JSON body Rerank would send for req.
func (c *Client) AppendRerankBody(dst []byte, req *RerankRequest) ([]byte, error) {
	return c.appendRerank(dst, req)
}

func (c *Client) appendRerank(dst []byte, req *RerankRequest) ([]byte, error) {
	hasImage := req.Query.Image != ""
	for _, d := range req.Docs {
		hasImage = hasImage || d.Image != ""
	}
	api := c.cfg.API
	if hasImage && api != APIVLLM && api != APIJina {
		return nil, &Error{Kind: KindBadRequest, Message: "cannot rerank images: api " + api + " is text only (use vllm or jina)"}
	}
	dst = append(dst, '{')
	if m := cmp(req.Model, c.cfg.Model); m != "" && api != APITEI {
		dst = append(dst, `"model":`...)
		dst = appendString(dst, m)
		dst = append(dst, ',')
	}
	left, right := `"query":`, `,"documents":`
	switch api {
	case APITEI:
		right = `,"texts":`
	case APIVLLMScore:
		left, right = `"text_1":`, `,"text_2":`
	}
	dst = append(dst, left...)
	dst = c.appendDoc(dst, req.Query)
	dst = append(dst, right...)
	dst = append(dst, '[')
	for i, d := range req.Docs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = c.appendDoc(dst, d)
	}
	return append(dst, "]}"...), nil
}

// appendDoc renders a text document as a string and an image document as
// vLLM content parts {"content":[text?, image]} or Jina's {"text"?,"image"}.
func (c *Client) appendDoc(dst []byte, d Document) []byte {
	if d.Image == "" {
		return appendString(dst, d.Text)
	}
	if c.cfg.API == APIJina {
		dst = append(dst, '{')
		if d.Text != "" {
			dst = append(dst, `"text":`...)
			dst = appendString(dst, d.Text)
			dst = append(dst, ',')
		}
		dst = append(dst, `"image":`...)
		dst = appendString(dst, d.Image)
		return append(dst, '}')
	}
	dst = append(dst, `{"content":[`...)
	if d.Text != "" {
		dst = TextPart(d.Text).appendJSON(dst)
		dst = append(dst, ',')
	}
	dst = ImagePart(d.Image).appendJSON(dst)
	return append(dst, "]}"...)
}

// Embed returns one vector per input string, in input order (OpenAI /v1/embeddings).
func (c *Client) Embed(ctx context.Context, req *EmbedRequest) (*EmbedResponse, error) {
	if c.role != RoleEmbed {
		return nil, &Error{Kind: KindBadRequest, Message: "cannot embed: this client's role is " + c.role}
	}
	if len(req.Input) == 0 {
		return &EmbedResponse{Model: c.cfg.Model, Vectors: [][]float32{}}, nil
	}
	bp := c.getBuf()
	defer c.putBuf(bp)
	dst := append((*bp)[:0], '{')
	if m := cmp(req.Model, c.cfg.Model); m != "" {
		dst = append(dst, `"model":`...)
		dst = appendString(dst, m)
		dst = append(dst, ',')
	}
	dst = append(dst, `"input":`...)
	dst = appendStrings(dst, req.Input)
	dst = append(dst, `,"encoding_format":"float"}`...)
	*bp = dst
	resp := &EmbedResponse{}
	var tokens int
	err := c.call(ctx, dst, func(b []byte) error {
		var err error
		resp.Vectors, resp.Model, tokens, err = decodeEmbeddings(b, len(req.Input))
		return err
	})
	if err != nil {
		return nil, err
	}
	c.met.promptTokens.Add(float64(tokens))
	if resp.Model == "" {
		resp.Model = c.cfg.Model
	}
	return resp, nil
}

// call runs one POST through the breaker, the limiter and the transport;
// decode reads the 2xx body while it is valid (it must copy what it keeps).
func (c *Client) call(ctx context.Context, body []byte, decode func([]byte) error) error {
	start := time.Now()
	err := c.call1(ctx, body, decode)
	c.met.duration.Observe(time.Since(start).Seconds())
	if err != nil {
		kind := Reason(err)
		c.met.errorsOf(kind).Inc()
		c.health.noteError(err)
	}
	return err
}

func (c *Client) call1(ctx context.Context, body []byte, decode func([]byte) error) error {
	// A caller that went away, or whose deadline passed, starts no call.
	if err := ctx.Err(); err != nil {
		return ctxError(ctx, err)
	}
	if !takeCall(ctx) {
		return &Error{Kind: KindCallLimit, Message: "cannot call the model: the request used up its model calls (pipeline.max_model_calls, -max-model-calls)"}
	}
	if ok, _ := c.peekBreaker(); !ok {
		return &Error{Kind: KindCircuitOpen, Message: "cannot call the model: the circuit is open after repeated failures"}
	}
	if err := c.lim.acquire(ctx); err != nil {
		return ctxError(ctx, err)
	}
	defer c.lim.release()
	c.met.inFlight.Inc()
	defer c.met.inFlight.Dec()
	ok, probe := c.brk.allow()
	if !ok {
		return &Error{Kind: KindCircuitOpen, Message: "cannot call the model: the circuit is open after repeated failures"}
	}
	err := c.exchange(ctx, body, decode)
	// Timeouts, connection errors and 5xx count toward opening the circuit;
	// 4xx, bad output and a caller going away say nothing about the server's health.
	failed, neutral := false, false
	if err != nil {
		switch Reason(err) {
		case KindTimeout, KindUnavailable:
			failed = true
		default:
			neutral = true
		}
	} else {
		c.health.noteSuccess()
	}
	c.brk.done(probe, failed, neutral)
	return err
}

// peekBreaker rejects calls early while the circuit is open, so they do not queue.
func (c *Client) peekBreaker() (bool, string) {
	st := c.brk.current()
	return st != BreakerOpen, st
}

func (c *Client) exchange(ctx context.Context, body []byte, decode func([]byte) error) error {
	deadline := time.Now().Add(c.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	buf := respBufs.Get().(*bytes.Buffer)
	defer putRespBuf(buf)
	status, err := c.tr.do(ctx, deadline, c.uri+c.path, c.auth, body, c.cfg.MaxResponseBytes, buf)
	if err != nil {
		return c.transportError(ctx, deadline, err)
	}
	if status < 200 || status > 299 {
		return decodeError(status, buf.Bytes())
	}
	return decode(buf.Bytes())
}

func (c *Client) transportError(ctx context.Context, deadline time.Time, err error) error {
	if ctx.Err() != nil {
		return ctxError(ctx, ctx.Err())
	}
	var ne net.Error
	if errors.Is(err, errDeadline) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) || !time.Now().Before(deadline) {
		// Wrap context.DeadlineExceeded too: the connection deadline can fire a
		// moment before the context's, and callers test errors.Is(err, context.DeadlineExceeded).
		return &Error{Kind: KindTimeout, Message: "cannot get a model answer before the deadline", Err: errors.Join(context.DeadlineExceeded, err)}
	}
	if errors.Is(err, errBodyTooLarge) {
		return &Error{Kind: KindBadOutput, Message: fmt.Sprintf("cannot read the model answer: larger than max_response_bytes (%d)", c.cfg.MaxResponseBytes), Err: err}
	}
	return &Error{Kind: KindUnavailable, Message: "cannot reach the model server: " + err.Error(), Err: err}
}

// ctxError wraps a context error into the matching *Error kind.
func ctxError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Kind: KindTimeout, Message: "cannot get a model answer before the deadline", Err: err}
	case errors.Is(err, context.Canceled):
		return &Error{Kind: KindCanceled, Message: "the caller went away", Err: err}
	}
	return err
}

// respBufs holds response bodies between calls; a buffer grown past 1 MiB is left to the
// garbage collector.
var respBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func putRespBuf(b *bytes.Buffer) {
	if b.Cap() <= 1<<20 {
		b.Reset()
		respBufs.Put(b)
	}
}
