package pipeline

import (
	"github.com/valyala/fasthttp"
	"github.com/vlproxy/vlproxy/internal/httphdr"

	"github.com/vlproxy/vlproxy/proxy/resultcache"
	"github.com/vlproxy/vlproxy/proxy/searchbody"
)

// Plain reports whether a search request needs nothing from the pipeline, so proxy/ can forward
// it with its bytes unchanged and without the pipeline's copies: no result cache and nothing
// for vlproxy (nothingFor). The caller then sets the status headers such a request gets
// (SetPlainStatus) once the upstream's answer is in the client response.
//
// This is the common case of a proxy deployed for some indices or some clients only, and it is
// the path that the pass-through benchmark measures against nginx.
func (p *Pipeline) Plain(rc *fasthttp.RequestCtx, kind Kind, body []byte) bool {
	return p.results == nil && p.nothingFor(&rc.Request.Header, rc, kind, body)
}

// SetPlainStatus sets the status headers of a search that Plain accepted on h.
func SetPlainStatus(h *fasthttp.ResponseHeader, kind Kind) {
	rewrite, rerank := plainStates(kind)
	setStatus(h, rewrite, rerank, cacheBypass)
}

// nothingFor reports whether a search carries nothing for vlproxy: no experiments, no
// X-VLProxy switch header, nothing for vlproxy in the body (which is not compressed), and no
// reranking by default on its index. Its answer is the upstream's, and serving it can call no
// model. h is the request's header, or Fields of it.
func (p *Pipeline) nothingFor(h resultcache.Headers, rc *fasthttp.RequestCtx, kind Kind, body []byte) bool {
	return p.nothingConfigured(rc, kind) && !carriesSwitch(h) && !searchbody.MaybeIntercepted(body)
}

// nothingConfigured is the part of nothingFor that the configuration decides: no experiment
// runs, and no reranking is on by default for the index.
func (p *Pipeline) nothingConfigured(rc *fasthttp.RequestCtx, kind Kind) bool {
	return p.exp.Empty() && (kind == Count || p.rr == nil || !p.rr.EnabledFor(indexOf(pathOrig(rc))))
}

// switchNames are the request fields that make a search something for vlproxy (or one it
// cannot read: Content-Encoding), and switchKeys the same names as fasthttp stores them.
var (
	switchNames = [...]string{httphdr.Rewrite, httphdr.Rerank, httphdr.Variant, httphdr.Retrieval, fasthttp.HeaderContentEncoding}
	switchKeys  = canonicalKeys(switchNames[:])
)

// carriesSwitch reports whether h has any of switchNames, not empty. A request's own header is
// looked up with the stored form of each name: fasthttp's Peek would normalize the name first,
// into a copy, for every lookup (a fifth of the instructions of a plain search's own work).
func carriesSwitch(h resultcache.Headers) bool {
	if f, ok := h.(*resultcache.Fields); ok {
		return f.CarriesSwitch() // the same names, filed by name as the fields were read
	}
	if rh, ok := h.(*fasthttp.RequestHeader); ok {
		for _, k := range switchKeys {
			if len(rh.PeekCanonical(k)) > 0 {
				return true
			}
		}
		return false
	}
	for _, n := range switchNames {
		if len(h.Peek(n)) > 0 {
			return true
		}
	}
	return false
}

// canonicalKeys returns names as fasthttp stores a parsed request's field names (the server
// normalizes them): each word capitalized, the rest lower case.
func canonicalKeys(names []string) [][]byte {
	keys := make([][]byte, len(names))
	for i, n := range names {
		var h fasthttp.RequestHeader
		h.Set(n, "x")
		for k := range h.All() {
			keys[i] = append([]byte(nil), k...)
		}
	}
	return keys
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
