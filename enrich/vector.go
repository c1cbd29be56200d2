package enrich

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/olivere/elastic/v7"

	"github.com/tidwall/gjson"
)

// ensureVectorField creates the vector field of dimension dim unless the index has it; an
// existing field of another dimension is an error (vectors of two sizes cannot be searched
// together).
func (e *enricher) ensureVectorField(ctx context.Context, index string, dim int) error {
	res, err := e.client.PerformRequest(ctx, elastic.PerformRequestOptions{Method: "GET",
		Path: "/" + url.PathEscape(index) + "/_mapping/field/" + url.PathEscape(e.cfg.VectorField)})
	if err != nil {
		return fmt.Errorf("cannot read the mapping of %s: %w", index, err)
	}
	var found error
	gjson.ParseBytes(res.Body).ForEach(func(_, v gjson.Result) bool {
		f := v.Get("mappings." + gjson.Escape(e.cfg.VectorField) + ".mapping." + gjson.Escape(lastPart(e.cfg.VectorField)))
		if !f.Exists() {
			return true
		}
		got := f.Get("dimension").Int()
		if e.cfg.Engine == "elasticsearch" {
			got = f.Get("dims").Int()
		}
		if got != int64(dim) {
			found = fmt.Errorf("cannot write %d-dimensional vectors into %s.%s: the field has %d dimensions (type %s)",
				dim, index, e.cfg.VectorField, got, f.Get("type").String())
		}
		e.mapped = true
		return false
	})
	if e.mapped || found != nil {
		return found
	}
	body := map[string]any{"properties": map[string]any{e.cfg.VectorField: VectorMapping(e.cfg.Engine, dim)}}
	if _, err := e.client.PutMapping().Index(index).BodyJson(body).Do(ctx); err != nil {
		if strings.Contains(err.Error(), "index.knn") {
			return fmt.Errorf("cannot create the vector field %s.%s: the index was created without the setting index.knn: true, which OpenSearch needs for HNSW and cannot add later; recreate it with that setting: %w", index, e.cfg.VectorField, err)
		}
		return fmt.Errorf("cannot create the vector field %s.%s: %w", index, e.cfg.VectorField, err)
	}
	e.mapped = true
	return nil
}

// VectorMapping is the field mapping of unit-length image vectors: OpenSearch knn_vector
// with the Lucene HNSW engine (no native library needed) and cosine similarity, or ES
// dense_vector with cosine similarity.
func VectorMapping(engine string, dim int) map[string]any {
	if engine == "elasticsearch" {
		return map[string]any{"type": "dense_vector", "dims": dim, "index": true, "similarity": "cosine"}
	}
	return map[string]any{"type": "knn_vector", "dimension": dim,
		"method": map[string]any{"name": "hnsw", "engine": "lucene", "space_type": "cosinesimil",
			"parameters": map[string]any{"m": 16, "ef_construction": 128}}}
}

func lastPart(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '.' {
			return path[i+1:]
		}
	}
	return path
}
