package rewrite

import (
	"encoding/json"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Keywords is the model's parsed answer; it is also the cached value.
type Keywords struct {
	Keywords   []string          `json:"keywords"`
	Category   string            `json:"category,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

var errBadOutput = errors.New("model output has no usable keywords")

const (
	maxPhraseRunes = 64
	maxPhraseWords = 8
)

// parseOutput reads the model's content defensively: a JSON object, JSON inside
// ``` fences, a JSON array of strings, or a plain comma/newline-separated list.
func parseOutput(content string, maxKeywords int) (Keywords, error) {
	s := strings.TrimSpace(content)
	if i := strings.Index(s, "```"); i >= 0 {
		inner := s[i+3:]
		if nl := strings.IndexByte(inner, '\n'); nl >= 0 && !strings.ContainsAny(inner[:nl], "{[") {
			inner = inner[nl+1:] // drop the info string, e.g. "json"
		}
		if j := strings.Index(inner, "```"); j >= 0 {
			inner = inner[:j]
		}
		s = strings.TrimSpace(inner)
	}
	var kw Keywords
	switch {
	case strings.HasPrefix(s, "{"):
		var raw struct {
			Keywords   json.RawMessage `json:"keywords"`
			Category   any             `json:"category"`
			Attributes map[string]any  `json:"attributes"`
		}
		if err := json.Unmarshal([]byte(s), &raw); err != nil {
			return kw, errBadOutput
		}
		var list []string
		if err := json.Unmarshal(raw.Keywords, &list); err != nil {
			var one string
			if json.Unmarshal(raw.Keywords, &one) != nil {
				return kw, errBadOutput
			}
			list = splitList(one)
		}
		kw.Keywords = list
		if c, ok := raw.Category.(string); ok {
			kw.Category = cleanPhrase(c)
		}
		for k, v := range raw.Attributes {
			str, ok := v.(string)
			if !ok {
				continue
			}
			if str = cleanPhrase(str); str != "" && !isUnknown(str) {
				if kw.Attributes == nil {
					kw.Attributes = map[string]string{}
				}
				kw.Attributes[strings.ToLower(k)] = str
			}
		}
	case strings.HasPrefix(s, "["):
		if err := json.Unmarshal([]byte(s), &kw.Keywords); err != nil {
			return kw, errBadOutput
		}
	default:
		kw.Keywords = splitList(s)
	}
	kw.Keywords = cleanList(kw.Keywords, maxKeywords)
	if len(kw.Keywords) == 0 {
		return kw, errBadOutput
	}
	return kw, nil
}

func isUnknown(s string) bool {
	switch strings.ToLower(s) {
	case "unknown", "n/a", "none", "null", "未知", "无":
		return true
	}
	return false
}

// splitList splits a plain keyword list on newlines, commas and CJK separators
// and strips list bullets and numbering.
func splitList(s string) []string {
	f := strings.FieldsFunc(s, func(r rune) bool {
		switch r {
		case '\n', '\r', ',', ';', '，', '、', '；', '|':
			return true
		}
		return false
	})
	for i, p := range f {
		p = strings.TrimSpace(p)
		p = strings.TrimLeft(p, "-*•·#> \t")
		// "1." / "2)" numbering
		j := 0
		for j < len(p) && p[j] >= '0' && p[j] <= '9' {
			j++
		}
		if j > 0 && j < len(p) && (p[j] == '.' || p[j] == ')') {
			p = p[j+1:]
		}
		f[i] = p
	}
	return f
}

// cleanPhrase trims quotes and punctuation and refuses what does not look like
// a search phrase (control characters, sentences), returning "".
func cleanPhrase(p string) string {
	p = strings.TrimSpace(strings.Trim(strings.TrimSpace(p), "\"'`“”‘’.。!！?？:："))
	if p == "" || !utf8.ValidString(p) || utf8.RuneCountInString(p) > maxPhraseRunes {
		return ""
	}
	if len(strings.Fields(p)) > maxPhraseWords {
		return ""
	}
	for _, r := range p {
		if unicode.IsControl(r) || r == utf8.RuneError || r == '{' || r == '}' {
			return ""
		}
	}
	return p
}

// cleanList keeps the first max distinct usable phrases.
func cleanList(in []string, max int) []string {
	out := in[:0]
	seen := make(map[string]struct{}, len(in))
	for _, p := range in {
		p = cleanPhrase(p)
		if p == "" {
			continue
		}
		k := strings.ToLower(p)
		if _, ok := seen[k]; ok {
			continue
		}
		seen[k] = struct{}{}
		out = append(out, p)
		if len(out) == max {
			break
		}
	}
	return out
}

// ParseKeywords reads a model answer the way Rewrite does: a JSON object (also
// inside ``` fences), a JSON array of strings or a plain list. It returns at most
// maxKeywords distinct phrases, or an error when none is usable.
func ParseKeywords(content string, maxKeywords int) (Keywords, error) {
	return parseOutput(content, maxKeywords)
}
