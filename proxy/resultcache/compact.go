package resultcache

// appendCompactValid appends src without the whitespace JSON allows between tokens, in one
// pass that also checks that src is one JSON value. It judges validity exactly as
// gjson.ValidBytes does (FuzzCompactValid holds the two together) and compacts exactly as
// appendCompactJSON does; a result-cache hit runs it on every body, where validating and then
// compacting cost two passes. On invalid input it returns dst unchanged and ok false.
//
// It also reports, as suspect, whether any string in src is "pit" or "request_cache" or holds
// an escape (which could spell either): only such bodies need bypassBody's parse.
func appendCompactValid(dst, src []byte) (out []byte, suspect, ok bool) {
	start := len(dst)
	run := 0 // src[run:i] is valid and not yet appended: bytes are copied a run at a time, between whitespace
	// The open containers, innermost last: '{' or '['. Bodies rarely nest deeper than the array.
	var stackArr [32]byte
	stack := stackArr[:0]
	state := wantValue
	for i := 0; i < len(src); {
		c := src[i]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			dst = append(dst, src[run:i]...)
			i++
			run = i
			continue
		}
		switch state {
		case wantValue, wantValueOrClose:
			if c == ']' && state == wantValueOrClose {
				stack = stack[:len(stack)-1]
				i++
				state = afterValue(stack)
				continue
			}
			switch c {
			case '{':
				stack = append(stack, '{')
				i++
				state = wantKeyOrClose
				continue
			case '[':
				stack = append(stack, '[')
				i++
				state = wantValueOrClose
				continue
			case '"':
				j, s, good := scanString(src, i)
				if !good {
					return dst[:start], false, false
				}
				suspect = suspect || s
				i = j
			default:
				j := scanScalar(src, i)
				if j == i {
					return dst[:start], false, false
				}
				i = j
			}
			state = afterValue(stack)
		case wantKeyOrClose, wantKey:
			if c == '}' && state == wantKeyOrClose {
				stack = stack[:len(stack)-1]
				i++
				state = afterValue(stack)
				continue
			}
			if c != '"' {
				return dst[:start], false, false
			}
			j, s, good := scanString(src, i)
			if !good {
				return dst[:start], false, false
			}
			suspect = suspect || s
			i = j
			state = wantColon
		case wantColon:
			if c != ':' {
				return dst[:start], false, false
			}
			i++
			state = wantValue
		case wantCommaOrClose:
			top := stack[len(stack)-1]
			switch {
			case c == ',':
				state = wantValue
				if top == '{' {
					state = wantKey
				}
			case (c == '}' && top == '{') || (c == ']' && top == '['):
				stack = stack[:len(stack)-1]
				state = afterValue(stack)
			default:
				return dst[:start], false, false
			}
			i++
		default: // done: only whitespace may follow the value
			return dst[:start], false, false
		}
	}
	if state != done {
		return dst[:start], false, false
	}
	return append(dst, src[run:]...), suspect, true
}

// The states of appendCompactValid: what the next token may be.
const (
	wantValue        = iota // a value (the document's, after ':' or after ',' in an array)
	wantValueOrClose        // after '[': a value or ']'
	wantKeyOrClose          // after '{': a key or '}'
	wantKey                 // after ',' in an object
	wantColon               // after a key
	wantCommaOrClose        // after a value inside a container
	done                    // after the document's value
)

func afterValue(stack []byte) int {
	if len(stack) == 0 {
		return done
	}
	return wantCommaOrClose
}

// scanString returns the end (past the closing quote) of the string that starts at src[i],
// whether it is "pit", "request_cache" or holds an escape, and whether it is valid (no control
// bytes, known escapes, four hex digits after \u).
func scanString(src []byte, i int) (end int, suspect, ok bool) {
	for j := i + 1; j < len(src); j++ {
		c := src[j]
		if plainStringByte[c] {
			continue
		}
		switch {
		case c == '"':
			s := src[i+1 : j]
			return j + 1, suspect || string(s) == "pit" || string(s) == "request_cache", true
		case c == '\\':
			suspect = true
			j++
			if j == len(src) {
				return j, false, false
			}
			switch src[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				for range 4 {
					j++
					if j >= len(src) || !isHex(src[j]) {
						return j, false, false
					}
				}
			default:
				return j, false, false
			}
		default: // a control byte
			return j, false, false
		}
	}
	return len(src), false, false
}

// plainStringByte marks the bytes a string holds as they are: all but '"', '\\' and controls.
var plainStringByte = func() (t [256]bool) {
	for c := ' '; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// scanScalar returns the end of the number or literal (true, false, null) that starts at
// src[i], or i when there is none. Numbers follow JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?
// ([eE][+-]?[0-9]+)?; what follows the token is for the caller to judge.
func scanScalar(src []byte, i int) int {
	for _, lit := range [...]string{"true", "false", "null"} {
		if src[i] == lit[0] {
			if len(src)-i >= len(lit) && string(src[i:i+len(lit)]) == lit {
				return i + len(lit)
			}
			return i
		}
	}
	j := i
	if src[j] == '-' {
		j++
	}
	switch {
	case j < len(src) && src[j] == '0':
		j++
	case j < len(src) && src[j] >= '1' && src[j] <= '9':
		j = digits(src, j)
	default:
		return i
	}
	if j < len(src) && src[j] == '.' {
		if k := digits(src, j+1); k > j+1 {
			j = k
		} else {
			return i
		}
	}
	if j < len(src) && (src[j] == 'e' || src[j] == 'E') {
		k := j + 1
		if k < len(src) && (src[k] == '+' || src[k] == '-') {
			k++
		}
		if e := digits(src, k); e > k {
			j = e
		} else {
			return i
		}
	}
	return j
}

func digits(src []byte, j int) int {
	for j < len(src) && src[j] >= '0' && src[j] <= '9' {
		j++
	}
	return j
}
