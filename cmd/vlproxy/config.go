package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/vlproxy/vlproxy/cache"
	"github.com/vlproxy/vlproxy/cache/l2"
	"github.com/vlproxy/vlproxy/internal/memlimit"
	"github.com/vlproxy/vlproxy/model"
	"github.com/vlproxy/vlproxy/proxy"
	"github.com/vlproxy/vlproxy/proxy/experiment"
	"github.com/vlproxy/vlproxy/proxy/pipeline"
	"github.com/vlproxy/vlproxy/proxy/resultcache"
	"github.com/vlproxy/vlproxy/rerank"
	"github.com/vlproxy/vlproxy/rewrite"
	"github.com/vlproxy/vlproxy/ui"
)

// Config is everything vlproxy reads: the YAML file given by -config, with one section per
// package, overridden by env vars and flags. Unknown keys are an error, so a typo never silently
// falls back to a default.
type Config struct {
	Proxy    proxy.Config    `yaml:"proxy"`
	Pipeline pipeline.Config `yaml:"pipeline"`
	Cache    CacheConfig     `yaml:"cache"`
	// Model holds the model endpoints. Chat (keyword generation, chat-judge) is used when its
	// URL is set; Rerank (a rerank API) when its URL is set and rerank.scorer is "api".
	Model       ModelConfig        `yaml:"model"`
	Rewrite     rewrite.Config     `yaml:"rewrite"`
	Rerank      rerank.Config      `yaml:"rerank"`
	Judge       rerank.JudgeConfig `yaml:"judge"`
	Experiments experiment.Config  `yaml:"experiments"`
	// UI is the playground at /_vlproxy/ui (off unless -ui or ui.enabled).
	UI ui.Config `yaml:"ui"`
	// Redis is the fleet's shared tier: L2 of the keyword and rerank-score caches, fleet-wide
	// single-flight of model calls, and write generations shared by every replica. Off without
	// a URL.
	Redis l2.Config `yaml:"redis"`
	// MemoryLimit is the Go soft memory limit: "N%" of the cgroup's memory limit (none when the
	// cgroup has none), a byte size, or 0 for none. GOMEMLIMIT, when set, wins. Default "90%".
	MemoryLimit string `yaml:"memory_limit"`
	// AdminToken allows POST /_vlproxy/cache/_clear (Authorization: Bearer <token>). Default none:
	// clearing is refused.
	AdminToken string `yaml:"-"`
}

// ModelConfig names the model endpoints by role.
type ModelConfig struct {
	Chat   model.Config `yaml:"chat"`
	Rerank model.Config `yaml:"rerank"`
	// Embed (image/text embeddings for vector and hybrid retrieval) is used when its URL is set.
	Embed model.Config `yaml:"embed"`
}

// CacheConfig sizes the caches. In every cache section a max_bytes, max_entry_bytes or ttl of
// 0 turns that cache off (a negative ttl keeps entries until they are evicted); the defaults
// below apply only to what the file, env and flags leave unset.
type CacheConfig struct {
	// Results caches whole search responses (short TTL). MaxBytes 0 turns it off. Default 64 MiB, 30s.
	Results cache.Config `yaml:"results"`
	// Keys sets how result keys are built and invalidated.
	Keys resultcache.Config `yaml:"keys"`
	// TopologyRefresh is how often the cluster's aliases are read, so a write invalidates only the
	// searches that read the index it wrote. 0 turns it off. Default 30s.
	TopologyRefresh time.Duration `yaml:"topology_refresh"`
	// RefreshLag: for this long after a write passes through, responses of the searches it
	// affects are served but not stored, since the cluster makes a write without ?refresh
	// searchable only at its next periodic refresh (index.refresh_interval, 1s by default). Set
	// it above the longest refresh_interval searched through vlproxy; 0 turns it off (writes
	// without ?refresh are then bounded only by the TTL). Default 1.5s.
	RefreshLag time.Duration `yaml:"refresh_lag"`
	// Keywords caches model keywords per (model, prompt version, text, image hash). Default 32 MiB, 24h.
	Keywords cache.Config `yaml:"keywords"`
	// Embeddings caches query embeddings per (model, dimensions, image hash or text). Default 64 MiB, 24h.
	Embeddings cache.Config `yaml:"embeddings"`
	// Scores caches rerank scores per (model, query, document version). Default 32 MiB, 1h.
	Scores cache.Config `yaml:"scores"`
}

