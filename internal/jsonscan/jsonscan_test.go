package jsonscan

import (
	"bytes"
	"testing"

	"github.com/tidwall/gjson"
)

func TestScanners(t *testing.T) {
	b := []byte(` {"a": "x\"y", "b":[1, -2.5e3, true, null, {"c":"\u00e9"}], "d":{}} `)
	i := SkipWS(b, 0)
	if end := SkipValue(b, i); end != len(b)-1 {
		t.Fatalf("SkipValue end %d, want %d", end, len(b)-1)
	}
	var keys []string
	EachField(b, i, func(key []byte, ks, vs int) int {
		keys = append(keys, string(key))
		return 0
	})
	if got := string(bytes.Join([][]byte{[]byte(keys[0]), []byte(keys[1]), []byte(keys[2])}, []byte(","))); got != "a,b,d" || len(keys) != 3 {
		t.Fatalf("keys %v", keys)
	}
	if end, esc, ok := ScanString([]byte(`"x\"y"`), 0); !ok || !esc || end != 6 {
		t.Fatalf("ScanString = %d %v %v", end, esc, ok)
	}
	for _, bad := range []string{`"a`, "\"a\x01\"", `"\x"`, `"\u12"`} {
		if _, _, ok := ScanString([]byte(bad), 0); ok {
			t.Fatalf("ScanString accepted %q", bad)
		}
	}
	for in, want := range map[string]int{"0": 1, "-12.5e+3,": 8, "1.": -1, "01": 1, "-": -1, "2E": -1} {
		end, ok := ScanNumber([]byte(in), 0)
		if (want < 0) == ok || (ok && end != want) {
			t.Fatalf("ScanNumber(%q) = %d %v, want %d", in, end, ok, want)
		}
	}
	if got := Unquote([]byte(`"\u00e9t\u00e9"`), true); got != "été" {
		t.Fatalf("Unquote = %q", got)
	}
}

// FuzzScanVsGjson: on every input gjson calls valid, the scanner finds the same value end and
// the same top-level members and elements as gjson; ScanString agrees with gjson on strings.
func FuzzScanVsGjson(f *testing.F) {
	for _, s := range []string{`{"hits":{"max_score":1.5,"hits":[{"_id":"a","_source":{"t":"x\"y"}}]}}`,
		`[1,"a",{"b":[]},null,true,false,-0.5e-3]`, `"plain"`, `"esc\\\"aped"`, `{}`, `[]`, ` 12 `, `{"a":"\u00e9"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// The scanner itself never panics, valid or not.
		i := SkipWS(b, 0)
		SkipValue(b, i)
		EachField(b, i, func([]byte, int, int) int { return 0 })
		EachElem(b, i, func(int) int { return 0 })
		if i < len(b) && b[i] == '"' {
			_, esc, ok := ScanString(b, i)
			r := gjson.ParseBytes(b[i:])
			if gjson.ValidBytes(b) && !ok {
				t.Fatalf("ScanString refused a valid string %q", b)
			}
			if ok && gjson.ValidBytes(b) && Unquote(b[i:i+len(r.Raw)], esc) != r.Str {
				t.Fatalf("Unquote %q != gjson %q", Unquote(b[i:i+len(r.Raw)], esc), r.Str)
			}
		}
		if !gjson.ValidBytes(b) {
			return
		}
		r := gjson.ParseBytes(b)
		// A valid input is one value and whitespace: the value ends where the whitespace starts.
		if end, want := SkipValue(b, i), len(bytes.TrimRight(b, " \t\r\n")); end != want {
			t.Fatalf("SkipValue end %d, want %d (gjson raw %q)", end, want, r.Raw)
		}
		switch {
		case r.IsObject():
			var want []string
			r.ForEach(func(k, v gjson.Result) bool { want = append(want, k.Raw+"="+v.Raw); return true })
			var got []string
			EachField(b, i, func(key []byte, ks, vs int) int {
				ve := SkipValue(b, vs)
				got = append(got, `"`+string(key)+`"=`+string(b[vs:ve]))
				return ve
			})
			if len(got) != len(want) {
				t.Fatalf("members %q, gjson %q", got, want)
			}
			for k := range got {
				if got[k] != want[k] {
					t.Fatalf("member %d %q, gjson %q", k, got[k], want[k])
				}
			}
		case r.IsArray():
			want := r.Array()
			n := 0
			EachElem(b, i, func(vs int) int {
				ve := SkipValue(b, vs)
				if n >= len(want) || string(b[vs:ve]) != want[n].Raw {
					t.Fatalf("element %d %q", n, b[vs:ve])
				}
				n++
				return ve
			})
			if n != len(want) {
				t.Fatalf("%d elements, gjson %d", n, len(want))
			}
		}
	})
}
