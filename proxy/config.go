package proxy

import (
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config configures the proxy: where it listens, which upstream ES/OpenSearch nodes it forwards to,
// and the limits and timeouts of both sides. It is the `proxy:` section of the vlproxy YAML file; other
// packages (cache, model, rewrite, rerank, experiments) get their own sibling sections, so the file nests
// one section per package instead of one flat namespace.
//
// Defaults live in DefaultConfig only; a zero field after loading means "0", not "default".
type Config struct {
	// Listen is the TCP address the proxy accepts clients on. Default "127.0.0.1:8080".
	Listen string `yaml:"listen"`
	// Upstreams are the base URLs of the ES/OpenSearch nodes (http://host:port). Required.
	Upstreams []string `yaml:"upstreams"`

	// ReadTimeout bounds reading one whole client request, body included. Default 5m (a 100 MB _bulk
	// from a slow client must fit).
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing one whole response to the client. Default 5m.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes a client keep-alive connection idle for this long. Default 2m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// DialTimeout bounds connecting to an upstream node. Default 2s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// UpstreamCAFile, when set, is a PEM file of the certificate authorities https nodes are
	// verified against instead of the system's (OpenSearch's security plugin ships with its own
	// CA). Empty: the system roots.
	UpstreamCAFile string `yaml:"upstream_ca_file"`
	// UpstreamTimeout bounds one attempt against one upstream node: sending the request and reading the
	// response (for streamed responses, until the body has been read). Default 2m.
	UpstreamTimeout time.Duration `yaml:"upstream_timeout"`
	// RequestTimeout bounds a whole client request including every retry; a request over it gets a 504.
	// Default 3m.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// DrainTimeout is how long Shutdown waits for in-flight requests before it gives up. Default 30s.
	DrainTimeout time.Duration `yaml:"drain_timeout"`

	// MaxBodySize is the largest request body accepted; larger ones get a 413. Default 100MiB (ES's http.max_content_length).
	MaxBodySize ByteSize `yaml:"max_body_size"`
	// MaxHeaderSize bounds the request line plus headers of a client request, and of an upstream
	// response; larger ones get a 400. Default 64KiB.
	MaxHeaderSize ByteSize `yaml:"max_header_size"`
	// MaxBufferedResponseSize bounds an upstream response that the proxy must hold whole (the search
	// pipeline); a larger one is a 502. Pass-through responses stream and have no limit. Default 256MiB.
	MaxBufferedResponseSize ByteSize `yaml:"max_buffered_response_size"`
	// ResponseBufferSize: pass-through responses up to this size are read whole before the proxy answers,
	// so an upstream that breaks off mid-body gives a clean 502 (and a retry for reads); larger responses
	// stream. Default 1MiB.
	ResponseBufferSize ByteSize `yaml:"response_buffer_size"`

	// MaxConnsPerUpstream is the size of the keep-alive connection pool per node; a node with this many
	// requests in flight is not Available. Default 1024.
	MaxConnsPerUpstream int `yaml:"max_conns_per_upstream"`
	// MaxIdleConnDuration closes upstream keep-alive connections idle for this long. Default 30s.
	MaxIdleConnDuration time.Duration `yaml:"max_idle_conn_duration"`
	// MaxConns bounds concurrent client connections. Default 65536.
	MaxConns int `yaml:"max_conns"`

	// MaxRetries is how many more attempts a request may get after the first fails (dial errors: any
	// request; other failures: idempotent reads only). Default 2.
	MaxRetries int `yaml:"max_retries"`
	// RetryWait is how long a retry waits when every node has already been tried, raced against the
	// request deadline. Default 100ms.
	RetryWait time.Duration `yaml:"retry_wait"`

	// HealthCheckInterval is the period of active health checks; 0 turns them off. Default 5s.
	HealthCheckInterval time.Duration `yaml:"health_check_interval"`
	// HealthCheckPath is requested with GET on every node; any status below 500 counts as healthy.
	// Default "/".
	HealthCheckPath string `yaml:"health_check_path"`
	// HealthCheckTimeout bounds one health check. Default 2s.
	HealthCheckTimeout time.Duration `yaml:"health_check_timeout"`
	// HealthCheckFails is how many consecutive failed checks take a node out of rotation, so a
	// serving node that misses one check on a loaded machine stays in (HAProxy's "fall").
	// Default 3.
	HealthCheckFails int `yaml:"health_check_fails"`
	// HealthCheckPasses is how many consecutive passed checks bring a node that was out back
	// (HAProxy's "rise"). Default 2.
	HealthCheckPasses int `yaml:"health_check_passes"`
	// HealthFailOpen: while no node is available (every one failed its checks or was ejected),
	// requests go to the nodes anyway instead of being answered 503, as Envoy does below its
	// panic threshold. A node that is really down then answers with its own error (a refused
	// connection is a 502); /_vlproxy/health still says red with a 503. Default true.
	HealthFailOpen bool `yaml:"health_fail_open"`
	// EjectDuration: a node that refused a connection is skipped for this long, or until an active check
	// passes. Default 10s.
	EjectDuration time.Duration `yaml:"eject_duration"`

	// MetricsPath serves Prometheus metrics besides /_vlproxy/metrics. It shadows an index of the same
	// name for GET; set it to "" to forward that path to ES. Default "/metrics".
	MetricsPath string `yaml:"metrics_path"`
	// Pprof serves Go's profiler (net/http/pprof) at /debug/pprof/ on the listen address, to
	// loopback clients and to requests with "Authorization: Bearer <admin token>"; it shadows an
	// index named "debug". Default false.
	Pprof bool `yaml:"pprof"`
	// LogLevel is debug, info, warn or error. Default "info". Used by cmd/vlproxy to build the logger.
	LogLevel string `yaml:"log_level"`
}

// DefaultConfig returns the defaults documented on each Config field.
func DefaultConfig() Config {
	return Config{
		Listen:                  "127.0.0.1:8080",
		ReadTimeout:             5 * time.Minute,
		WriteTimeout:            5 * time.Minute,
		IdleTimeout:             2 * time.Minute,
		DialTimeout:             2 * time.Second,
		UpstreamTimeout:         2 * time.Minute,
		RequestTimeout:          3 * time.Minute,
		DrainTimeout:            30 * time.Second,
		MaxBodySize:             100 << 20,
		MaxHeaderSize:           64 << 10,
		MaxBufferedResponseSize: 256 << 20,
		ResponseBufferSize:      1 << 20,
		MaxConnsPerUpstream:     1024,
		MaxIdleConnDuration:     30 * time.Second,
		MaxConns:                65536,
		MaxRetries:              2,
		RetryWait:               100 * time.Millisecond,
		HealthCheckInterval:     5 * time.Second,
		HealthCheckPath:         "/",
		HealthCheckTimeout:      2 * time.Second,
		HealthCheckFails:        3,
		HealthCheckPasses:       2,
		HealthFailOpen:          true,
		EjectDuration:           10 * time.Second,
		MetricsPath:             "/metrics",
		LogLevel:                "info",
	}
}

// Validate reports every invalid field at once.
func (c *Config) Validate() error {
	var errs []string
	if len(c.Upstreams) == 0 {
		errs = append(errs, "upstreams: at least one upstream URL is required (-upstream)")
	}
	for _, u := range c.Upstreams {
		if _, _, err := parseUpstream(u); err != nil {
			errs = append(errs, fmt.Sprintf("upstreams: %s", err))
		}
	}
	positive := []struct {
		name string
		v    int64
	}{
		{"dial_timeout", int64(c.DialTimeout)},
		{"upstream_timeout", int64(c.UpstreamTimeout)},
		{"request_timeout", int64(c.RequestTimeout)},
		{"max_body_size", int64(c.MaxBodySize)},
		{"max_header_size", int64(c.MaxHeaderSize)},
		{"max_buffered_response_size", int64(c.MaxBufferedResponseSize)},
		{"max_conns_per_upstream", int64(c.MaxConnsPerUpstream)},
		{"max_conns", int64(c.MaxConns)},
		{"health_check_fails", int64(c.HealthCheckFails)},
		{"health_check_passes", int64(c.HealthCheckPasses)},
	}
	for _, p := range positive {
		if p.v <= 0 {
			errs = append(errs, fmt.Sprintf("%s: must be positive", p.name))
		}
	}
	nonNegative := []struct {
		name string
		v    int64
	}{
		{"read_timeout", int64(c.ReadTimeout)},
		{"write_timeout", int64(c.WriteTimeout)},
		{"idle_timeout", int64(c.IdleTimeout)},
		{"drain_timeout", int64(c.DrainTimeout)},
		{"response_buffer_size", int64(c.ResponseBufferSize)},
		{"max_idle_conn_duration", int64(c.MaxIdleConnDuration)},
		{"max_retries", int64(c.MaxRetries)},
		{"retry_wait", int64(c.RetryWait)},
		{"health_check_interval", int64(c.HealthCheckInterval)},
		{"health_check_timeout", int64(c.HealthCheckTimeout)},
		{"eject_duration", int64(c.EjectDuration)},
	}
	for _, p := range nonNegative {
		if p.v < 0 {
			errs = append(errs, fmt.Sprintf("%s: must not be negative", p.name))
		}
	}
	if c.MaxBodySize > 1<<62 {
		errs = append(errs, "max_body_size: too large")
	}
	if c.HealthCheckInterval > 0 && !strings.HasPrefix(c.HealthCheckPath, "/") {
		errs = append(errs, "health_check_path: must start with /")
	}
	if c.MetricsPath != "" && !strings.HasPrefix(c.MetricsPath, "/") {
		errs = append(errs, "metrics_path: must start with / or be empty")
	}
	if _, err := ParseLogLevel(c.LogLevel); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid proxy config: %s", strings.Join(errs, "; "))
	}
	return nil
}

