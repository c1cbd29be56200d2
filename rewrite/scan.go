package rewrite

import (
	"errors"
	"github.com/vlproxy/vlproxy/internal/bytesconv"
	"github.com/vlproxy/vlproxy/internal/jsonscan"

	"github.com/tidwall/gjson"
)

// scanner walks a search body once: it checks the JSON as strictly as
// gjson.Valid while it finds the multimodal clauses at query positions, so a
// body carrying a 270 KB base64 image is read once, not once per nesting level
// plus once more for validity. It follows the positions of walker (clause.go)
// exactly; walker remains the path for bodies that are not valid JSON, where
// its leniency decides whether a clause exists at all.
type scanner struct {
	b     []byte
	i     int
	found []clause
	err   error // a clause error (ES-shaped), or errSyntax / errTooDeep
}

var (
	errSyntax  = errors.New("invalid JSON")
	errTooDeep = errors.New("JSON nested too deeply for the scanner")
)

// maxNesting bounds the scanner's recursion (the stack). Deeper bodies go to
// the walker, which does not recurse on plain values.
const maxNesting = 512

// role is what a value means to the clause search.
type role uint8

const (
	roleNone      role = iota // not a query position: only checked
	roleRoot                  // the body: query and post_filter hold queries
	roleQuery                 // a query object
	roleQueries               // one query or an array of queries
	roleBool                  // the object under "bool"
	roleScore                 // under function_score / script_score: query, functions
	roleFunctions             // the functions list (array, or object of functions)
	roleFunction              // one function: its filter is a query
	roleDisMax                // under dis_max: queries
	roleFilter                // under constant_score: filter
	roleInner                 // under nested / has_child / has_parent: query
	roleBoosting              // under boosting: positive, negative
)

// scanBody scans b (which starts with '{' after whitespace). A clause error is
// returned as is; errSyntax and errTooDeep mean the caller must use the walker.
func scanBody(b []byte) ([]clause, error) {
	s := scanner{b: b}
	if s.value(roleRoot, 0, 0) {
		s.ws()
		if s.i != len(s.b) {
			s.err = errSyntax
		}
	}
	if s.err != nil {
		return nil, s.err
	}
	return s.found, nil
}

func (s *scanner) syntax() bool {
	if s.err == nil {
		s.err = errSyntax
	}
	return false
}

func (s *scanner) ws() { s.i = jsonscan.SkipWS(s.b, s.i) }

// value checks the value at s.i and walks it in role r. nest is the JSON
// nesting depth, qd the query depth walker counts.
func (s *scanner) value(r role, nest, qd int) bool {
	s.ws()
	if s.i >= len(s.b) {
		return s.syntax()
	}
	switch s.b[s.i] {
	case '{':
		return s.object(r, nest+1, qd)
	case '[':
		return s.array(r, nest+1, qd)
	case '"':
		_, ok := s.str()
		return ok
	case 't':
		return s.lit("true")
	case 'f':
		return s.lit("false")
	case 'n':
		return s.lit("null")
	}
	return s.number()
}

func (s *scanner) lit(w string) bool {
	if len(s.b)-s.i < len(w) || string(s.b[s.i:s.i+len(w)]) != w {
		return s.syntax()
	}
	s.i += len(w)
	return true
}

func (s *scanner) number() bool {
	end, ok := jsonscan.ScanNumber(s.b, s.i)
	if !ok {
		return s.syntax()
	}
	s.i = end
	return true
}

// str checks the string at s.i (on its opening quote) and moves past it. esc
// says whether it holds escapes (then its value is not its raw bytes).
func (s *scanner) str() (esc, ok bool) {
	end, esc, ok := jsonscan.ScanString(s.b, s.i)
	if !ok {
		return esc, s.syntax()
	}
	s.i = end
	return esc, true
}

// key reads an object member's name and the colon after it, skipping whitespace before both.
func (s *scanner) key() (string, bool) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return "", s.syntax()
	}
	ks := s.i
	esc, ok := s.str()
	if !ok {
		return "", false
	}
	key := jsonscan.Unquote(s.b[ks:s.i], esc)
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != ':' {
		return "", s.syntax()
	}
	s.i++
	return key, true
}

func (s *scanner) array(r role, nest, qd int) bool {
	if nest > maxNesting {
		s.err = errTooDeep
		return false
	}
	s.i++ // [
	elem := roleNone
	switch r {
	case roleQueries:
		elem = roleQuery
	case roleFunctions:
		elem = roleFunction
	}
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return true
	}
	for {
		if !s.value(elem, nest, qd) {
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			return s.syntax()
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			return s.syntax()
		}
	}
}

