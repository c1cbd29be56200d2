package resultcache

import (
	"bytes"
	"github.com/vlproxy/vlproxy/internal/httphdr"
	"iter"
	"net/url"
	"strings"
	"time"
	"unsafe"

	"github.com/tidwall/gjson"
)

// keyVersion starts every key; bump it whenever the key layout changes, and whenever
// entryVersion changes (see there): an L2 shared across versions is then not misread.
const keyVersion byte = 3

// Headers gives read access to request headers; *fasthttp.RequestHeader satisfies it.
// Peek returns nil or empty for an absent header.
type Headers interface {
	Peek(name string) []byte
}

// Route is a cacheable endpoint.
type Route uint8

const (
	RouteNone    Route = iota // not cacheable
	RouteSearch               // [/{index}]/_search
	RouteMSearch              // [/{index}]/_msearch
	RouteCount                // [/{index}]/_count
)

// RouteOf classifies a GET or POST request path (without the query string). Only
// _search, _msearch and _count, at the root or under one index expression, are cacheable.
func RouteOf(method, path []byte) Route {
	if string(method) != "GET" && string(method) != "POST" {
		return RouteNone
	}
	_, endpoint, ok := splitSearchPath(path)
	if !ok {
		return RouteNone
	}
	switch string(endpoint) {
	case "_search":
		return RouteSearch
	case "_msearch":
		return RouteMSearch
	case "_count":
		return RouteCount
	}
	return RouteNone
}

// splitSearchPath splits "/{index}/{endpoint}" or "/{endpoint}".
func splitSearchPath(path []byte) (index, endpoint []byte, ok bool) {
	if len(path) < 2 || path[0] != '/' {
		return nil, nil, false
	}
	p := path[1:]
	i := bytes.IndexByte(p, '/')
	if i < 0 {
		return nil, p, true
	}
	index, rest := p[:i], p[i+1:]
	if len(index) == 0 || (index[0] == '_' && string(index) != "_all") || bytes.IndexByte(rest, '/') >= 0 {
		return nil, nil, false
	}
	return index, rest, true
}

// identityHeaders always separate callers: credentials, run-as and impersonation (ES's
// es-security-runas-user, OpenSearch security's opendistro_security_impersonate_as), the
// headers of the security plugin's proxy authentication, and session cookies.
var identityHeaders = []string{"Authorization", "X-Api-Key", "es-security-runas-user",
	"opendistro_security_impersonate_as", "X-Proxy-User", "X-Proxy-Roles", "Cookie"}

// HeaderLister is what Key uses, when Headers also has it, to see every request header: a
// header that looks like credentials but is neither an identity header nor configured
// (Config.IdentityHeaders) makes the request bypass the cache, since callers differing only
// in it would otherwise share responses. *fasthttp.RequestHeader satisfies it.
type HeaderLister interface {
	All() iter.Seq2[[]byte, []byte]
}

// credentialWords mark a header name as possibly carrying who the caller is.
var credentialWords = toBytes("auth", "token", "key", "session", "cookie", "user", "role",
	"secret", "passw", "credential", "impersonat", "runas", "run-as", "jwt", "saml", "principal", "tenant")

// notCredentials are header names that match credentialWords but say nothing of the caller.
var notCredentials = []string{"user-agent", "keep-alive", "idempotency-key"}

func toBytes(s ...string) [][]byte {
	b := make([][]byte, len(s))
	for i := range s {
		b[i] = []byte(s[i])
	}
	return b
}

// LooksLikeCredentials reports whether a header name may carry caller identity.
func LooksLikeCredentials(name []byte) bool {
	var buf [maxNameLen]byte
	lower, ok := lowerName(&buf, name)
	if !ok {
		return true // no legitimate header is this long; treat it with suspicion
	}
	return lowerLooksLikeCredentials(lower)
}

// maxNameLen is the longest header name lowerName handles.
const maxNameLen = 64

