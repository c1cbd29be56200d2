package faults

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vlproxy/vlproxy/model/modeltest"
	"github.com/vlproxy/vlproxy/testenv"
)

// genDoc builds a document with a fixed schema (so dynamic mapping never conflicts) but random
// presence, nesting, arrays (of scalars and of objects), nulls and empty containers.
func genDoc(rng *rand.Rand, words []string) map[string]any {
	w := func() string { return words[rng.IntN(len(words))] }
	d := map[string]any{"title": w() + " " + w() + " " + w()}
	maybe := func(p float64, k string, v func() any) {
		if rng.Float64() < p {
			d[k] = v()
		}
	}
	maybe(0.7, "a", func() any { return rng.IntN(100) })
	maybe(0.7, "b", func() any {
		b := map[string]any{}
		if rng.IntN(2) == 0 {
			b["x"] = w()
		}
		if rng.IntN(2) == 0 {
			y := map[string]any{}
			if rng.IntN(3) > 0 {
				y["z"] = rng.IntN(10)
			}
			b["y"] = y
		}
		if rng.IntN(2) == 0 {
			var ws []any
			for range rng.IntN(3) {
				ws = append(ws, w())
			}
			b["w"] = ws
		}
		return b
	})
	maybe(0.6, "c", func() any {
		var cs []any
		for range rng.IntN(3) {
			c := map[string]any{}
			if rng.IntN(3) > 0 {
				c["x"] = w()
			}
			if rng.IntN(2) == 0 {
				c["q"] = rng.IntN(5)
			}
			cs = append(cs, c)
		}
		return cs
	})
	maybe(0.6, "tags", func() any {
		var ts []any
		for range rng.IntN(4) {
			ts = append(ts, w())
		}
		if ts == nil {
			return []any{}
		}
		return ts
	})
	maybe(0.3, "e", func() any { return map[string]any{} })
	maybe(0.3, "n", func() any { return nil })
	maybe(0.3, "desc", func() any { return w() + " " + w() })
	return d
}

var sourcePatterns = []string{"title", "a", "b", "b.x", "b.y", "b.y.z", "b.w", "b.*", "*.x", "c", "c.x", "c.q",
	"tags", "e", "n", "*", "b*", "*z", "x", "desc", "t*", "*.y.*", "c*"}

var filterPaths = []string{"hits.hits._source", "hits.hits._id", "hits.hits._source.b", "**.x", "hits.**.z",
	"-hits.hits._score", "-took", "hits.total", "-hits.hits._source.b", "hits.hits._source.c.x", "*.hits._id",
	"-**._index", "hits.hits._s*", "hits.hits", "-hits.hits._source", "hits.hits._source.tags", "-**.y",
	"hits.hits._source.e", "hits.hits._source.n", "**", "-hits.hits._source.c", "hits.max_score", "_shards.*"}

func pick(rng *rand.Rand, from []string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = from[rng.IntN(len(from))]
	}
	return out
}

// genSource returns a random body `_source` (nil: none) and URL _source* parameters.
func genSource(rng *rand.Rand) (body any, params url.Values) {
	params = url.Values{}
	switch rng.IntN(9) {
	case 0:
	case 1:
		body = false
	case 2:
		body = true
	case 3:
		body = pick(rng, sourcePatterns, 1)[0]
	case 4:
		body = pick(rng, sourcePatterns, 1+rng.IntN(3))
	case 5:
		body = map[string]any{"includes": pick(rng, sourcePatterns, 1+rng.IntN(3))}
	case 6:
		body = map[string]any{"excludes": pick(rng, sourcePatterns, 1+rng.IntN(3))}
	case 7:
		body = map[string]any{"includes": pick(rng, sourcePatterns, 1+rng.IntN(2)), "excludes": pick(rng, sourcePatterns, 1+rng.IntN(2))}
	case 8:
		if rng.IntN(2) == 0 {
			body = pick(rng, sourcePatterns, 2) // the URL wins over it
		}
		switch rng.IntN(4) {
		case 0:
			params.Set("_source", strings.Join(pick(rng, sourcePatterns, 1+rng.IntN(2)), ","))
		case 1:
			params.Set("_source_includes", strings.Join(pick(rng, sourcePatterns, 1+rng.IntN(2)), ","))
		case 2:
			params.Set("_source_excludes", strings.Join(pick(rng, sourcePatterns, 1+rng.IntN(2)), ","))
		case 3:
			params.Set("_source_includes", strings.Join(pick(rng, sourcePatterns, 1), ","))
			params.Set("_source_excludes", strings.Join(pick(rng, sourcePatterns, 1), ","))
		}
	}
	return body, params
}

// normalizeResponse decodes a search response and drops what legitimately differs between two
// runs of one search (took).
func normalizeResponse(b []byte) (any, error) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	if m, ok := v.(map[string]any); ok {
		delete(m, "took")
	}
	return v, nil
}