// Keys whose first occurrence only counts, the way gjson's Get reads them.
const (
	firstQuery = 1 << iota
	firstFunctions
	firstQueries
	firstFilter
	firstPositive
	firstNegative
)

func (s *scanner) object(r role, nest, qd int) bool {
	if nest > maxNesting {
		s.err = errTooDeep
		return false
	}
	start := s.i
	if r == roleQueries {
		r = roleQuery // a single query where an array may stand
	}
	if r == roleQuery && qd > maxDepth {
		s.err = parsingError("cannot parse the query: nested deeper than %d levels", maxDepth)
		return false
	}
	clauses := len(s.found)
	seen := 0
	first := func(bit int) bool {
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	}
	s.i++ // {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return true
	}
	for {
		key, ok := s.key()
		if !ok {
			return false
		}
		next, nqd := roleNone, qd
		switch r {
		case roleRoot:
			if key == "query" || key == "post_filter" {
				next = roleQuery
			}
		case roleQuery:
			switch key {
			case "multimodal":
				if !s.clause(start, nest) {
					return false
				}
				goto member
			case "bool":
				next = roleBool
			case "function_score", "script_score":
				next = roleScore
			case "dis_max":
				next = roleDisMax
			case "constant_score":
				next = roleFilter
			case "nested", "has_child", "has_parent":
				next = roleInner
			case "boosting":
				next = roleBoosting
			}
		case roleBool:
			switch key {
			case "must", "should", "filter", "must_not":
				next, nqd = roleQueries, qd+1
			}
		case roleScore:
			switch {
			case key == "query" && first(firstQuery):
				next, nqd = roleQuery, qd+1
			case key == "functions" && first(firstFunctions):
				next = roleFunctions
			}
		case roleFunctions: // an object of functions: each value is one
			next = roleFunction
		case roleFunction:
			if key == "filter" && first(firstFilter) {
				next, nqd = roleQuery, qd+1
			}
		case roleDisMax:
			if key == "queries" && first(firstQueries) {
				next, nqd = roleQueries, qd+1
			}
		case roleFilter:
			if key == "filter" && first(firstFilter) {
				next, nqd = roleQuery, qd+1
			}
		case roleInner:
			if key == "query" && first(firstQuery) {
				next, nqd = roleQuery, qd+1
			}
		case roleBoosting:
			switch {
			case key == "positive" && first(firstPositive):
				next, nqd = roleQuery, qd+1
			case key == "negative" && first(firstNegative):
				next, nqd = roleQuery, qd+1
			}
		}
		if !s.value(next, nest, nqd) {
			return false
		}
	member:
		s.ws()
		if s.i >= len(s.b) {
			return s.syntax()
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			for j := clauses; j < len(s.found); j++ {
				if s.found[j].start == start {
					s.found[j].end = s.i
				}
			}
			return true
		default:
			return s.syntax()
		}
	}
}

// clause reads the value of a "multimodal" key standing in the query object
// that starts at start.
func (s *scanner) clause(start, nest int) bool {
	s.ws()
	if s.i >= len(s.b) {
		return s.syntax()
	}
	if s.b[s.i] != '{' {
		// walker reports this before looking further; so do we, once the
		// value is known to be JSON.
		if !s.value(roleNone, nest, 0) {
			return false
		}
		s.err = parsingError("[multimodal] query malformed, expected an object")
		return false
	}
	var c clause
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
	} else {
		for {
			key, ok := s.key()
			if !ok {
				return false
			}
			s.ws()
			vs := s.i
			var val gjson.Result
			if vs < len(s.b) && s.b[vs] == '"' {
				esc, ok := s.str()
				if !ok {
					return false
				}
				raw := s.b[vs:s.i]
				val = gjson.Result{Type: gjson.String, Raw: bytesconv.String(raw), Str: jsonscan.Unquote(raw, esc)}
			} else {
				if !s.value(roleNone, nest+1, 0) {
					return false
				}
				val = gjson.Parse(bytesconv.String(s.b[vs:s.i]))
			}
			if err := c.set(key, val); err != nil {
				s.err = err
				return false
			}
			s.ws()
			if s.i >= len(s.b) {
				return s.syntax()
			}
			if s.b[s.i] == '}' {
				s.i++
				break
			}
			if s.b[s.i] != ',' {
				return s.syntax()
			}
			s.i++
		}
	}
	if err := c.check(); err != nil {
		s.err = err
		return false
	}
	c.start, c.end = start, -1 // end is set when the query object closes
	s.found = append(s.found, c)
	return true
}
