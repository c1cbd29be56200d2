package pipeline

import (
	"bytes"
	"hash/maphash"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/vlproxy/vlproxy/proxy/resultcache"
)

// hitMemo remembers, for requests that were result-cache hits, what their key was made of:
// a repeat of the same request, byte for byte (method, target, header block as read, body),
// gets its key from resultcache.KeyAgain, with the index generations of the moment, instead
// of reading its header fields, checking its switches and normalizing its body again. What a
// key takes from the request alone is a function of those bytes, so a memo can only be
// missing, never wrong; the generations, which writes change, are never memoized.
//
// Requests whose header was not parsed from the wire (no raw header block: built in code)
// or whose body is chunked (trailers are fields the raw block does not hold) are not memoized.
// The memo is bounded: at memoMaxEntries requests or memoMaxBytes it starts over.
type hitMemo struct {
	mu    sync.Mutex
	m     map[uint64]*memoEntry
	bytes int // what the entries of m hold
}

const (
	memoMaxEntries = 4096
	memoMaxBytes   = 4 << 20
	memoMaxRequest = 8 << 10 // bytes of request (target, header block, body) worth keeping
)

// memoEntry is one remembered request: its bytes, and its key with the key's parts (the
// search kind follows from the target). Entries never change once stored.
type memoEntry struct {
	method, target, header, body []byte // sub-slices of one buffer
	key                          []byte
	parts                        resultcache.Parts
	size                         int // bytes held
}

var memoSeed = maphash.MakeSeed()

// rawRequest is what the memo keys on: the request as the client sent it, and its hash.
type rawRequest struct {
	method, target, header, body []byte
	sum                          uint64
}

// rawOf returns rc's request as sent, and false when it may not be memoized.
func rawOf(rc *fasthttp.RequestCtx, body []byte) (rawRequest, bool) {
	h := &rc.Request.Header
	r := rawRequest{method: h.Method(), target: h.RequestURI(), header: h.RawHeaders(), body: body}
	if len(r.header) == 0 || h.ContentLength() < 0 || len(r.target)+len(r.header)+len(r.body) > memoMaxRequest {
		return rawRequest{}, false
	}
	r.sum = r.hash()
	return r, true
}

func (r *rawRequest) hash() uint64 {
	var h maphash.Hash
	h.SetSeed(memoSeed)
	h.Write(r.method)
	h.WriteByte(0)
	h.Write(r.target)
	h.WriteByte(0)
	h.Write(r.header)
	h.WriteByte(0)
	h.Write(r.body)
	return h.Sum64()
}

// find returns the entry remembered for r, nil when there is none.
func (m *hitMemo) find(r *rawRequest) *memoEntry {
	m.mu.Lock()
	e := m.m[r.sum]
	m.mu.Unlock()
	if e == nil || !bytes.Equal(e.body, r.body) || !bytes.Equal(e.target, r.target) ||
		!bytes.Equal(e.header, r.header) || !bytes.Equal(e.method, r.method) {
		return nil
	}
	return e
}

// remember stores what r's key was made of (parts.Reusable).
func (m *hitMemo) remember(r *rawRequest, key []byte, parts *resultcache.Parts) {
	n := len(r.method) + len(r.target) + len(r.header) + len(r.body)
	buf := make([]byte, 0, n+len(key))
	take := func(b []byte) []byte {
		buf = append(buf, b...)
		return buf[len(buf)-len(b) : len(buf) : len(buf)]
	}
	e := &memoEntry{parts: parts.Clone(), size: cap(buf)}
	e.method, e.target, e.header, e.body = take(r.method), take(r.target), take(r.header), take(r.body)
	e.key = take(key)
	h := r.sum
	m.mu.Lock()
	if m.m == nil || len(m.m) >= memoMaxEntries || m.bytes+e.size > memoMaxBytes {
		m.m, m.bytes = make(map[uint64]*memoEntry), 0
	}
	if old := m.m[h]; old != nil {
		m.bytes -= old.size
	}
	m.m[h] = e
	m.bytes += e.size
	m.mu.Unlock()
}
