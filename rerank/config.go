// Package rerank owns model reranking of the top window of a search response:
// it decides whether a request can be reranked and widens it (Prepare), extracts
// the candidate text/image of each hit, scores the window through a Scorer with a
// deadline and a score cache, fuses model and ES scores, reorders and slices the
// hits, restores the _source/filter_path shape the client asked for, and builds
// the explanation and shadow statistics (Apply). It never fails a search for
// model reasons: every model problem degrades to ES order.
package rerank

import (
	"fmt"
	"log/slog"
	"math"
	"path"
	"strings"
	"time"
)

// FieldsConfig names the _source fields that make up a candidate document.
type FieldsConfig struct {
	// Text fields, joined with newlines, form the candidate text. Default: ["title", "description"].
	Text []string `yaml:"text" json:"text"`
	// Image is a field holding an image URL or data URI; empty means text-only candidates. Default: "".
	Image string `yaml:"image" json:"image"`
}

// Config is the rerank configuration.
type Config struct {
	// Indices are index name patterns (`*` wildcards) where reranking is on by default;
	// elsewhere it needs ext.vlproxy.rerank.enabled or X-VLProxy-Rerank. Default: none.
	Indices []string `yaml:"indices"`
	// WindowSize is the default rank_window_size: how many top ES hits are scored. Default: 50.
	WindowSize int `yaml:"window_size"`
	// MaxWindowSize is the largest rank_window_size a request may ask for (over it: 400). Default: 500.
	MaxWindowSize int `yaml:"max_window_size"`
	// Weight blends the min-max normalized model score with the normalized ES score:
	// weight*model + (1-weight)*es. Default: 1 (model order only).
	Weight float64 `yaml:"weight"`
	// MinScore drops window hits whose raw model score is below it. Default: nil (keep all).
	MinScore *float64 `yaml:"min_score"`
	// Timeout is the rerank budget; hits not scored by then keep ES order (partial). Default: 300ms.
	Timeout time.Duration `yaml:"timeout"`
	// Fields names the candidate text/image fields. Default: see FieldsConfig.
	Fields FieldsConfig `yaml:"fields"`
	// Scorer is the scorer the server wires in: "api" (rerank endpoint) or "judge" (chat-judge). Default: "api".
	Scorer string `yaml:"scorer"`
}

// DefaultConfig returns the configuration with every default applied.
func DefaultConfig() Config {
	return Config{
		WindowSize:    50,
		MaxWindowSize: 500,
		Weight:        1,
		Timeout:       300 * time.Millisecond,
		Fields:        FieldsConfig{Text: []string{"title", "description"}},
		Scorer:        "api",
	}
}

func (c *Config) validate() error {
	if c.WindowSize < 1 {
		return fmt.Errorf("cannot use rerank.window_size=%d: must be >= 1", c.WindowSize)
	}
	if c.MaxWindowSize < c.WindowSize {
		return fmt.Errorf("cannot use rerank.max_window_size=%d: below window_size=%d", c.MaxWindowSize, c.WindowSize)
	}
	if !(c.Weight >= 0 && c.Weight <= 1) {
		return fmt.Errorf("cannot use rerank.weight=%v: must be in [0,1]", c.Weight)
	}
	if c.MinScore != nil && (math.IsNaN(*c.MinScore) || math.IsInf(*c.MinScore, 0)) {
		return fmt.Errorf("cannot use rerank.min_score=%v: must be finite", *c.MinScore)
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("cannot use rerank.timeout=%s: must be positive", c.Timeout)
	}
	if len(c.Fields.Text) == 0 && c.Fields.Image == "" {
		return fmt.Errorf("cannot use rerank.fields: need at least one text field or an image field")
	}
	for _, p := range c.Indices {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("cannot use rerank.indices pattern %q: %w", p, err)
		}
	}
	switch c.Scorer {
	case "api", "judge":
	default:
		return fmt.Errorf("cannot use rerank.scorer=%q: want api or judge", c.Scorer)
	}
	return nil
}

// Reranker holds the configuration, the scorer and the score cache. It is safe for concurrent use.
type Reranker struct {
	cfg    Config
	scorer Scorer
	cache  Cache
	log    *slog.Logger
}

// New validates cfg and returns a Reranker. c may be nil (no score cache), log may be nil.
func New(cfg Config, s Scorer, c Cache, log *slog.Logger) (*Reranker, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if s == nil {
		return nil, fmt.Errorf("cannot create reranker: nil scorer")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reranker{cfg: cfg, scorer: s, cache: c, log: log}, nil
}

// Config returns the configuration in use.
func (r *Reranker) Config() Config { return r.cfg }

// enabledFor reports whether one of the comma-separated index names matches Indices.
func (r *Reranker) enabledFor(index string) bool {
	for _, name := range strings.Split(index, ",") {
		name = strings.TrimSpace(name)
		for _, p := range r.cfg.Indices {
			if ok, _ := path.Match(p, name); ok {
				return true
			}
		}
	}
	return false
}

// EnabledFor reports whether reranking is on by default for the index expression (Config.Indices),
// so the proxy can tell a plain search it may forward untouched from one it must rerank.
func (r *Reranker) EnabledFor(index string) bool { return r.enabledFor(index) }