// validate refuses negative cache sizes (a size of 0 turns a cache off; see newCache).
func (c *CacheConfig) validate() error {
	var errs []string
	for _, sec := range []struct {
		name string
		cfg  cache.Config
	}{{"results", c.Results}, {"keywords", c.Keywords}, {"embeddings", c.Embeddings}, {"scores", c.Scores}} {
		if sec.cfg.MaxBytes < 0 || sec.cfg.MaxEntryBytes < 0 {
			errs = append(errs, "cache."+sec.name+": max_bytes and max_entry_bytes must not be negative (0 turns the cache off)")
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid cache config: %s", strings.Join(errs, "; "))
	}
	return nil
}

func defaultConfig() Config {
	c := Config{
		Proxy:       proxy.DefaultConfig(),
		Pipeline:    pipeline.DefaultConfig(),
		Model:       ModelConfig{Chat: model.DefaultConfig(), Rerank: model.DefaultConfig(), Embed: model.DefaultConfig()},
		Rewrite:     rewrite.DefaultConfig(),
		Rerank:      rerank.DefaultConfig(),
		Judge:       rerank.DefaultJudgeConfig(),
		Experiments: experiment.DefaultConfig(),
		UI:          ui.DefaultConfig(),
		Redis:       l2.DefaultConfig(),
		MemoryLimit: "90%",
	}
	c.Cache = CacheConfig{
		Results:         cache.Config{Name: "results", MaxBytes: 64 << 20, MaxEntryBytes: 4 << 20, TTL: 30 * time.Second, FillTimeout: 60 * time.Second},
		Keys:            resultcache.DefaultConfig(),
		TopologyRefresh: 30 * time.Second,
		RefreshLag:      1500 * time.Millisecond,
		Keywords:        cache.Config{Name: "keywords", MaxBytes: 32 << 20, MaxEntryBytes: 64 << 10, TTL: 24 * time.Hour, FillTimeout: 30 * time.Second},
		Embeddings:      cache.Config{Name: "embeddings", MaxBytes: 64 << 20, MaxEntryBytes: 64 << 10, TTL: 24 * time.Hour, FillTimeout: 30 * time.Second},
		Scores:          cache.Config{Name: "scores", MaxBytes: 32 << 20, MaxEntryBytes: 64 << 10, TTL: time.Hour, FillTimeout: 30 * time.Second},
	}
	c.Model.Rerank.APIKeyEnv = "VLPROXY_RERANK_API_KEY"
	c.Model.Embed.APIKeyEnv = "VLPROXY_EMBED_API_KEY"
	c.Model.Embed.API = model.APIOpenAI
	c.Model.Embed.Embed.Form = model.EmbedFormInput
	return c
}

// option is one setting reachable by flag, env var and the YAML file.
type option struct {
	name  string // flag name; env var is VLPROXY_ + upper snake of it
	usage string
	get   func(c *Config) string
	set   func(c *Config, v string) error
	bool  bool // a switch: "-name" alone means true
}

func envName(flagName string) string {
	return "VLPROXY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func durationOpt(name, usage string, p func(c *Config) *time.Duration) option {
	return option{name: name, usage: usage,
		get: func(c *Config) string { return p(c).String() },
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("cannot parse duration %q (want e.g. 500ms, 30s, 2m): %w", v, err)
			}
			*p(c) = d
			return nil
		}}
}

func sizeOpt(name, usage string, p func(c *Config) *proxy.ByteSize) option {
	return option{name: name, usage: usage,
		get: func(c *Config) string { return p(c).String() },
		set: func(c *Config, v string) error { return p(c).Set(v) }}
}

func intOpt(name, usage string, p func(c *Config) *int) option {
	return option{name: name, usage: usage,
		get: func(c *Config) string { return strconv.Itoa(*p(c)) },
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("cannot parse integer %q: %w", v, err)
			}
			*p(c) = n
			return nil
		}}
}

func stringOpt(name, usage string, p func(c *Config) *string) option {
	return option{name: name, usage: usage,
		get: func(c *Config) string { return *p(c) },
		set: func(c *Config, v string) error { *p(c) = v; return nil }}
}

