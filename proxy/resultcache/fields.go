package resultcache

import "bytes"

// maxFields is how many header fields Fields holds; a request with more is looked up in its
// full header instead.
const maxFields = 32

// Fields is a request's header fields, referenced (not copied) in one pass, for Key to look up.
// fasthttp's Peek copies and normalizes the name it is given and scans every field, on each
// of the twenty-odd lookups a key makes; the identity scan walked the fields once more. Fill it
// with Reset and Add; it is valid while the fields it references are.
type Fields struct {
	kv   [maxFields]Header
	n    int
	src  Headers // the request's own header
	full bool    // look everything up in src: more fields than kv holds, or trailers
}

// Reset empties f for the fields of src, which answers lookups when f cannot.
func (f *Fields) Reset(src Headers) {
	f.n, f.src, f.full = 0, src, false
}

// Add records one field as the request's header lists it (*fasthttp.RequestHeader's All).
func (f *Fields) Add(name, value []byte) {
	// fasthttp's Peek also finds trailer fields, which All does not list.
	if f.n == len(f.kv) || equalFold(name, "Trailer") {
		f.full = true
		return
	}
	f.kv[f.n] = Header{Name: name, Value: value}
	f.n++
}

// Peek returns the value of the first field called name (case-insensitively), as fasthttp's
// Peek does.
func (f *Fields) Peek(name string) []byte {
	if f.full {
		return peek(f.src, name)
	}
	for i := 0; i < f.n; i++ {
		if equalFold(f.kv[i].Name, name) {
			return f.kv[i].Value
		}
	}
	return nil
}

// unknownCredentials is Keyer.unknownCredentials over the fields.
func (f *Fields) unknownCredentials(k *Keyer) bool {
	if f.full {
		return f.src != nil && k.unknownCredentials(f.src)
	}
	for i := 0; i < f.n; i++ {
		if k.unknownCredential(f.kv[i].Name) {
			return true
		}
	}
	return false
}

// equalFold is bytes.EqualFold for ASCII header names, with the length compared first: most
// names that are looked up differ from most fields in length.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c, d := b[i], s[i]
		if c == d {
			continue
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// commonHeaders are field names that say nothing of the caller and that most requests carry:
// LooksLikeCredentials answers them without its word scan (TestCommonHeadersAreNotCredentials
// checks that the scan agrees).
func commonHeader(lower []byte) bool {
	switch string(lower) {
	case "host", "accept", "accept-encoding", "accept-language", "content-type", "content-length",
		"content-encoding", "connection", "user-agent", "x-opaque-id", "x-forwarded-for",
		"x-forwarded-proto", "x-forwarded-host", "x-real-ip", "traceparent", "tracestate",
		"cache-control", "pragma", "expect", "origin", "referer", "x-request-id", "transfer-encoding",
		"x-elastic-client-meta":
		return true
	}
	return false
}

func containsAny(lower []byte, words [][]byte) bool {
	for _, w := range words {
		if bytes.Contains(lower, w) {
			return true
		}
	}
	return false
}
