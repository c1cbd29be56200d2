package resultcache

import (
	"bytes"
	"testing"

	"github.com/tidwall/gjson"
)

// appendCompactJSON is the two-pass reference appendCompactValid is held to: it appends src
// without the whitespace JSON allows between tokens (src must be valid JSON, as gjson judges).
func appendCompactJSON(dst, src []byte) []byte {
	inString := false
	start := 0
	for i := 0; i < len(src); i++ {
		c := src[i]
		if inString {
			switch c {
			case '\\':
				i++ // the escaped byte cannot end the string
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case ' ', '\t', '\n', '\r':
			dst = append(dst, src[start:i]...)
			start = i + 1
		}
	}
	return append(dst, src[start:]...)
}

// checkCompactValid fails when appendCompactValid disagrees with the reference on src:
// validity as gjson.ValidBytes judges it, the compact bytes, dst untouched on failure, and
// suspect set for every string "pit" or "request_cache".
func checkCompactValid(t *testing.T, src []byte) {
	t.Helper()
	prefix := []byte("key:")
	out, suspect, ok := appendCompactValid(bytes.Clone(prefix), src)
	if want := gjson.ValidBytes(src); ok != want {
		t.Fatalf("appendCompactValid(%q) ok = %v; gjson.ValidBytes says %v", src, ok, want)
	}
	if !ok {
		if !bytes.Equal(out, prefix) {
			t.Fatalf("appendCompactValid(%q) failed but changed dst to %q", src, out)
		}
		return
	}
	if want := appendCompactJSON(bytes.Clone(prefix), src); !bytes.Equal(out, want) {
		t.Fatalf("appendCompactValid(%q) = %q; want %q", src, out, want)
	}
	if mentionsBypassKeys(src) && !suspect {
		t.Fatalf("appendCompactValid(%q): not suspect, though it names pit or request_cache", src)
	}
}

var compactCases = []string{
	`{}`, `[]`, ` { "a" : [ 1 , 2.5e-3 , -0 , true , false , null ] } `, `"x"`, `0`, `-12.34E+5`,
	`{"query":{"match":{"title":"navy blue shirt"}},"size":10}`, "{\n\t\"a\":\r\n1}",
	`{"pit":{"id":"x"}}`, `{"q":"pit"}`, `{"p\u0069t":1}`, `{"request_cache":false}`, `"a\"b"`,
	// invalid
	``, ` `, `{`, `}`, `[1,]`, `{"a":1,}`, `{"a"}`, `{"a":}`, `{1:2}`, `[1 2]`, `01`, `1.`, `.5`, `-`,
	`1e`, `1e+`, `tru`, `truex`, `nul`, `"abc`, "\"a\x01\"", `"\x"`, `"\u12g4"`, `{} {}`, `[}`, `{]`,
	`{"a":1}}`, `[[[]]`, `query: {match_all: {}}`, `{"a" "b"}`, `{"a":1 "b":2}`,
}

func TestAppendCompactValid(t *testing.T) {
	for _, c := range compactCases {
		checkCompactValid(t, []byte(c))
	}
	deep := bytes.Repeat([]byte("["), 100)
	checkCompactValid(t, append(bytes.Clone(deep), bytes.Repeat([]byte("]"), 100)...)) // past the stack array
	checkCompactValid(t, append(bytes.Clone(deep), bytes.Repeat([]byte("]"), 99)...))
	if _, suspect, _ := appendCompactValid(nil, []byte(`{"query":{"match_all":{}}}`)); suspect {
		t.Fatal("a body without pit, request_cache or escapes is suspect")
	}
}

func FuzzCompactValid(f *testing.F) {
	for _, c := range compactCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, src []byte) { checkCompactValid(t, src) })
}
