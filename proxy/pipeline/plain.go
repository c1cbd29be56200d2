package pipeline

import (
	"github.com/valyala/fasthttp"
	"github.com/vlproxy/vlproxy/internal/httphdr"

	"github.com/vlproxy/vlproxy/proxy/searchbody"
)

// Plain reports whether a search request needs nothing from the pipeline, so proxy/ can forward
// it with its bytes unchanged and without the pipeline's copies: no result cache, no experiments,
// no X-VLProxy switch header, nothing for vlproxy in the body, and no reranking by default on
// its index. It then sets the status headers such a request gets.
//
// This is the common case of a proxy deployed for some indices or some clients only, and it is
// the path that the pass-through benchmark measures against nginx.
func (p *Pipeline) Plain(rc *fasthttp.RequestCtx, kind Kind, body []byte) bool {
	if p.results != nil || !p.exp.Empty() {
		return false
	}
	h := &rc.Request.Header
	if len(h.Peek(httphdr.Rewrite)) > 0 || len(h.Peek(httphdr.Rerank)) > 0 || len(h.Peek(httphdr.Variant)) > 0 {
		return false
	}
	if len(h.ContentEncoding()) > 0 || searchbody.MaybeIntercepted(body) {
		return false
	}
	if kind != Count && p.rr != nil && p.rr.EnabledFor(indexOf(pathOrig(rc))) {
		return false
	}
	r := &rc.Response.Header
	if kind == Count {
		setStatus(r, "skipped", "skipped:count", cacheBypass)
	} else {
		setStatus(r, "skipped", "off", cacheBypass)
	}
	cacheStates[cacheBypass].Inc()
	return true
}

func pathOrig(rc *fasthttp.RequestCtx) []byte {
	p, _ := pathQuery(rc)
	return p
}