// lowerName writes name lower-cased (ASCII) into buf and returns it; false when name is
// longer than buf.
func lowerName(buf *[maxNameLen]byte, name []byte) ([]byte, bool) {
	if len(name) > len(buf) {
		return nil, false
	}
	lower := buf[:len(name)]
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	return lower, true
}

// lowerLooksLikeCredentials is LooksLikeCredentials of a lower-cased name.
func lowerLooksLikeCredentials(lower []byte) bool {
	if commonHeader(lower) {
		return false
	}
	for _, n := range notCredentials {
		if string(lower) == n {
			return false
		}
	}
	return containsAny(lower, credentialWords)
}

// unknownCredentials reports a header that looks like credentials and is in no identity list.
func (k *Keyer) unknownCredentials(h Headers) bool {
	switch l := h.(type) {
	case *Fields:
		return l.unknownCredentials(k)
	case HeaderLister:
		return k.listsUnknownCredentials(l)
	}
	return false
}

// listsUnknownCredentials is apart so that the iterator's state is allocated only for a lister.
//
//go:noinline
func (k *Keyer) listsUnknownCredentials(l HeaderLister) bool {
	for name := range l.All() {
		if k.unknownCredential(name) {
			return true
		}
	}
	return false
}

// unknownCredential reports a header name that looks like credentials and is in no identity list.
func (k *Keyer) unknownCredential(name []byte) bool {
	return LooksLikeCredentials(name) && !isIdentity(name, identityHeaders) && !isIdentity(name, k.cfg.IdentityHeaders)
}

func isIdentity(name []byte, list []string) bool {
	for _, h := range list {
		if equalFold(name, h) {
			return true
		}
	}
	return false
}

// responseHeaders change what the upstream or vlproxy answers for the same request.
var responseHeaders = []string{
	"Accept", "Accept-Encoding", "Content-Type",
	httphdr.Rewrite, httphdr.Rerank, httphdr.Variant, httphdr.Retrieval,
}

// KeyInput is one request as the result cache sees it. All fields are read only during Key.
type KeyInput struct {
	Method []byte
	Path   []byte // without the query string
	Query  []byte // the raw query string, without '?'
	Body   []byte
	Header Headers
	// Variant is the experiment variant chosen for this request ("" when none). It belongs in
	// the key even when no X-VLProxy-Variant header forced it.
	Variant string
}

// Keyer builds result-cache keys and applies invalidation by writes. It is safe for
// concurrent use; create it with New.
type Keyer struct {
	cfg    Config
	gens   generations
	shared Shared // nil: this process's writes only
}

// New returns a Keyer with no topology: until SetTopology is called, a search depends on
// every write unless cfg.AssumeConcrete is set.
func New(cfg Config) *Keyer {
	k := &Keyer{cfg: cfg}
	k.gens.indices = make(map[string]*counter)
	return k
}

// Key appends the cache key of the request to dst and returns it with true, or returns dst
// unchanged and false when the request must bypass the cache: not a GET/POST _search,
// _msearch or _count; a scroll or point-in-time search; request_cache=false (in the query
// string or an _msearch header); or a Cache-Control / Pragma request header with no-cache or
// no-store. Whether the response may be stored is a separate check (CacheableStatus).
//
// Two requests get the same key only when they agree on method, path, query parameters (in
// any order), body (up to JSON whitespace), caller identity, every header that changes the
// response, the variant, and the generations of what they search.
func (k *Keyer) Key(dst []byte, in KeyInput) ([]byte, bool) {
	dst, _, ok := k.KeyAt(dst, in)
	return dst, ok
}

// KeyAt is Key that also returns when the newest write the search depends on passed through
// (zero when none did). A write made without ?refresh becomes searchable only at the
// cluster's next periodic refresh, so a response filled shortly after lastWrite may predate
// it and should not be stored.
func (k *Keyer) KeyAt(dst []byte, in KeyInput) (key []byte, lastWrite time.Time, ok bool) {
	return k.KeyParts(dst, in, nil)
}

