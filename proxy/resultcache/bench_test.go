package resultcache

import (
	"testing"
)

var benchBody = []byte(`{
  "query": {"bool": {
    "must":   [{"multi_match": {"query": "navy blue shirt", "fields": ["title^3", "description"]}}],
    "filter": [{"term": {"in_stock": true}}, {"range": {"price": {"lte": 50}}}]}},
  "size": 10,
  "_source": ["title", "price", "image_url"]
}`)

var benchHeaders = hdr{"Authorization": "Basic YWxpY2U6c2VjcmV0", "Content-Type": "application/json", "Accept-Encoding": "gzip"}

func benchInput() KeyInput {
	in := req("POST /products/_search?size=10&track_total_hits=false&filter_path=hits.hits", string(benchBody), benchHeaders)
	in.Variant = "control"
	return in
}

// fastHeaders is an allocation-free Headers like fasthttp's; hdr (a map with EqualFold) is
// fine for tests but not what the proxy passes.
type fastHeaders [][2][]byte

func (h fastHeaders) Peek(name string) []byte {
	for _, kv := range h {
		if string(kv[0]) == name {
			return kv[1]
		}
	}
	return nil
}

func TestKeyAllocs(t *testing.T) {
	f := func(cfg Config, in KeyInput, max float64) {
		t.Helper()
		k := New(cfg)
		if !k.SetTopology(k.TopologyVersion(), NewTopology([]string{"products"}, nil)) {
			t.Fatal("SetTopology refused")
		}
		buf := make([]byte, 0, 4096)
		allocs := testing.AllocsPerRun(200, func() {
			var ok bool
			if buf, ok = k.Key(buf[:0], in); !ok {
				t.Fatal("bypassed")
			}
		})
		if allocs > max {
			t.Fatalf("Key(%s %s) allocates %v times; want at most %v", in.Method, in.Path, allocs, max)
		}
	}
	in := benchInput()
	in.Header = fastHeaders{{[]byte("Authorization"), []byte("Basic YWxpY2U6c2VjcmV0")}}
	f(DefaultConfig(), in, 0)
	ms := req("POST /_msearch", "{\"index\":\"products\"}\n"+string(benchBody[:0])+"{\"size\":1}\n", nil)
	f(DefaultConfig(), ms, 4) // the list of header index expressions and gjson copies of the names
}

func BenchmarkKeySearch(b *testing.B) {
	k := New(DefaultConfig())
	k.SetTopology(k.TopologyVersion(), NewTopology([]string{"products"}, nil))
	in := benchInput()
	in.Header = fastHeaders{{[]byte("Authorization"), []byte("Basic YWxpY2U6c2VjcmV0")}, {[]byte("Content-Type"), []byte("application/json")}}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	reportCPU(b)
	b.SetBytes(int64(len(in.Body)))
	for b.Loop() {
		buf, _ = k.Key(buf[:0], in)
	}
}

func BenchmarkWritesBulk(b *testing.B) {
	body := []byte("{\"index\":{\"_index\":\"products\",\"_id\":\"1\"}}\n{\"title\":\"a\"}\n{\"index\":{\"_index\":\"reviews\",\"_id\":\"2\"}}\n{\"t\":\"b\"}\n")
	b.ReportAllocs()
	reportCPU(b)
	for b.Loop() {
		Writes([]byte("POST"), []byte("/_bulk"), nil, body)
	}
}