// parseUpstream returns the host:port to dial and whether the node speaks TLS.
func parseUpstream(raw string) (addr string, tls bool, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", false, fmt.Errorf("cannot parse upstream URL %q: %w", raw, err)
	}
	switch u.Scheme {
	case "http":
	case "https":
		tls = true
	default:
		return "", false, fmt.Errorf("upstream URL %q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return "", false, fmt.Errorf("upstream URL %q: missing host", raw)
	}
	if u.Path != "" && u.Path != "/" {
		return "", false, fmt.Errorf("upstream URL %q: a path prefix is not supported", raw)
	}
	addr = u.Host
	if u.Port() == "" {
		if tls {
			addr += ":443"
		} else {
			addr += ":80"
		}
	}
	return addr, tls, nil
}

// ByteSize is a size in bytes that reads from flags, env and YAML as a plain number or with a
// KB/MB/GB (powers of 1000) or KiB/MiB/GiB (powers of 1024) suffix: "100MiB", "1GiB", "65536".
type ByteSize int64

var byteSuffixes = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// ParseByteSize parses a ByteSize (see its doc).
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, bs := range byteSuffixes {
		if strings.HasSuffix(t, bs.suffix) {
			t = strings.TrimSpace(strings.TrimSuffix(t, bs.suffix))
			mult = bs.mult
			break
		}
	}
	if t == "" {
		return 0, fmt.Errorf("cannot parse byte size %q: want a number with an optional KiB/MiB/GiB suffix", s)
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		if n < 0 || (n > 0 && mult > (1<<62)/n) {
			return 0, fmt.Errorf("cannot parse byte size %q: out of range", s)
		}
		return ByteSize(n * mult), nil
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || f*float64(mult) > 1<<62 {
		return 0, fmt.Errorf("cannot parse byte size %q: want a number with an optional KiB/MiB/GiB suffix", s)
	}
	return ByteSize(f * float64(mult)), nil
}

// String formats b with the largest binary suffix that divides it exactly.
func (b ByteSize) String() string {
	n := int64(b)
	for i := 3; i >= 0; i-- {
		m := byteSuffixes[i].mult
		if n != 0 && n%m == 0 {
			return strconv.FormatInt(n/m, 10) + byteSuffixes[i].suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// Set implements flag.Value.
func (b *ByteSize) Set(s string) error {
	v, err := ParseByteSize(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// UnmarshalYAML accepts a number or a string with a suffix.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: cannot parse byte size: want a scalar", n.Line)
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = v
	return nil
}

// MarshalYAML writes the String form.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// ParseLogLevel maps debug/info/warn/error to a slog.Level.
func ParseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log_level: cannot parse %q: want debug, info, warn or error", s)
	}
	return l, nil
}