// Parts locates, in a key KeyParts made, what came from the request alone: the head (route,
// method, path, query, identity and response-shaping fields, variant) before the generations
// of the indices it reads, and the body after them. KeyAgain rebuilds the same request's key
// from them with the generations as they are then, without reading the request again.
type Parts struct {
	route     Route
	index     string // the path's index expression, decoded
	headEnd   int    // key[:headEnd] is the head
	bodyStart int    // key[bodyStart:] is the body
}

// Clone returns parts that hold none of the request's memory, for keeping past it.
func (p Parts) Clone() Parts {
	p.index = strings.Clone(p.index)
	return p
}

// Reusable reports whether KeyAgain can rebuild the key: not for _msearch, whose indices come
// from its body.
func (p *Parts) Reusable() bool { return p.route == RouteSearch || p.route == RouteCount }

// KeyParts is KeyAt that also fills parts (when not nil) for KeyAgain.
func (k *Keyer) KeyParts(dst []byte, in KeyInput, parts *Parts) (key []byte, lastWrite time.Time, ok bool) {
	route := RouteOf(in.Method, in.Path)
	if route == RouteNone {
		return dst, time.Time{}, false
	}
	// A single body's bypassBody check waits for its compaction, which tells whether it is needed.
	if bypassQuery(in.Query) || (in.Header != nil && (bypassHeaders(in.Header) || k.unknownCredentials(in.Header))) ||
		(route == RouteMSearch && bypassBody(route, in.Body)) {
		return dst, time.Time{}, false
	}
	start := len(dst)
	dst = append(dst, keyVersion, byte(route))
	dst = appendField(dst, in.Method)
	dst = appendField(dst, in.Path)
	dst = appendSortedQuery(dst, in.Query)
	for i := range identityHeaders {
		dst = appendField(dst, lookup(in.Header, slotIdentity+i))
	}
	for _, h := range k.cfg.IdentityHeaders {
		dst = appendField(dst, peek(in.Header, h))
	}
	for i := range responseHeaders {
		dst = appendField(dst, lookup(in.Header, slotResponse+i))
	}
	dst = appendStringField(dst, in.Variant)
	headEnd := len(dst)

	var last int64
	index, _, _ := splitSearchPath(in.Path)
	pathExpr, ok := decodeIndex(index)
	if !ok {
		return dst[:start], time.Time{}, false
	}
	one := [1]string{pathExpr}
	exprs := one[:]
	if route == RouteMSearch {
		exprs = msearchIndices(pathExpr, in.Body)
	}
	dst = k.appendDeps(dst, exprs, &last)
	bodyStart := len(dst)

	if route == RouteMSearch {
		dst = appendNDJSON(dst, in.Body)
	} else {
		var suspect bool
		if dst, suspect = appendBodySuspect(dst, in.Body); suspect && bypassBody(route, in.Body) {
			return dst[:start], time.Time{}, false
		}
	}
	if parts != nil {
		*parts = Parts{route: route, index: pathExpr, headEnd: headEnd - start, bodyStart: bodyStart - start}
	}
	if last > 0 {
		lastWrite = time.Unix(0, last)
	}
	return dst, lastWrite, true
}

// KeyAgain appends the key of the request whose key KeyParts made as key with parts
// (parts.Reusable), with the generations of its indices as they are now, and returns it with
// the time of the newest write it depends on. key is only read.
func (k *Keyer) KeyAgain(dst, key []byte, parts *Parts) ([]byte, time.Time) {
	var last int64
	dst = append(dst, key[:parts.headEnd]...)
	one := [1]string{parts.index}
	dst = k.appendDeps(dst, one[:], &last)
	dst = append(dst, key[parts.bodyStart:]...)
	if last > 0 {
		return dst, time.Unix(0, last)
	}
	return dst, time.Time{}
}

// appendDeps appends what a search over the index expressions exprs depends on: the
// generations of their indices, and the fleet's shared ones when shared.
func (k *Keyer) appendDeps(dst []byte, exprs []string, last *int64) []byte {
	var names *[]string
	var nameBuf []string
	if k.shared != nil {
		nameBuf = make([]string, 0, 4)
		names = &nameBuf
	}
	dst = k.gens.appendGenerations(dst, exprs, k.cfg.AssumeConcrete, last, names)
	if k.shared != nil {
		dst = k.appendShared(dst, nameBuf, last)
	}
	return dst
}

