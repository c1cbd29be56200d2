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

	"github.com/vlproxy/vlproxy/proxy"
)

// FileConfig is the YAML file given by -config. It nests one section per package: `proxy:` now;
// `cache:`, `model:`, `rewrite:`, `rerank:` and `experiments:` join as those packages gain configs.
// Unknown keys are an error, so a typo never silently falls back to a default.
type FileConfig struct {
	Proxy proxy.Config `yaml:"proxy"`
}

// option is one setting reachable by flag, env var and the YAML file.
type option struct {
	name  string // flag name; env var is VLPROXY_ + upper snake of it
	usage string
	get   func(c *proxy.Config) string
	set   func(c *proxy.Config, v string) error
}

func envName(flagName string) string {
	return "VLPROXY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func durationOpt(name, usage string, p func(c *proxy.Config) *time.Duration) option {
	return option{name: name, usage: usage,
		get: func(c *proxy.Config) string { return p(c).String() },
		set: func(c *proxy.Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("cannot parse duration %q (want e.g. 500ms, 30s, 2m): %w", v, err)
			}
			*p(c) = d
			return nil
		}}
}

func sizeOpt(name, usage string, p func(c *proxy.Config) *proxy.ByteSize) option {
	return option{name: name, usage: usage,
		get: func(c *proxy.Config) string { return p(c).String() },
		set: func(c *proxy.Config, v string) error { return p(c).Set(v) }}
}

func intOpt(name, usage string, p func(c *proxy.Config) *int) option {
	return option{name: name, usage: usage,
		get: func(c *proxy.Config) string { return strconv.Itoa(*p(c)) },
		set: func(c *proxy.Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("cannot parse integer %q: %w", v, err)
			}
			*p(c) = n
			return nil
		}}
}

func stringOpt(name, usage string, p func(c *proxy.Config) *string) option {
	return option{name: name, usage: usage,
		get: func(c *proxy.Config) string { return *p(c) },
		set: func(c *proxy.Config, v string) error { *p(c) = v; return nil }}
}

// options lists every setting; -help prints them in this order.
var options = []option{
	stringOpt("listen", "TCP address to accept ES clients on", func(c *proxy.Config) *string { return &c.Listen }),
	{name: "upstream", usage: "comma-separated base URLs of the ES/OpenSearch nodes, e.g. http://127.0.0.1:9200,http://10.0.0.2:9200 (required)",
		get: func(c *proxy.Config) string { return strings.Join(c.Upstreams, ",") },
		set: func(c *proxy.Config, v string) error {
			c.Upstreams = nil
			for _, u := range strings.Split(v, ",") {
				if u = strings.TrimSpace(u); u != "" {
					c.Upstreams = append(c.Upstreams, u)
				}
			}
			return nil
		}},
	durationOpt("read-timeout", "time to read a whole client request, body included", func(c *proxy.Config) *time.Duration { return &c.ReadTimeout }),
	durationOpt("write-timeout", "time to write a whole response to the client", func(c *proxy.Config) *time.Duration { return &c.WriteTimeout }),
	durationOpt("idle-timeout", "close client keep-alive connections idle this long", func(c *proxy.Config) *time.Duration { return &c.IdleTimeout }),
	durationOpt("dial-timeout", "time to connect to an upstream node", func(c *proxy.Config) *time.Duration { return &c.DialTimeout }),
	durationOpt("upstream-timeout", "time for one attempt against one node (send request, read response)", func(c *proxy.Config) *time.Duration { return &c.UpstreamTimeout }),
	durationOpt("request-timeout", "time for a whole request including retries; over it the client gets a 504", func(c *proxy.Config) *time.Duration { return &c.RequestTimeout }),
	durationOpt("drain-timeout", "on SIGTERM/SIGINT, how long in-flight requests may take to finish", func(c *proxy.Config) *time.Duration { return &c.DrainTimeout }),
	sizeOpt("max-body-size", "largest request body (413 above); accepts KiB/MiB/GiB", func(c *proxy.Config) *proxy.ByteSize { return &c.MaxBodySize }),
	sizeOpt("max-header-size", "largest request line plus headers (400 above)", func(c *proxy.Config) *proxy.ByteSize { return &c.MaxHeaderSize }),
	sizeOpt("max-buffered-response-size", "largest upstream response the search pipeline holds whole (502 above)", func(c *proxy.Config) *proxy.ByteSize { return &c.MaxBufferedResponseSize }),
	sizeOpt("response-buffer-size", "pass-through responses up to this size are read whole (clean 502 if the node breaks off); larger ones stream", func(c *proxy.Config) *proxy.ByteSize { return &c.ResponseBufferSize }),
	intOpt("max-conns-per-upstream", "keep-alive connection pool size per node", func(c *proxy.Config) *int { return &c.MaxConnsPerUpstream }),
	durationOpt("max-idle-conn-duration", "close upstream keep-alive connections idle this long", func(c *proxy.Config) *time.Duration { return &c.MaxIdleConnDuration }),
	intOpt("max-conns", "most concurrent client connections", func(c *proxy.Config) *int { return &c.MaxConns }),
	intOpt("max-retries", "retries after a failed attempt (dial errors: any request; other errors: idempotent reads only)", func(c *proxy.Config) *int { return &c.MaxRetries }),
	durationOpt("retry-wait", "pause before trying nodes again once all have failed", func(c *proxy.Config) *time.Duration { return &c.RetryWait }),
	durationOpt("health-check-interval", "period of active health checks; 0 turns them off", func(c *proxy.Config) *time.Duration { return &c.HealthCheckInterval }),
	stringOpt("health-check-path", "path requested with GET on each node; status < 500 is healthy", func(c *proxy.Config) *string { return &c.HealthCheckPath }),
	durationOpt("health-check-timeout", "time for one health check", func(c *proxy.Config) *time.Duration { return &c.HealthCheckTimeout }),
	durationOpt("eject-duration", "a node that refused a connection is skipped this long (or until a check passes)", func(c *proxy.Config) *time.Duration { return &c.EjectDuration }),
	stringOpt("metrics-path", `extra path serving Prometheus metrics besides /_vlproxy/metrics; "" forwards it to ES`, func(c *proxy.Config) *string { return &c.MetricsPath }),
	stringOpt("log-level", "debug, info, warn or error (JSON logs on stderr)", func(c *proxy.Config) *string { return &c.LogLevel }),
}

