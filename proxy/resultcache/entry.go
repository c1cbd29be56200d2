package resultcache

import (
	"encoding/binary"
	"errors"
	"github.com/vlproxy/vlproxy/internal/httphdr"
	"time"
)

// entryVersion ends every encoded entry; bump it whenever the layout changes, and keyVersion
// with it: replicas of two versions that share an L2 then never see each other's entries
// (one they could not decode would be a fault, which flushes the whole cache).
const entryVersion byte = 3

// trailerLen is the fixed end of an entry: the length of its metadata and the version.
const trailerLen = 4 + 1

// Header is one stored response header.
type Header struct {
	Name, Value []byte
}

// Entry is a cached response.
type Entry struct {
	Status int
	Stored time.Time // when the upstream answered; the Age header counts from it
	// The fields every hit sets, apart so that a hit sets them without looking at names:
	// Content-Type, and X-VLProxy-Rewrite, -Rerank and -Retrieval (empty: none).
	ContentType, Rewrite, Rerank, Retrieval []byte
	Headers                                 []Header // the other fields StoredHeader accepts
	Body                                    []byte
}

// storedHeaders are the response headers a hit replays. Everything else is either per
// response (Date, Content-Length, Connection, Server-Timing, X-VLProxy-Cache, Age), per
// request (X-Opaque-Id, which the proxy echoes from the request itself, trace headers), or
// must not be shared (Set-Cookie).
// StoredHeader reports whether a response header is kept in the entry (httphdr.Stored).
func StoredHeader(name []byte) bool { return httphdr.Stored(name) }

// AppendEntry appends the encoding of e to dst: the body, then what AppendEntryMeta adds.
func AppendEntry(dst []byte, e *Entry) []byte {
	return AppendEntryMeta(append(dst, e.Body...), e)
}

// AppendEntryMeta appends everything of e but its body to body, which is the response body
// (e.Body is not read): the headers, the fixed fields, the status, the stored time, their
// length and the version. The result is the encoded entry. The metadata comes last so that it usually fits in
// the spare capacity of the buffer the body was read into, and storing a response then copies
// none of its body.
func AppendEntryMeta(body []byte, e *Entry) []byte {
	start := len(body)
	dst := binary.AppendUvarint(body, uint64(len(e.Headers)))
	for _, h := range e.Headers {
		dst = appendField(dst, h.Name)
		dst = appendField(dst, h.Value)
	}
	dst = appendField(dst, e.ContentType)
	dst = appendField(dst, e.Rewrite)
	dst = appendField(dst, e.Rerank)
	dst = appendField(dst, e.Retrieval)
	dst = binary.AppendUvarint(dst, uint64(e.Status))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(e.Stored.UnixNano()))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(dst)-start))
	return append(dst, entryVersion)
}

var errBadEntry = errors.New("cannot decode cached entry: truncated or from another version")

// Decode fills e from b without copying: e.Headers and e.Body point into b (e.Body is b's
// prefix, b[:len(e.Body)]), so b must stay
// unmodified while e is used (values from cache.Cache are immutable). e.Headers is reused: with
// enough capacity (an array of the caller's), Decode does not allocate.
// A decoding error means the entry should be treated as a miss.
func (e *Entry) Decode(b []byte) error {
	if len(b) < trailerLen || b[len(b)-1] != entryVersion {
		return errBadEntry
	}
	n := uint64(binary.LittleEndian.Uint32(b[len(b)-trailerLen:]))
	if n > uint64(len(b)-trailerLen) {
		return errBadEntry
	}
	bodyEnd := len(b) - trailerLen - int(n)
	m := b[bodyEnd : len(b)-trailerLen]
	count, k := binary.Uvarint(m)
	if k <= 0 || count > uint64(len(m)) {
		return errBadEntry
	}
	m = m[k:]
	// Indexed stores, not append: with append the compiler cannot tell that e.Headers' array
	// stays the caller's, and a caller's array would move to the heap.
	if count > uint64(cap(e.Headers)) {
		e.Headers = make([]Header, count)
	}
	e.Headers = e.Headers[:count]
	for i := range e.Headers {
		var name, value []byte
		var ok bool
		if name, m, ok = readField(m); !ok {
			return errBadEntry
		}
		if value, m, ok = readField(m); !ok {
			return errBadEntry
		}
		e.Headers[i] = Header{Name: name, Value: value}
	}
	var ok [4]bool
	e.ContentType, m, ok[0] = readField(m)
	e.Rewrite, m, ok[1] = readField(m)
	e.Rerank, m, ok[2] = readField(m)
	e.Retrieval, m, ok[3] = readField(m)
	if ok != [4]bool{true, true, true, true} {
		return errBadEntry
	}
	status, k := binary.Uvarint(m)
	if k <= 0 || status < 100 || status > 999 || len(m)-k != 8 {
		return errBadEntry
	}
	e.Status = int(status)
	e.Stored = time.Unix(0, int64(binary.LittleEndian.Uint64(m[k:])))
	e.Body = b[:bodyEnd:bodyEnd]
	return nil
}

func readField(b []byte) (field, rest []byte, ok bool) {
	l, n := binary.Uvarint(b)
	if n <= 0 || l > uint64(len(b)-n) {
		return nil, nil, false
	}
	b = b[n:]
	return b[:l:l], b[l:], true
}

// Age is the value of the Age header for this entry at now: whole seconds since it was stored.
func (e *Entry) Age(now time.Time) int {
	d := now.Sub(e.Stored)
	if d < 0 {
		return 0
	}
	return int(d / time.Second)
}
