package rewrite

import (
	"fmt"
	"github.com/vlproxy/vlproxy/media"
	"path"
	"strings"
	"time"

	"github.com/vlproxy/vlproxy/document"
	"github.com/vlproxy/vlproxy/hybrid"
)

// Config configures the rewriter. Zero fields take the value from DefaultConfig
// (see New); the doc comment of each field gives that default.
type Config struct {
	// Profiles map index patterns to default fields and attribute mappings. The first
	// profile whose pattern matches one of the request's indices wins; a profile with
	// pattern "*" (or none matching) is the global default. Default: one profile "*"
	// with no fields (multi_match then searches index.query.default_field).
	Profiles []Profile `yaml:"profiles"`
	// Image limits the images a clause may carry.
	Image media.Config `yaml:"image"`
	// Prompt selects the prompt language and version.
	Prompt PromptConfig `yaml:"prompt"`
	// MaxTextLength bounds the [text] of one clause in bytes (400 above). Default 2048.
	MaxTextLength int `yaml:"max_text_length"`
	// MaxKeywords caps the keyword phrases taken from the model. Default 8.
	MaxKeywords int `yaml:"max_keywords"`
	// Timeout bounds one model call (the request's own deadline still applies). Default 2s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxTokens is the completion budget of a keyword call. Default 256.
	MaxTokens int `yaml:"max_tokens"`
	// Temperature of keyword calls. Default 0.2.
	Temperature float64 `yaml:"temperature"`
	// TopP of keyword calls. Default 0.8.
	TopP float64 `yaml:"top_p"`
	// Fallback says what happens when the model cannot help.
	Fallback FallbackConfig `yaml:"fallback"`
	// Document limits `multimodal.document` and its table extraction.
	Document DocumentConfig `yaml:"document"`
	// Engine is the kNN query dialect: "opensearch" (k-NN plugin) or "elasticsearch" (8.12+
	// knn query). Default "opensearch".
	Engine string `yaml:"engine"`
	// EmbedTimeout bounds one embedding call (the request's own deadline still applies). Default 2s.
	EmbedTimeout time.Duration `yaml:"embed_timeout"`
}

// Profile is the search defaults of the indices matching Index.
type Profile struct {
	// Index is a pattern over index names: "*" and "?" wildcards, e.g. "products-*". Required.
	Index string `yaml:"index"`
	// Fields searched when the clause names none, e.g. ["title^3", "description"]. Default: none.
	Fields []string `yaml:"fields"`
	// Attributes maps model attributes (colour, material, …) to fields. Default: none.
	Attributes []AttributeMapping `yaml:"attributes"`
	// Vector names the indices' embedding field; with it a clause's default mode is hybrid.
	// Default: none (clauses run keywords only).
	Vector *VectorProfile `yaml:"vector"`
}

// VectorProfile is the kNN side of the indices of a profile.
type VectorProfile struct {
	// Field is the knn_vector (OpenSearch) or dense_vector (ES) field holding image vectors. Required.
	Field string `yaml:"field"`
	// Dims is the field's dimension; an embedding of another length is a 400. Default 0: not checked.
	Dims int `yaml:"dims"`
	// Mode is the clauses' default mode: keywords, vector or hybrid. Default hybrid.
	Mode string `yaml:"mode"`
	// K is the clauses' default k (neighbours); 0 takes from+size of the page. Default 0.
	K int `yaml:"k"`
	// NumCandidates is the default num_candidates (ES) / ef_search (OpenSearch). Default 0: the engine's.
	NumCandidates int `yaml:"num_candidates"`
	// Fusion is the default fusion of hybrid searches. Default rrf with rank_constant 60.
	Fusion hybrid.Fusion `yaml:"fusion"`
}

// AttributeMapping turns one attribute of the model's answer into a filter or a boost.
type AttributeMapping struct {
	// Attribute is the key in the model's attributes object, e.g. "colour". Required.
	Attribute string `yaml:"attribute"`
	// Field is the document field it is matched against, e.g. "baseColour". Required.
	Field string `yaml:"field"`
	// As is "boost" (a should clause that raises matching documents) or "filter"
	// (documents must match). Default "boost".
	As string `yaml:"as"`
	// Boost of a boost clause. Default 1.
	Boost float64 `yaml:"boost"`
}

// PromptConfig selects the prompt.
type PromptConfig struct {
	// Language used when the clause sets none and its text has no CJK characters:
	// "en" or "zh". Default "en". Text containing CJK characters selects "zh".
	Language string `yaml:"language"`
	// Version is recorded in the cache key and the explanation; change it to
	// invalidate cached keywords. Default PromptVersion.
	Version string `yaml:"version"`
}

// FallbackConfig says what happens when the model fails.
type FallbackConfig struct {
	// ImageOnly is what an image-only clause becomes without a usable model:
	// "error" (an ES-shaped 503 naming the cause) or "empty" (a match_none query,
	// so the search returns no hits). Default "error".
	ImageOnly string `yaml:"image_only"`
}

