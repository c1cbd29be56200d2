// Package resultcache decides which search responses the proxy may cache, under what key, and
// when writes passing through the proxy make them unreachable. It holds no responses itself:
// the proxy stores AppendEntry-encoded responses in a cache.Cache under the keys built here.
//
// # What is cached
//
// GET and POST `_search`, `_msearch` and `_count`, at the root or under one index expression,
// with a 2xx response (CacheableStatus). Never: scroll (`scroll=` in the query), point in
// time (`pit` in a body or any _msearch line), `request_cache=false` (query or _msearch
// header), a request with `Cache-Control` or `Pragma` saying no-cache or no-store.
//
// # The key
//
// A version byte, then method, path, query parameters sorted by name (parameters with the
// same name keep their order), the caller's identity (Authorization, X-Api-Key,
// es-security-runas-user, opendistro_security_impersonate_as, X-Proxy-User, X-Proxy-Roles,
// Cookie and Config.IdentityHeaders: one caller's response is never served to another; any
// other header that looks like credentials makes the request bypass the cache), the headers that change the response (Accept, Accept-Encoding, Content-Type,
// X-VLProxy-Rewrite, X-VLProxy-Rerank, X-VLProxy-Variant), the experiment variant, the
// generations described below, and the body: valid JSON without insignificant whitespace
// (nothing else changes: key order, array order, escapes and numbers stay as sent), other
// bodies byte for byte; for _msearch each line on its own. Every field is length-prefixed.
//
// # Invalidation rule
//
// Every write that passes through the proxy (Writes classifies it; the proxy calls
// Invalidate after the upstream has answered) bumps counters, and keys contain the counters
// their search depends on, so old entries stop matching at once and age out of the LRU.
// Bumping is O(1) per index named.
//
//   - Each concrete index has a generation. A search whose index expressions all resolve to
//     known concrete indices (or aliases of known concrete indices) has the generations of
//     exactly those indices in its key: writes to other indices leave it cached.
//   - A search that names no index, `_all`, a pattern (`*`, `?`, `-excluded`, date math
//     `<…>`, `remote:index`) or a name the proxy cannot resolve has the "any write" generation
//     in its key instead: every write invalidates it.
//   - Every key has the epoch, which writes of unknown reach bump: writes to patterns or
//     unresolvable names, `_refresh` or `_update_by_query` of all indices, alias changes,
//     rollover, `_reindex` with a script or a dest pipeline, requests with an ingest
//     `pipeline` (it may reroute documents), and any write this package does not recognise.
//
// Whether a name is a concrete index or an alias cannot be told from the name. By default an
// unknown name counts as "may be an alias", so every write invalidates every search until the
// proxy installs a Topology (SetTopology with ParseAliases of `GET /_alias`, fetched at start
// and periodically). Index creation and deletion and alias changes through the proxy drop the
// topology until the next fetch. Config.AssumeConcrete treats unknown plain names as concrete
// indices, for clusters without aliases or data streams.
//
// A write counts only once the upstream has answered it: a document indexed with
// `refresh=true|wait_for`, or followed by `_refresh` through the proxy, is visible to the very
// next identical search through the proxy.
//
// # What only the TTL bounds
//
//   - Writes that bypass the proxy (another client, a different proxy instance, ILM, a
//     default ingest pipeline that reroutes), and alias changes made elsewhere until the
//     next topology fetch.
//   - Writes without refresh: they become visible at the cluster's next periodic refresh, and
//     a result cached between the write and that refresh stays until the TTL.
//   - Background tasks (`wait_for_completion=false` on _update_by_query, _delete_by_query,
//     _reindex): the proxy invalidates when the task is accepted, not when it finishes.
//   - Results that depend on time (`now` in a range query) or randomness (`random_score`
//     without a seed), and a credential revoked after its response was cached.
package resultcache
