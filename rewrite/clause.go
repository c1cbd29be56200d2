package rewrite

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// clause is one `multimodal` clause found in a body.
type clause struct {
	start, end int // byte range of the query object {"multimodal":{…}} that is replaced

	Text               string
	Image              string // as the client sent it: data URI, raw base64 or URL
	Fields             []string
	hasFields          bool
	Boost              float64
	Operator           string
	MinimumShouldMatch string // raw JSON value (string or number), "" when absent
	Language           string // "", "en", "zh" or "auto"
	Attributes         bool
}

var multimodalKey = []byte(`"multimodal"`)

// findClauses returns every multimodal clause standing where a query may stand,
// in body order. A body without the word "multimodal" costs one bytes.Contains.
func findClauses(body []byte) ([]clause, error) {
	if !bytes.Contains(body, multimodalKey) {
		return nil, nil
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	off := len(body) - len(trimmed)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, nil
	}
	root := gjson.Parse(string(trimmed))
	var w walker
	w.off = off
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "query", "post_filter":
			w.query(v, 0)
		}
		return w.err == nil
	})
	if w.err != nil {
		return nil, w.err
	}
	if len(w.found) > 0 && !gjson.Valid(string(trimmed)) {
		return nil, parsingError("cannot parse the search body: invalid JSON")
	}
	return w.found, nil
}

type walker struct {
	off   int
	found []clause
	err   error
}

// maxDepth bounds recursion on hostile bodies; ES itself refuses deeper queries.
const maxDepth = 64

// query walks a value standing where a query may stand.
func (w *walker) query(v gjson.Result, depth int) {
	if w.err != nil || !v.IsObject() {
		return
	}
	if depth > maxDepth {
		w.err = parsingError("cannot parse the query: nested deeper than %d levels", maxDepth)
		return
	}
	v.ForEach(func(k, inner gjson.Result) bool {
		switch k.Str {
		case "multimodal":
			c, err := parseClause(inner)
			if err != nil {
				w.err = err
				return false
			}
			c.start = w.off + v.Index
			c.end = c.start + len(v.Raw)
			w.found = append(w.found, c)
		case "bool":
			inner.ForEach(func(bk, bv gjson.Result) bool {
				switch bk.Str {
				case "must", "should", "filter", "must_not":
					w.queries(bv, depth+1)
				}
				return w.err == nil
			})
		case "function_score", "script_score":
			w.query(inner.Get("query"), depth+1)
			inner.Get("functions").ForEach(func(_, f gjson.Result) bool {
				w.query(f.Get("filter"), depth+1)
				return w.err == nil
			})
		case "dis_max":
			w.queries(inner.Get("queries"), depth+1)
		case "constant_score":
			w.query(inner.Get("filter"), depth+1)
		case "nested", "has_child", "has_parent":
			w.query(inner.Get("query"), depth+1)
		case "boosting":
			w.query(inner.Get("positive"), depth+1)
			w.query(inner.Get("negative"), depth+1)
		}
		return w.err == nil
	})
}

// queries walks a value that is one query or an array of queries.
func (w *walker) queries(v gjson.Result, depth int) {
	if v.IsArray() {
		v.ForEach(func(_, q gjson.Result) bool {
			w.query(q, depth)
			return w.err == nil
		})
		return
	}
	w.query(v, depth)
}

// parseClause validates the options of one clause.
func parseClause(v gjson.Result) (clause, error) {
	var c clause
	if !v.IsObject() {
		return c, parsingError("[multimodal] query malformed, expected an object")
	}
	var err error
	v.ForEach(func(k, val gjson.Result) bool {
		switch k.Str {
		case "text":
			if val.Type != gjson.String {
				err = parsingError("[multimodal] [text] must be a string")
				break
			}
			c.Text = strings.TrimSpace(val.Str)
		case "image":
			if val.Type != gjson.String {
				err = parsingError("[multimodal] [image] must be a string")
				break
			}
			c.Image = strings.TrimSpace(val.Str)
		case "fields":
			c.hasFields = true
			switch {
			case val.Type == gjson.String:
				c.Fields = []string{val.Str}
			case val.IsArray():
				val.ForEach(func(_, f gjson.Result) bool {
					if f.Type != gjson.String || f.Str == "" {
						err = parsingError("[multimodal] [fields] must be an array of non-empty strings")
						return false
					}
					c.Fields = append(c.Fields, f.Str)
					return true
				})
			default:
				err = parsingError("[multimodal] [fields] must be an array of strings")
			}
		case "boost":
			if val.Type != gjson.Number || val.Num < 0 {
				err = parsingError("[multimodal] [boost] must be a non-negative number")
				break
			}
			c.Boost = val.Num
		case "operator":
			op := strings.ToLower(val.Str)
			if val.Type != gjson.String || (op != "and" && op != "or") {
				err = parsingError("[multimodal] [operator] must be \"and\" or \"or\"")
				break
			}
			c.Operator = op
		case "minimum_should_match":
			switch val.Type {
			case gjson.String:
				c.MinimumShouldMatch = strconv.Quote(val.Str)
			case gjson.Number:
				c.MinimumShouldMatch = val.Raw
			default:
				err = parsingError("[multimodal] [minimum_should_match] must be a string or a number")
			}
		case "language":
			l := strings.ToLower(val.Str)
			if val.Type != gjson.String || (l != "en" && l != "zh" && l != "auto") {
				err = parsingError("[multimodal] [language] must be \"en\", \"zh\" or \"auto\"")
				break
			}
			c.Language = l
		case "attributes":
			if !val.IsBool() {
				err = parsingError("[multimodal] [attributes] must be true or false")
				break
			}
			c.Attributes = val.Bool()
		default:
			err = parsingError("[multimodal] query does not support [%s]", k.Str)
		}
		return err == nil
	})
	if err != nil {
		return c, err
	}
	if c.Text == "" && c.Image == "" {
		return c, parsingError("[multimodal] query needs [text] or [image]")
	}
	return c, nil
}
