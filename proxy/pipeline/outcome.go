package pipeline

import (
	"bytes"
	"github.com/vlproxy/vlproxy/internal/httphdr"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vlproxy/vlproxy/proxy/resultcache"
)

// resultKey returns the result-cache key of the request, or nil when it bypasses the cache, and
// whether a response may be stored under it: not while a write it depends on may still be
// invisible to searches (within the refresh lag).
func (p *Pipeline) resultKey(rc *fasthttp.RequestCtx, in *input) (key []byte, store bool) {
	if p.results == nil {
		return nil, false
	}
	variant := ""
	if in.variant != nil {
		variant = in.variant.Name
	}
	path, query := pathQuery(rc)
	key, last, ok := p.keys.KeyAt(nil, resultcache.KeyInput{
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

// encodeOutcome stores a 2xx outcome as a result-cache entry: only the headers a hit may replay.
func encodeOutcome(out *outcome) []byte {
	e := resultcache.Entry{Status: out.status, Stored: out.stored, Body: out.body}
	for _, h := range out.header {
		if httphdr.Stored(h.Name) {
			e.Headers = append(e.Headers, h)
		}
	}
	e.Headers = append(e.Headers,
		resultcache.Header{Name: []byte(httphdr.Rewrite), Value: []byte(out.rewrite)},
		resultcache.Header{Name: []byte(httphdr.Rerank), Value: []byte(out.rerank)})
	if out.retrieval != "" {
		e.Headers = append(e.Headers, resultcache.Header{Name: []byte(httphdr.Retrieval), Value: []byte(out.retrieval)})
	}
	return resultcache.AppendEntry(nil, &e)
}

// decodeOutcome reads an entry back; the result shares memory with the immutable entry.
func decodeOutcome(b []byte) (*outcome, error) {
	var e resultcache.Entry
	if err := e.Decode(b); err != nil {
		return nil, err
	}
	out := &outcome{status: e.Status, body: e.Body, stored: e.Stored}
	for _, h := range e.Headers {
		switch {
		case bytes.EqualFold(h.Name, []byte(httphdr.Rewrite)):
			out.rewrite = string(h.Value)
		case bytes.EqualFold(h.Name, []byte(httphdr.Rerank)):
			out.rerank = string(h.Value)
		case bytes.EqualFold(h.Name, []byte(httphdr.Retrieval)):
			out.retrieval = string(h.Value)
		default:
			out.header = append(out.header, h)
		}
	}
	return out, nil
}

func (out *outcome) age(now time.Time) int {
	d := now.Sub(out.stored)
	if d < 0 {
		return 0
	}
	return int(d / time.Second)
}
