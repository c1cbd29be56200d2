package resultcache

import (
	"encoding/binary"
	"errors"
	"github.com/vlproxy/vlproxy/internal/httphdr"
	"time"
)

// entryVersion starts every encoded entry; bump it whenever the layout changes.
const entryVersion byte = 1

// Header is one stored response header.
type Header struct {
	Name, Value []byte
}

// Entry is a cached response.
type Entry struct {
	Status  int
	Stored  time.Time // when the upstream answered; the Age header counts from it
	Headers []Header  // only those StoredHeader accepts
	Body    []byte
}

// storedHeaders are the response headers a hit replays. Everything else is either per
// response (Date, Content-Length, Connection, Server-Timing, X-VLProxy-Cache, Age), per
// request (X-Opaque-Id, which the proxy echoes from the request itself, trace headers), or
// must not be shared (Set-Cookie).
// StoredHeader reports whether a response header is kept in the entry (httphdr.Stored).
func StoredHeader(name []byte) bool { return httphdr.Stored(name) }

// AppendEntry appends the encoding of e to dst: a version byte, the status, the stored time,
// the headers and the body.
func AppendEntry(dst []byte, e *Entry) []byte {
	dst = append(dst, entryVersion)
	dst = binary.AppendUvarint(dst, uint64(e.Status))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(e.Stored.UnixNano()))
	dst = binary.AppendUvarint(dst, uint64(len(e.Headers)))
	for _, h := range e.Headers {
		dst = appendField(dst, h.Name)
		dst = appendField(dst, h.Value)
	}
	return append(dst, e.Body...)
}

var errBadEntry = errors.New("cannot decode cached entry: truncated or from another version")

// Decode fills e from b without copying: e.Headers and e.Body point into b, so b must stay
// unmodified while e is used (values from cache.Cache are immutable). e.Headers is reused.
// A decoding error means the entry should be treated as a miss.
func (e *Entry) Decode(b []byte) error {
	if len(b) < 1 || b[0] != entryVersion {
		return errBadEntry
	}
	b = b[1:]
	status, n := binary.Uvarint(b)
	if n <= 0 || status < 100 || status > 999 {
		return errBadEntry
	}
	b = b[n:]
	if len(b) < 8 {
		return errBadEntry
	}
	stored := int64(binary.LittleEndian.Uint64(b))
	b = b[8:]
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return errBadEntry
	}
	b = b[n:]
	e.Headers = e.Headers[:0]
	for range count {
		var name, value []byte
		var ok bool
		if name, b, ok = readField(b); !ok {
			return errBadEntry
		}
		if value, b, ok = readField(b); !ok {
			return errBadEntry
		}
		e.Headers = append(e.Headers, Header{Name: name, Value: value})
	}
	e.Status = int(status)
	e.Stored = time.Unix(0, stored)
	e.Body = b
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
