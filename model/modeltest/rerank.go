package modeltest

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"math"
	"sort"
	"strings"

	"github.com/tidwall/gjson"
)

type rerankResult struct {
	Index          int            `json:"index"`
	Document       map[string]any `json:"document,omitempty"`
	RelevanceScore float64        `json:"relevance_score"`
}

type rerankResponse struct {
	ID      string         `json:"id"`
	Model   string         `json:"model"`
	Usage   usage          `json:"usage"`
	Results []rerankResult `json:"results"`
}

type teiResult struct {
	Index int     `json:"index"`
	Score float64 `json:"score"`
}

// rerank answers /v1/rerank, /rerank and /v2/rerank. A body with "texts" is
// TEI's form and gets TEI's bare array; "documents" gets vLLM's shape
// (results sorted by score, cut to top_n, documents echoed).
func (s *Server) rerank(ctx context.Context, cfg Config, body []byte) (any, *Fault) {
	if !gjson.ValidBytes(body) {
		return nil, badRequest("JSON decode error: the request body is not valid JSON")
	}
	r := gjson.ParseBytes(body)
	if texts := r.Get("texts"); texts.Exists() {
		return s.teiRerank(ctx, cfg, r)
	}
	if m := r.Get("model").String(); m != "" && m != cfg.Model {
		return nil, &Fault{Status: 404, Shape: ShapeVLLM, Message: "The model `" + m + "` does not exist."}
	}
	if !r.Get("query").Exists() {
		return nil, badRequest("[{'type': 'missing', 'loc': ('body', 'query'), 'msg': 'Field required'}]")
	}
	docs := r.Get("documents")
	if !docs.IsArray() {
		return nil, badRequest("[{'type': 'missing', 'loc': ('body', 'documents'), 'msg': 'Field required'}]")
	}
	qsegs, err := contentSegments(r.Get("query"))
	if err != nil {
		return nil, badRequest("%s", err.Error())
	}
	q := segmentsDoc(qsegs)
	results := make([]rerankResult, 0, len(docs.Array()))
	tokens := 0
	for i, d := range docs.Array() {
		segs, err := contentSegments(d)
		if err != nil {
			return nil, badRequest("%s", err.Error())
		}
		doc := segmentsDoc(segs)
		tokens += len(q.Text)/4 + len(doc.Text)/4 + len(doc.Images)*cfg.ImageTokens + 2
		echo := map[string]any{"text": nil, "multi_modal": nil}
		if len(doc.Images) == 0 {
			echo["text"] = doc.Text
		} else {
			echo["multi_modal"] = d.Value()
		}
		results = append(results, rerankResult{Index: i, Document: echo, RelevanceScore: cfg.Score(q, doc)})
	}
	sort.SliceStable(results, func(i, j int) bool { return results[i].RelevanceScore > results[j].RelevanceScore })
	if n := int(r.Get("top_n").Int()); n > 0 && n < len(results) {
		results = results[:n]
	}
	if malformed(ctx) == OutBadIndex && len(results) > 0 {
		results[0].Index = len(docs.Array()) + 7
	}
	return rerankResponse{ID: s.nextID("rerank-"), Model: cfg.Model,
		Usage: usage{PromptTokens: tokens, TotalTokens: tokens}, Results: results}, nil
}

func (s *Server) teiRerank(ctx context.Context, cfg Config, r gjson.Result) (any, *Fault) {
	texts := r.Get("texts").Array()
	if len(texts) == 0 {
		return nil, &Fault{Status: 400, Shape: ShapeTEI, Message: "`texts` cannot be empty"}
	}
	if !r.Get("query").Exists() {
		return nil, &Fault{Status: 422, Shape: ShapeTEI, Message: "Failed to deserialize the JSON body into the target type: missing field `query`"}
	}
	q := Doc{Text: r.Get("query").String()}
	out := make([]teiResult, len(texts))
	for i, t := range texts {
		out[i] = teiResult{Index: i, Score: cfg.Score(q, Doc{Text: t.String()})}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Score > out[j].Score })
	if malformed(ctx) == OutBadIndex {
		out[0].Index = -1
	}
	return out, nil
}

type scoreData struct {
	Index  int     `json:"index"`
	Object string  `json:"object"`
	Score  float64 `json:"score"`
}

type scoreResponse struct {
	ID      string      `json:"id"`
	Object  string      `json:"object"`
	Created int64       `json:"created"`
	Model   string      `json:"model"`
	Data    []scoreData `json:"data"`
	Usage   usage       `json:"usage"`
}

