package bench

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/valyala/fasthttp"
)

// Variant is one configuration under evaluation: a name and the headers that select it
// (e.g. X-VLProxy-Rewrite: on).
type Variant struct {
	Name    string            `json:"name"`
	Headers map[string]string `json:"headers,omitempty"`
}

// ParseVariant parses "name" or "name:Header=Value,Header2=Value2".
func ParseVariant(s string) (Variant, error) {
	name, hdrs, _ := strings.Cut(s, ":")
	v := Variant{Name: strings.TrimSpace(name), Headers: map[string]string{}}
	if v.Name == "" {
		return v, fmt.Errorf("variant %q: want name:Header=Value,…", s)
	}
	if strings.TrimSpace(hdrs) == "" {
		return v, nil
	}
	for _, kv := range strings.Split(hdrs, ",") {
		k, val, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " :") {
			return v, fmt.Errorf("variant %q: header %q is not Header=Value", s, kv)
		}
		v.Headers[k] = strings.TrimSpace(val)
	}
	return v, nil
}

// EvalConfig configures a relevance evaluation.
type EvalConfig struct {
	// URL is the base URL of the search endpoint target (vlproxy or ES). Required.
	URL string `yaml:"url"`
	// Index is searched with POST /{index}/_search. Default: "products".
	Index string `yaml:"index"`
	// K is the metric cutoff, and the number of hits requested (plus excluded docs). Default: 10.
	K int `yaml:"k"`
	// Template is the _search body; {{text}} and {{image}} are replaced by JSON strings (a data URI
	// for the image) and {{size}} by the number of hits. Default: a multimodal clause with the
	// query's text and/or image (see DefaultTemplate).
	Template string `yaml:"template"`
	// Variants are compared against the first. Default: one variant "default" without headers.
	Variants []Variant `yaml:"variants"`
	// Permutations for the paired randomization test. Default: 10000.
	Permutations int `yaml:"permutations"`
	// Timeout per search. Default: 30s.
	Timeout time.Duration `yaml:"timeout"`
	// IDField, when set, reads the document id from this _source field instead of _id.
	IDField string `yaml:"id_field"`
	// AllJudged treats documents missing from the qrels as judged non-relevant (gain 0), for
	// collections where every document is judged but only positive gains were written (the
	// fashion set). Default: false (missing documents are unjudged).
	AllJudged bool `yaml:"all_judged"`
	// RecallAt, when > K, also requests that many hits and reports recall@RecallAt over them
	// (the other metrics stay cut at K). Default 0: off.
	RecallAt int `yaml:"recall_at"`
	// Progress, if set, is called after each query.
	Progress func(done, total int) `yaml:"-"`
}

// DefaultEvalConfig returns the defaults documented on EvalConfig.
func DefaultEvalConfig() EvalConfig {
	return EvalConfig{Index: "products", K: 10, Variants: []Variant{{Name: "default"}}, Permutations: 10000,
		Timeout: 30 * time.Second}
}

// BuildBody renders the search body of q. With an empty template a multimodal clause carries
// whichever of text and image the query has.
func BuildBody(template string, q EvalQuery, size int) ([]byte, error) {
	var img string
	if q.image != "" || q.ImageFile != "" {
		p := q.image
		if p == "" {
			p = q.ImageFile
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("query %s: cannot read image: %w", q.ID, err)
		}
		img = "data:" + http.DetectContentType(b) + ";base64," + base64.StdEncoding.EncodeToString(b)
	}
	js := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	if template == "" {
		clause := map[string]string{}
		if q.Text != "" {
			clause["text"] = q.Text
		}
		if img != "" {
			clause["image"] = img
		}
		c, _ := json.Marshal(clause)
		return []byte(fmt.Sprintf(`{"size":%d,"query":{"multimodal":%s}}`, size, c)), nil
	}
	out := strings.NewReplacer("{{text}}", js(q.Text), "{{image}}", js(img), "{{size}}", itoa(size)).Replace(template)
	if !json.Valid([]byte(out)) {
		return nil, fmt.Errorf("query %s: the template does not give valid JSON", q.ID)
	}
	return []byte(out), nil
}

