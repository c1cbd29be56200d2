package resultcache

import (
	"bytes"
	"strings"
	"testing"
)

// hdr is a header set for tests; names match case-insensitively, like fasthttp.
type hdr map[string]string

func (h hdr) Peek(name string) []byte {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return []byte(v)
		}
	}
	return nil
}

// req builds a KeyInput from "METHOD /path?query", a body and headers.
func req(line, body string, h hdr) KeyInput {
	method, target, _ := strings.Cut(line, " ")
	path, query, _ := strings.Cut(target, "?")
	return KeyInput{Method: []byte(method), Path: []byte(path), Query: []byte(query), Body: []byte(body), Header: h}
}

func mustKey(t *testing.T, k *Keyer, in KeyInput) []byte {
	t.Helper()
	key, ok := k.Key(nil, in)
	if !ok {
		t.Fatalf("Key(%s %s?%s) bypassed", in.Method, in.Path, in.Query)
	}
	return key
}

func TestRouteOf(t *testing.T) {
	f := func(method, path string, want Route) {
		t.Helper()
		if got := RouteOf([]byte(method), []byte(path)); got != want {
			t.Fatalf("RouteOf(%s %s) = %d; want %d", method, path, got, want)
		}
	}
	f("GET", "/_search", RouteSearch)
	f("POST", "/products/_search", RouteSearch)
	f("POST", "/a,b/_search", RouteSearch)
	f("POST", "/_all/_search", RouteSearch)
	f("POST", "/_msearch", RouteMSearch)
	f("GET", "/products/_msearch", RouteMSearch)
	f("POST", "/_count", RouteCount)
	f("GET", "/products/_count", RouteCount)
	f("PUT", "/products/_search", RouteNone)
	f("DELETE", "/_search", RouteNone)
	f("POST", "/_search/scroll", RouteNone)
	f("POST", "/products/_search/template", RouteNone)
	f("POST", "/_search/point_in_time", RouteNone)
	f("POST", "/products/type/_search", RouteNone)
	f("POST", "/products/_doc", RouteNone)
	f("POST", "/_cat/_search", RouteNone)
	f("GET", "/", RouteNone)
	f("GET", "", RouteNone)
	f("GET", "//_search", RouteNone)
}

func TestKeyBypass(t *testing.T) {
	k := New(DefaultConfig())
	f := func(line, body string, h hdr, wantBypass bool) {
		t.Helper()
		in := req(line, body, h)
		dst := []byte("prefix")
		key, ok := k.Key(dst, in)
		if ok == wantBypass {
			t.Fatalf("Key(%s) cacheable = %v; want %v", line, ok, !wantBypass)
		}
		if !bytes.HasPrefix(key, []byte("prefix")) || (!ok && len(key) != len("prefix")) {
			t.Fatalf("Key(%s) did not append to dst correctly: %q", line, key)
		}
	}
	f("POST /products/_search", `{"query":{"match_all":{}}}`, nil, false)
	f("GET /products/_search?q=shirt", "", nil, false)
	f("POST /products/_search?scroll=1m", `{}`, nil, true)
	f("POST /products/_search?size=10&scroll", `{}`, nil, true)
	f("POST /_search/scroll", `{"scroll_id":"x"}`, nil, true)
	f("POST /_search", `{"pit":{"id":"abc","keep_alive":"1m"},"size":10}`, nil, true)
	f("POST /_search", `{"query":{"term":{"pit":"x"}}}`, nil, false) // a field called pit is not a point in time
	f("POST /_search", `{"p\u0069t":{"id":"abc"}}`, nil, true)       // ES reads the escaped key as pit
	f("POST /_search", `{"pit" :{"id":"abc"}}`, nil, true)
	f("POST /_search", `pit: {id: abc}`, nil, false) // not JSON: keyed by its bytes, never parsed
	f("POST /products/_search?request_cache=false", `{}`, nil, true)
	f("POST /products/_search?request_cache=true", `{}`, nil, false)
	f("POST /products/_search", `{}`, hdr{"Cache-Control": "no-cache"}, true)
	f("POST /products/_search", `{}`, hdr{"cache-control": "max-age=0, No-Store"}, true)
	f("POST /products/_search", `{}`, hdr{"Cache-Control": "max-age=60"}, false)
	f("POST /products/_search", `{}`, hdr{"Pragma": "no-cache"}, true)
	f("POST /_msearch", "{}\n{\"pit\":{\"id\":\"x\"}}\n", nil, true)
	f("POST /_msearch", "{\"index\":\"a\",\"request_cache\":false}\n{}\n", nil, true)
	f("POST /_msearch", "{\"index\":\"a\",\"request_cache\":true}\n{}\n", nil, false)
	f("PUT /products/_doc/1", `{}`, nil, true)
	f("POST /products/%ZZ/_search", `{}`, nil, true)
	f("POST /prod%ZZ/_search", `{}`, nil, true)
}

