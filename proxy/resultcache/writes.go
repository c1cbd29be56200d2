package resultcache

import (
	"net/url"
	"strings"

	"github.com/tidwall/gjson"
)

// Write is what a request may change, as far as cached search results are concerned.
type Write struct {
	// Indices are the names (concrete indices or aliases, as the request spelled them) that
	// the request writes to.
	Indices []string
	// All means the request may change any index, or names its targets by pattern.
	All bool
	// Topology means the request may change which names are indices or aliases (index
	// creation or deletion, alias changes, rollover, unknown admin calls).
	Topology bool
	// Visible means searches see the change as soon as the upstream has answered: the request
	// asked for ?refresh (true, wait_for or empty), is a _refresh, creates or deletes an index,
	// or changes aliases. Other writes become searchable at the cluster's next periodic refresh.
	Visible bool
}

// IsWrite reports whether the request may change search results.
func (w Write) IsWrite() bool { return w.All || w.Topology || len(w.Indices) > 0 }

// Invalidate applies a write that passed through the proxy. Call it after the upstream has
// answered the write, whatever the status (a failed _bulk may have applied part of its
// items): searches that started before then may have read the old data, and bumping after
// the write guarantees their results are stored under keys no later search computes.
func (k *Keyer) Invalidate(w Write) {
	names, visible := k.gens.invalidate(w, k.cfg.AssumeConcrete)
	if k.shared != nil && len(names) > 0 {
		k.bumpShared(names, visible)
	}
}

// InvalidateAll makes every cached result unreachable in O(1).
func (k *Keyer) InvalidateAll() {
	k.Invalidate(Write{All: true})
}

// TopologyVersion returns a token to pass to SetTopology. Take it before fetching `_alias`.
func (k *Keyer) TopologyVersion() uint64 { return k.gens.topoVersion.Load() }

// SetTopology installs the index/alias topology fetched after TopologyVersion returned
// version. It returns false, and installs nothing, when a write that changes the topology
// passed through in the meantime (the fetched topology may predate it); fetch again then.
func (k *Keyer) SetTopology(version uint64, t *Topology) bool {
	k.gens.mu.Lock() // serializes with other SetTopology calls
	defer k.gens.mu.Unlock()
	if k.gens.topoVersion.Load() != version {
		return false
	}
	k.gens.topo.Store(t)
	return true
}

// readEndpoints never change search results, whatever the method (POST _search, DELETE of a
// scroll or point in time, cache clearing…).
var readEndpoints = map[string]bool{
	"_search": true, "_msearch": true, "_count": true, "_mget": true, "_explain": true,
	"_termvectors": true, "_mtermvectors": true, "_field_caps": true, "_validate": true,
	"_analyze": true, "_render": true, "_rank_eval": true, "_pit": true, "_terms_enum": true,
	"_knn_search": true, "_eql": true, "_async_search": true, "_sql": true, "_cache": true,
	"_flush": true, "_forcemerge": true, "_stats": true, "_vlproxy": true,
}

// indexWriteEndpoints change the documents or the searchability of the indices in the path.
var indexWriteEndpoints = map[string]bool{
	"_doc": true, "_create": true, "_update": true, "_update_by_query": true,
	"_delete_by_query": true, "_refresh": true, "_close": true, "_open": true,
	"_freeze": true, "_unfreeze": true, "_mapping": true, "_mappings": true, "_settings": true,
	"_block": true,
}

// topologyEndpoints under an index create or re-point names.
var topologyEndpoints = map[string]bool{
	"_alias": true, "_aliases": true, "_rollover": true, "_clone": true, "_split": true,
	"_shrink": true,
}

// Writes returns what a request that passes through may change. GET, HEAD and read
// endpoints change nothing; document writes, _bulk (every `_index` of its action lines, the
// path's index for the others), _update_by_query, _delete_by_query, _refresh, index
// close/open/mapping/settings touch the indices they name; index creation and deletion also
// change the topology; alias changes, rollover, _reindex with a script or without a dest
// index, ingest pipelines (which may reroute documents) and every request this function does
// not recognise touch everything.
func Writes(method, path, query, body []byte) Write {
	return visible(writes(method, path, query, body), path, query)
}

// StreamedWrites is Writes for a request whose body streamed through without being kept: a
// _bulk scanned on its way (bulk, from NewBulkScanner) touches what its action lines name, an
// unscanned one (compressed, say) everything; other writes are known by their path (a _reindex
// without its body touches everything).
func StreamedWrites(method, path, query []byte, bulk *BulkScanner) Write {
	w := writes(method, path, query, nil)
	switch {
	case !w.IsWrite() && !IsBulkPath(path):
	case bulk != nil:
		w = bulk.Result()
	case IsBulkPath(path):
		w = Write{All: true}
	}
	return visible(w, path, query)
}

// visible sets w.Visible: whether the write is searchable once the node has answered it.
func visible(w Write, path, query []byte) Write {
	if !w.IsWrite() {
		return w
	}
	if v, ok := queryParam(query, "refresh"); ok && (len(v) == 0 || string(v) == "true" || string(v) == "wait_for") {
		w.Visible = true
		return w
	}
	if segs, ok := splitPath(path); ok && len(segs) > 0 {
		last := segs[len(segs)-1]
		w.Visible = last == "_refresh" || last == "_aliases" || last == "_alias" ||
			(len(segs) == 1 && !strings.HasPrefix(segs[0], "_")) // PUT or DELETE /index
	}
	return w
}

