package integration

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/olivere/elastic/v7"
	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"

	"github.com/vlproxy/vlproxy/testenv"
)

const transparencyIndex = `{
  "settings": {"number_of_shards": 1, "number_of_replicas": 0},
  "mappings": {"properties": {
    "sku":   {"type": "keyword"},
    "title": {"type": "text"},
    "brand": {"type": "keyword"},
    "price": {"type": "float"},
    "tags":  {"type": "keyword"}
  }}
}`

// transparencyDocs are indexed by _bulk; ids are explicit so both runs are identical.
var transparencyDocs = []struct{ ID, Source string }{
	{"1", `{"sku":"a1","title":"red cotton shirt","brand":"acme","price":19.5,"tags":["summer","top"]}`},
	{"2", `{"sku":"a2","title":"blue linen shirt","brand":"acme","price":29,"tags":["summer"]}`},
	{"3", `{"sku":"b1","title":"black wool coat","brand":"borea","price":120,"tags":["winter"]}`},
	{"4", `{"sku":"b2","title":"grey wool scarf","brand":"borea","price":25,"tags":["winter","accessory"]}`},
	{"5", `{"sku":"z1","title":"white shirt dress","brand":"zeta","price":45,"tags":["summer","dress"]}`},
	{"6", `{"sku":"z2","title":"straw sun hat","brand":"zeta","price":15,"tags":["summer","accessory"]}`},
}

const (
	aggSearch = `{"query":{"match":{"title":"shirt"}},"aggs":{"brands":{"terms":{"field":"brand"}},"avg_price":{"avg":{"field":"price"}}},"size":10}`
	badQuery  = `{"query":{"bogus_query":{"title":"shirt"}}}`
	badJSON   = `{"title": "unterminated`
)

// lastStatus is the status of the most recent exchange, for steps whose outcome a typed client
// reports only as an error.
func lastStatus(rec *recorder) int {
	ex := rec.exchanges()
	if len(ex) == 0 {
		return 0
	}
	return ex[len(ex)-1].Status
}

func TestTransparencyOlivere(t *testing.T) {
	node := testenv.URL(t)
	prox, cached := startProxy(t, node), startCachedProxy(t, node)
	idx, missing := uniqueName("vlp-tr-olivere"), uniqueName("vlp-missing")
	t.Cleanup(func() { deleteIndex(t, node, idx) })

	run := func(base string) []exchange {
		t.Helper()
		rec := newRecorder()
		c, err := elastic.NewClient(elastic.SetURL(base), elastic.SetSniff(false), elastic.SetHealthcheck(false),
			elastic.SetHttpClient(&http.Client{Transport: rec, Timeout: 60 * time.Second}))
		mustf(t, err, "cannot create the olivere client for %s", base)
		olivereSequence(t, c, rec, idx, missing)
		return rec.exchanges()
	}
	direct := run(node)
	if len(direct) < 20 {
		t.Errorf("the sequence made only %d requests", len(direct))
	}
	t.Run("proxy", func(t *testing.T) { compareExchanges(t, direct, run(prox)) })
	t.Run("proxy with result cache", func(t *testing.T) { compareExchanges(t, direct, run(cached)) })
}

