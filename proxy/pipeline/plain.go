package pipeline

import (
	"github.com/valyala/fasthttp"
	"github.com/vlproxy/vlproxy/internal/httphdr"

	"github.com/vlproxy/vlproxy/proxy/resultcache"
	"github.com/vlproxy/vlproxy/proxy/searchbody"
)

// Plain reports whether a search request needs nothing from the pipeline, so proxy/ can forward
// it with its bytes unchanged and without the pipeline's copies: no result cache and nothing
// for vlproxy (nothingFor). It then sets the status headers such a request gets.
//
// This is the common case of a proxy deployed for some indices or some clients only, and it is
// the path that the pass-through benchmark measures against nginx.
func (p *Pipeline) Plain(rc *fasthttp.RequestCtx, kind Kind, body []byte) bool {
	if p.results != nil || !p.nothingFor(&rc.Request.Header, rc, kind, body) {
		return false
	}
	rewrite, rerank := plainStates(kind)
	setStatus(&rc.Response.Header, rewrite, rerank, cacheBypass)
	return true
}

// nothingFor reports whether a search carries nothing for vlproxy: no experiments, no
// X-VLProxy switch header, nothing for vlproxy in the body (which is not compressed), and no
// reranking by default on its index. Its answer is the upstream's, and serving it can call no
// model. h is the request's header, or Fields of it.
func (p *Pipeline) nothingFor(h resultcache.Headers, rc *fasthttp.RequestCtx, kind Kind, body []byte) bool {
	if !p.exp.Empty() {
		return false
	}
	if len(h.Peek(httphdr.Rewrite)) > 0 || len(h.Peek(httphdr.Rerank)) > 0 || len(h.Peek(httphdr.Variant)) > 0 ||
		len(h.Peek(httphdr.Retrieval)) > 0 || len(h.Peek(fasthttp.HeaderContentEncoding)) > 0 {
		return false
	}
	if searchbody.MaybeIntercepted(body) {
		return false
	}
	return kind == Count || p.rr == nil || !p.rr.EnabledFor(indexOf(pathOrig(rc)))
}

// Status header values of a search with nothing for vlproxy.
var (
	stateSkipped      = []byte("skipped")
	stateOff          = []byte("off")
	stateSkippedCount = []byte("skipped:count")
)

// plainStates are the X-VLProxy-Rewrite and -Rerank values of a search with nothing for vlproxy
// (summarize's, without switches).
func plainStates(kind Kind) (rewrite, rerank []byte) {
	if kind == Count {
		return stateSkipped, stateSkippedCount
	}
	return stateSkipped, stateOff
}

func pathOrig(rc *fasthttp.RequestCtx) []byte {
	p, _ := pathQuery(rc)
	return p
}
