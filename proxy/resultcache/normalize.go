package resultcache

import (
	"bytes"
	"encoding/binary"
	"slices"
)

// Body markers in the key: a body that is valid JSON is keyed by its compact form, anything
// else (YAML, CBOR, SMILE, broken JSON) by its exact bytes. The markers keep the two apart.
const (
	markJSON byte = 'J'
	markRaw  byte = 'R'
)

// appendField appends b with its length in front, so adjacent fields cannot run together.
func appendField(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendStringField(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// appendBody appends the key form of one JSON document (a _search or _count body, or one
// _msearch line): its compact form when it is valid JSON, otherwise its exact bytes.
func appendBody(dst, body []byte) []byte {
	dst, _ = appendBodySuspect(dst, body)
	return dst
}

// appendBodySuspect is appendBody that also reports whether the body may name a key
// bypassBody looks for (see appendCompactValid), so that most bodies are never parsed twice.
func appendBodySuspect(dst, body []byte) ([]byte, bool) {
	if len(body) == 0 {
		return append(dst, markRaw, 0), false
	}
	dst = append(dst, markJSON)
	// Reserve a length slot after compacting: compact output is never longer than its input.
	start := len(dst)
	dst = binary.AppendUvarint(dst, uint64(len(body)))
	lenEnd := len(dst)
	dst, suspect, ok := appendCompactValid(dst, body)
	if !ok {
		dst = append(dst[:start-1], markRaw)
		return appendField(dst, body), mentionsBypassKeys(body)
	}
	n := len(dst) - lenEnd
	var tmp [binary.MaxVarintLen64]byte
	l := binary.PutUvarint(tmp[:], uint64(n))
	if l != lenEnd-start {
		// The compact length needs fewer varint bytes than the input length did: shift.
		copy(dst[start+l:], dst[lenEnd:])
		dst = dst[:start+l+n]
	}
	copy(dst[start:], tmp[:l])
	return dst, suspect
}

// appendNDJSON appends the key form of an _msearch body: every line normalized on its own,
// in order, blank lines kept (ES reads a blank header line as "{}", so they carry meaning).
func appendNDJSON(dst, body []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(bytes.Count(body, []byte{'\n'})))
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		dst = appendBody(dst, line)
	}
	return dst
}

// appendSortedQuery appends the query string's parameters ordered by name. Parameters that
// share a name keep their relative order (a stable sort), since "a=1&a=2" and "a=2&a=1" may
// not mean the same; empty parameters ("&&") carry nothing and are dropped.
func appendSortedQuery(dst, query []byte) []byte {
	var arr [32][]byte
	params := arr[:0]
	for len(query) > 0 {
		p := query
		if i := bytes.IndexByte(query, '&'); i >= 0 {
			p, query = query[:i], query[i+1:]
		} else {
			query = nil
		}
		if len(p) > 0 {
			params = append(params, p)
		}
	}
	if len(params) <= len(arr) {
		// Insertion sort: stable, and no allocation for the usual handful of parameters.
		for i := 1; i < len(params); i++ {
			for j := i; j > 0 && bytes.Compare(paramName(params[j]), paramName(params[j-1])) < 0; j-- {
				params[j], params[j-1] = params[j-1], params[j]
			}
		}
	} else {
		slices.SortStableFunc(params, func(a, b []byte) int { return bytes.Compare(paramName(a), paramName(b)) })
	}
	dst = binary.AppendUvarint(dst, uint64(len(params)))
	for _, p := range params {
		dst = appendField(dst, p)
	}
	return dst
}

func paramName(p []byte) []byte {
	if i := bytes.IndexByte(p, '='); i >= 0 {
		return p[:i]
	}
	return p
}

// queryParam returns the raw value of the first parameter called name, and whether it is
// present at all.
func queryParam(query []byte, name string) ([]byte, bool) {
	for len(query) > 0 {
		p := query
		if i := bytes.IndexByte(query, '&'); i >= 0 {
			p, query = query[:i], query[i+1:]
		} else {
			query = nil
		}
		n, v := p, []byte(nil)
		if i := bytes.IndexByte(p, '='); i >= 0 {
			n, v = p[:i], p[i+1:]
		}
		if string(n) == name {
			return v, true
		}
	}
	return nil, false
}