// rawValue records a flag's text and whether it was given; values are applied after the file and env.
type rawValue struct {
	s   string
	set bool
}

func (v *rawValue) String() string     { return v.s }
func (v *rawValue) Set(s string) error { v.s, v.set = s, true; return nil }

// loadConfig builds the proxy config from defaults < YAML file < env vars < flags.
func loadConfig(args []string, getenv func(string) string, stderr io.Writer) (proxy.Config, error) {
	fs := flag.NewFlagSet("vlproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := &rawValue{}
	fs.Var(configPath, "config", "")
	raws := make([]*rawValue, len(options))
	for i, o := range options {
		raws[i] = &rawValue{}
		fs.Var(raws[i], o.name, o.usage)
	}
	fs.Usage = func() { printUsage(stderr) }
	if err := fs.Parse(args); err != nil {
		return proxy.Config{}, err
	}
	if fs.NArg() > 0 {
		return proxy.Config{}, fmt.Errorf("unexpected arguments %q; every setting is a flag (see -help)", fs.Args())
	}

	cfg := proxy.DefaultConfig()
	path := configPath.s
	if !configPath.set {
		path = getenv(envName("config"))
	}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return proxy.Config{}, fmt.Errorf("cannot read -config file: %w", err)
		}
		if err := decodeFile(data, &cfg); err != nil {
			return proxy.Config{}, fmt.Errorf("cannot parse -config file %s: %w", path, err)
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
		return proxy.Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return proxy.Config{}, err
	}
	return cfg, nil
}

// decodeFile reads the YAML file over the defaults already in cfg.
func decodeFile(data []byte, cfg *proxy.Config) error {
	fc := FileConfig{Proxy: *cfg}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	*cfg = fc.Proxy
	return nil
}

func printUsage(w io.Writer) {
	def := proxy.DefaultConfig()
	fmt.Fprint(w, `vlproxy — a transparent Elasticsearch/OpenSearch proxy.

Usage: vlproxy -upstream http://127.0.0.1:9200 [flags]

Every flag can also be set by the environment variable shown, or in the YAML file given by -config
(section "proxy:", key in snake_case: -max-body-size is proxy.max_body_size).
Precedence: flag > environment > file > default. Durations read like 500ms, 30s, 2m; sizes like
65536, 64KiB, 100MiB, 1GiB.

Signals: SIGTERM or SIGINT stop accepting connections and let in-flight requests finish within
-drain-timeout. Endpoints of its own: GET /_vlproxy/health, GET /_vlproxy/metrics.

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