func writes(method, path, query, body []byte) Write {
	switch string(method) {
	case "GET", "HEAD", "OPTIONS":
		return Write{}
	}
	segs, ok := splitPath(path)
	if !ok {
		return Write{All: true, Topology: true}
	}
	if len(segs) == 0 {
		return Write{All: true, Topology: true}
	}
	first := segs[0]
	if strings.HasPrefix(first, "_") && first != "_all" {
		return clusterWrite(method, segs, query, body)
	}
	// An index expression first. A read endpoint under it changes nothing, whatever the
	// expression: `POST /logs-*/_field_caps` must not count as a write to every index. The
	// endpoint is the first segment starting with '_', as in proxy's route classification
	// (`/index/type/_search` of ES 7 mapping types is a search).
	for _, s := range segs[1:] {
		if strings.HasPrefix(s, "_") {
			if readEndpoints[s] {
				return Write{}
			}
			break
		}
	}
	var indices []string
	for name := range strings.SplitSeq(first, ",") {
		indices = append(indices, name)
	}
	for _, name := range indices {
		if isPattern(name) {
			w := Write{All: true}
			if len(segs) == 1 {
				w.Topology = true // DELETE /logs-*
			}
			return w
		}
	}
	if len(segs) == 1 {
		// PUT /index creates, DELETE /index deletes: names change meaning.
		return Write{Indices: indices, Topology: true}
	}
	for _, s := range segs[1:] {
		if s == "_bulk" {
			return bulkWrite(first, query, body)
		}
	}
	endpoint := segs[1]
	if topologyEndpoints[endpoint] {
		return Write{All: true, Topology: true}
	}
	if _, ok := queryParam(query, "pipeline"); ok {
		return Write{All: true}
	}
	// Known index writes, mapping-type paths of older clusters (/index/type/id) and unknown
	// endpoints under an index all touch the path's indices.
	return Write{Indices: indices}
}

func clusterWrite(method []byte, segs []string, query, body []byte) Write {
	switch segs[0] {
	case "_bulk":
		return bulkWrite("", query, body)
	case "_refresh", "_update_by_query", "_delete_by_query":
		return Write{All: true}
	case "_reindex":
		return reindexWrite(body)
	case "_aliases", "_alias":
		return Write{All: true, Topology: true}
	case "_plugins", "_opendistro":
		if len(segs) > 1 && (segs[1] == "_sql" || segs[1] == "_ppl" || segs[1] == "_asynchronous_search") {
			return Write{}
		}
		return Write{All: true, Topology: true}
	case "_search", "_msearch":
		// _search/scroll, _search/point_in_time, _search/template, _msearch/template.
		return Write{}
	}
	if readEndpoints[segs[0]] {
		return Write{}
	}
	_ = method
	return Write{All: true, Topology: true}
}

func reindexWrite(body []byte) Write {
	r := gjson.GetManyBytes(body, "dest.index", "script", "dest.pipeline")
	dest := r[0].String()
	if r[0].Type != gjson.String || isPattern(dest) || r[1].Exists() || r[2].Exists() {
		return Write{All: true}
	}
	// dest may not exist yet; whatever it becomes, it is known by this name.
	return Write{Indices: []string{dest}}
}

// bulkWrite collects the indices of a whole _bulk body (see BulkScanner).
func bulkWrite(defaultIndex string, query, body []byte) Write {
	if _, ok := queryParam(query, "pipeline"); ok {
		return Write{All: true}
	}
	sc := &BulkScanner{defaultIndex: defaultIndex, seen: map[string]bool{}}
	sc.Write(body) //nolint:errcheck // never fails
	return sc.Result()
}

// bulkAction parses an action line: an object with exactly one key naming the action.
func bulkAction(line []byte) (action string, meta gjson.Result, ok bool) {
	if !gjson.ValidBytes(line) {
		return "", meta, false
	}
	root := gjson.ParseBytes(line)
	if !root.IsObject() {
		return "", meta, false
	}
	n := 0
	root.ForEach(func(k, v gjson.Result) bool {
		n++
		action, meta = k.String(), v
		return true
	})
	if n != 1 || (action != "index" && action != "create" && action != "update" && action != "delete") {
		return "", meta, false
	}
	if meta.Type != gjson.JSON || !meta.IsObject() {
		return "", meta, false
	}
	return action, meta, true
}

// splitPath splits a request path into percent-decoded segments.
func splitPath(path []byte) ([]string, bool) {
	p := string(path)
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	p = strings.Trim(p, "/")
	if p == "" {
		return nil, true
	}
	var segs []string
	for s := range strings.SplitSeq(p, "/") {
		if strings.IndexByte(s, '%') >= 0 {
			d, err := url.PathUnescape(s)
			if err != nil {
				return nil, false
			}
			s = d
		}
		segs = append(segs, s)
	}
	return segs, true
}
