package bench

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// MixEntry is one kind of request in a load mix. In a mix file each entry is one NDJSON line:
//
//	{"name":"search","method":"POST","path":"/products/_search",
//	 "headers":{"Content-Type":"application/json"},"body":{"query":{"match_all":{}}},"weight":9}
//
// body is raw JSON (an object or array is sent as written, a string is sent as its contents);
// body_file names a file (relative to the mix file) to send instead. image_file names an image
// whose base64 data URI replaces every "{{image}}" in the body, for multimodal queries.
type MixEntry struct {
	Name      string            `json:"name"`
	Method    string            `json:"method"`
	Path      string            `json:"path"`
	Headers   map[string]string `json:"headers"`
	Body      json.RawMessage   `json:"body"`
	BodyFile  string            `json:"body_file"`
	ImageFile string            `json:"image_file"`
	Weight    *float64          `json:"weight"`

	body   []byte
	weight float64
}

// Mix is a weighted set of requests.
type Mix struct {
	Entries []MixEntry
	cum     []float64 // cumulative weights, normalised to 1
}

// DefaultMix is a single small _search, the pass-through benchmark's request.
func DefaultMix() *Mix {
	m, err := ParseMix(strings.NewReader(`{"name":"search","method":"POST","path":"/bench/_search","headers":{"Content-Type":"application/json"},"body":{"query":{"bool":{"must":[{"match":{"title":"navy blue shirt"}}],"filter":[{"term":{"in_stock":true}}]}},"size":10}}`+"\n"), "default-mix", "")
	if err != nil {
		panic(err)
	}
	return m
}

// LoadMix reads an NDJSON mix file.
func LoadMix(path string) (*Mix, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open mix file: %w", err)
	}
	defer f.Close()
	return ParseMix(f, path, filepath.Dir(path))
}

// ParseMix parses NDJSON mix lines from r; name is used in errors ("name:line: …") and dir
// resolves relative body_file/image_file paths. Blank lines and lines starting with # are skipped.
func ParseMix(r io.Reader, name, dir string) (*Mix, error) {
	m := &Mix{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	lineNo := 0
	total := 0.0
	for sc.Scan() {
		lineNo++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		e, err := parseMixLine(line, dir)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, lineNo, err)
		}
		if e.Name == "" {
			e.Name = fmt.Sprintf("%s %s", e.Method, e.Path)
		}
		total += e.weight
		m.Entries = append(m.Entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: cannot read mix: %w", name, lineNo+1, err)
	}
	if len(m.Entries) == 0 {
		return nil, fmt.Errorf("%s: mix has no requests", name)
	}
	if total <= 0 {
		return nil, fmt.Errorf("%s: mix weights sum to 0", name)
	}
	acc := 0.0
	for _, e := range m.Entries {
		acc += e.weight / total
		m.cum = append(m.cum, acc)
	}
	m.cum[len(m.cum)-1] = 1
	return m, nil
}

func parseMixLine(line []byte, dir string) (MixEntry, error) {
	var e MixEntry
	d := json.NewDecoder(bytes.NewReader(line))
	d.DisallowUnknownFields()
	if err := d.Decode(&e); err != nil {
		return e, fmt.Errorf("cannot parse mix entry: %w", err)
	}
	if d.More() {
		return e, fmt.Errorf("cannot parse mix entry: trailing data after the JSON object")
	}
	if e.Path == "" || e.Path[0] != '/' {
		return e, fmt.Errorf("path must start with '/', got %q", e.Path)
	}
	if len(e.Body) > 0 && e.BodyFile != "" {
		return e, fmt.Errorf("body and body_file are mutually exclusive")
	}
	switch {
	case e.BodyFile != "":
		b, err := os.ReadFile(resolve(dir, e.BodyFile))
		if err != nil {
			return e, fmt.Errorf("cannot read body_file: %w", err)
		}
		e.body = b
	case len(e.Body) > 0 && e.Body[0] == '"':
		var s string
		if err := json.Unmarshal(e.Body, &s); err != nil {
			return e, fmt.Errorf("cannot parse body string: %w", err)
		}
		e.body = []byte(s)
	case len(e.Body) > 0 && !bytes.Equal(e.Body, []byte("null")):
		e.body = []byte(e.Body)
	}
	if e.ImageFile != "" {
		img, err := os.ReadFile(resolve(dir, e.ImageFile))
		if err != nil {
			return e, fmt.Errorf("cannot read image_file: %w", err)
		}
		if !bytes.Contains(e.body, []byte("{{image}}")) {
			return e, fmt.Errorf("image_file is set but the body has no {{image}} placeholder")
		}
		uri := "data:" + http.DetectContentType(img) + ";base64," + base64.StdEncoding.EncodeToString(img)
		e.body = bytes.ReplaceAll(e.body, []byte("{{image}}"), []byte(uri))
	}
	if e.Method == "" {
		e.Method = "GET"
		if len(e.body) > 0 {
			e.Method = "POST"
		}
	}
	e.Method = strings.ToUpper(e.Method)
	for _, c := range e.Method {
		if c < 'A' || c > 'Z' {
			return e, fmt.Errorf("method %q is not a valid HTTP method", e.Method)
		}
	}
	e.weight = 1
	if e.Weight != nil {
		if *e.Weight < 0 {
			return e, fmt.Errorf("weight must be >= 0, got %g", *e.Weight)
		}
		e.weight = *e.Weight
	}
	for k := range e.Headers {
		if k == "" || strings.ContainsAny(k, " :\r\n") {
			return e, fmt.Errorf("header name %q is invalid", k)
		}
	}
	return e, nil
}

func resolve(dir, p string) string {
	if filepath.IsAbs(p) || dir == "" {
		return p
	}
	return filepath.Join(dir, p)
}

// pick maps u in [0,1) to an entry index.
func (m *Mix) pick(u float64) int {
	for i, c := range m.cum {
		if u < c {
			return i
		}
	}
	return len(m.cum) - 1
}

// Body returns the bytes sent for entry i.
func (m *Mix) Body(i int) []byte { return m.Entries[i].body }
