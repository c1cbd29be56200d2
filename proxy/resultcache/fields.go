package resultcache

import (
	"bytes"
	"math/bits"
	"strings"

	"github.com/vlproxy/vlproxy/internal/httphdr"
)

// maxFields is how many header fields Fields holds; a request with more is looked up in its
// full header instead.
const maxFields = 32

// Fields is a request's header fields, referenced (not copied) in one pass, for Key to look up.
// fasthttp's Peek copies and normalizes the name it is given and scans every field, on each
// of the twenty-odd lookups a key makes, and the identity scan walked the fields once more.
// Add instead files each field, by its lower-cased name, into the slot of the name Key and the
// pipeline look for (slotNames), and marks it when it may carry credentials: a key reads its
// slots and the few marked fields. Fill it with Reset and Add; it is valid while the fields it
// references are.
type Fields struct {
	kv      [maxFields]Header
	n       int
	slot    [numSlots]uint8 // 1 + index in kv of the first field of each slot name, 0: none
	suspect uint32          // bit i: kv[i] looks like credentials and is no built-in identity header
	src     Headers         // the request's own header
	full    bool            // look everything up in src: more fields than kv holds, or trailers
}

// Reset empties f for the fields of src, which answers lookups when f cannot.
func (f *Fields) Reset(src Headers) {
	f.n, f.src, f.full, f.suspect = 0, src, false, 0
	f.slot = [numSlots]uint8{}
}

// Add records one field as the request's header lists it (*fasthttp.RequestHeader's All).
func (f *Fields) Add(name, value []byte) {
	if f.n == len(f.kv) {
		f.full = true
		return
	}
	var buf [maxNameLen]byte
	if lower, ok := lowerName(&buf, name); !ok {
		// No slot name is this long, and LooksLikeCredentials suspects any such name.
		f.suspect |= 1 << f.n
	} else {
		s := slotOf(lower)
		switch {
		case s == slotTrailer:
			// fasthttp's Peek also finds trailer fields, which All does not list.
			f.full = true
			return
		case s >= 0 && f.slot[s] == 0:
			f.slot[s] = uint8(f.n + 1)
		}
		if (s < slotIdentity || s >= slotIdentity+len(identityHeaders)) && lowerLooksLikeCredentials(lower) {
			f.suspect |= 1 << f.n
		}
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

// bySlot is Peek(slotNames[s]).
func (f *Fields) bySlot(s int) []byte {
	if f.full {
		return peek(f.src, slotNames[s])
	}
	if i := f.slot[s]; i > 0 {
		return f.kv[i-1].Value
	}
	return nil
}

// lookup is h.Peek(slotNames[s]), through the slot when h is Fields.
func lookup(h Headers, s int) []byte {
	if f, ok := h.(*Fields); ok {
		return f.bySlot(s)
	}
	return peek(h, slotNames[s])
}

// CarriesSwitch reports whether the request has an X-VLProxy-Rewrite, -Rerank, -Variant or
// -Retrieval field, or Content-Encoding, not empty: the fields that make a search something for
// the pipeline (or one it cannot read), read from their slots.
func (f *Fields) CarriesSwitch() bool {
	for _, s := range [...]int{slotRewrite, slotRerank, slotVariant, slotRetrieval, slotContentEnc} {
		if len(f.bySlot(s)) > 0 {
			return true
		}
	}
	return false
}

// unknownCredentials is Keyer.unknownCredentials over the fields.
func (f *Fields) unknownCredentials(k *Keyer) bool {
	if f.full {
		return f.src != nil && k.unknownCredentials(f.src)
	}
	for m := f.suspect; m != 0; m &= m - 1 {
		i := bits.TrailingZeros32(m)
		if !isIdentity(f.kv[i].Name, k.cfg.IdentityHeaders) {
			return true
		}
	}
	return false
}

// Slots: the header names Key and the pipeline look up, in slotNames.
const (
	slotCacheControl                       = 0
	slotPragma                             = 1
	slotIdentity                           = 2                // identityHeaders, in order
	slotResponse                           = slotIdentity + 7 // responseHeaders, in order
	slotContentEnc                         = slotResponse + 7 // Content-Encoding
	numSlots                               = slotContentEnc + 1
	slotTrailer                            = numSlots         // not a slot: Add gives up on Fields
	slotRewrite                            = slotResponse + 3 // httphdr.Rewrite
	slotRerank, slotVariant, slotRetrieval = slotRewrite + 1, slotRewrite + 2, slotRewrite + 3
)

// slotNames are the names of the slots; slotIndex finds a slot by its lower-cased name.
var (
	slotNames = func() []string {
		n := append([]string{"Cache-Control", "Pragma"}, identityHeaders...)
		n = append(n, responseHeaders...)
		n = append(n, "Content-Encoding")
		if len(n) != numSlots || n[slotRewrite] != httphdr.Rewrite || n[slotRerank] != httphdr.Rerank ||
			n[slotVariant] != httphdr.Variant || n[slotRetrieval] != httphdr.Retrieval {
			panic("resultcache: slot constants out of step with identityHeaders and responseHeaders")
		}
		return n
	}()
	slotIndex   = map[string]int{}
	slotLengths [64]bool // the lengths of slot names, which most other names miss
)

func init() {
	for i, n := range append(slotNames, "Trailer") {
		slotIndex[strings.ToLower(n)] = i
		slotLengths[len(n)] = true
	}
}

// slotOf returns the slot of a lower-cased name, -1 for none.
func slotOf(lower []byte) int {
	if len(lower) >= len(slotLengths) || !slotLengths[len(lower)] {
		return -1
	}
	if s, ok := slotIndex[string(lower)]; ok {
		return s
	}
	return -1
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
