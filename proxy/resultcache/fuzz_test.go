package resultcache

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// spaceOut inserts whitespace after every structural character of compact JSON, keeping it
// on one line (so it stays a valid _msearch line).
func spaceOut(src []byte) []byte {
	var dst []byte
	inString := false
	for i := 0; i < len(src); i++ {
		c := src[i]
		dst = append(dst, c)
		if inString {
			switch c {
			case '\\':
				i++
				dst = append(dst, src[i])
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case ',', ':', '[', '{':
			dst = append(dst, " \t "...)
		}
	}
	return append([]byte("\t "), append(dst, ' ', '\r')...)
}

// canonical is what the key must distinguish: the compact form of JSON, the bytes of the rest.
// ok is false when the two JSON validators disagree and the test cannot tell.
func canonical(b []byte) (string, bool) {
	gv, jv := gjson.ValidBytes(b), json.Valid(b)
	if gv != jv {
		return "", false
	}
	if !jv || len(b) == 0 {
		return "R" + string(b), true
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return "", false
	}
	return "J" + buf.String(), true
}

func fuzzSeeds(f *testing.F) {
	for _, s := range []string{
		`{"query":{"match_all":{}}}`,
		`{"query":{"bool":{"must":[{"multimodal":{"text":"适合夏季海边度假穿","fields":["title^3","description"]}}],"filter":[{"term":{"in_stock":true}}]}},"size":10}`,
		"{\n  \"size\" : 10 ,\n  \"sort\" : [ \"a\" , { \"b\" : \"desc\" } ]\n}",
		`{"q":"a \"quoted\" \\ value\twith tab"}`,
		`{"q":"\u00e9"}`,
		`[1, 2.50, -3e10, true, false, null]`,
		`""`, `{}`, ``, `{`, `{"a":1}x`, "size: 10\n", "\x00\xff",
		`{"pit":{"id":"x"}}`,
	} {
		f.Add(s, `{"query":{"match_all":{}}}`)
	}
	if b, err := os.ReadFile("testdata/bulk_two_indices.ndjson"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f.Add(line, `{"size":1}`)
		}
	}
}

func FuzzKey(f *testing.F) {
	fuzzSeeds(f)
	k := New(DefaultConfig())
	f.Fuzz(func(t *testing.T, a, b string) {
		key := func(line, body string) ([]byte, bool) {
			return k.Key(nil, req(line, body, hdr{"Authorization": "Basic x"}))
		}
		ka, okA := key("POST /products/_search", a)
		kb, okB := key("POST /products/_search", b)
		ca, vA := canonical([]byte(a))
		cb, vB := canonical([]byte(b))
		if okA && okB && vA && vB {
			if bytes.Equal(ka, kb) != (ca == cb) {
				t.Fatalf("keys equal = %v but meanings equal = %v\n a: %q\n b: %q", bytes.Equal(ka, kb), ca == cb, a, b)
			}
		}
		// Equal meaning, different whitespace: equal keys.
		if okA && vA && ca[0] == 'J' {
			var ind bytes.Buffer
			if err := json.Indent(&ind, []byte(a), "  ", "\t"); err == nil {
				ki, ok := key("POST /products/_search", ind.String())
				if !ok || !bytes.Equal(ki, ka) {
					t.Fatalf("indented body got another key (cacheable %v)\n a: %q\n indented: %q", ok, a, ind.String())
				}
			}
		}
		// The same for _msearch lines, each changed on its own.
		if strings.ContainsAny(a, "\n") || strings.ContainsAny(b, "\n") {
			return
		}
		ms := a + "\n" + b + "\n"
		km, okM := key("POST /products/_msearch", ms)
		if !okM || !vA || !vB || ca[0] != 'J' || cb[0] != 'J' {
			return
		}
		ms2 := string(spaceOut([]byte(ca[1:]))) + "\n" + string(spaceOut([]byte(cb[1:]))) + "\n"
		km2, ok := key("POST /products/_msearch", ms2)
		if !ok || !bytes.Equal(km, km2) {
			t.Fatalf("_msearch with spaced-out lines got another key (cacheable %v)\n %q\n %q", ok, ms, ms2)
		}
		km3, ok := key("POST /products/_msearch", b+"\n"+a+"\n")
		if ok && (ca != cb) == bytes.Equal(km, km3) {
			t.Fatalf("_msearch lines swapped: keys equal = %v with lines equal = %v", bytes.Equal(km, km3), ca == cb)
		}
	})
}

func FuzzWrites(f *testing.F) {
	bulk, _ := os.ReadFile("testdata/bulk_two_indices.ndjson")
	f.Add("POST", "/_bulk", "refresh=true", string(bulk))
	f.Add("POST", "/products/_bulk", "", "{\"index\":{}}\n{}\n{\"delete\":{\"_id\":\"1\"}}\n")
	f.Add("PUT", "/products/_doc/1", "", `{"a":1}`)
	f.Add("DELETE", "/logs-%2A", "", "")
	f.Add("POST", "/_reindex", "", `{"source":{"index":"a"},"dest":{"index":"b"}}`)
	f.Add("POST", "/_aliases", "", `{"actions":[]}`)
	f.Add("GET", "/products/_search", "q=x", "")
	f.Fuzz(func(t *testing.T, method, path, query, body string) {
		w := Writes([]byte(method), []byte(path), []byte(query), []byte(body))
		if !w.All {
			for _, name := range w.Indices {
				if isPattern(name) {
					t.Fatalf("Writes(%s %s) names pattern %q without All", method, path, name)
				}
			}
		}
		if (method == "GET" || method == "HEAD") && w.IsWrite() {
			t.Fatalf("Writes(%s %s) = %+v; reads write nothing", method, path, w)
		}
		k := New(DefaultConfig())
		k.Invalidate(w)
	})
}

func FuzzEntryDecode(f *testing.F) {
	f.Add(AppendEntry(nil, &Entry{Status: 200, Headers: []Header{{Name: []byte("Content-Type"), Value: []byte("application/json")}}, Body: []byte(`{"hits":{}}`)}))
	f.Add([]byte{1, 200, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Entry
		if err := e.Decode(b); err != nil {
			return
		}
		var again Entry
		if err := again.Decode(AppendEntry(nil, &e)); err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if again.Status != e.Status || !again.Stored.Equal(e.Stored) || !bytes.Equal(again.Body, e.Body) || len(again.Headers) != len(e.Headers) {
			t.Fatalf("round trip changed the entry: %+v != %+v", again, e)
		}
	})
}
