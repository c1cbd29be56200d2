package proxy

import "bytes"

// routeClass groups ES endpoints for metrics and for the choice of handler.
type routeClass uint8

const (
	classOther routeClass = iota
	classSearch
	classMsearch
	classCount
	classBulk
	classDocWrite
	classIndexAdmin
	classAdmin // /_vlproxy/* and the metrics path: answered by the proxy itself
	numClasses
)

var classNames = [numClasses]string{"other", "search", "msearch", "count", "bulk", "doc-write", "index-admin", "vlproxy-admin"}

func (c routeClass) String() string { return classNames[c] }

// route is what the proxy needs to know about a request's endpoint.
type route struct {
	class routeClass
	// retryable: a failure after the request was sent may be retried on another node. True only for
	// idempotent reads: GET/HEAD (except scroll, which advances a cursor) and POST _search, _count,
	// _msearch and _mget. Dial errors are retried for every request regardless.
	retryable bool
}

// indexAdminEndpoints change index metadata when used with a write method.
var indexAdminEndpoints = []string{
	"_mapping", "_mappings", "_settings", "_alias", "_aliases", "_refresh", "_flush", "_forcemerge",
	"_open", "_close", "_rollover", "_shrink", "_split", "_clone", "_index_template", "_template",
	"_component_template", "_data_stream", "_cache",
}

// classify decides a request's route from its method and raw request URI (path and query, undecoded).
// It is the only place that knows ES endpoint names. ES index names cannot start with '_', so the first
// path segment that does is the endpoint, and the one after it (if it also starts with '_') refines it.
func classifyRoute(method, uri []byte, metricsPath string) route {
	path := uri
	if i := bytes.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if bytes.HasPrefix(path, []byte("/_vlproxy/")) || string(path) == "/_vlproxy" ||
		(metricsPath != "" && string(path) == metricsPath && string(method) == "GET") {
		return route{class: classAdmin}
	}
	read := string(method) == "GET" || string(method) == "HEAD"

	var endpoint, sub []byte
	segments := 0
	rest := path
	for len(rest) > 0 {
		if rest[0] == '/' {
			rest = rest[1:]
			continue
		}
		seg := rest
		if i := bytes.IndexByte(rest, '/'); i >= 0 {
			seg, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		segments++
		if endpoint != nil {
			sub = seg
			break
		}
		if seg[0] == '_' && !(segments == 1 && string(seg) == "_all") { // /_all/_search names every index
			endpoint = seg
		}
	}

	switch string(endpoint) {
	case "_search":
		if string(sub) == "template" {
			// A search template: an idempotent read the pipeline does not understand (its body is
			// a template, not a query), so it passes through.
			return route{class: classOther, retryable: read || string(method) == "POST"}
		}
		if len(sub) > 0 {
			// scroll advances a cursor; point_in_time creates state: neither may be repeated.
			return route{class: classOther}
		}
		return route{class: classSearch, retryable: read || string(method) == "POST"}
	case "_msearch":
		if len(sub) > 0 { // _msearch/template
			return route{class: classOther, retryable: read || string(method) == "POST"}
		}
		return route{class: classMsearch, retryable: read || string(method) == "POST"}
	case "_count":
		return route{class: classCount, retryable: read || string(method) == "POST"}
	case "_mget":
		return route{class: classOther, retryable: read || string(method) == "POST"}
	case "_bulk":
		return route{class: classBulk}
	case "_doc", "_create", "_update", "_update_by_query", "_delete_by_query":
		if read {
			return route{class: classOther, retryable: true}
		}
		return route{class: classDocWrite}
	case "":
		// "/" or "/index": index creation and deletion are admin writes.
		if !read && segments == 1 {
			return route{class: classIndexAdmin}
		}
		return route{class: classOther, retryable: read}
	}
	if !read {
		for _, e := range indexAdminEndpoints {
			if string(endpoint) == e {
				return route{class: classIndexAdmin}
			}
		}
	}
	return route{class: classOther, retryable: read}
}
