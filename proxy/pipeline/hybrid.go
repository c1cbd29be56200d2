package pipeline

import (
	"bytes"
	"errors"
	"net/url"
	"strings"
	"sync"

	"github.com/tidwall/gjson"

	"github.com/vlproxy/vlproxy/hybrid"
	"github.com/vlproxy/vlproxy/internal/eserr"
	"github.com/vlproxy/vlproxy/internal/esjson"
	"github.com/vlproxy/vlproxy/proxy/searchbody"
)

// A clause in mode vector changes its search's body (the query becomes the kNN query); one in
// mode hybrid runs as two searches of one upstream `_msearch`, fused into one response here,
// before reranking and explain see it.

// hybridPart is the hybrid search of a part.
type hybridPart struct {
	plan       *hybrid.Plan
	lex, vec   []byte
	from, size int
	explain    []hybrid.Explained
}

// prepareVector applies a part's kNN plan to its (rewritten, rerank-widened) body.
func prepareVector(pt *part) error {
	plan := pt.rewrite.Vector
	if plan == nil {
		return nil
	}
	switch plan.Mode {
	case hybrid.ModeVector:
		b, err := plan.VectorBody(pt.body)
		if err != nil {
			return &eserr.Error{Status: 400, Type: "illegal_argument_exception", Reason: err.Error()}
		}
		pt.body = b
	case hybrid.ModeHybrid:
		lex, vec, from, size, err := plan.Sides(pt.body)
		if err != nil {
			return &eserr.Error{Status: 400, Type: "illegal_argument_exception", Reason: err.Error()}
		}
		pt.hy = &hybridPart{plan: plan, lex: lex, vec: vec, from: from, size: size}
	}
	return nil
}

// msearchHeaderParams are the `_search` URL parameters an `_msearch` header line takes;
// msearchURLParams stay on the URL. Any other parameter of a hybrid `_search` is a 400.
var (
	msearchHeaderParams = map[string]bool{"routing": true, "preference": true, "request_cache": true,
		"allow_no_indices": true, "expand_wildcards": true, "ignore_unavailable": true, "ignore_throttled": true,
		"search_type": true, "allow_partial_search_results": true}
	msearchURLParams = map[string]bool{"typed_keys": true, "rest_total_hits_as_int": true,
		"ccs_minimize_roundtrips": true, "max_concurrent_searches": true, "pre_filter_shard_size": true,
		"pretty": true, "human": true, "error_trace": true}
)

// hybridSearch turns a hybrid `_search` into its upstream `_msearch`: the new path, query
// string and body, and the filter_path to apply to the fused response.
func hybridSearch(path []byte, query string, hy *hybridPart) (newPath []byte, newQuery string, body []byte, filterPath string, err error) {
	var header, rest []string
	for _, seg := range strings.Split(query, "&") {
		if seg == "" {
			continue
		}
		k, v, _ := strings.Cut(seg, "=")
		uk, err1 := url.QueryUnescape(k)
		uv, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return nil, "", nil, "", &eserr.Error{Status: 400, Type: "illegal_argument_exception", Reason: "cannot read the URL parameter [" + k + "]"}
		}
		switch {
		case uk == "filter_path":
			filterPath = uv
		case msearchHeaderParams[uk]:
			header = append(header, string(appendJSONString(nil, uk))+":"+string(appendJSONString(nil, uv)))
		case msearchURLParams[uk]:
			rest = append(rest, seg)
		default:
			return nil, "", nil, "", &eserr.Error{Status: 400, Type: "illegal_argument_exception",
				Reason: "request [" + string(path) + "] with a hybrid multimodal clause does not support the URL parameter [" + uk + "]: set it in the body"}
		}
	}
	base, ok := bytes.CutSuffix(bytes.TrimSuffix(path, []byte("/")), []byte("/_search"))
	if !ok {
		return nil, "", nil, "", &eserr.Error{Status: 400, Type: "illegal_argument_exception", Reason: "cannot run a hybrid search on [" + string(path) + "]"}
	}
	newPath = append(append([]byte(nil), base...), "/_msearch"...)
	body = hybrid.AppendMsearch(nil, "", strings.Join(header, ","), hy.lex, hy.vec)
	return newPath, strings.Join(rest, "&"), body, filterPath, nil
}

