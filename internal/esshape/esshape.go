// Package esshape emulates the two ES response-shaping features a proxy must re-apply when
// it changed the request (rerank asks ES for fields the client filtered out, then strips them
// again; the pipeline applies filter_path to responses it builds).
//
// _source filtering (body `_source`, URL `_source`, `_source_includes`, `_source_excludes`),
// following XContentMapValues.filter: patterns are matched against full dotted paths, `*`
// matches any characters (dots included), an included object brings its whole subtree,
// excludes win over includes, arrays are transparent, objects/arrays left empty by
// filtering are dropped unless their own path was included, and inside an array that is
// filtered (not copied whole) empty objects and arrays are always dropped. Values are copied as stored
// (ES re-serializes filtered values; stored sources that are not compact JSON will differ
// in whitespace).
//
// filter_path, following ES response filtering: a comma list of dotted paths; `*` matches
// within one name, `**` matches any number of names; a leading `-` excludes. Arrays are
// transparent. Containers left empty are dropped, with includes and with excludes (with
// excludes: those on an exclusion's path, even when empty to begin with); an empty result is `{}`.
// When both kinds are given, exclusions are applied first, then inclusions. Not covered:
// names that contain dots themselves, and escaping.
package esshape

import (
	"strings"

	"github.com/tidwall/gjson"
)

// Source is an effective _source filter.
type Source struct {
	Disabled bool // _source: false — no _source at all
	Includes []string
	Excludes []string
}

// IsAll reports whether the filter keeps the whole _source.
func (f *Source) IsAll() bool {
	return !f.Disabled && len(f.Includes) == 0 && len(f.Excludes) == 0
}

// KeepsPath reports whether the filter keeps the value at dotted path p entirely.
func (f *Source) KeepsPath(p string) bool {
	if f.Disabled {
		return false
	}
	for _, e := range f.Excludes {
		if globMatch(e, p) || ancestorMatch(e, p) || globPrefix(e, p+".") {
			return false
		}
	}
	if len(f.Includes) == 0 {
		return true
	}
	for _, i := range f.Includes {
		if globMatch(i, p) || ancestorMatch(i, p) {
			return true
		}
	}
	return false
}

// ancestorMatch reports whether pattern matches a proper ancestor path of p.
func ancestorMatch(pat, p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] == '.' && globMatch(pat, p[:i]) {
			return true
		}
	}
	return false
}

// appendFiltered appends the source object filtered by f (an empty object when nothing is left).
func (f *Source) AppendFiltered(dst []byte, src gjson.Result) []byte {
	return f.appendObject(dst, src, "", len(f.Includes) == 0)
}

func (f *Source) appendObject(dst []byte, obj gjson.Result, prefix string, included bool) []byte {
	dst = append(dst, '{')
	first := true
	obj.ForEach(func(k, v gjson.Result) bool {
		p := prefix + k.String()
		start := len(dst)
		if !first {
			dst = append(dst, ',')
		}
		dst = append(dst, k.Raw...)
		dst = append(dst, ':')
		if dst2, keep := f.appendValue(dst, v, p, included); keep {
			dst = dst2
			first = false
		} else {
			dst = dst[:start]
		}
		return true
	})
	return append(dst, '}')
}