func TestCacheableStatus(t *testing.T) {
	f := func(status int, want bool) {
		t.Helper()
		if CacheableStatus(status) != want {
			t.Fatalf("CacheableStatus(%d) = %v", status, !want)
		}
	}
	f(200, true)
	f(201, true)
	f(299, true)
	f(199, false)
	f(304, false)
	f(400, false)
	f(404, false)
	f(429, false)
	f(500, false)
	f(503, false)
}

func TestKeyEquality(t *testing.T) {
	k := New(Config{IdentityHeaders: []string{"X-Forwarded-User"}})
	f := func(a, b KeyInput, wantEqual bool) {
		t.Helper()
		ka, kb := mustKey(t, k, a), mustKey(t, k, b)
		if bytes.Equal(ka, kb) != wantEqual {
			t.Fatalf("keys equal = %v; want %v\n a: %s %s?%s %q %v %q\n b: %s %s?%s %q %v %q",
				!wantEqual, wantEqual, a.Method, a.Path, a.Query, a.Body, a.Header, a.Variant,
				b.Method, b.Path, b.Query, b.Body, b.Header, b.Variant)
		}
	}
	same := func(a, b KeyInput) { t.Helper(); f(a, b, true) }
	diff := func(a, b KeyInput) { t.Helper(); f(a, b, false) }
	body := `{"query":{"bool":{"must":[{"match":{"title":"blue shirt"}}],"filter":[{"term":{"color":"navy"}}]}},"size":10}`
	pretty := "{\n  \"query\" : {\n\t\"bool\": { \"must\" : [ { \"match\": {\"title\" : \"blue shirt\"} } ],\r\n \"filter\":[{\"term\":{\"color\":\"navy\"}}] } },\n  \"size\": 10\n}\n"
	search := func(body string) KeyInput { return req("POST /products/_search", body, nil) }

	// Whitespace outside strings does not matter; inside strings it does.
	same(search(body), search(pretty))
	diff(search(`{"match":{"title":"blue shirt"}}`), search(`{"match":{"title":"blue  shirt"}}`))
	diff(search(`{"match":{"title":"a\" b"}}`), search(`{"match":{"title":"a\"b"}}`))
	// Key order, array order, numbers and escapes are kept as sent.
	diff(search(`{"from":0,"size":10}`), search(`{"size":10,"from":0}`))
	diff(search(`{"sort":["a","b"]}`), search(`{"sort":["b","a"]}`))
	diff(search(`{"size":10}`), search(`{"size":10.0}`))
	diff(search(`{"q":"A"}`), search(`{"q":"\u0041"}`))
	diff(search(`{"size":10}`), search(`{"size":11}`))
	diff(search(``), search(`{}`))
	// Non-JSON bodies are compared byte for byte and never equal a JSON body.
	same(search("size: 10\n"), search("size: 10\n"))
	diff(search("size: 10\n"), search("size:  10\n"))
	diff(search(`{"a":1} x`), search(`{"a":1}x`))

	// Query parameters in any order; repeated names keep their order.
	same(req("GET /products/_search?q=shirt&size=10&from=0", "", nil), req("GET /products/_search?from=0&q=shirt&size=10", "", nil))
	same(req("GET /products/_search?q=shirt&&size=10", "", nil), req("GET /products/_search?size=10&q=shirt", "", nil))
	diff(req("GET /products/_search?q=shirt", "", nil), req("GET /products/_search?q=shirts", "", nil))
	diff(req("GET /products/_search?a=1&a=2", "", nil), req("GET /products/_search?a=2&a=1", "", nil))
	diff(req("GET /products/_search?a=1&b", "", nil), req("GET /products/_search?a=1b", "", nil))
	diff(req("GET /products/_search?filter_path=hits", "", nil), req("GET /products/_search", "", nil))

	// Method, path and route.
	diff(req("GET /products/_search", `{}`, nil), req("POST /products/_search", `{}`, nil))
	diff(req("POST /products/_search", `{}`, nil), req("POST /products/_count", `{}`, nil))
	diff(req("POST /products/_search", `{}`, nil), req("POST /product/_search", `{}`, nil))
	diff(req("POST /a,b/_search", `{}`, nil), req("POST /b,a/_search", `{}`, nil))

	// Caller identity.
	diff(req("POST /p/_search", body, hdr{"Authorization": "Basic YWxpY2U6cHc="}), req("POST /p/_search", body, hdr{"Authorization": "Basic Ym9iOnB3"}))
	diff(req("POST /p/_search", body, hdr{"Authorization": "ApiKey a"}), req("POST /p/_search", body, nil))
	diff(req("POST /p/_search", body, hdr{"X-Api-Key": "a"}), req("POST /p/_search", body, hdr{"X-Api-Key": "b"}))
	diff(req("POST /p/_search", body, hdr{"es-security-runas-user": "a"}), req("POST /p/_search", body, nil))
	diff(req("POST /p/_search", body, hdr{"X-Forwarded-User": "alice"}), req("POST /p/_search", body, hdr{"X-Forwarded-User": "bob"}))
	same(req("POST /p/_search", body, hdr{"X-Opaque-Id": "1", "User-Agent": "a"}), req("POST /p/_search", body, hdr{"X-Opaque-Id": "2", "User-Agent": "b"}))
	// Header values cannot slide into each other.
	diff(req("POST /p/_search", body, hdr{"Authorization": "ab", "X-Api-Key": ""}), req("POST /p/_search", body, hdr{"Authorization": "a", "X-Api-Key": "b"}))

	// Switches and response format.
	diff(req("POST /p/_search", body, hdr{"X-VLProxy-Rewrite": "on"}), req("POST /p/_search", body, hdr{"X-VLProxy-Rewrite": "off"}))
	diff(req("POST /p/_search", body, hdr{"X-VLProxy-Rerank": "shadow"}), req("POST /p/_search", body, nil))
	diff(req("POST /p/_search", body, hdr{"X-VLProxy-Variant": "b"}), req("POST /p/_search", body, nil))
	diff(req("POST /p/_search", body, hdr{"Accept": "application/yaml"}), req("POST /p/_search", body, nil))
	diff(req("POST /p/_search", body, hdr{"Accept-Encoding": "gzip"}), req("POST /p/_search", body, nil))
	diff(req("POST /p/_search", body, hdr{"Content-Type": "application/cbor"}), req("POST /p/_search", body, hdr{"Content-Type": "application/json"}))
	va, vb := req("POST /p/_search", body, nil), req("POST /p/_search", body, nil)
	va.Variant, vb.Variant = "control", "treatment"
	diff(va, vb)

	// _msearch: each line normalized, lines kept apart and in order.
	ms := func(body string) KeyInput { return req("POST /_msearch", body, nil) }
	same(ms("{\"index\":\"a\"}\n{\"size\":1}\n"), ms("{ \"index\" : \"a\" }\r\n{ \"size\": 1}\t\r\n"))
	diff(ms("{\"index\":\"a\"}\n{\"size\":1}\n{\"index\":\"b\"}\n{\"size\":2}\n"), ms("{\"index\":\"b\"}\n{\"size\":2}\n{\"index\":\"a\"}\n{\"size\":1}\n"))
	diff(ms("{}\n{}\n"), ms("{}{}\n\n"))
	diff(ms("\n{}\n"), ms("{}\n"))
}

