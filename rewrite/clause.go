package rewrite

import (
	"bytes"
	"errors"
	"sort"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/vlproxy/vlproxy/hybrid"
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
	Document           string // as the client sent it: data URI, raw base64 or URL
	GroupByRow         bool
	// Moments is the nested path of video segments searched instead of the document
	// ("moments" for "moments": true), "" when off.
	Moments string

	// Retrieval options; zero values take the index profile's.
	Mode          string // "", keywords, vector or hybrid
	K             int
	NumCandidates int
	Fusion        *hybrid.Fusion
}

var multimodalKey = []byte(`"multimodal"`)

// findClauses returns every multimodal clause standing where a query may stand,
// in body order. A body without the word "multimodal" costs one bytes.Contains;
// a valid body is read once more (scanBody), checking it while finding the
// clauses. An invalid one is walked leniently: it is an error only when a
// clause is found in it, else ES reports its own error.
func findClauses(body []byte) ([]clause, error) {
	if !bytes.Contains(body, multimodalKey) {
		return nil, nil
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	off := len(body) - len(trimmed)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, nil
	}
	found, err := scanBody(body)
	if errors.Is(err, errSyntax) || errors.Is(err, errTooDeep) {
		found, err = walkBody(trimmed, off)
	}
	if err != nil {
		return nil, err
	}
	for i := 1; i < len(found); i++ {
		if found[i].start < found[i-1].end {
			return nil, parsingError("[multimodal] query malformed: one query object holds more than one [multimodal] clause")
		}
	}
	return found, nil
}

// walkBody finds clauses with gjson, which tolerates invalid JSON, then
// refuses the body when it found any and the body is not valid JSON.
func walkBody(trimmed []byte, off int) ([]clause, error) {
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
	sort.SliceStable(w.found, func(i, j int) bool { return w.found[i].start < w.found[j].start })
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
		err = c.set(k.Str, val)
		return err == nil
	})
	if err != nil {
		return c, err
	}
	return c, c.check()
}

// set reads one option of a clause. Strings it keeps are copied, since val may
// share memory with the request body; Image is the exception: it is only read
// during Rewrite.
func (c *clause) set(key string, val gjson.Result) error {
	switch key {
	case "text":
		if val.Type != gjson.String {
			return parsingError("[multimodal] [text] must be a string")
		}
		c.Text = strings.Clone(strings.TrimSpace(val.Str))
	case "image":
		if val.Type != gjson.String {
			return parsingError("[multimodal] [image] must be a string")
		}
		c.Image = strings.TrimSpace(val.Str)
	case "fields":
		c.hasFields = true
		switch {
		case val.Type == gjson.String:
			c.Fields = []string{strings.Clone(val.Str)}
		case val.IsArray():
			var err error
			val.ForEach(func(_, f gjson.Result) bool {
				if f.Type != gjson.String || f.Str == "" {
					err = parsingError("[multimodal] [fields] must be an array of non-empty strings")
					return false
				}
				c.Fields = append(c.Fields, strings.Clone(f.Str))
				return true
			})
			return err
		default:
			return parsingError("[multimodal] [fields] must be an array of strings")
		}
	case "boost":
		if val.Type != gjson.Number || val.Num < 0 {
			return parsingError("[multimodal] [boost] must be a non-negative number")
		}
		c.Boost = val.Num
	case "operator":
		op := strings.ToLower(val.Str)
		if val.Type != gjson.String || (op != "and" && op != "or") {
			return parsingError("[multimodal] [operator] must be \"and\" or \"or\"")
		}
		c.Operator = strings.Clone(op)
	case "minimum_should_match":
		switch val.Type {
		case gjson.String:
			c.MinimumShouldMatch = strconv.Quote(val.Str)
		case gjson.Number:
			c.MinimumShouldMatch = strings.Clone(val.Raw)
		default:
			return parsingError("[multimodal] [minimum_should_match] must be a string or a number")
		}
	case "language":
		l := strings.ToLower(val.Str)
		if val.Type != gjson.String || (l != "en" && l != "zh" && l != "auto") {
			return parsingError("[multimodal] [language] must be \"en\", \"zh\" or \"auto\"")
		}
		c.Language = strings.Clone(l)
	case "document":
		if val.Type != gjson.String {
			return parsingError("[multimodal] [document] must be a string")
		}
		c.Document = strings.TrimSpace(val.Str)
	case "group_by_row":
		if !val.IsBool() {
			return parsingError("[multimodal] [group_by_row] must be true or false")
		}
		c.GroupByRow = val.Bool()
	case "moments":
		switch {
		case val.IsBool():
			c.Moments = ""
			if val.Bool() {
				c.Moments = DefaultMomentsPath
			}
		case val.Type == gjson.String && validPath(val.Str):
			c.Moments = strings.Clone(val.Str)
		default:
			return parsingError("[multimodal] [moments] must be true, false or the name of a nested field")
		}
	case "attributes":
		if !val.IsBool() {
			return parsingError("[multimodal] [attributes] must be true or false")
		}
		c.Attributes = val.Bool()
	case "mode":
		m := strings.ToLower(val.Str)
		if val.Type != gjson.String || (m != hybrid.ModeKeywords && m != hybrid.ModeVector && m != hybrid.ModeHybrid) {
			return parsingError("[multimodal] [mode] must be \"keywords\", \"vector\" or \"hybrid\"")
		}
		c.Mode = strings.Clone(m)
	case "k", "num_candidates":
		n, ok := positiveInt(val)
		if !ok || n > 10000 {
			return parsingError("[multimodal] [%s] must be an integer from 1 to 10000", key)
		}
		if key == "k" {
			c.K = n
		} else {
			c.NumCandidates = n
		}
	case "fusion":
		f, err := parseFusion(val)
		if err != nil {
			return err
		}
		c.Fusion = &f
	default:
		return parsingError("[multimodal] query does not support [%s]", key)
	}
	return nil
}