func appendJSONString(dst []byte, s string) []byte { return esjson.AppendString(dst, s) }

// esErrorItem is e as one `_msearch` answer: {"error":{…},"status":N}.
func esErrorItem(e *eserr.Error) []byte {
	st, typ, reason := e.ESError()
	return eserr.Append(nil, st, typ, reason)
}

var mergers = sync.Pool{New: func() any { return new(hybrid.Merger) }}

// fuse replaces the two answers of a hybrid search by the fused one. resps are the
// `_msearch` responses in upstream order; it returns the answer of the part.
func fuse(pt *part, lexResp, vecResp []byte) ([]byte, error) {
	m := mergers.Get().(*hybrid.Merger)
	defer mergers.Put(m)
	out, ex, err := m.Merge(lexResp, vecResp, pt.hy.plan, pt.hy.from, pt.hy.size, pt.explain)
	var se *hybrid.SideError
	switch {
	case errors.As(err, &se) && se.Side == "lexical":
		return se.Body, nil // as the engine answered the search
	case errors.As(err, &se):
		rc := gjson.GetBytes(se.Body, "error.root_cause.0")
		typ, reason := rc.Get("type").String(), rc.Get("reason").String()
		if typ == "" {
			typ, reason = gjson.GetBytes(se.Body, "error.type").String(), gjson.GetBytes(se.Body, "error.reason").String()
		}
		if typ == "" {
			typ = "search_phase_execution_exception"
		}
		return nil, &eserr.Error{Status: se.Status, Type: typ,
			Reason: "cannot run the kNN search on vector field [" + pt.hy.plan.Field + "]: " + reason}
	case err != nil:
		return nil, &eserr.Error{Status: 502, Type: "bad_gateway_exception", Reason: err.Error()}
	}
	pt.hy.explain = ex
	return out, nil
}

// collapseSearch fuses the upstream `_msearch` answer of a hybrid `_search`.
func collapseSearch(pt *part, body []byte) ([]byte, error) {
	resps, ok := searchbody.SplitResponses(body)
	if !ok || len(resps) != 2 {
		return nil, &eserr.Error{Status: 502, Type: "bad_gateway_exception", Reason: "cannot fuse the hybrid search: the upstream _msearch answer does not hold two responses"}
	}
	return fuse(pt, resps[0], resps[1])
}

// collapseMsearch fuses each hybrid search's two answers of an `_msearch` (expanded by
// expandMsearch), so the response has one answer per client search again. A kNN failure
// becomes that search's error answer.
func collapseMsearch(parts []*part, body []byte) ([]byte, error) {
	resps, ok := searchbody.SplitResponses(body)
	want := 0
	for _, pt := range parts {
		want++
		if pt.hy != nil {
			want++
		}
	}
	if !ok || len(resps) != want {
		return nil, &eserr.Error{Status: 502, Type: "bad_gateway_exception", Reason: "cannot fuse the hybrid searches: the upstream _msearch answer has the wrong number of responses"}
	}
	out := make([][]byte, 0, len(parts))
	j := 0
	for _, pt := range parts {
		if pt.hy == nil {
			out = append(out, resps[j])
			j++
			continue
		}
		b, err := fuse(pt, resps[j], resps[j+1])
		j += 2
		var e *eserr.Error
		if errors.As(err, &e) {
			b = esErrorItem(e)
		} else if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return searchbody.ReplaceResponses(body, out)
}

// expandMsearch gives each hybrid search two items (lexical, kNN) with the same header.
func expandMsearch(parts []*part, items []searchbody.Item) []searchbody.Item {
	out := make([]searchbody.Item, 0, len(items)+1)
	for i, it := range items {
		if parts[i].hy == nil {
			out = append(out, it)
			continue
		}
		out = append(out, searchbody.Item{Header: it.Header, Body: compactLine(parts[i].hy.lex)},
			searchbody.Item{Header: it.Header, Body: compactLine(parts[i].hy.vec)})
	}
	return out
}

func compactLine(b []byte) []byte {
	if !bytes.ContainsAny(b, "\r\n") {
		return b
	}
	return bytes.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, b)
}

func anyHybrid(parts []*part) bool {
	for _, pt := range parts {
		if pt.hy != nil {
			return true
		}
	}
	return false
}