func boolOpt(name, usage string, p func(c *Config) *bool) option {
	return option{name: name, usage: usage, bool: true,
		get: func(c *Config) string { return strconv.FormatBool(*p(c)) },
		set: func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("cannot parse boolean %q (want true or false): %w", v, err)
			}
			*p(c) = b
			return nil
		}}
}

// options lists every setting; -help prints them in this order.
var options = []option{
	stringOpt("listen", "TCP address to accept ES clients on", func(c *Config) *string { return &c.Proxy.Listen }),
	{name: "upstream", usage: "comma-separated base URLs of the ES/OpenSearch nodes, e.g. http://127.0.0.1:9200,http://10.0.0.2:9200 (required)",
		get: func(c *Config) string { return strings.Join(c.Proxy.Upstreams, ",") },
		set: func(c *Config, v string) error { c.Proxy.Upstreams = splitList(v); return nil }},
	durationOpt("read-timeout", "time to read a whole client request, body included", func(c *Config) *time.Duration { return &c.Proxy.ReadTimeout }),
	durationOpt("write-timeout", "time to write a whole response to the client", func(c *Config) *time.Duration { return &c.Proxy.WriteTimeout }),
	durationOpt("idle-timeout", "close client keep-alive connections idle this long", func(c *Config) *time.Duration { return &c.Proxy.IdleTimeout }),
	stringOpt("upstream-ca-file", "PEM file of the CAs that https upstream nodes are verified against (default: the system's)", func(c *Config) *string { return &c.Proxy.UpstreamCAFile }),
	durationOpt("dial-timeout", "time to connect to an upstream node", func(c *Config) *time.Duration { return &c.Proxy.DialTimeout }),
	durationOpt("upstream-timeout", "time for one attempt against one node (send request, read response)", func(c *Config) *time.Duration { return &c.Proxy.UpstreamTimeout }),
	durationOpt("request-timeout", "time for a whole request including retries; over it the client gets a 504", func(c *Config) *time.Duration { return &c.Proxy.RequestTimeout }),
	durationOpt("drain-timeout", "on SIGTERM/SIGINT, how long in-flight requests may take to finish", func(c *Config) *time.Duration { return &c.Proxy.DrainTimeout }),
	sizeOpt("max-body-size", "largest request body (413 above); accepts KiB/MiB/GiB", func(c *Config) *proxy.ByteSize { return &c.Proxy.MaxBodySize }),
	sizeOpt("max-header-size", "largest request line plus headers (400 above)", func(c *Config) *proxy.ByteSize { return &c.Proxy.MaxHeaderSize }),
	sizeOpt("max-buffered-response-size", "largest upstream response the search pipeline holds whole (502 above)", func(c *Config) *proxy.ByteSize { return &c.Proxy.MaxBufferedResponseSize }),
	sizeOpt("response-buffer-size", "pass-through responses up to this size are read whole (clean 502 if the node breaks off); larger ones stream", func(c *Config) *proxy.ByteSize { return &c.Proxy.ResponseBufferSize }),
	intOpt("max-conns-per-upstream", "keep-alive connection pool size per node", func(c *Config) *int { return &c.Proxy.MaxConnsPerUpstream }),
	durationOpt("max-idle-conn-duration", "close upstream keep-alive connections idle this long", func(c *Config) *time.Duration { return &c.Proxy.MaxIdleConnDuration }),
	intOpt("max-conns", "most concurrent client connections", func(c *Config) *int { return &c.Proxy.MaxConns }),
	intOpt("max-retries", "retries after a failed attempt (dial errors: any request; other errors: idempotent reads only)", func(c *Config) *int { return &c.Proxy.MaxRetries }),
	durationOpt("retry-wait", "pause before trying nodes again once all have failed", func(c *Config) *time.Duration { return &c.Proxy.RetryWait }),
	durationOpt("health-check-interval", "period of active health checks; 0 turns them off", func(c *Config) *time.Duration { return &c.Proxy.HealthCheckInterval }),
	stringOpt("health-check-path", "path requested with GET on each node; status < 500 is healthy", func(c *Config) *string { return &c.Proxy.HealthCheckPath }),
	durationOpt("health-check-timeout", "time for one health check", func(c *Config) *time.Duration { return &c.Proxy.HealthCheckTimeout }),
	intOpt("health-check-fails", "failed health checks in a row that take a node out of rotation (HAProxy's fall), so a busy node that misses one check keeps serving", func(c *Config) *int { return &c.Proxy.HealthCheckFails }),
	intOpt("health-check-passes", "passed health checks in a row that bring a node that was out back (HAProxy's rise)", func(c *Config) *int { return &c.Proxy.HealthCheckPasses }),
	boolOpt("health-fail-open", "while no node is available (all failed their checks or were ejected), send requests to them anyway, as Envoy's panic mode does: a node the checks got wrong keeps serving, one that is really down answers with its own error (502/504); /_vlproxy/health stays red with a 503. -health-fail-open=false answers 503 no_healthy_upstream instead", func(c *Config) *bool { return &c.Proxy.HealthFailOpen }),
	durationOpt("eject-duration", "a node that refused a connection is skipped this long (or until a check passes)", func(c *Config) *time.Duration { return &c.Proxy.EjectDuration }),
	stringOpt("metrics-path", `extra path serving Prometheus metrics besides /_vlproxy/metrics; "" forwards it to ES`, func(c *Config) *string { return &c.Proxy.MetricsPath }),
	boolOpt("pprof", "serve Go's profiler at /debug/pprof/ (CPU, heap, allocs, goroutines) to loopback clients and to Authorization: Bearer <admin token>; off by default", func(c *Config) *bool { return &c.Proxy.Pprof }),
	stringOpt("log-level", "debug, info, warn or error (JSON logs on stderr)", func(c *Config) *string { return &c.Proxy.LogLevel }),
	{name: "memory-limit", usage: "Go soft memory limit, so the garbage collector works harder before the kernel's OOM killer acts: N% of the cgroup's memory limit (cgroup v2 memory.max, v1 memory.limit_in_bytes; none when the cgroup is unlimited), a byte size such as 2GiB, or 0 for none; GOMEMLIMIT, when set, wins. Logged at start-up, shown in /_vlproxy/health (components.memory) and as go_gc_gomemlimit_bytes (file key memory_limit)",
		get: func(c *Config) string { return c.MemoryLimit },
		set: func(c *Config, v string) error {
			if _, _, err := memlimit.ParseSpec(v, parseBytes); err != nil {
				return err
			}
			c.MemoryLimit = v
			return nil
		}},

	{name: "max-decoded-body-size", usage: "largest gzip/deflate search body once decompressed, checked while decompressing (413 above); accepts KiB/MiB/GiB",
		get: func(c *Config) string { return proxy.ByteSize(c.Pipeline.MaxDecodedBodySize).String() },
		set: func(c *Config, v string) error { return setBytes(&c.Pipeline.MaxDecodedBodySize, v) }},
	intOpt("max-decompressions", "search bodies decompressed at once, process-wide (each up to -max-decoded-body-size); four times as many wait, one more is a 429", func(c *Config) *int { return &c.Pipeline.MaxDecompressions }),
	intOpt("max-clauses", "most multimodal clauses in one request: one body, or all searches of an _msearch (400 above)", func(c *Config) *int { return &c.Pipeline.MaxClauses }),
	intOpt("max-clause-text", "longest multimodal [text] in bytes (400 above)", func(c *Config) *int { return &c.Rewrite.MaxTextLength }),
	intOpt("max-images", "most multimodal images in one request (400 above)", func(c *Config) *int { return &c.Pipeline.MaxImages }),
	intOpt("max-model-calls", "most model calls (keywords and rerank scoring) one request may make; more clauses are a 400, rerank calls beyond it are not made (partial)", func(c *Config) *int { return &c.Pipeline.MaxModelCalls }),
	intOpt("msearch-concurrency", "searches of one _msearch rewritten or reranked at once", func(c *Config) *int { return &c.Pipeline.MsearchConcurrency }),
	intOpt("image-max-pixels", "largest image width*height, read from its header before decoding (400 above)", func(c *Config) *int { return &c.Rewrite.Image.MaxPixels }),
	{name: "image-max-decoded-bytes", usage: "largest decoded image, width*height*bytes per pixel (16-bit channels and alpha counted) read from its header before decoding (400 above); accepts KiB/MiB",
		get: func(c *Config) string { return proxy.ByteSize(c.Rewrite.Image.MaxDecodedBytes).String() },
		set: func(c *Config, v string) error { return setIntBytes(&c.Rewrite.Image.MaxDecodedBytes, v) }},
	intOpt("image-decodes", "images decoded at once, process-wide", func(c *Config) *int { return &c.Rewrite.Image.MaxDecodes }),
	intOpt("image-decode-queue", "images waiting for a decode slot; one more is refused with a 429", func(c *Config) *int { return &c.Rewrite.Image.MaxDecodeQueue }),

	stringOpt("model-url", "base URL of the OpenAI-compatible chat model server (vLLM, SGLang, llama.cpp, Ollama) that turns images and text into keywords; \"\" = no model: text clauses fall back to a plain multi_match, image-only clauses get a 503", func(c *Config) *string { return &c.Model.Chat.URL }),
	stringOpt("model-name", "served model name sent with every chat request", func(c *Config) *string { return &c.Model.Chat.Model }),
	stringOpt("model-api", "chat server flavour: vllm, sglang, llamacpp, ollama or openai (decides how yes/no answers are constrained); the API key comes from env VLPROXY_MODEL_API_KEY", func(c *Config) *string { return &c.Model.Chat.API }),
	durationOpt("model-timeout", "cap on one chat model call", func(c *Config) *time.Duration { return &c.Model.Chat.Timeout }),
	intOpt("model-max-concurrent", "chat calls in flight to the model server (vLLM queues rather than refusing, so vlproxy bounds it)", func(c *Config) *int { return &c.Model.Chat.MaxConcurrent }),
	intOpt("model-max-queue", "chat calls waiting for a slot; more are refused (rewrite falls back, a search never fails for it)", func(c *Config) *int { return &c.Model.Chat.MaxQueue }),
	durationOpt("rewrite-timeout", "budget for keyword generation per search; later answers fall back (X-VLProxy-Rewrite: fallback:timeout)", func(c *Config) *time.Duration { return &c.Rewrite.Timeout }),
	{name: "document-max-bytes", usage: "largest multimodal.document (a PDF or a page photo) accepted; 413 above; accepts KiB/MiB",
		get: func(c *Config) string { return proxy.ByteSize(c.Rewrite.Document.MaxBytes).String() },
		set: func(c *Config, v string) error { return setInt(&c.Rewrite.Document.MaxBytes, v) }},
	intOpt("document-max-pages", "most pages a document PDF may have (400 above)", func(c *Config) *int { return &c.Rewrite.Document.MaxPages }),
	intOpt("document-max-objects", "most objects a document PDF may have (400 above)", func(c *Config) *int { return &c.Rewrite.Document.MaxObjects }),
	intOpt("document-max-page-pixels", "largest width*height of a page image, read from its header before decoding (400 above)", func(c *Config) *int { return &c.Rewrite.Document.MaxPagePixels }),
	{name: "document-max-decoded-bytes", usage: "most bytes all streams of one PDF may decode to, checked while inflating (a decompression bomb is a 400)",
		get: func(c *Config) string { return proxy.ByteSize(c.Rewrite.Document.MaxDecodedBytes).String() },
		set: func(c *Config, v string) error { return setBytes(&c.Rewrite.Document.MaxDecodedBytes, v) }},
	durationOpt("document-read-timeout", "time to read one document (a slower one is a 400)", func(c *Config) *time.Duration { return &c.Rewrite.Document.ReadTimeout }),
	intOpt("document-max-in-flight", "documents read at once; a request that gets no slot before its deadline is a 429", func(c *Config) *int { return &c.Rewrite.Document.MaxInFlight }),
	intOpt("document-max-rows", "most table rows taken from a document: one query each, and one sub-search each with group_by_row", func(c *Config) *int { return &c.Rewrite.Document.MaxRows }),
	intOpt("document-max-model-pages", "most document pages sent to the chat model (one call each)", func(c *Config) *int { return &c.Rewrite.Document.MaxModelPages }),
	durationOpt("document-timeout", "budget for the table extraction of one document (all its model calls); later the rows come from the PDF's text, or the clause falls back", func(c *Config) *time.Duration { return &c.Rewrite.Document.Timeout }),
	stringOpt("rerank-url", "base URL of a rerank server (vLLM /v1/rerank, Jina, Cohere, TEI); used when -rerank-scorer=api", func(c *Config) *string { return &c.Model.Rerank.URL }),
	stringOpt("rerank-model", "served model name of the rerank server", func(c *Config) *string { return &c.Model.Rerank.Model }),
	stringOpt("rerank-api", "rerank server flavour: vllm, jina, cohere, tei or vllm-score; the API key comes from env VLPROXY_RERANK_API_KEY", func(c *Config) *string { return &c.Model.Rerank.API }),
	stringOpt("embed-url", "base URL of the OpenAI-compatible /v1/embeddings server for vector and hybrid retrieval (vLLM with a multimodal embedding model, infinity, llama.cpp, the EfficientNet test server); \"\" = none: clauses run keywords (X-VLProxy-Retrieval: fallback:no_embed_model where a vector was wanted)", func(c *Config) *string { return &c.Model.Embed.URL }),
	stringOpt("embed-model", "served model name sent with every embedding request", func(c *Config) *string { return &c.Model.Embed.Model }),
	stringOpt("embed-api", "embedding server flavour: openai, vllm, sglang, llamacpp, ollama or tei; the API key comes from env VLPROXY_EMBED_API_KEY", func(c *Config) *string { return &c.Model.Embed.API }),
	stringOpt("embed-form", "request form: input (image data URIs or text in \"input\") or messages (vLLM's chat form, one conversation per vector)", func(c *Config) *string { return &c.Model.Embed.Embed.Form }),
	intOpt("embed-dimensions", "truncate embeddings to this many components before L2 normalisation (Matryoshka models); 0 = as served", func(c *Config) *int { return &c.Model.Embed.Embed.Dimensions }),
	{name: "embed-text", usage: "true when the embed model embeds text into the image space (a text tower); false: text goes to the lexical side only",
		get: func(c *Config) string { return strconv.FormatBool(c.Model.Embed.Embed.Text) },
		set: func(c *Config, v string) (err error) {
			c.Model.Embed.Embed.Text, err = strconv.ParseBool(v)
			return err
		}},
	durationOpt("embed-timeout", "budget for one query embedding; later answers fall back to keywords (X-VLProxy-Retrieval: fallback:timeout)", func(c *Config) *time.Duration { return &c.Rewrite.EmbedTimeout }),
	intOpt("embed-max-concurrent", "embedding calls in flight to the embedding server", func(c *Config) *int { return &c.Model.Embed.MaxConcurrent }),
	stringOpt("vector-engine", "kNN query dialect of the cluster: opensearch (k-NN plugin knn query) or elasticsearch (8.12+ knn query)", func(c *Config) *string { return &c.Rewrite.Engine }),
	stringOpt("rerank-scorer", "how hits are scored: api (the rerank server) or judge (yes/no logprobs from the chat model)", func(c *Config) *string { return &c.Rerank.Scorer }),
	{name: "rerank-indices", usage: "comma-separated index patterns (* wildcards) reranked by default; elsewhere reranking needs X-VLProxy-Rerank: on or ext.vlproxy.rerank",
		get: func(c *Config) string { return strings.Join(c.Rerank.Indices, ",") },
		set: func(c *Config, v string) error { c.Rerank.Indices = splitList(v); return nil }},
	intOpt("rerank-window", "default rank_window_size: how many top hits are scored", func(c *Config) *int { return &c.Rerank.WindowSize }),
	durationOpt("rerank-timeout", "rerank budget per search; hits not scored by then keep ES order (X-VLProxy-Rerank: partial)", func(c *Config) *time.Duration { return &c.Rerank.Timeout }),
	{name: "result-cache-size", usage: "bytes of search responses kept in the result cache; 0 turns it off (as does 0 for -result-cache-ttl or -result-cache-max-entry); accepts KiB/MiB/GiB",
		get: func(c *Config) string { return proxy.ByteSize(c.Cache.Results.MaxBytes).String() },
		set: func(c *Config, v string) error { return setBytes(&c.Cache.Results.MaxBytes, v) }},
	durationOpt("result-cache-ttl", "how long a cached search response is served; writes that bypass vlproxy are visible after at most this long; 0 turns the result cache off", func(c *Config) *time.Duration { return &c.Cache.Results.TTL }),
	{name: "result-cache-max-entry", usage: "largest response the result cache keeps (larger ones are refused and counted); 0 turns the result cache off",
		get: func(c *Config) string { return proxy.ByteSize(c.Cache.Results.MaxEntryBytes).String() },
		set: func(c *Config, v string) error { return setBytes(&c.Cache.Results.MaxEntryBytes, v) }},
	{name: "result-cache-identity-headers", usage: "comma-separated request headers that identify the caller besides Authorization, X-Api-Key, es-security-runas-user, opendistro_security_impersonate_as, X-Proxy-User, X-Proxy-Roles and Cookie; a request with any other credential-like header (auth, token, key, session, cookie, user, role ...) bypasses the result cache",
		get: func(c *Config) string { return strings.Join(c.Cache.Keys.IdentityHeaders, ",") },
		set: func(c *Config, v string) error { c.Cache.Keys.IdentityHeaders = splitList(v); return nil }},
	{name: "keyword-cache-size", usage: "bytes of the rewriter's model outputs kept: keywords (per model, prompt version, text and image hash), downscaled query images and document table rows; 0 turns it off (in fleet mode its Redis tier too): every clause calls the model",
		get: func(c *Config) string { return proxy.ByteSize(c.Cache.Keywords.MaxBytes).String() },
		set: func(c *Config, v string) error { return setBytes(&c.Cache.Keywords.MaxBytes, v) }},
	{name: "embedding-cache-size", usage: "bytes of query embeddings kept (per model, dimensions, image hash or text); 0 turns it off (in fleet mode its Redis tier too)",
		get: func(c *Config) string { return proxy.ByteSize(c.Cache.Embeddings.MaxBytes).String() },
		set: func(c *Config, v string) error { return setBytes(&c.Cache.Embeddings.MaxBytes, v) }},
	stringOpt("redis-url", "fleet mode: redis://[user:pass@]host:port/db (rediss:// for TLS; several host:port separated by commas for Redis Cluster) shared by every replica: L2 for model keywords, query embeddings and rerank scores, one model call fleet-wide per identical cold query, and write generations so a write through one replica invalidates every replica's cached results; \"\" = each replica on its own. Redis down means L1-only and per-instance invalidation, never a failed request", func(c *Config) *string { return &c.Redis.URL }),
	durationOpt("redis-timeout", "deadline of one Redis operation; a slower answer is a cache miss (fleet mode)", func(c *Config) *time.Duration { return &c.Redis.Timeout }),
	{name: "score-cache-size", usage: "bytes of rerank scores kept (per model, query and document version); 0 turns it off (in fleet mode its Redis tier too)",
		get: func(c *Config) string { return proxy.ByteSize(c.Cache.Scores.MaxBytes).String() },
		set: func(c *Config, v string) error { return setBytes(&c.Cache.Scores.MaxBytes, v) }},
	boolOpt("ui", "serve the playground page at /_vlproxy/ui (loopback clients, or others with VLPROXY_ADMIN_TOKEN); config section ui: sets the card fields", func(c *Config) *bool { return &c.UI.Enabled }),
}

