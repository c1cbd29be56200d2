package modeltest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"unicode"

	"github.com/tidwall/gjson"
)

// ImageHash returns the hex SHA-256 the simulator keys images by: of the
// decoded bytes for a data URI or raw base64, of the string itself for a URL.
// Tests register images in Config.Images / Rule.Image under this hash.
func ImageHash(img []byte) string {
	h := sha256.Sum256(img)
	return hex.EncodeToString(h[:])
}

// errBadImage is vLLM's 400 for an image it cannot decode (PR #38253).
var errBadImage = errors.New("cannot identify image file")

// imageRef decodes an image_url value into its hash, validating it like vLLM.
func imageRef(url string) (string, error) {
	switch {
	case strings.HasPrefix(url, "http://"), strings.HasPrefix(url, "https://"):
		return ImageHash([]byte(url)), nil
	case strings.HasPrefix(url, "data:"):
		meta, data, ok := strings.Cut(url[len("data:"):], ",")
		if !ok || !strings.HasSuffix(meta, ";base64") {
			return "", errors.New("Only base64 data URLs are supported for now.")
		}
		return decodeImage(data)
	}
	// llama.cpp and Ollama also take raw base64.
	return decodeImage(url)
}

func decodeImage(b64 string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(b) == 0 {
		return "", errBadImage
	}
	return ImageHash(b), nil
}

// segment is a piece of a prompt: text, an image (by hash), or a video (its bytes).
type segment struct {
	text  string
	image string
	video []byte
}

// contentSegments reads a message content (string or parts) or a rerank
// document (string, {"content":[parts]}, Jina {"text","image"}).
func contentSegments(c gjson.Result) ([]segment, error) {
	switch {
	case c.Type == gjson.String:
		return []segment{{text: c.String()}}, nil
	case c.IsObject() && c.Get("content").Exists():
		return contentSegments(c.Get("content"))
	case c.IsObject() && (c.Get("text").Exists() || c.Get("image").Exists()) && !c.Get("type").Exists():
		var segs []segment
		if t := c.Get("text"); t.Exists() {
			segs = append(segs, segment{text: t.String()})
		}
		if im := c.Get("image"); im.Exists() {
			h, err := imageRef(im.String())
			if err != nil {
				return nil, err
			}
			segs = append(segs, segment{image: h})
		}
		return segs, nil
	case c.IsObject():
		return partSegments([]gjson.Result{c})
	case c.IsArray():
		return partSegments(c.Array())
	case c.Type == gjson.Null || !c.Exists():
		return nil, nil
	}
	return nil, errors.New("content must be a string or a list of parts")
}

func partSegments(parts []gjson.Result) ([]segment, error) {
	var segs []segment
	for _, p := range parts {
		switch p.Get("type").String() {
		case "text":
			segs = append(segs, segment{text: p.Get("text").String()})
		case "image_url":
			u := p.Get("image_url")
			if u.IsObject() {
				u = u.Get("url")
			}
			h, err := imageRef(u.String())
			if err != nil {
				return nil, err
			}
			segs = append(segs, segment{image: h})
		case "video_url":
			u := p.Get("video_url")
			if u.IsObject() {
				u = u.Get("url")
			}
			b, err := videoRef(u.String())
			if err != nil {
				return nil, err
			}
			segs = append(segs, segment{video: b})
		default:
			return nil, errors.New("unsupported content part type " + p.Get("type").Raw)
		}
	}
	return segs, nil
}

func segmentsDoc(segs []segment) Doc {
	var d Doc
	var texts []string
	for _, s := range segs {
		if s.image != "" {
			d.Images = append(d.Images, s.image)
		} else if s.text != "" {
			texts = append(texts, s.text)
		}
	}
	d.Text = strings.Join(texts, "\n")
	return d
}

var stopwords = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`a an the and or of for to in on at by with from is are be this that it as
		what which who show me find i want looking some any my your our please return reply json only keywords
		query user image photo picture product search`) {
		stopwords[w] = true
	}
}

// Words splits text into lower-case words without stopwords, in order, without duplicates.
func Words(text string) []string {
	var out []string
	seen := map[string]bool{}
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		if stopwords[w] || seen[w] {
			continue
		}
		seen[w] = true
		out = append(out, w)
	}
	return out
}

// docWords is the doc's text words plus the keywords of its images.
func (cfg *Config) docWords(d Doc) []string {
	var b strings.Builder
	b.WriteString(d.Text)
	for _, h := range d.Images {
		if o, ok := cfg.Images[h]; ok {
			b.WriteByte(' ')
			b.WriteString(strings.Join(o.Keywords, " "))
			b.WriteByte(' ')
			b.WriteString(o.Category)
		}
	}
	return Words(b.String())
}

// Score is the simulator's relevance of doc to query in [0,1].
func (cfg *Config) Score(query, doc Doc) float64 {
	ql, dl := strings.ToLower(query.Text), strings.ToLower(doc.Text)
	for _, r := range cfg.ScoreRules {
		if r.Query != "" && !strings.Contains(ql, strings.ToLower(r.Query)) {
			continue
		}
		if r.Doc != "" && !strings.Contains(dl, strings.ToLower(r.Doc)) {
			continue
		}
		if r.Image != "" && !contains(doc.Images, r.Image) {
			continue
		}
		return r.Score
	}
	if cfg.ScoreFunc != nil {
		return cfg.ScoreFunc(query, doc)
	}
	qw := cfg.docWords(query)
	if len(qw) == 0 {
		return 0
	}
	dw := map[string]bool{}
	for _, w := range cfg.docWords(doc) {
		dw[w] = true
	}
	n := 0
	for _, w := range qw {
		if dw[w] {
			n++
		}
	}
	return float64(n) / float64(len(qw))
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// keywords decides the keyword output for a prompt: the first matching rule;
// else the registered outputs of its images plus words of the user text.
func (s *Server) keywords(cfg *Config, userText, lastText string, images []string) Output {
	lt := strings.ToLower(userText)
	for _, r := range cfg.Rules {
		if r.Text != "" && !strings.Contains(lt, strings.ToLower(r.Text)) {
			continue
		}
		if r.Image != "" && !contains(images, r.Image) {
			continue
		}
		if r.Text == "" && r.Image == "" {
			continue
		}
		return r.Output
	}
	var out Output
	seen := map[string]bool{}
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			out.Keywords = append(out.Keywords, k)
		}
	}
	for _, h := range images {
		o, ok := cfg.Images[h]
		if !ok {
			add("img" + h[:8])
			continue
		}
		for _, k := range o.Keywords {
			add(k)
		}
		if out.Category == "" {
			out.Category = o.Category
		}
		for k, v := range o.Attributes {
			if out.Attributes == nil {
				out.Attributes = map[string]string{}
			}
			out.Attributes[k] = v
		}
	}
	text := lastText
	s.mu.Lock()
	re := s.queryRe
	s.mu.Unlock()
	if re != nil {
		if m := re.FindStringSubmatch(lastText); len(m) > 1 {
			text = m[1]
		}
	}
	n := 0
	for _, w := range Words(text) {
		if n == cfg.MaxKeywords {
			break
		}
		add(w)
		n++
	}
	if out.Keywords == nil {
		out.Keywords = []string{}
	}
	return out
}