// score answers vLLM's /score: text_1/text_2 (or queries/documents,
// data_1/data_2, queries/items); a single left side pairs with every right
// side; data[] keeps input order.
func (s *Server) score(ctx context.Context, cfg Config, body []byte) (any, *Fault) {
	if !gjson.ValidBytes(body) {
		return nil, badRequest("JSON decode error: the request body is not valid JSON")
	}
	r := gjson.ParseBytes(body)
	var left, right gjson.Result
	for _, pair := range [][2]string{{"text_1", "text_2"}, {"queries", "documents"}, {"data_1", "data_2"}, {"queries", "items"}} {
		if l, rt := r.Get(pair[0]), r.Get(pair[1]); l.Exists() && rt.Exists() {
			left, right = l, rt
			break
		}
	}
	if !left.Exists() {
		return nil, badRequest("[{'type': 'missing', 'loc': ('body', 'text_1'), 'msg': 'Field required'}]")
	}
	docsOf := func(v gjson.Result) ([]Doc, error) {
		items := []gjson.Result{v}
		if v.IsArray() {
			items = v.Array()
		}
		var out []Doc
		for _, it := range items {
			segs, err := contentSegments(it)
			if err != nil {
				return nil, err
			}
			out = append(out, segmentsDoc(segs))
		}
		return out, nil
	}
	ls, err := docsOf(left)
	if err != nil {
		return nil, badRequest("%s", err.Error())
	}
	rs, err := docsOf(right)
	if err != nil {
		return nil, badRequest("%s", err.Error())
	}
	if len(ls) != 1 && len(ls) != len(rs) {
		return nil, badRequest("Input lengths must be either 1:1, 1:N or N:N")
	}
	data := make([]scoreData, len(rs))
	for i, d := range rs {
		q := ls[0]
		if len(ls) > 1 {
			q = ls[i]
		}
		data[i] = scoreData{Index: i, Object: "score", Score: cfg.Score(q, d)}
	}
	if malformed(ctx) == OutBadIndex && len(data) > 0 {
		data[0].Index = len(data) + 7
	}
	return scoreResponse{ID: s.nextID("score-"), Object: "list", Created: 1731000000, Model: cfg.Model, Data: data}, nil
}

type embedData struct {
	Index     int       `json:"index"`
	Object    string    `json:"object"`
	Embedding []float64 `json:"embedding"`
}

type embedResponse struct {
	ID      string      `json:"id"`
	Object  string      `json:"object"`
	Created int64       `json:"created"`
	Model   string      `json:"model"`
	Data    []embedData `json:"data"`
	Usage   usage       `json:"usage"`
}

// embed answers /v1/embeddings with bag-of-words hashed vectors, L2-normalised:
// texts sharing words are close, identical texts are identical. The chat form
// (messages) gives one vector; image keywords from Config.Images count as words.
func (s *Server) embed(cfg Config, body []byte) (any, *Fault) {
	if !gjson.ValidBytes(body) {
		return nil, badRequest("JSON decode error: the request body is not valid JSON")
	}
	r := gjson.ParseBytes(body)
	if m := r.Get("model").String(); m != "" && m != cfg.Model {
		return nil, &Fault{Status: 404, Shape: ShapeVLLM, Message: "The model `" + m + "` does not exist."}
	}
	var docs []Doc
	switch in := r.Get("input"); {
	case in.Type == gjson.String:
		docs = []Doc{{Text: in.String()}}
	case in.IsArray():
		for _, x := range in.Array() {
			if x.Type != gjson.String {
				return nil, badRequest("input: only strings are simulated")
			}
			// Servers that embed images in the input form take data URIs there.
			if strings.HasPrefix(x.Str, "data:image/") {
				h, err := imageRef(x.Str)
				if err != nil {
					return nil, badRequest("%s", err.Error())
				}
				docs = append(docs, Doc{Images: []string{h}})
				continue
			}
			docs = append(docs, Doc{Text: x.String()})
		}
	case r.Get("messages").IsArray():
		var all []segment
		for _, m := range r.Get("messages").Array() {
			if m.Get("role").String() == "system" {
				continue
			}
			segs, err := contentSegments(m.Get("content"))
			if err != nil {
				return nil, badRequest("%s", err.Error())
			}
			all = append(all, segs...)
		}
		docs = []Doc{segmentsDoc(all)}
	default:
		return nil, badRequest("[{'type': 'missing', 'loc': ('body', 'input'), 'msg': 'Field required'}]")
	}
	if cfg.EmbedImagesOnly {
		for _, d := range docs {
			if len(d.Images) == 0 {
				return nil, badRequest("this model embeds images only: the input has no image")
			}
		}
	}
	resp := embedResponse{ID: s.nextID("embd-"), Object: "list", Created: 1731000000, Model: cfg.Model}
	for i, d := range docs {
		resp.Data = append(resp.Data, embedData{Index: i, Object: "embedding", Embedding: cfg.vector(d)})
		resp.Usage.PromptTokens += len(d.Text)/4 + 1
	}
	resp.Usage.TotalTokens = resp.Usage.PromptTokens
	return resp, nil
}

func (cfg *Config) vector(d Doc) []float64 {
	v := make([]float64, cfg.EmbedDim)
	words := cfg.docWords(d)
	if len(words) == 0 {
		words = d.Images // an image without configured keywords still has its own direction
	}
	if len(words) == 0 {
		words = []string{""}
	}
	for _, w := range words {
		var h [32]byte
		for i := range v {
			if i%16 == 0 {
				h = sha256.Sum256(append([]byte(w), byte(i/16)))
			}
			x := binary.LittleEndian.Uint16(h[(2*i)%32:])
			v[i] += float64(int(x)-32768) / 32768
		}
	}
	var n float64
	for _, x := range v {
		n += x * x
	}
	n = math.Sqrt(n)
	for i := range v {
		v[i] = round4(v[i] / n)
	}
	return v
}
