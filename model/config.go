package model

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// API flavours. Chat: openai, vllm, sglang, llamacpp, ollama (all through
// /v1/chat/completions). Rerank: vllm and jina (/v1/rerank), cohere
// (/v2/rerank), tei (/rerank), vllm-score (vLLM /score). Embed: any of the
// chat flavours (/v1/embeddings).
const (
	APIOpenAI    = "openai"
	APIVLLM      = "vllm"
	APISGLang    = "sglang"
	APILlamaCpp  = "llamacpp"
	APIOllama    = "ollama"
	APIJina      = "jina"
	APICohere    = "cohere"
	APITEI       = "tei"
	APIVLLMScore = "vllm-score"
)

// Roles a Client can play.
const (
	RoleChat   = "chat"
	RoleRerank = "rerank"
	RoleEmbed  = "embed"
)

// Config is one model endpoint.
type Config struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:8000 (a trailing /v1 is accepted).
	// Required; no default.
	URL string `yaml:"url"`
	// Model is the served model name sent in every request. Default "" (the server's first model).
	Model string `yaml:"model"`
	// API is the server flavour (API* constants). Default "vllm".
	API string `yaml:"api"`
	// APIKey is sent as a Bearer token. It comes from the environment variable
	// named by APIKeyEnv, never from a config file, and is never logged.
	APIKey string `yaml:"-"`
	// APIKeyEnv names the environment variable holding the API key. Default "VLPROXY_MODEL_API_KEY".
	APIKeyEnv string `yaml:"api_key_env"`
	// Timeout caps every call, also when the caller's context has a later deadline. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// DialTimeout caps connecting to the server. Default 1s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// MaxConcurrent is the number of calls in flight to this endpoint (vLLM queues
	// rather than refusing, so the client bounds it). Default 16.
	MaxConcurrent int `yaml:"max_concurrent"`
	// MaxQueue is the number of calls waiting for a slot; more fail with KindOverloaded. Default 64.
	MaxQueue int `yaml:"max_queue"`
	// QueueWait caps the time a call waits for a slot. Default 1s.
	QueueWait time.Duration `yaml:"queue_wait"`
	// MaxResponseBytes caps a response body. Default 16 MiB.
	MaxResponseBytes int `yaml:"max_response_bytes"`
	// MaxTokens is sent when a ChatRequest leaves MaxTokens at 0. Default 256.
	MaxTokens int `yaml:"max_tokens"`
	// Breaker opens the circuit after repeated failures.
	Breaker BreakerConfig `yaml:"breaker"`
	// HealthInterval is the period of background health probes; 0 disables them. Default 10s.
	HealthInterval time.Duration `yaml:"health_interval"`
	// GuidedChoice sends choice constraints as guided_choice (vLLM ≤ 0.11) instead
	// of structured_outputs.choice (vLLM ≥ 0.10.2). Default false.
	GuidedChoice bool `yaml:"guided_choice"`
	// Embed shapes embedding calls (role embed only).
	Embed EmbedConfig `yaml:"embed"`
}

// BreakerConfig configures the circuit breaker.
type BreakerConfig struct {
	// Failures is the number of consecutive failures (timeouts, connection errors,
	// 5xx) that open the circuit; a negative value disables the breaker. Default 5.
	Failures int `yaml:"failures"`
	// OpenFor is how long the circuit stays open before one probe call is let through. Default 5s.
	OpenFor time.Duration `yaml:"open_for"`
}

// DefaultConfig returns the defaults documented on Config's fields.
func DefaultConfig() Config {
	return Config{
		API:              APIVLLM,
		APIKeyEnv:        "VLPROXY_MODEL_API_KEY",
		Timeout:          10 * time.Second,
		DialTimeout:      time.Second,
		MaxConcurrent:    16,
		MaxQueue:         64,
		QueueWait:        time.Second,
		MaxResponseBytes: 16 << 20,
		MaxTokens:        256,
		Breaker:          BreakerConfig{Failures: 5, OpenFor: 5 * time.Second},
		HealthInterval:   10 * time.Second,
	}
}

// withDefaults fills zero fields from DefaultConfig. MaxQueue and
// HealthInterval keep explicit negative values as "none".
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.API == "" {
		c.API = d.API
	}
	if c.APIKeyEnv == "" {
		c.APIKeyEnv = d.APIKeyEnv
	}
	if c.Timeout <= 0 {
		c.Timeout = d.Timeout
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = d.DialTimeout
	}
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = d.MaxConcurrent
	}
	if c.MaxQueue == 0 {
		c.MaxQueue = d.MaxQueue
	}
	if c.MaxQueue < 0 {
		c.MaxQueue = 0
	}
	if c.QueueWait <= 0 {
		c.QueueWait = d.QueueWait
	}
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = d.MaxResponseBytes
	}
	if c.MaxTokens <= 0 {
		c.MaxTokens = d.MaxTokens
	}
	if c.Breaker.Failures == 0 {
		c.Breaker.Failures = d.Breaker.Failures
	}
	if c.Breaker.OpenFor <= 0 {
		c.Breaker.OpenFor = d.Breaker.OpenFor
	}
	if c.HealthInterval == 0 {
		c.HealthInterval = d.HealthInterval
	}
	return c
}

// LogValue keeps the API key out of logs.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("url", redactURL(c.URL)), slog.String("model", c.Model), slog.String("api", c.API),
		slog.Bool("api_key_set", c.APIKey != ""), slog.Duration("timeout", c.Timeout),
		slog.Int("max_concurrent", c.MaxConcurrent), slog.Int("max_queue", c.MaxQueue))
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = url.User("xxx")
	return u.String()
}

// endpointPath is the path a role's calls go to for an API flavour.
func endpointPath(role, api string) (string, error) {
	switch role {
	case RoleChat:
		switch api {
		case APIOpenAI, APIVLLM, APISGLang, APILlamaCpp, APIOllama:
			return "/v1/chat/completions", nil
		}
	case RoleRerank:
		switch api {
		case APIVLLM, APIJina:
			return "/v1/rerank", nil
		case APICohere:
			return "/v2/rerank", nil
		case APITEI:
			return "/rerank", nil
		case APIVLLMScore:
			return "/score", nil
		}
	case RoleEmbed:
		switch api {
		case APIOpenAI, APIVLLM, APISGLang, APILlamaCpp, APIOllama, APITEI:
			return "/v1/embeddings", nil
		}
	default:
		return "", fmt.Errorf("cannot create model client: unknown role %q (want chat, rerank or embed)", role)
	}
	return "", fmt.Errorf("cannot create model client: api %q does not serve role %s", api, role)
}

// baseURL splits the configured URL into scheme, host:port and path prefix.
func baseURL(raw string) (scheme, host, prefix string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", "", fmt.Errorf("cannot parse model url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", "", "", fmt.Errorf("model url %q: scheme must be http or https", redactURL(raw))
	}
	if u.Host == "" {
		return "", "", "", fmt.Errorf("model url %q: missing host", redactURL(raw))
	}
	host = u.Host
	if u.Port() == "" {
		if u.Scheme == "https" {
			host += ":443"
		} else {
			host += ":80"
		}
	}
	prefix = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/v1")
	return u.Scheme, host, prefix, nil
}
