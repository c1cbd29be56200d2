package pipeline

import (
	"bytes"
	"time"

	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"

	"github.com/vlproxy/vlproxy/internal/httphdr"

	"github.com/vlproxy/vlproxy/proxy/resultcache"
)

// resultKey returns the result-cache key of the request, built in kb, or nil when it bypasses
// the cache, and whether a response may be stored under it: not while a write it depends on
// may still be invisible to searches (within the refresh lag).
func (p *Pipeline) resultKey(rc *fasthttp.RequestCtx, in *input, kb *bytebufferpool.ByteBuffer) (key []byte, store bool) {
	if p.results == nil {
		return nil, false
	}
	variant := ""
	if in.variant != nil {
		variant = in.variant.Name
	}
	path, query := pathQuery(rc)
	key, last, ok := p.keys.KeyAt(kb.B[:0], resultcache.KeyInput{
		Method:  rc.Method(),
		Path:    path,
		Query:   query,
		Body:    in.body,
		Header:  &rc.Request.Header,
		Variant: variant,
	})
	if !ok {
		return nil, false
	}
	kb.B = key
	return key, last.IsZero() || time.Since(last) >= p.lag
}

// outcomeHeaders copies the upstream's response headers; Forwarder already removed hop-by-hop
// ones, and fasthttp sets Content-Length itself.
func outcomeHeaders(dst []resultcache.Header, h *fasthttp.ResponseHeader) []resultcache.Header {
	for k, v := range h.All() {
		if bytes.EqualFold(k, []byte("Content-Length")) {
			continue
		}
		dst = append(dst, resultcache.Header{Name: append([]byte(nil), k...), Value: append([]byte(nil), v...)})
	}
	return dst
}

// encodeOutcome stores a 2xx outcome as a result-cache entry: only the headers a hit may
// replay. The entry is made in out.body's buffer (the metadata after the body), which nothing
// appends to afterwards.
func encodeOutcome(out *outcome) []byte {
	e := resultcache.Entry{Status: out.status, Stored: out.stored,
		Rewrite: []byte(out.rewrite), Rerank: []byte(out.rerank), Retrieval: []byte(out.retrieval)}
	for _, h := range out.header {
		switch storedAs(h.Name) {
		case storedContentType:
			e.ContentType = h.Value
		case storedHeader:
			e.Headers = append(e.Headers, h)
		}
	}
	return resultcache.AppendEntryMeta(out.body, &e)
}

// How an entry keeps a response field (storedAs).
const (
	storedNot         = iota // not replayed by a hit, or one of the entry's status fields
	storedContentType        // Entry.ContentType
	storedHeader             // Entry.Headers
)

// storedAs says where an entry keeps a response field, if a hit replays it (StoredHeader). It
// classifies rather than appends, so that a caller's header array stays on its stack.
func storedAs(name []byte) int {
	switch {
	case !httphdr.Stored(name):
		return storedNot
	case httphdr.EqualName(name, hdrContentType):
		return storedContentType
	case httphdr.EqualName(name, hdrRewrite), httphdr.EqualName(name, hdrRerank):
		return storedNot // the entry's own Rewrite and Rerank
	}
	return storedHeader
}
