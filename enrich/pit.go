package enrich

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/olivere/elastic/v7"
)

// pit is an open point in time. Elasticsearch opens it at /{index}/_pit and pages
// it by _shard_doc; OpenSearch (2.4+) opens it at /{index}/_search/point_in_time
// and is paged here by _id. The search body ({"pit":{"id":…}}) is the same.
type pit struct {
	id         string
	opensearch bool
	sorter     elastic.Sorter
}

func openPIT(ctx context.Context, client *elastic.Client, index string) (*pit, error) {
	resp, esErr := client.OpenPointInTime(index).KeepAlive("5m").Do(ctx)
	if esErr == nil && resp.Id != "" {
		return &pit{id: resp.Id, sorter: elastic.NewFieldSort("_shard_doc").Asc()}, nil
	}
	res, err := client.PerformRequest(ctx, elastic.PerformRequestOptions{
		Method: "POST",
		Path:   "/" + url.PathEscape(index) + "/_search/point_in_time",
		Params: url.Values{"keep_alive": {"5m"}},
	})
	if err != nil {
		return nil, fmt.Errorf("cannot open a point in time on %s (Elasticsearch: %v): %w", index, esErr, err)
	}
	var body struct {
		PitID string `json:"pit_id"`
	}
	if err := json.Unmarshal(res.Body, &body); err != nil || body.PitID == "" {
		return nil, fmt.Errorf("cannot open a point in time on %s: unexpected answer %.200s", index, res.Body)
	}
	return &pit{id: body.PitID, opensearch: true, sorter: elastic.NewFieldSort("_id").Asc()}, nil
}

// close releases the point in time; failures only waste server memory until keep_alive ends.
func (p *pit) close(client *elastic.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !p.opensearch {
		_, _ = client.ClosePointInTime(p.id).Do(ctx)
		return
	}
	_, _ = client.PerformRequest(ctx, elastic.PerformRequestOptions{
		Method: "DELETE",
		Path:   "/_search/point_in_time",
		Body:   map[string]any{"pit_id": []string{p.id}},
	})
}