func parseBytes(v string) (int64, error) {
	b, err := proxy.ParseByteSize(v)
	return int64(b), err
}

func setBytes(dst *int64, v string) error {
	var b proxy.ByteSize
	if err := b.Set(v); err != nil {
		return err
	}
	*dst = int64(b)
	return nil
}

func setInt(dst *int, v string) error {
	var b proxy.ByteSize
	if err := b.Set(v); err != nil {
		return err
	}
	*dst = int(b)
	return nil
}

func setIntBytes(dst *int, v string) error {
	var n int64
	if err := setBytes(&n, v); err != nil {
		return err
	}
	if n > int64(^uint(0)>>1) {
		return fmt.Errorf("cannot use byte size %q: too large", v)
	}
	*dst = int(n)
	return nil
}

// rawValue records a flag's text and whether it was given; values are applied after the file and env.
type rawValue struct {
	s      string
	set    bool
	isBool bool
}

func (v *rawValue) String() string     { return v.s }
func (v *rawValue) Set(s string) error { v.s, v.set = s, true; return nil }
func (v *rawValue) IsBoolFlag() bool   { return v.isBool }

// loadConfig builds the proxy config from defaults < YAML file < env vars < flags.
func loadConfig(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("vlproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := &rawValue{}
	fs.Var(configPath, "config", "")
	raws := make([]*rawValue, len(options))
	for i, o := range options {
		raws[i] = &rawValue{isBool: o.bool}
		fs.Var(raws[i], o.name, o.usage)
	}
	fs.Usage = func() { printUsage(stderr) }
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments %q; every setting is a flag (see -help)", fs.Args())
	}

	cfg := defaultConfig()
	path := configPath.s
	if !configPath.set {
		path = getenv(envName("config"))
	}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("cannot read -config file: %w", err)
		}
		if err := decodeFile(data, &cfg); err != nil {
			return Config{}, fmt.Errorf("cannot parse -config file %s: %w", path, err)
		}
	}
	var errs []error
	for i, o := range options {
		src, v := "", ""
		switch {
		case raws[i].set:
			src, v = "-"+o.name, raws[i].s
		case getenv(envName(o.name)) != "":
			src, v = envName(o.name), getenv(envName(o.name))
		default:
			continue
		}
		if err := o.set(&cfg, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", src, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	if err := cfg.Proxy.Validate(); err != nil {
		return Config{}, err
	}
	if err := cfg.Cache.validate(); err != nil {
		return Config{}, err
	}
	if _, _, err := memlimit.ParseSpec(cfg.MemoryLimit, parseBytes); err != nil {
		return Config{}, fmt.Errorf("memory_limit: %w", err)
	}
	cfg.AdminToken = getenv("VLPROXY_ADMIN_TOKEN")
	cfg.Model.Chat.APIKey = getenv(cfg.Model.Chat.APIKeyEnv)
	cfg.Model.Rerank.APIKey = getenv(cfg.Model.Rerank.APIKeyEnv)
	cfg.Model.Embed.APIKey = getenv(cfg.Model.Embed.APIKeyEnv)
	return cfg, nil
}