func positiveInt(v gjson.Result) (int, bool) {
	if v.Type != gjson.Number || v.Num < 1 || v.Num != float64(int(v.Num)) {
		return 0, false
	}
	return int(v.Num), true
}

// parseFusion reads "rrf", "linear", {"method":"rrf","rank_constant":N} or
// {"method":"linear","weights":[lexical, vector]}.
func parseFusion(v gjson.Result) (hybrid.Fusion, error) {
	var f hybrid.Fusion
	if v.Type == gjson.String {
		v = gjson.Parse(`{"method":` + strconv.Quote(v.Str) + `}`)
	}
	if !v.IsObject() {
		return f, parsingError("[multimodal] [fusion] must be \"rrf\", \"linear\" or an object with [method]")
	}
	var err error
	v.ForEach(func(k, x gjson.Result) bool {
		switch k.Str {
		case "method":
			m := strings.ToLower(x.Str)
			if x.Type != gjson.String || (m != hybrid.RRF && m != hybrid.Linear) {
				err = parsingError("[multimodal] [fusion.method] must be \"rrf\" or \"linear\"")
				return false
			}
			f.Method = m
		case "rank_constant":
			n, ok := positiveInt(x)
			if !ok || n > 1000000 {
				err = parsingError("[multimodal] [fusion.rank_constant] must be a positive integer")
				return false
			}
			f.RankConstant = n
		case "weights":
			ws := x.Array()
			if !x.IsArray() || len(ws) != 2 || ws[0].Type != gjson.Number || ws[1].Type != gjson.Number ||
				ws[0].Num < 0 || ws[1].Num < 0 || ws[0].Num+ws[1].Num == 0 {
				err = parsingError("[multimodal] [fusion.weights] must be two non-negative numbers [lexical, vector], not both 0")
				return false
			}
			f.Weights = [2]float64{ws[0].Num, ws[1].Num}
		default:
			err = parsingError("[multimodal] [fusion] does not support [%s]", k.Str)
			return false
		}
		return true
	})
	if err != nil {
		return f, err
	}
	switch {
	case f.Method == "":
		return f, parsingError("[multimodal] [fusion] needs [method]")
	case f.Method == hybrid.RRF && f.Weights != [2]float64{}:
		return f, parsingError("[multimodal] [fusion.weights] applies to method linear, not rrf")
	case f.Method == hybrid.Linear && f.RankConstant != 0:
		return f, parsingError("[multimodal] [fusion.rank_constant] applies to method rrf, not linear")
	}
	return f, nil
}

// check validates the clause as a whole once every option is read.
func (c *clause) check() error {
	if c.Text == "" && c.Image == "" && c.Document == "" {
		return parsingError("[multimodal] query needs [text] or [image] (or a [document])")
	}
	if c.Document != "" && c.Image != "" {
		return parsingError("[multimodal] query takes [image] or [document], not both")
	}
	if c.Moments != "" && c.Document != "" {
		return parsingError("[multimodal] [moments] searches video segments by [text] or [image], not a [document]")
	}
	if c.Moments != "" && c.Image == "" && (c.Mode == hybrid.ModeVector || c.Mode == hybrid.ModeHybrid) {
		return parsingError("[multimodal] [moments] with [mode] [%s] needs an [image] (kNN on the segment vectors)", c.Mode)
	}
	if c.GroupByRow && c.Document == "" {
		return parsingError("[multimodal] [group_by_row] needs a [document]")
	}
	return nil
}

// DefaultMomentsPath is the nested field of video segments that `"moments": true` searches
// (enrich writes it: -moments-field).
const DefaultMomentsPath = "moments"

// validPath accepts a field path: letters, digits, '_', '-', '@' and inner dots.
func validPath(s string) bool {
	if s == "" || len(s) > 255 || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || r == '.' || r == '@' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}