func olivereSequence(t *testing.T, c *elastic.Client, rec *recorder, idx, missing string) {
	t.Helper()
	ctx := context.Background()
	step := func(name string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}

	cr, err := c.CreateIndex(idx).BodyString(transparencyIndex).Do(ctx)
	step("create index", err)
	if !cr.Acknowledged {
		t.Fatalf("create index not acknowledged")
	}

	bulk := c.Bulk().Index(idx).Refresh("true")
	for _, d := range transparencyDocs {
		bulk.Add(elastic.NewBulkIndexRequest().Id(d.ID).Doc(json.RawMessage(d.Source)))
	}
	br, err := bulk.Do(ctx)
	step("bulk", err)
	if br.Errors || len(br.Items) != len(transparencyDocs) {
		t.Fatalf("bulk: errors=%v items=%d", br.Errors, len(br.Items))
	}

	g, err := c.Get().Index(idx).Id("1").Do(ctx)
	step("get", err)
	if !g.Found {
		t.Fatalf("get: doc 1 not found")
	}

	mg, err := c.Mget().Add(
		elastic.NewMultiGetItem().Index(idx).Id("2"),
		elastic.NewMultiGetItem().Index(idx).Id("3"),
		elastic.NewMultiGetItem().Index(idx).Id("nope"),
	).Do(ctx)
	step("mget", err)
	if len(mg.Docs) != 3 || !mg.Docs[0].Found || mg.Docs[2].Found {
		t.Fatalf("mget: unexpected docs %+v", mg.Docs)
	}

	sr, err := c.Search(idx).Source(json.RawMessage(aggSearch)).Do(ctx)
	step("search with aggregations", err)
	if sr.TotalHits() != 3 {
		t.Fatalf("search: %d hits, want 3", sr.TotalHits())
	}
	if _, ok := sr.Aggregations.Terms("brands"); !ok {
		t.Fatalf("search: no brands aggregation")
	}

	scroll := c.Scroll(idx).Size(2).Sort("sku", true).KeepAlive("1m")
	pages, seen := 0, 0
	for {
		res, err := scroll.Do(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		step("scroll", err)
		pages++
		seen += len(res.Hits.Hits)
	}
	if pages != 3 || seen != len(transparencyDocs) {
		t.Fatalf("scroll: %d pages, %d hits", pages, seen)
	}
	step("clear scroll", scroll.Clear(ctx))

	n, err := c.Count(idx).Query(elastic.NewTermQuery("tags", "summer")).Do(ctx)
	step("count", err)
	if n != 4 {
		t.Fatalf("count: %d, want 4", n)
	}

	ubq, err := c.UpdateByQuery(idx).Query(elastic.NewTermQuery("brand", "acme")).
		Script(elastic.NewScript("ctx._source.price += 1")).Refresh("true").Do(ctx)
	step("update_by_query", err)
	if ubq.Updated != 2 {
		t.Fatalf("update_by_query updated %d, want 2", ubq.Updated)
	}

	dbq, err := c.DeleteByQuery(idx).Query(elastic.NewTermQuery("brand", "zeta")).Refresh("true").Do(ctx)
	step("delete_by_query", err)
	if dbq.Deleted != 2 {
		t.Fatalf("delete_by_query deleted %d, want 2", dbq.Deleted)
	}

	dr, err := c.Delete().Index(idx).Id("4").Refresh("true").Do(ctx)
	step("delete", err)
	if dr.Result != "deleted" {
		t.Fatalf("delete: result %q", dr.Result)
	}

	g, err = c.Get().Index(idx).Id("1").Do(ctx)
	step("get after update", err)
	if g.Version == nil || *g.Version != 2 {
		t.Fatalf("get after update_by_query: version %v, want 2", g.Version)
	}

	cat, err := c.CatIndices().Index(idx).Columns("health", "status", "index", "pri", "rep", "docs.count").Do(ctx)
	step("_cat/indices", err)
	if len(cat) != 1 || cat[0].DocsCount != 3 {
		t.Fatalf("_cat/indices: %+v", cat)
	}

	h, err := c.ClusterHealth().Index(idx).WaitForStatus("green").Timeout("10s").Do(ctx)
	step("cluster health", err)
	if h.Status != "green" {
		t.Fatalf("cluster health: %s", h.Status)
	}

	ok, err := c.IndexExists(idx).Do(ctx)
	step("HEAD exists", err)
	if !ok {
		t.Fatalf("HEAD %s: index does not exist", idx)
	}
	ok, err = c.IndexExists(missing).Do(ctx)
	step("HEAD missing", err)
	if ok {
		t.Fatalf("HEAD %s: exists", missing)
	}

	_, err = c.Get().Index(missing).Id("1").Do(ctx)
	if !elastic.IsNotFound(err) || lastStatus(rec) != 404 {
		t.Fatalf("get from a missing index: %v (status %d), want 404", err, lastStatus(rec))
	}
	if e := new(elastic.Error); !errors.As(err, &e) || e.Details == nil || e.Details.Type != "index_not_found_exception" {
		t.Fatalf("get from a missing index: %#v, want index_not_found_exception", err)
	}

	_, err = c.Search(idx).Source(json.RawMessage(badQuery)).Do(ctx)
	if e := new(elastic.Error); !errors.As(err, &e) || e.Status != 400 {
		t.Fatalf("search with an unknown query: %v, want a 400", err)
	}
	_, err = c.Index().Index(idx).Id("bad").BodyString(badJSON).Do(ctx)
	if e := new(elastic.Error); !errors.As(err, &e) || e.Status != 400 {
		t.Fatalf("index with malformed JSON: %v, want a 400", err)
	}

	dir, err := c.DeleteIndex(idx).Do(ctx)
	step("delete index", err)
	if !dir.Acknowledged {
		t.Fatalf("delete index not acknowledged")
	}
}

func TestTransparencyOpenSearchGo(t *testing.T) {
	node := testenv.URL(t)
	// opensearch-go v4 polls node stats (and cluster health) in the background on its own
	// timer; a poll that fires during one run and not the other would differ the sequences.
	t.Setenv("OPENSEARCH_GO_DISCOVERY_CONFIG", "-node_stats,-cluster_health,-cat_shards,-routing_num_shards")
	prox, cached := startProxy(t, node), startCachedProxy(t, node)
	idx, missing := uniqueName("vlp-tr-osgo"), uniqueName("vlp-missing")
	t.Cleanup(func() { deleteIndex(t, node, idx) })

	run := func(base string) []exchange {
		t.Helper()
		rec := newRecorder()
		no := false
		c, err := opensearchapi.NewClient(opensearchapi.Config{Client: opensearch.Config{
			Addresses:             []string{base},
			Transport:             rec,
			DisableRetry:          true,
			DiscoverNodesOnStart:  &no,
			HealthCheckMaxRetries: -1,
		}})
		mustf(t, err, "cannot create the opensearch-go client for %s", base)
		openSearchGoSequence(t, c, rec, idx, missing)
		return rec.exchanges()
	}
	direct := run(node)
	if len(direct) < 20 {
		t.Errorf("the sequence made only %d requests", len(direct))
	}
	t.Run("proxy", func(t *testing.T) { compareExchanges(t, direct, run(prox)) })
	t.Run("proxy with result cache", func(t *testing.T) { compareExchanges(t, direct, run(cached)) })
}

func openSearchGoSequence(t *testing.T, c *opensearchapi.Client, rec *recorder, idx, missing string) {
	t.Helper()
	ctx := context.Background()
	step := func(name string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	tru := true

	_, err := c.Indices.Create(ctx, opensearchapi.IndicesCreateReq{Index: idx, Body: strings.NewReader(transparencyIndex)})
	step("create index", err)

	var nd strings.Builder
	for _, d := range transparencyDocs {
		nd.WriteString(`{"index":{"_id":"` + d.ID + `"}}` + "\n" + d.Source + "\n")
	}
	br, err := c.Bulk(ctx, opensearchapi.BulkReq{Index: idx, Body: strings.NewReader(nd.String()), Params: opensearchapi.BulkParams{Refresh: "true"}})
	step("bulk", err)
	if br.Errors || len(br.Items) != len(transparencyDocs) {
		t.Fatalf("bulk: errors=%v items=%d", br.Errors, len(br.Items))
	}

	g, err := c.Document.Get(ctx, opensearchapi.DocumentGetReq{Index: idx, DocumentID: "1"})
	step("get", err)
	if !g.Found {
		t.Fatalf("get: doc 1 not found")
	}

	mg, err := c.MGet(ctx, opensearchapi.MGetReq{Index: idx, Body: strings.NewReader(`{"ids":["2","3","nope"]}`)})
	step("mget", err)
	if len(mg.Docs) != 3 || !mg.Docs[0].Found || mg.Docs[2].Found {
		t.Fatalf("mget: unexpected docs %+v", mg.Docs)
	}

	sr, err := c.Search(ctx, &opensearchapi.SearchReq{Indices: []string{idx}, Body: strings.NewReader(aggSearch)})
	step("search with aggregations", err)
	if sr.Hits.Total.Value != 3 || len(sr.Aggregations) == 0 {
		t.Fatalf("search: %d hits, aggregations %s", sr.Hits.Total.Value, sr.Aggregations)
	}

	sc, err := c.Search(ctx, &opensearchapi.SearchReq{Indices: []string{idx},
		Body: strings.NewReader(`{"size":2,"sort":[{"sku":"asc"}]}`), Params: opensearchapi.SearchParams{Scroll: time.Minute}})
	step("scroll start", err)
	seen, id := len(sc.Hits.Hits), *sc.ScrollID
	for range 3 {
		page, err := c.Scroll.Get(ctx, opensearchapi.ScrollGetReq{ScrollID: id, Params: opensearchapi.ScrollGetParams{Scroll: time.Minute}})
		step("scroll", err)
		seen += len(page.Hits.Hits)
		if page.ScrollID != nil {
			id = *page.ScrollID
		}
	}
	if seen != len(transparencyDocs) {
		t.Fatalf("scroll: %d hits, want %d", seen, len(transparencyDocs))
	}
	_, err = c.Scroll.Delete(ctx, opensearchapi.ScrollDeleteReq{ScrollIDs: []string{id}})
	step("clear scroll", err)

	cnt, err := c.Indices.Count(ctx, &opensearchapi.IndicesCountReq{Indices: []string{idx}, Body: strings.NewReader(`{"query":{"term":{"tags":"summer"}}}`)})
	step("count", err)
	if cnt.Count != 4 {
		t.Fatalf("count: %d, want 4", cnt.Count)
	}

	ubq, err := c.UpdateByQuery(ctx, opensearchapi.UpdateByQueryReq{Indices: []string{idx},
		Body:   strings.NewReader(`{"query":{"term":{"brand":"acme"}},"script":{"source":"ctx._source.price += 1"}}`),
		Params: opensearchapi.UpdateByQueryParams{Refresh: &tru}})
	step("update_by_query", err)
	if ubq.Updated != 2 {
		t.Fatalf("update_by_query updated %d, want 2", ubq.Updated)
	}

	dbq, err := c.Document.DeleteByQuery(ctx, opensearchapi.DocumentDeleteByQueryReq{Indices: []string{idx},
		Body: strings.NewReader(`{"query":{"term":{"brand":"zeta"}}}`), Params: opensearchapi.DocumentDeleteByQueryParams{Refresh: &tru}})
	step("delete_by_query", err)
	if dbq.Deleted != 2 {
		t.Fatalf("delete_by_query deleted %d, want 2", dbq.Deleted)
	}

	dr, err := c.Document.Delete(ctx, opensearchapi.DocumentDeleteReq{Index: idx, DocumentID: "4", Params: opensearchapi.DocumentDeleteParams{Refresh: "true"}})
	step("delete", err)
	if dr.Result != "deleted" {
		t.Fatalf("delete: result %q", dr.Result)
	}

	cat, err := c.Cat.Indices(ctx, &opensearchapi.CatIndicesReq{Indices: []string{idx},
		Params: opensearchapi.CatIndicesParams{H: []string{"health", "status", "index", "pri", "rep", "docs.count"}}})
	step("_cat/indices", err)
	if len(cat.Indices) != 1 || cat.Indices[0].DocsCount == nil || *cat.Indices[0].DocsCount != 3 {
		t.Fatalf("_cat/indices: %+v", cat.Indices)
	}

	h, err := c.Cluster.Health(ctx, &opensearchapi.ClusterHealthReq{Indices: []string{idx},
		Params: opensearchapi.ClusterHealthParams{WaitForStatus: "green", Timeout: 10 * time.Second}})
	step("cluster health", err)
	if h.Status != "green" {
		t.Fatalf("cluster health: %s", h.Status)
	}

	ex, err := c.Indices.Exists(ctx, opensearchapi.IndicesExistsReq{Indices: []string{idx}})
	step("HEAD exists", err)
	if ex.StatusCode != 200 {
		t.Fatalf("HEAD %s: %d", idx, ex.StatusCode)
	}
	_, _ = c.Indices.Exists(ctx, opensearchapi.IndicesExistsReq{Indices: []string{missing}})
	if lastStatus(rec) != 404 {
		t.Fatalf("HEAD %s: %d, want 404", missing, lastStatus(rec))
	}

	_, err = c.Document.Get(ctx, opensearchapi.DocumentGetReq{Index: missing, DocumentID: "1"})
	if err == nil || lastStatus(rec) != 404 {
		t.Fatalf("get from a missing index: %v (status %d), want 404", err, lastStatus(rec))
	}
	_, err = c.Search(ctx, &opensearchapi.SearchReq{Indices: []string{idx}, Body: strings.NewReader(badQuery)})
	if err == nil || lastStatus(rec) != 400 {
		t.Fatalf("search with an unknown query: %v (status %d), want 400", err, lastStatus(rec))
	}
	_, err = c.Index(ctx, opensearchapi.IndexReq{Index: idx, DocumentID: "bad", Body: strings.NewReader(badJSON)})
	if err == nil || lastStatus(rec) != 400 {
		t.Fatalf("index with malformed JSON: %v (status %d), want 400", err, lastStatus(rec))
	}

	_, err = c.Indices.Delete(ctx, opensearchapi.IndicesDeleteReq{Indices: []string{idx}})
	step("delete index", err)
}