// DefaultConfig returns the defaults every zero field of a Config takes.
func DefaultConfig() Config {
	return Config{
		Profiles:      []Profile{{Index: "*"}},
		Image:         media.DefaultConfig(),
		Prompt:        PromptConfig{Language: "en", Version: PromptVersion},
		MaxKeywords:   8,
		MaxTextLength: 2048,
		Timeout:       2 * time.Second,
		MaxTokens:     256,
		Temperature:   0.2,
		TopP:          0.8,
		Fallback:      FallbackConfig{ImageOnly: "error"},
		Document:      DocumentConfig{Limits: document.DefaultLimits(), MaxRows: 20, MaxModelPages: 4, MaxTokens: 1024, Timeout: 10 * time.Second},
	}
}

// withDefaults fills zero fields from DefaultConfig and validates the result.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if len(c.Profiles) == 0 {
		c.Profiles = d.Profiles
	}
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setInt(&c.MaxKeywords, d.MaxKeywords)
	setInt(&c.MaxTextLength, d.MaxTextLength)
	setInt(&c.MaxTokens, d.MaxTokens)
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.Temperature == 0 {
		c.Temperature = d.Temperature
	}
	if c.TopP == 0 {
		c.TopP = d.TopP
	}
	if c.Prompt.Language == "" {
		c.Prompt.Language = d.Prompt.Language
	}
	if c.Prompt.Version == "" {
		c.Prompt.Version = d.Prompt.Version
	}
	if c.Fallback.ImageOnly == "" {
		c.Fallback.ImageOnly = d.Fallback.ImageOnly
	}
	if c.Engine == "" {
		c.Engine = hybrid.OpenSearch
	}
	if c.EmbedTimeout == 0 {
		c.EmbedTimeout = 2 * time.Second
	}
	if c.Engine != hybrid.OpenSearch && c.Engine != hybrid.Elasticsearch {
		return c, fmt.Errorf("cannot use engine %q: want opensearch or elasticsearch", c.Engine)
	}

	if err := c.Document.withDefaults(); err != nil {
		return c, err
	}
	if c.Prompt.Language != "en" && c.Prompt.Language != "zh" {
		return c, fmt.Errorf("cannot use prompt.language %q: want en or zh", c.Prompt.Language)
	}
	if c.Fallback.ImageOnly != "error" && c.Fallback.ImageOnly != "empty" {
		return c, fmt.Errorf("cannot use fallback.image_only %q: want error or empty", c.Fallback.ImageOnly)
	}
	var err error
	if c.Image, err = c.Image.WithDefaults(); err != nil {
		return c, err
	}
	ps := make([]Profile, len(c.Profiles))
	for i, p := range c.Profiles {
		if p.Index == "" {
			return c, fmt.Errorf("cannot use profiles[%d]: index pattern is empty", i)
		}
		if _, err := path.Match(p.Index, ""); err != nil {
			return c, fmt.Errorf("cannot use profiles[%d].index %q: %w", i, p.Index, err)
		}
		p.Attributes = append([]AttributeMapping(nil), p.Attributes...)
		for j := range p.Attributes {
			a := &p.Attributes[j]
			if a.Attribute == "" || a.Field == "" {
				return c, fmt.Errorf("cannot use profiles[%d].attributes[%d]: attribute and field are required", i, j)
			}
			if a.As == "" {
				a.As = "boost"
			}
			if a.As != "boost" && a.As != "filter" {
				return c, fmt.Errorf("cannot use profiles[%d].attributes[%d].as %q: want boost or filter", i, j, a.As)
			}
			if a.Boost == 0 {
				a.Boost = 1
			}
		}
		if v := p.Vector; v != nil {
			vp := *v
			if vp.Field == "" {
				return c, fmt.Errorf("cannot use profiles[%d].vector: field is required", i)
			}
			if vp.Mode == "" {
				vp.Mode = hybrid.ModeHybrid
			}
			switch vp.Mode {
			case hybrid.ModeKeywords, hybrid.ModeVector, hybrid.ModeHybrid:
			default:
				return c, fmt.Errorf("cannot use profiles[%d].vector.mode %q: want keywords, vector or hybrid", i, vp.Mode)
			}
			if vp.Dims < 0 || vp.K < 0 || vp.NumCandidates < 0 {
				return c, fmt.Errorf("cannot use profiles[%d].vector: dims, k and num_candidates must not be negative", i)
			}
			if err := vp.Fusion.Validate(); err != nil {
				return c, fmt.Errorf("cannot use profiles[%d].vector: %w", i, err)
			}
			vp.Fusion = vp.Fusion.WithDefaults()
			p.Vector = &vp
		}
		ps[i] = p
	}
	c.Profiles = ps
	return c, nil
}

// profile picks the profile for an index expression such as "products,shoes-*"
// ("" for /_search, which only the default profile serves).
func (c *Config) profile(index string) *Profile {
	var def *Profile
	for i := range c.Profiles {
		p := &c.Profiles[i]
		if p.Index == "*" {
			if def == nil {
				def = p
			}
			continue
		}
		for name := range strings.SplitSeq(index, ",") {
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			if ok, _ := path.Match(p.Index, name); ok || p.Index == name {
				return p
			}
		}
	}
	if def == nil {
		def = &Profile{Index: "*"}
	}
	return def
}
