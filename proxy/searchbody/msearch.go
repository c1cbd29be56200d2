package searchbody

import (
	"bytes"
	"github.com/vlproxy/vlproxy/internal/eserr"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// Item is one search of an `_msearch` request: its header line and its body line, both without
// the trailing newline. They share memory with the request body.
type Item struct {
	Header []byte
	Body   []byte
}

// Index returns the index expression named in the header line (a string or an array of
// strings, joined with commas), or "" when the header names none.
func (it Item) Index() string {
	v := gjson.GetBytes(it.Header, "index")
	if !v.IsArray() {
		return v.String()
	}
	var b []byte
	for i, x := range v.Array() {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, x.String()...)
	}
	return string(b)
}

// SplitMsearch splits an `_msearch` NDJSON body into header/body pairs. Lines end with "\n"
// ("\r\n" is accepted); the last newline may be missing. An empty header line means "{}".
// Each line must be a JSON object, and a header must be followed by a body.
func SplitMsearch(body []byte) ([]Item, error) {
	var items []Item
	line := 0
	var header []byte
	inBody := false
	for len(body) > 0 {
		var ln []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			ln, body = body[:i], body[i+1:]
		} else {
			ln, body = body, nil
		}
		line++
		ln = bytes.TrimSuffix(ln, []byte("\r"))
		if len(bytes.TrimSpace(ln)) == 0 && !inBody {
			if len(body) == 0 {
				break // trailing blank line
			}
			header, inBody = []byte("{}"), true
			continue
		}
		if !gjson.ValidBytes(ln) || !gjson.ParseBytes(ln).IsObject() {
			what := "header"
			if inBody {
				what = "body"
			}
			return nil, parseErr("cannot parse _msearch request: line %d (a %s) is not a JSON object", line, what)
		}
		if !inBody {
			header, inBody = ln, true
			continue
		}
		items = append(items, Item{Header: header, Body: ln})
		inBody = false
	}
	if inBody {
		return nil, parseErr("cannot parse _msearch request: the header on line %d has no body line after it", line)
	}
	if len(items) == 0 {
		return nil, eserr.New(400, "action_request_validation_exception", "Validation Failed: 1: no requests added;")
	}
	return items, nil
}

// AppendMsearch appends items to dst in NDJSON form, each line ending with "\n".
func AppendMsearch(dst []byte, items []Item) []byte {
	for _, it := range items {
		dst = append(dst, it.Header...)
		dst = append(dst, '\n')
		dst = append(dst, it.Body...)
		dst = append(dst, '\n')
	}
	return dst
}

// SplitResponses returns the raw JSON of each element of an `_msearch` response's `responses`.
func SplitResponses(resp []byte) ([][]byte, bool) {
	r := gjson.GetBytes(resp, "responses")
	if !r.IsArray() {
		return nil, false
	}
	var out [][]byte
	r.ForEach(func(_, v gjson.Result) bool {
		out = append(out, []byte(v.Raw))
		return true
	})
	return out, true
}

// ReplaceResponses writes parts back as the `responses` array of an `_msearch` response; all
// other bytes of resp stay as they were.
func ReplaceResponses(resp []byte, parts [][]byte) ([]byte, error) {
	n := 2
	for _, p := range parts {
		n += len(p) + 1
	}
	arr := make([]byte, 0, n)
	arr = append(arr, '[')
	for i, p := range parts {
		if i > 0 {
			arr = append(arr, ',')
		}
		arr = append(arr, p...)
	}
	arr = append(arr, ']')
	return sjson.SetRawBytes(resp, "responses", arr)
}
