// Package jsonscan is the project's one hand-written JSON scanner, for the hot paths where
// gjson's byte-by-byte walk costs too much: a search body with a 270 KB base64 image (rewrite
// checks it strictly, ScanString and ScanNumber, in one pass) and a search response whose hits
// are mostly long strings (rerank skips them with bytes.IndexByte, SkipValue, EachField and
// EachElem, where keys are compared raw and malformed input yields -1).
package jsonscan

import (
	"bytes"
	"encoding/binary"

	"github.com/tidwall/gjson"

	"github.com/vlproxy/vlproxy/internal/bytesconv"
)

// SkipWS returns the index of the first byte at or after i that is not JSON whitespace.
func SkipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// SkipString returns the index after the string starting at b[i] == '"'.
func SkipString(b []byte, i int) int {
	i++
	for {
		if i > len(b) {
			return -1
		}
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return -1
		}
		i += j
		n := 0
		for k := i - 1; b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return i + 1
		}
		i++
	}
}

// SkipValue returns the index after the value starting at b[i].
func SkipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return SkipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				if i = SkipString(b, i); i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	case '}', ']', ',', ':':
		return -1
	}
	start := i
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return i
		case '{', '[', '"', ':':
			return -1
		}
		i++
	}
	if i == start {
		return -1
	}
	return i
}

// EachField walks the object at b[i] == '{'. For each member it calls fn with the raw key
// (without quotes), the key start and the value start; fn returns the index after the value
// when it consumed it, 0 to have it skipped, or -1 for malformed input. eachField returns the
// index after the object, or -1. Every byte is visited once when fn descends instead of skipping.
func EachField(b []byte, i int, fn func(key []byte, ks, vs int) int) int {
	if i >= len(b) || b[i] != '{' {
		return -1
	}
	i = SkipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1
	}
	for i < len(b) {
		if b[i] != '"' {
			return -1
		}
		ks := i
		ke := SkipString(b, i)
		if ke < 0 {
			return -1
		}
		i = SkipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return -1
		}
		vs := SkipWS(b, i+1)
		if vs >= len(b) {
			return -1
		}
		var end bool
		if i, end = next(b, vs, fn(b[ks+1:ke-1], ks, vs), '}'); end {
			return i
		}
	}
	return -1
}

// EachElem walks the array at b[i] == '['; fn gets each element's start and returns the
// index after it (0: skip it, -1: malformed).
func EachElem(b []byte, i int, fn func(vs int) int) int {
	if i >= len(b) || b[i] != '[' {
		return -1
	}
	i = SkipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1
	}
	for i < len(b) {
		var end bool
		if i, end = next(b, i, fn(i), ']'); end {
			return i
		}
	}
	return -1
}

// next moves past the member or element that starts at vs and ends at ve (0: skip it, -1:
// malformed) and the comma after it. end is true when the container closes (i is the index
// after it) or the input is malformed (i is -1).
func next(b []byte, vs, ve int, close byte) (i int, end bool) {
	if ve == 0 {
		ve = SkipValue(b, vs)
	}
	if ve < 0 {
		return -1, true
	}
	i = SkipWS(b, ve)
	switch {
	case i >= len(b):
		return -1, true
	case b[i] == ',':
		return SkipWS(b, i+1), false
	case b[i] == close:
		return i + 1, true
	}
	return -1, true
}

// ScanNumber checks the JSON number at b[i] strictly (RFC 8259) and returns the index after it.
func ScanNumber(b []byte, i int) (end int, ok bool) {
	digits := func() bool {
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > j
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return i, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return i, false
		}
	}
	return i, true
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// hasLess reports whether a byte of x is below n (n <= 128).
func hasLess(x, n uint64) bool { return (x-ones*n)&^x&highs != 0 }

// hasByte reports whether a byte of x equals c.
func hasByte(x uint64, c byte) bool { return hasLess(x^(ones*uint64(c)), 1) }

// ScanString checks the JSON string at b[i] (its opening quote) as strictly as gjson.Valid and
// returns the index after it; esc says whether it holds escapes (then its value is not its raw
// bytes). Eight bytes are checked at a time: base64 has no quote, backslash or control byte.
func ScanString(b []byte, i int) (end int, esc, ok bool) {
	i++
	for {
		for i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:])
			if hasLess(x, 0x20) || hasByte(x, '"') || hasByte(x, '\\') {
				break
			}
			i += 8
		}
		if i >= len(b) {
			return i, esc, false
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, esc, true
		case c < 0x20:
			return i, esc, false
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				return i, esc, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return i, esc, false
				}
				i += 6
			default:
				return i, esc, false
			}
		default:
			i++
		}
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// Unquote returns the value of the string token raw (quotes included): its inner bytes when
// esc is false (no escapes), else gjson's unescaping. The result may share memory with raw.
func Unquote(raw []byte, esc bool) string {
	if esc {
		return gjson.Parse(bytesconv.String(raw)).Str
	}
	return bytesconv.String(raw[1 : len(raw)-1])
}