// decodeFile reads the YAML file over the defaults already in cfg.
func decodeFile(data []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, u := range strings.Split(v, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

func printUsage(w io.Writer) {
	def := defaultConfig()
	fmt.Fprint(w, `vlproxy — a transparent Elasticsearch/OpenSearch proxy.

Usage: vlproxy -upstream http://127.0.0.1:9200 [flags]

Every flag can also be set by the environment variable shown, or in the YAML file given by -config
(section "proxy:", key in snake_case: -max-body-size is proxy.max_body_size).
Precedence: flag > environment > file > default. Durations read like 500ms, 30s, 2m; sizes like
65536, 64KiB, 100MiB, 1GiB. A cache size (or TTL) of 0 turns that cache off; its default applies
only when nothing sets it.

Searches (_search, _msearch, _count) that carry a "multimodal" clause are rewritten into standard
queries from keywords the chat model generates; top hits can be reranked by a model; responses are
cached. Everything else passes through unchanged. The YAML file also configures what has no flag:
index profiles (rewrite.profiles), attribute mappings, image limits, experiments, cache TTLs; see
README.md. Secrets come only from the environment: VLPROXY_MODEL_API_KEY, VLPROXY_RERANK_API_KEY,
VLPROXY_ADMIN_TOKEN (enables POST /_vlproxy/cache/_clear).

Signals: SIGTERM or SIGINT stop accepting connections and let in-flight requests finish within
-drain-timeout. Endpoints of its own: GET /_vlproxy/health, GET /_vlproxy/metrics,
GET /_vlproxy/cache, POST /_vlproxy/cache/_clear, and with -ui the playground at /_vlproxy/ui/.

Flags:
`)
	fmt.Fprintf(w, "  -config FILE\n\tYAML config file (env %s; default none)\n", envName("config"))
	for _, o := range options {
		d := o.get(&def)
		if d == "" {
			d = `""`
		}
		fmt.Fprintf(w, "  -%s\n\t%s (env %s; default %s)\n", o.name, o.usage, envName(o.name), d)
	}
}

// sortedEnvNames lists every env var vlproxy reads, for tests and docs.
func sortedEnvNames() []string {
	names := []string{envName("config")}
	for _, o := range options {
		names = append(names, envName(o.name))
	}
	sort.Strings(names)
	return names
}