func peek(h Headers, name string) []byte {
	if h == nil {
		return nil
	}
	return h.Peek(name)
}

func bypassQuery(query []byte) bool {
	if _, ok := queryParam(query, "scroll"); ok {
		return true
	}
	v, ok := queryParam(query, "request_cache")
	return ok && string(v) == "false"
}

func bypassHeaders(h Headers) bool {
	return hasNoCache(lookup(h, slotCacheControl)) || hasNoCache(lookup(h, slotPragma))
}

func hasNoCache(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	for tok := range bytes.SplitSeq(v, []byte{','}) {
		tok = bytes.TrimSpace(tok)
		if bytes.EqualFold(tok, []byte("no-cache")) || bytes.EqualFold(tok, []byte("no-store")) {
			return true
		}
	}
	return false
}

// bypassBody reports a point-in-time search, or an _msearch line asking for no request cache.
func bypassBody(route Route, body []byte) bool {
	// Most bodies mention neither key: skip parsing them.
	if !mentionsBypassKeys(body) {
		return false
	}
	if route != RouteMSearch {
		pit, _ := bypassKeys(body)
		return pit
	}
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		if pit, noCache := bypassKeys(line); pit || noCache {
			return true
		}
	}
	return false
}

// bypassKeys reads a JSON object's top-level keys as ES does (escapes decoded, so that
// "p\u0069t" is pit too): whether it has "pit", and "request_cache": false.
func bypassKeys(doc []byte) (pit, noRequestCache bool) {
	gjson.ParseBytes(doc).ForEach(func(k, v gjson.Result) bool {
		switch k.String() {
		case "pit":
			pit = true
		case "request_cache":
			noRequestCache = noRequestCache || v.Type == gjson.False
		}
		return true
	})
	return pit, noRequestCache
}

// mentionsBypassKeys is bypassBody's quick check: whether the bytes name either key at all.
// A key spelt with escapes counts as a mention.
func mentionsBypassKeys(body []byte) bool {
	return len(body) > 0 && (bytes.Contains(body, []byte(`"pit"`)) || bytes.Contains(body, []byte(`"request_cache"`)) ||
		bytes.IndexByte(body, '\\') >= 0)
}

// msearchIndices returns the index expressions an _msearch reads: each header's own "index"
// (a header without one reads the path's). An empty expression stands for all indices.
func msearchIndices(pathExpr string, body []byte) (exprs []string) {
	// Headers and bodies alternate; a blank header line stands for "{}".
	header := true
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		if !header {
			header = true
			continue
		}
		header = false
		if len(bytes.TrimSpace(line)) == 0 && len(body) == 0 {
			break // trailing blank line
		}
		v := gjson.GetBytes(line, "index")
		switch {
		case !v.Exists():
			exprs = append(exprs, pathExpr)
		case v.IsArray():
			var names []string
			for _, x := range v.Array() {
				names = append(names, x.String())
			}
			exprs = append(exprs, strings.Join(names, ","))
		default:
			exprs = append(exprs, v.String())
		}
	}
	if len(exprs) == 0 {
		exprs = append(exprs, pathExpr)
	}
	return exprs
}

// decodeIndex percent-decodes an index expression from a path ("logs%2A" is "logs*").
//
// Without escapes the result shares memory with index (no copy on the lookup path): it is
// only used while Key runs, for map lookups, and the request is not modified meanwhile.
func decodeIndex(index []byte) (string, bool) {
	if bytes.IndexByte(index, '%') < 0 {
		return unsafe.String(unsafe.SliceData(index), len(index)), true
	}
	s, err := url.PathUnescape(string(index))
	return s, err == nil
}

// CacheableStatus reports whether a response with this status may be stored: 2xx only.
func CacheableStatus(status int) bool {
	return status >= 200 && status < 300
}