// QueryResult is the outcome of one query under one variant.
type QueryResult struct {
	Query   string            `json:"query"`
	Run     []RankedDoc       `json:"run"`
	Metrics Metrics           `json:"metrics"`
	Error   string            `json:"error,omitempty"`
	Headers map[string]string `json:"vlproxy_headers,omitempty"`
}

// VariantResult holds one variant's per-query results and means.
type VariantResult struct {
	Variant
	Queries []QueryResult      `json:"queries"`
	Mean    map[string]float64 `json:"mean"`
	Errors  int                `json:"errors"`
}

// Comparison of a variant with the first (baseline) on one metric.
type Comparison struct {
	Variant  string  `json:"variant"`
	Metric   string  `json:"metric"`
	MeanDiff float64 `json:"mean_diff"`
	P        float64 `json:"p_value"`
	Better   int     `json:"queries_better"`
	Worse    int     `json:"queries_worse"`
}

// EvalReport is the outcome of an evaluation.
type EvalReport struct {
	URL         string           `json:"url"`
	Index       string           `json:"index"`
	K           int              `json:"k"`
	Queries     int              `json:"queries"`
	Metrics     []string         `json:"metrics"`
	Variants    []*VariantResult `json:"variants"`
	Comparisons []Comparison     `json:"comparisons,omitempty"`
	Simulated   string           `json:"note,omitempty"`
}

// Searcher runs one search and returns the response body; the HTTP client behind it is
// replaceable in tests.
type Searcher func(body []byte, headers map[string]string) (status int, resp []byte, respHeaders map[string]string, err error)

// HTTPSearcher posts to URL/index/_search.
func HTTPSearcher(cfg EvalConfig) Searcher {
	c := &fasthttp.Client{NoDefaultUserAgentHeader: true, MaxResponseBodySize: 64 << 20, ReadBufferSize: 16 << 10}
	uri := strings.TrimRight(cfg.URL, "/") + "/" + cfg.Index + "/_search"
	return func(body []byte, headers map[string]string) (int, []byte, map[string]string, error) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(uri)
		req.Header.SetMethod("POST")
		req.Header.SetContentType("application/json")
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		req.SetBody(body)
		if err := c.DoTimeout(req, resp, cfg.Timeout); err != nil {
			return 0, nil, nil, err
		}
		hs := map[string]string{}
		for k, v := range resp.Header.All() {
			if len(k) > 10 && strings.EqualFold(string(k[:10]), "X-VLProxy-") {
				hs["X-VLProxy-"+string(k[10:])] = string(v)
			}
		}
		return resp.StatusCode(), append([]byte(nil), resp.Body()...), hs, nil
	}
}