// TestSourceFilterPathDifferential runs generated searches with `_source` (body and URL forms)
// and `filter_path` over generated documents twice: directly on the node, and through vlproxy
// with the rerank in shadow mode, where the reranker asks the node for the fields it needs
// (relaxing `_source` and dropping `filter_path`) and re-applies both itself. The two answers
// must be the same JSON (semantically: key order aside, took aside). It found two
// disagreements, fixed in the emulation: empty objects inside a filtered array (ES drops them,
// the emulation kept `{}`), and containers left empty by a filter_path exclusion (ES drops those
// on an exclusion's path, even empty ones, the emulation kept them).
func TestSourceFilterPathDifferential(t *testing.T) {
	url0 := testenv.URL(t)
	c := newClient(30 * time.Second)
	index := uniqueName("faults-filter")
	must(t, c, "PUT", url0+"/"+index, []byte(`{"settings":{"number_of_shards":1,"number_of_replicas":0},
		"mappings":{"properties":{"title":{"type":"text"},"desc":{"type":"text"}}}}`))
	t.Cleanup(func() { call(c, "DELETE", url0+"/"+index, nil) })
	// A fixed corpus and set of searches by default; FAULTS_SEED=N explores another one.
	seed := uint64(7)
	if v, err := strconv.ParseUint(os.Getenv("FAULTS_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("seed %d (FAULTS_SEED)", seed)
	rng := rand.New(rand.NewPCG(seed, 11))
	words := []string{"red", "blue", "dress", "shoe", "linen", "wool", "summer", "coat"}
	var bulk strings.Builder
	for i := range 40 {
		d, _ := json.Marshal(genDoc(rng, words))
		fmt.Fprintf(&bulk, "{\"index\":{\"_id\":\"d%d\"}}\n%s\n", i, d)
	}
	if r := must(t, c, "POST", url0+"/"+index+"/_bulk?refresh=true", []byte(bulk.String())); strings.Contains(string(r.Body), `"errors":true`) {
		t.Fatalf("bulk: %s", tail(string(r.Body), 2000))
	}
	sim := modeltest.NewServer(modeltest.Config{})
	defer sim.Close()
	p := startVLProxy(t, "-upstream", url0, "-rerank-url", sim.URL, "-rerank-scorer", "api",
		"-rerank-timeout", "5s", "-result-cache-size", "0")

	// The fields the reranker reads: whether the client's filter drops them decides whether
	// the emulation runs at all.
	rerankFields := [][]string{{"title"}, {"title", "b.x"}, {"c.x"}, {"desc", "tags"}}
	const cases = 300
	var mismatches []string
	statuses := map[string]int{}
	for i := range cases {
		src, params := genSource(rng)
		if n := rng.IntN(4); n > 0 {
			params.Set("filter_path", strings.Join(pick(rng, filterPaths, n), ","))
		}
		body := map[string]any{"query": map[string]any{"match": map[string]any{"title": words[rng.IntN(len(words))]}},
			"size": 1 + rng.IntN(6)}
		if rng.IntN(3) == 0 {
			body["from"] = rng.IntN(3)
		}
		if src != nil {
			body["_source"] = src
		}
		plain, _ := json.Marshal(body)
		body["ext"] = map[string]any{"vlproxy": map[string]any{"rerank": map[string]any{
			"fields": map[string]any{"text": rerankFields[rng.IntN(len(rerankFields))]}}}}
		viaExt, _ := json.Marshal(body)
		q := ""
		if len(params) > 0 {
			q = "?" + params.Encode()
		}
		d := call(c, "POST", url0+"/"+index+"/_search"+q, plain)
		v := call(c, "POST", p.URL+"/"+index+"/_search"+q, viaExt, "X-VLProxy-Rerank", "shadow")
		if d.Err != nil || v.Err != nil {
			t.Fatalf("case %d: direct %v, via vlproxy %v", i, d.Err, v.Err)
		}
		statuses[v.Header.Get("X-VLProxy-Rerank")]++
		what := fmt.Sprintf("case %d: POST /_search%s %s", i, q, viaExt)
		if d.Status != v.Status {
			mismatches = append(mismatches, fmt.Sprintf("%s: status %d direct, %d via vlproxy: %s", what, d.Status, v.Status, tail(string(v.Body), 300)))
			continue
		}
		dn, err1 := normalizeResponse(d.Body)
		vn, err2 := normalizeResponse(v.Body)
		if err1 != nil || err2 != nil {
			mismatches = append(mismatches, fmt.Sprintf("%s: cannot decode (%v, %v)", what, err1, err2))
			continue
		}
		if !reflect.DeepEqual(dn, vn) {
			dj, _ := json.Marshal(dn)
			vj, _ := json.Marshal(vn)
			mismatches = append(mismatches, fmt.Sprintf("%s:\n  direct: %s\n  vlproxy: %s", what, tail(string(dj), 1500), tail(string(vj), 1500)))
		}
	}
	t.Logf("%d generated searches over 40 generated documents; rerank statuses %v; %d disagreements", cases, statuses, len(mismatches))
	if statuses["shadow"] < cases/2 {
		t.Errorf("only %d of %d searches went through the reranker (shadow): the emulation was not exercised", statuses["shadow"], cases)
	}
	for _, m := range mismatches[:min(8, len(mismatches))] {
		t.Error(m)
	}
}
