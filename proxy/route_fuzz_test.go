package proxy

import (
	"net/url"
	"strings"
	"testing"

	"github.com/vlproxy/vlproxy/proxy/resultcache"
)

// FuzzRouteProperties checks properties of route classification that hold for any method and
// URI, beyond not panicking:
//   - the query string never changes the route;
//   - an extra slash between segments never changes it (outside the /_vlproxy prefix);
//   - only GET, HEAD and POST are ever retried, a write class never is, and a retried POST
//     names a read endpoint (_search, _msearch, _count, _mget) and no scroll/point in time;
//   - a request that may be sent twice never counts as a write for the result cache
//     (resultcache.Writes), so retries and invalidation agree on what is safe (this found
//     reads under index patterns and typed paths counted as writes, which flushed the cache);
//   - the search classes are given only to paths whose endpoint segment is that endpoint.
func FuzzRouteProperties(f *testing.F) {
	for _, s := range []string{
		"/idx/_search", "/_search/scroll", "/idx/_doc/a%2Fb?x=1", "//", "/_vlproxy/", "?", "/_", "/a/_bulk/_b/c",
		"/_all/_search", "/a,b/_msearch/template", "/idx/_count?q=x", "/_mget", "/idx/type/_search",
		"/_search/point_in_time", "/idx", "/_cat/indices", "/idx/_update/1", "/_search/template",
		"/%5Fsearch/scroll", "/idx//_search", "/metrics",
	} {
		for _, m := range []string{"GET", "POST", "PUT", "DELETE", "HEAD"} {
			f.Add(m, s, "a=b")
		}
	}
	f.Fuzz(func(t *testing.T, method, uri, query string) {
		if strings.ContainsAny(method, " \r\n") {
			return // not a method a server would pass on
		}
		r := classifyRoute([]byte(method), []byte(uri), "/metrics")
		if r.class >= numClasses {
			t.Fatalf("%s %s: class %d", method, uri, r.class)
		}
		path, _, hasQuery := strings.Cut(uri, "?")

		if !hasQuery {
			if q := classifyRoute([]byte(method), []byte(uri+"?"+query), "/metrics"); q != r {
				t.Fatalf("%s %s: query %q changed the route from %+v to %+v", method, uri, query, r, q)
			}
		}
		if i := strings.IndexByte(path, '/'); i >= 0 && r.class != classAdmin && !strings.Contains(path, "_vlproxy") {
			doubled := path[:i] + "/" + path[i:]
			if d := classifyRoute([]byte(method), []byte(doubled), "/metrics"); d != r && !(doubled == "//metrics") {
				t.Fatalf("%s %s: an extra slash (%s) changed the route from %+v to %+v", method, path, doubled, r, d)
			}
		}

		if r.retryable {
			switch r.class {
			case classBulk, classDocWrite, classIndexAdmin, classAdmin:
				t.Fatalf("%s %s: class %s is retryable", method, uri, r.class)
			}
			switch method {
			case "GET", "HEAD":
			case "POST":
				ep, sub := endpointOf(path)
				switch ep {
				case "_search", "_msearch", "_count", "_mget":
				default:
					t.Fatalf("POST %s is retried but endpoint %q is not a read", uri, ep)
				}
				if sub == "scroll" || sub == "point_in_time" {
					t.Fatalf("POST %s is retried: it moves a cursor or creates state", uri)
				}
			default:
				t.Fatalf("%s %s is retried", method, uri)
			}
			// (A path with a broken %-escape is everything to the cache, on purpose: ES refuses it.)
			if _, err := url.PathUnescape(path); err != nil {
				return
			}
			if w := resultcache.Writes([]byte(method), []byte(path), nil, nil); w.IsWrite() {
				t.Fatalf("%s %s is retried, but the result cache counts it as a write: %+v", method, uri, w)
			}
		}
		want := map[routeClass]string{classSearch: "_search", classMsearch: "_msearch", classCount: "_count", classBulk: "_bulk"}
		if ep, ok := want[r.class]; ok {
			if got, _ := endpointOf(path); got != ep {
				t.Fatalf("%s %s: class %s for endpoint %q", method, uri, r.class, got)
			}
		}
	})
}

// endpointOf is the first path segment starting with '_' (except a leading _all) and the
// segment after it, read the simple way: split on '/', drop empty segments.
func endpointOf(path string) (endpoint, sub string) {
	var segs []string
	for _, s := range strings.Split(path, "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	for i, s := range segs {
		if s[0] == '_' && !(i == 0 && s == "_all") {
			if i+1 < len(segs) {
				sub = segs[i+1]
			}
			return s, sub
		}
	}
	return "", ""
}