// RunEval runs every query under every variant (queries interleaved across variants) and
// computes metrics and comparisons.
func RunEval(cfg EvalConfig, queries []EvalQuery, qrels Qrels, search Searcher) (*EvalReport, error) {
	def := DefaultEvalConfig()
	if cfg.K <= 0 {
		cfg.K = def.K
	}
	if cfg.Index == "" {
		cfg.Index = def.Index
	}
	if len(cfg.Variants) == 0 {
		cfg.Variants = def.Variants
	}
	if cfg.Permutations <= 0 {
		cfg.Permutations = def.Permutations
	}
	names := map[string]bool{}
	for _, v := range cfg.Variants {
		if names[v.Name] {
			return nil, fmt.Errorf("variant %q is given twice", v.Name)
		}
		names[v.Name] = true
	}
	var missing []string
	for _, q := range queries {
		if _, ok := qrels[q.ID]; !ok {
			missing = append(missing, q.ID)
		}
	}
	if len(missing) > 0 {
		if len(missing) > 5 {
			missing = append(missing[:5], "…")
		}
		return nil, fmt.Errorf("queries without judgments in the qrels: %s", strings.Join(missing, ", "))
	}
	rep := &EvalReport{URL: cfg.URL, Index: cfg.Index, K: cfg.K, Queries: len(queries), Metrics: MetricNames(cfg.K)}
	depth := cfg.K
	if cfg.RecallAt > cfg.K {
		depth = cfg.RecallAt
		rep.Metrics = append(rep.Metrics, "recall@"+itoa(cfg.RecallAt))
	}
	for _, v := range cfg.Variants {
		rep.Variants = append(rep.Variants, &VariantResult{Variant: v, Mean: map[string]float64{}})
	}
	for i, q := range queries {
		size := depth + len(q.Exclude)
		body, err := BuildBody(cfg.Template, q, size)
		if err != nil {
			return nil, err
		}
		for _, vr := range rep.Variants {
			qres := QueryResult{Query: q.ID}
			status, resp, hs, err := search(body, vr.Headers)
			switch {
			case err != nil:
				qres.Error = err.Error()
			case status != 200:
				qres.Error = fmt.Sprintf("status %d: %.200s", status, resp)
			default:
				qres.Run = parseHits(resp, cfg.IDField, q.Exclude, depth)
			}
			if len(hs) > 0 {
				qres.Headers = hs
			}
			if qres.Error != "" {
				vr.Errors++
			}
			if cfg.AllJudged {
				for _, d := range qres.Run {
					if _, ok := qrels[q.ID][d.ID]; !ok {
						qrels[q.ID][d.ID] = 0
					}
				}
			}
			qres.Metrics = EvaluateDeep(TrecOrder(qres.Run), qrels[q.ID], cfg.K, cfg.RecallAt)
			vr.Queries = append(vr.Queries, qres)
		}
		if cfg.Progress != nil {
			cfg.Progress(i+1, len(queries))
		}
	}
	for _, vr := range rep.Variants {
		for _, m := range rep.Metrics {
			s := 0.0
			for _, q := range vr.Queries {
				s += q.Metrics[m]
			}
			vr.Mean[m] = s / float64(len(vr.Queries))
		}
	}
	base := rep.Variants[0]
	for vi, vr := range rep.Variants[1:] {
		for mi, m := range rep.Metrics {
			a, b := make([]float64, len(base.Queries)), make([]float64, len(vr.Queries))
			c := Comparison{Variant: vr.Name, Metric: m}
			for i := range a {
				a[i], b[i] = base.Queries[i].Metrics[m], vr.Queries[i].Metrics[m]
				if b[i] > a[i]+1e-12 {
					c.Better++
				} else if b[i] < a[i]-1e-12 {
					c.Worse++
				}
			}
			c.MeanDiff, c.P = RandomizationTest(a, b, cfg.Permutations, uint64(vi*100+mi+1))
			rep.Comparisons = append(rep.Comparisons, c)
		}
	}
	return rep, nil
}

// parseHits reads hits.hits[] (id, score), drops excluded ids and keeps k.
func parseHits(body []byte, idField string, exclude []string, k int) []RankedDoc {
	var out []RankedDoc
	gjson.GetBytes(body, "hits.hits").ForEach(func(_, h gjson.Result) bool {
		id := h.Get("_id").String()
		if idField != "" {
			if v := h.Get("_source." + gjson.Escape(idField)); v.Exists() {
				id = v.String()
			}
		}
		for _, e := range exclude {
			if e == id {
				return true
			}
		}
		out = append(out, RankedDoc{ID: id, Score: h.Get("_score").Float()})
		return len(out) < k
	})
	// Keep the engine's order as authoritative for rank (scores can be null when sorting); give
	// trec_eval-style tie handling a strictly decreasing score where the engine gave none.
	for i := range out {
		if out[i].Score == 0 {
			out[i].Score = float64(len(out) - i)
		}
	}
	return out
}