// appendValue appends v at path p if the filter keeps any of it.
func (f *Source) appendValue(dst []byte, v gjson.Result, p string, parentIncluded bool) ([]byte, bool) {
	for _, e := range f.Excludes {
		if globMatch(e, p) {
			return dst, false
		}
	}
	included := parentIncluded
	if !included {
		for _, i := range f.Includes {
			if globMatch(i, p) {
				included = true
				break
			}
		}
	}
	descendExcl := false
	for _, e := range f.Excludes {
		if globPrefix(e, p+".") {
			descendExcl = true
			break
		}
	}
	if included && !descendExcl {
		return append(dst, v.Raw...), true
	}
	if !included {
		could := false
		for _, i := range f.Includes {
			if globPrefix(i, p+".") {
				could = true
				break
			}
		}
		if !could {
			return dst, false
		}
	}
	switch {
	case v.IsObject():
		start := len(dst)
		dst = f.appendObject(dst, v, p+".", included)
		if !included && len(dst)-start == 2 {
			return dst[:start], false
		}
		return dst, true
	case v.IsArray():
		start := len(dst)
		dst = append(dst, '[')
		n := 0
		v.ForEach(func(_, e gjson.Result) bool {
			s := len(dst)
			if n > 0 {
				dst = append(dst, ',')
			}
			var keep bool
			if e.IsObject() || e.IsArray() {
				// Elements left empty are dropped, as ES keeps only non-empty maps and lists
				// in a list it filters (one empty to begin with included).
				es := len(dst)
				dst, keep = f.appendValue(dst, e, p, included)
				if keep && len(dst)-es == 2 {
					keep = false
				}
			} else if included {
				dst, keep = append(dst, e.Raw...), true
			}
			if keep {
				n++
			} else {
				dst = dst[:s]
			}
			return true
		})
		if n == 0 && !included {
			return dst[:start], false
		}
		return append(dst, ']'), true
	}
	if included {
		return append(dst, v.Raw...), true
	}
	return dst, false
}

// globMatch matches s against a pattern where '*' matches any run of characters.
func globMatch(pat, s string) bool {
	// Iterative wildcard matching with single backtrack point.
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(pat) && pat[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(pat) && pat[pi] == s[si]:
			pi++
			si++
		case star >= 0:
			pi, mark = star+1, mark+1
			si = mark
		default:
			return false
		}
	}
	for pi < len(pat) && pat[pi] == '*' {
		pi++
	}
	return pi == len(pat)
}

// globPrefix reports whether some extension of s matches pat.
func globPrefix(pat, s string) bool {
	for i := 0; i < len(s); i++ {
		if i >= len(pat) {
			return false
		}
		if pat[i] == '*' {
			return true
		}
		if pat[i] != s[i] {
			return false
		}
	}
	return true
}

// FilterPath is a parsed filter_path parameter.
type FilterPath struct {
	incl [][]string
	excl [][]string
}

func ParseFilterPath(s string) *FilterPath {
	fp := &FilterPath{}
	for _, e := range strings.Split(s, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if ex, ok := strings.CutPrefix(e, "-"); ok {
			if ex != "" {
				fp.excl = append(fp.excl, strings.Split(ex, "."))
			}
			continue
		}
		fp.incl = append(fp.incl, strings.Split(e, "."))
	}
	if len(fp.incl) == 0 && len(fp.excl) == 0 {
		return nil
	}
	return fp
}

type fpState struct{ pat, pos int }

// advance computes the states after consuming name; full reports a complete match.
// States are deduplicated so that several `**` cannot multiply them level after level.
func advance(pats [][]string, states []fpState, name string, next []fpState) ([]fpState, bool) {
	full := false
	add := func(st fpState) {
		for _, o := range next {
			if o == st {
				return
			}
		}
		next = append(next, st)
	}
	for _, st := range states {
		segs := pats[st.pat]
		seg := segs[st.pos]
		if seg == "**" {
			if st.pos+1 == len(segs) {
				full = true
				continue
			}
			add(st) // ** consumes name
			if globMatch(segs[st.pos+1], name) {
				if st.pos+2 == len(segs) {
					full = true
				} else {
					add(fpState{st.pat, st.pos + 2})
				}
			}
			continue
		}
		if globMatch(seg, name) {
			if st.pos+1 == len(segs) {
				full = true
			} else {
				add(fpState{st.pat, st.pos + 1})
			}
		}
	}
	return next, full
}

func rootStates(pats [][]string) []fpState {
	s := make([]fpState, len(pats))
	for i := range pats {
		s[i] = fpState{pat: i}
	}
	return s
}

