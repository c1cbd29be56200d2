package rerank

import (
	"bytes"
	"github.com/vlproxy/vlproxy/internal/bytesconv"
	"github.com/vlproxy/vlproxy/internal/jsonscan"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/vlproxy/vlproxy/model"
)

// respLoc locates hits.hits and hits.max_score in a search response.
type respLoc struct {
	hitsStart, hitsEnd int
	maxStart, maxEnd   int // -1 when absent
}

// parseResponse locates hits.hits and hits.max_score in one pass over a search response and
// parses each hit; f(i) gives the candidate fields for hit i (nil: none needed).
func parseResponse(b []byte, hits []hitInfo, f func(i int) *FieldsConfig) (respLoc, []hitInfo, bool) {
	loc := respLoc{hitsStart: -1, maxStart: -1, maxEnd: -1}
	i := jsonscan.SkipWS(b, 0)
	end := jsonscan.EachField(b, i, func(key []byte, _, vs int) int {
		if string(key) != "hits" || b[vs] != '{' {
			return 0
		}
		return jsonscan.EachField(b, vs, func(key []byte, _, vs int) int {
			switch string(key) {
			case "hits":
				if b[vs] != '[' {
					return 0
				}
				hits = hits[:0]
				ve := jsonscan.EachElem(b, vs, func(s int) int {
					h, e := parseHitAt(b, s, f(len(hits)))
					if e > 0 {
						hits = append(hits, h)
					}
					return e
				})
				if ve > 0 {
					loc.hitsStart, loc.hitsEnd = vs, ve
				}
				return ve
			case "max_score":
				ve := jsonscan.SkipValue(b, vs)
				loc.maxStart, loc.maxEnd = vs, ve
				return ve
			}
			return 0
		})
	})
	if end < 0 || loc.hitsStart < 0 || jsonscan.SkipWS(b, end) != len(b) {
		return loc, hits, false
	}
	return loc, hits, true
}

func bstr(b []byte) string { return bytesconv.String(b) }

// strValue decodes a JSON string value; the result may alias b.
func strValue(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	return jsonscan.Unquote(raw, bytes.IndexByte(raw, '\\') >= 0), true
}

// parseHitAt reads the hit starting at b[s] and, when f is not nil, its candidate; it
// returns the index after the hit (0: not an object, skip it; -1: malformed).
func parseHitAt(b []byte, s int, f *FieldsConfig) (hitInfo, int) {
	hi := hitInfo{start: s, srcStart: -1}
	if b[s] != '{' {
		e := jsonscan.SkipValue(b, s)
		hi.end = e
		return hi, e
	}
	e := jsonscan.EachField(b, s, func(key []byte, _, vs int) int {
		switch string(key) {
		case "_id", "_index", "_score", "_seq_no":
			ve := jsonscan.SkipValue(b, vs)
			if ve < 0 {
				return -1
			}
			v := b[vs:ve]
			switch string(key) {
			case "_id":
				hi.id, _ = strValue(v)
			case "_index":
				hi.index, _ = strValue(v)
			case "_score":
				if x, err := strconv.ParseFloat(bstr(v), 64); err == nil {
					hi.esScore, hi.hasScore = x, true
				}
			case "_seq_no":
				if x, err := strconv.ParseInt(bstr(v), 10, 64); err == nil {
					hi.seq, hi.hasSeq = x, true
				}
			}
			return ve
		case "_source":
			var ve int
			if f != nil && b[vs] == '{' {
				hi.doc, ve = candidateAt(b, vs, f)
			} else {
				ve = jsonscan.SkipValue(b, vs)
			}
			hi.srcStart, hi.srcEnd = vs, ve
			return ve
		}
		return 0
	})
	hi.end = e
	return hi, e
}

// candidateAt builds the model document from the _source object at b[s]: text fields joined
// by newlines (copied, so the document outlives the response buffer), and the image. Top-level
// field names are picked during the one pass; dotted paths go through gjson afterwards.
func candidateAt(b []byte, s int, f *FieldsConfig) (model.Document, int) {
	var d model.Document
	var texts [8][]byte
	vals := texts[:0]
	if len(f.Text) > len(texts) {
		vals = make([][]byte, 0, len(f.Text))
	}
	vals = vals[:len(f.Text)]
	var img []byte
	e := jsonscan.EachField(b, s, func(key []byte, _, vs int) int {
		want := f.Image != "" && string(key) == f.Image
		for _, n := range f.Text {
			want = want || string(key) == n
		}
		if !want {
			return 0
		}
		ve := jsonscan.SkipValue(b, vs)
		if ve < 0 {
			return -1
		}
		for i, n := range f.Text {
			if string(key) == n {
				vals[i] = b[vs:ve]
			}
		}
		if f.Image != "" && string(key) == f.Image {
			img = b[vs:ve]
		}
		return ve
	})
	if e < 0 {
		return d, -1
	}
	var src gjson.Result
	for i, n := range f.Text {
		if vals[i] == nil && strings.ContainsAny(n, ".*") {
			if !src.Exists() {
				src = gjson.Parse(bstr(b[s:e]))
			}
			if v := src.Get(n); v.Exists() {
				vals[i] = []byte(v.Raw)
			}
		}
	}
	if img == nil && strings.Contains(f.Image, ".") {
		if v := gjson.Parse(bstr(b[s:e])).Get(f.Image); v.Exists() {
			img = []byte(v.Raw)
		}
	}
	size := 0
	for _, v := range vals {
		size += len(v) + 1
	}
	buf := make([]byte, 0, size)
	for _, v := range vals {
		if len(v) == 0 {
			continue
		}
		switch v[0] {
		case '"':
			s, _ := strValue(v)
			buf = appendText(buf, s)
		case '[':
			gjson.Parse(bstr(v)).ForEach(func(_, e gjson.Result) bool {
				if e.Type == gjson.String || e.Type == gjson.Number {
					buf = appendText(buf, e.String())
				}
				return true
			})
		case 'n', 't', 'f', '{':
		default:
			buf = appendText(buf, bstr(v))
		}
	}
	d.Text = bstr(buf)
	if len(img) > 0 {
		if img[0] == '[' {
			img = []byte(gjson.Parse(bstr(img)).Get("0").Raw)
		}
		if s, ok := strValue(img); ok {
			d.Image = strings.Clone(s)
		}
	}
	return d, e
}

func appendText(buf []byte, s string) []byte {
	if len(buf) > 0 {
		buf = append(buf, '\n')
	}
	return append(buf, s...)
}