// WriteEvalMarkdown writes the means per variant, comparisons and the per-query deltas of the
// first metric.
func WriteEvalMarkdown(w io.Writer, rep *EvalReport) {
	if rep.Simulated != "" {
		fmt.Fprintf(w, "%s\n\n", rep.Simulated)
	}
	fmt.Fprintf(w, "%d queries against %s (index %s), cutoff k=%d; means over queries of metrics with trec_eval semantics (mean ap@k = MAP@k, mean rr = MRR; primed: judged-only, unjudged documents removed).\n\n",
		rep.Queries, rep.URL, rep.Index, rep.K)
	fmt.Fprintf(w, "| variant | errors | %s |\n|---|---:|%s\n", strings.Join(rep.Metrics, " | "), strings.Repeat("---:|", len(rep.Metrics)))
	for _, v := range rep.Variants {
		var cells []string
		for _, m := range rep.Metrics {
			cells = append(cells, fmt.Sprintf("%.4f", v.Mean[m]))
		}
		fmt.Fprintf(w, "| %s | %d | %s |\n", v.Name, v.Errors, strings.Join(cells, " | "))
	}
	if len(rep.Comparisons) > 0 {
		fmt.Fprintf(w, "\nAgainst %s (paired randomization test, two-sided):\n\n| variant | metric | Δ mean | p | better | worse |\n|---|---|---:|---:|---:|---:|\n", rep.Variants[0].Name)
		for _, c := range rep.Comparisons {
			fmt.Fprintf(w, "| %s | %s | %+.4f | %.4f | %d | %d |\n", c.Variant, c.Metric, c.MeanDiff, c.P, c.Better, c.Worse)
		}
		m := rep.Metrics[0]
		for _, v := range rep.Variants[1:] {
			type d struct {
				q    string
				diff float64
			}
			var ds []d
			for i, q := range v.Queries {
				ds = append(ds, d{q.Query, q.Metrics[m] - rep.Variants[0].Queries[i].Metrics[m]})
			}
			sort.SliceStable(ds, func(i, j int) bool { return math.Abs(ds[i].diff) > math.Abs(ds[j].diff) })
			fmt.Fprintf(w, "\nLargest per-query %s changes, %s vs %s:\n\n| query | Δ |\n|---|---:|\n", m, v.Name, rep.Variants[0].Name)
			for i, x := range ds {
				if i >= 10 || x.diff == 0 {
					break
				}
				fmt.Fprintf(w, "| %s | %+.4f |\n", x.q, x.diff)
			}
		}
	}
}

// WriteEvalSVG draws grouped bars: one group per metric, one bar per variant.
func WriteEvalSVG(w io.Writer, title string, rep *EvalReport) error {
	metrics := rep.Metrics
	const H, L, T, B = 360.0, 50.0, 40.0, 60.0
	group := 24.0 * float64(len(rep.Variants)+1)
	W := L + group*float64(len(metrics)) + 170
	ph := H - T - B
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", W, H)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="22" font-size="15">%s</text>`+"\n", L, xmlEscape(title))
	for i := 0; i <= 4; i++ {
		y := T + ph - float64(i)/4*ph
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/>`+"\n", L, y, L+group*float64(len(metrics)), y)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%.2f</text>`+"\n", L-6, y+4, float64(i)/4)
	}
	for mi, m := range metrics {
		x0 := L + group*float64(mi) + 12
		for vi, v := range rep.Variants {
			h := v.Mean[m] * ph
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="20" height="%.1f" fill="%s"><title>%s %s %.4f</title></rect>`+"\n",
				x0+float64(vi)*24, T+ph-h, h, svgColors[vi%len(svgColors)], xmlEscape(v.Name), xmlEscape(m), v.Mean[m])
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x0+float64(len(rep.Variants))*12, T+ph+18, xmlEscape(m))
	}
	lx := L + group*float64(len(metrics)) + 16
	for vi, v := range rep.Variants {
		y := T + 10 + float64(vi)*18
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="14" height="10" fill="%s"/>`+"\n", lx, y-8, svgColors[vi%len(svgColors)])
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">%s</text>`+"\n", lx+20, y+1, xmlEscape(v.Name))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