// apply filters a whole response body.
func (fp *FilterPath) Apply(body []byte) []byte {
	v := gjson.ParseBytes(body)
	if !v.IsObject() {
		return body
	}
	if len(fp.excl) > 0 {
		out, ok := fp.appendExcluded(make([]byte, 0, len(body)), v, rootStates(fp.excl))
		if !ok {
			return []byte("{}")
		}
		body = out
		v = gjson.ParseBytes(body)
	}
	if len(fp.incl) > 0 {
		out, ok := fp.appendIncluded(make([]byte, 0, len(body)/2), v, rootStates(fp.incl))
		if !ok {
			return []byte("{}")
		}
		body = out
	}
	return body
}

func (fp *FilterPath) appendIncluded(dst []byte, v gjson.Result, states []fpState) ([]byte, bool) {
	switch {
	case v.IsObject():
		start := len(dst)
		dst = append(dst, '{')
		n := 0
		var buf []fpState
		v.ForEach(func(k, val gjson.Result) bool {
			next, full := advance(fp.incl, states, k.String(), buf[:0])
			buf = next
			if !full && len(next) == 0 {
				return true
			}
			s := len(dst)
			if n > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, k.Raw...)
			dst = append(dst, ':')
			keep := true
			if full {
				dst = append(dst, val.Raw...)
			} else {
				dst, keep = fp.appendIncluded(dst, val, append([]fpState(nil), next...))
			}
			if keep {
				n++
			} else {
				dst = dst[:s]
			}
			return true
		})
		if n == 0 {
			return dst[:start], false
		}
		return append(dst, '}'), true
	case v.IsArray():
		start := len(dst)
		dst = append(dst, '[')
		n := 0
		v.ForEach(func(_, e gjson.Result) bool {
			s := len(dst)
			if n > 0 {
				dst = append(dst, ',')
			}
			var keep bool
			dst, keep = fp.appendIncluded(dst, e, states)
			if keep {
				n++
			} else {
				dst = dst[:s]
			}
			return true
		})
		if n == 0 {
			return dst[:start], false
		}
		return append(dst, ']'), true
	}
	return dst, false
}

// appendExcluded writes v without the excluded paths. Like ES (whose generator writes a
// container on the path of an exclusion only once something inside it is written), a
// container reached along an exclusion's path that has nothing left, or was empty to begin
// with, is dropped: keep is false. Containers off every exclusion's path are copied as they
// are, empty or not.
func (fp *FilterPath) appendExcluded(dst []byte, v gjson.Result, states []fpState) ([]byte, bool) {
	switch {
	case v.IsObject():
		start := len(dst)
		dst = append(dst, '{')
		n := 0
		var buf []fpState
		v.ForEach(func(k, val gjson.Result) bool {
			next, full := advance(fp.excl, states, k.String(), buf[:0])
			buf = next
			if full {
				return true
			}
			s := len(dst)
			if n > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, k.Raw...)
			dst = append(dst, ':')
			keep := true
			if len(next) == 0 {
				dst = append(dst, val.Raw...)
			} else {
				dst, keep = fp.appendExcluded(dst, val, append([]fpState(nil), next...))
			}
			if keep {
				n++
			} else {
				dst = dst[:s]
			}
			return true
		})
		if n == 0 {
			return dst[:start], false
		}
		return append(dst, '}'), true
	case v.IsArray():
		start := len(dst)
		dst = append(dst, '[')
		n := 0
		v.ForEach(func(_, e gjson.Result) bool {
			s := len(dst)
			if n > 0 {
				dst = append(dst, ',')
			}
			var keep bool
			if dst, keep = fp.appendExcluded(dst, e, states); keep {
				n++
			} else {
				dst = dst[:s]
			}
			return true
		})
		if n == 0 {
			return dst[:start], false
		}
		return append(dst, ']'), true
	}
	return append(dst, v.Raw...), true
}

// ApplyFilterPath filters a response the way Elasticsearch applies the filter_path URL
// parameter (comma list, `*`, `**`, leading `-` exclusions). The proxy uses it for an _msearch
// whose searches are reranked: the reranker needs the unfiltered hits, so filter_path is taken
// off the upstream request and applied to the final response.
func ApplyFilterPath(body []byte, expr string) []byte {
	fp := ParseFilterPath(expr)
	if fp == nil {
		return body
	}
	return fp.Apply(body)
}