// KeyAgain must give what KeyParts gives for the same request, with the generations of the
// moment: unchanged until a write, then the key a fresh KeyAt makes.
func TestKeyAgain(t *testing.T) {
	k := New(DefaultConfig())
	k.SetTopology(k.TopologyVersion(), NewTopology([]string{"products", "other"}, nil))
	inputs := []KeyInput{
		req("POST /products/_search?size=10&from=5", `{ "query": {"match": {"title": "navy shirt"}} }`, hdr{"Authorization": "Basic YQ=="}),
		req("GET /products/_count", "", nil),
		req("POST /_search", `not json`, nil),
	}
	for _, in := range inputs {
		var parts Parts
		key, _, ok := k.KeyParts(nil, in, &parts)
		if !ok || !parts.Reusable() {
			t.Fatalf("%s %s: KeyParts ok %v, reusable %v", in.Method, in.Path, ok, parts.Reusable())
		}
		if again, _ := k.KeyAgain([]byte("x"), key, &parts); string(again) != "x"+string(key) {
			t.Fatalf("%s %s: KeyAgain = %q; want %q", in.Method, in.Path, again, key)
		}
	}
	var parts Parts
	in := inputs[0]
	before, _, _ := k.KeyParts(nil, in, &parts)
	k.Invalidate(Writes([]byte("POST"), []byte("/other/_doc"), nil, []byte(`{}`)))
	if again, _ := k.KeyAgain(nil, before, &parts); !bytes.Equal(again, before) {
		t.Fatal("a write to another index changed the key")
	}
	k.Invalidate(Writes([]byte("POST"), []byte("/products/_doc"), []byte("refresh=true"), []byte(`{}`)))
	fresh, _, _ := k.KeyAt(nil, in)
	again, _ := k.KeyAgain(nil, before, &parts)
	if bytes.Equal(fresh, before) || !bytes.Equal(again, fresh) {
		t.Fatalf("after a write to products: KeyAgain %q, KeyAt %q, before %q", again, fresh, before)
	}
	if _, _, ok := k.KeyParts(nil, req("POST /_msearch", "{}\n{}\n", nil), &parts); !ok || parts.Reusable() {
		t.Fatal("an _msearch key is reusable: its indices come from its body")
	}
}
