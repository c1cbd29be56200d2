package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/olivere/elastic/v7"
)

// Doc is one catalogue document: its id (may be empty: ES assigns one) and its JSON source.
type Doc struct {
	ID     string
	Source json.RawMessage
}

// ReadCatalogue reads documents from a CSV file (header row = field names; empty cells are
// omitted) or an NDJSON file (one object per line), chosen by extension (.csv, else NDJSON).
// idField names the field holding the document id ("" → ES assigns ids).
func ReadCatalogue(path, idField string) ([]Doc, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open catalogue: %w", err)
	}
	defer f.Close()
	if strings.HasSuffix(strings.ToLower(path), ".csv") {
		return ParseCSVCatalogue(f, path, idField, nil)
	}
	return ParseNDJSONCatalogue(f, path, idField)
}

// ParseCSVCatalogue reads CSV rows into documents; transform, if set, may add or change fields.
func ParseCSVCatalogue(r io.Reader, name, idField string, transform func(map[string]any)) ([]Doc, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%s:1: cannot read CSV header: %w", name, err)
	}
	header = append([]string(nil), header...)
	idCol := -1
	for i, h := range header {
		if h == idField {
			idCol = i
		}
	}
	if idField != "" && idCol < 0 {
		return nil, fmt.Errorf("%s:1: id field %q is not a column (columns: %s)", name, idField, strings.Join(header, ","))
	}
	var docs []Doc
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: cannot read CSV: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		m := make(map[string]any, len(rec))
		for i, v := range rec {
			if v != "" {
				m[header[i]] = v
			}
		}
		if transform != nil {
			transform(m)
		}
		src, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: cannot encode document: %w", name, line, err)
		}
		d := Doc{Source: src}
		if idCol >= 0 {
			if d.ID = rec[idCol]; d.ID == "" {
				return nil, fmt.Errorf("%s:%d: empty id in column %q", name, line, idField)
			}
		}
		docs = append(docs, d)
	}
	return docs, nil
}

// ParseNDJSONCatalogue reads one JSON object per line.
func ParseNDJSONCatalogue(r io.Reader, name, idField string) ([]Doc, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	var docs []Doc
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("%s:%d: cannot parse document: %w", name, line, err)
		}
		d := Doc{Source: append(json.RawMessage(nil), b...)}
		if idField != "" {
			raw, ok := m[idField]
			if !ok {
				return nil, fmt.Errorf("%s:%d: document has no id field %q", name, line, idField)
			}
			var s string
			if json.Unmarshal(raw, &s) != nil {
				s = string(raw) // numbers are used as written
			}
			d.ID = s
		}
		docs = append(docs, d)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: cannot read: %w", name, line+1, err)
	}
	return docs, nil
}

// IndexConfig configures LoadCatalogue.
type IndexConfig struct {
	// URL of ES/OpenSearch (or vlproxy). Default: http://127.0.0.1:9200.
	URL string `yaml:"url"`
	// Index to load into. Default: "products".
	Index string `yaml:"index"`
	// Mappings is the index creation body (settings and mappings); empty: dynamic mapping.
	Mappings json.RawMessage `yaml:"-"`
	// Recreate deletes the index first when it exists. Default: false.
	Recreate bool `yaml:"recreate"`
	// Workers are concurrent bulk requests. Default: 2.
	Workers int `yaml:"workers"`
	// BulkActions is the number of documents per bulk request. Default: 1000.
	BulkActions int `yaml:"bulk_actions"`
	// Progress, if set, is called as documents are acknowledged, one call at a time and with
	// done never going down (the bulk workers acknowledge concurrently).
	Progress func(done, total int64) `yaml:"-"`
}

// DefaultIndexConfig returns the defaults documented on IndexConfig.
func DefaultIndexConfig() IndexConfig {
	return IndexConfig{URL: "http://127.0.0.1:9200", Index: "products", Workers: 2, BulkActions: 1000}
}

// IndexStats summarises a load.
type IndexStats struct {
	Docs     int64         `json:"docs"`
	Failed   int64         `json:"failed"`
	Duration time.Duration `json:"duration"`
	FirstErr string        `json:"first_error,omitempty"`
}

// LoadCatalogue creates the index (with cfg.Mappings) and bulk-loads docs through olivere/elastic's
// BulkProcessor (sniffing and health checks off, so it works through a proxy), then refreshes.
func LoadCatalogue(ctx context.Context, cfg IndexConfig, docs []Doc) (IndexStats, error) {
	def := DefaultIndexConfig()
	if cfg.URL == "" {
		cfg.URL = def.URL
	}
	if cfg.Index == "" {
		cfg.Index = def.Index
	}
	if cfg.Workers <= 0 {
		cfg.Workers = def.Workers
	}
	if cfg.BulkActions <= 0 {
		cfg.BulkActions = def.BulkActions
	}
	start := time.Now()
	client, err := elastic.NewClient(elastic.SetURL(cfg.URL), elastic.SetSniff(false), elastic.SetHealthcheck(false))
	if err != nil {
		return IndexStats{}, fmt.Errorf("cannot create client for %s: %w", cfg.URL, err)
	}
	exists, err := client.IndexExists(cfg.Index).Do(ctx)
	if err != nil {
		return IndexStats{}, fmt.Errorf("cannot check index %s: %w", cfg.Index, err)
	}
	if exists && cfg.Recreate {
		if _, err := client.DeleteIndex(cfg.Index).Do(ctx); err != nil {
			return IndexStats{}, fmt.Errorf("cannot delete index %s: %w", cfg.Index, err)
		}
		exists = false
	}
	if !exists {
		svc := client.CreateIndex(cfg.Index)
		if len(cfg.Mappings) > 0 {
			svc = svc.BodyString(string(cfg.Mappings))
		}
		if _, err := svc.Do(ctx); err != nil {
			return IndexStats{}, fmt.Errorf("cannot create index %s: %w", cfg.Index, err)
		}
	}
	var done, failed atomic.Int64
	var progressMu sync.Mutex
	var reported int64
	var firstErr atomic.Value
	total := int64(len(docs))
	bp, err := client.BulkProcessor().Name("vlbench-index").Workers(cfg.Workers).BulkActions(cfg.BulkActions).
		BulkSize(8 << 20).FlushInterval(time.Second).
		After(func(_ int64, reqs []elastic.BulkableRequest, resp *elastic.BulkResponse, err error) {
			if err != nil {
				failed.Add(int64(len(reqs)))
				firstErr.CompareAndSwap(nil, err.Error())
			} else if resp != nil {
				for _, it := range resp.Failed() {
					failed.Add(1)
					if it.Error != nil {
						firstErr.CompareAndSwap(nil, it.Error.Type+": "+it.Error.Reason)
					}
				}
			}
			n := done.Add(int64(len(reqs)))
			if cfg.Progress != nil {
				progressMu.Lock()
				if n > reported {
					reported = n
					cfg.Progress(n, total)
				}
				progressMu.Unlock()
			}
		}).Do(ctx)
	if err != nil {
		return IndexStats{}, fmt.Errorf("cannot start the bulk processor: %w", err)
	}
	for _, d := range docs {
		r := elastic.NewBulkIndexRequest().Index(cfg.Index).Doc(d.Source)
		if d.ID != "" {
			r = r.Id(d.ID)
		}
		bp.Add(r)
	}
	if err := bp.Flush(); err != nil {
		bp.Close()
		return IndexStats{}, fmt.Errorf("cannot flush bulk requests: %w", err)
	}
	if err := bp.Close(); err != nil {
		return IndexStats{}, fmt.Errorf("cannot close the bulk processor: %w", err)
	}
	if _, err := client.Refresh(cfg.Index).Do(ctx); err != nil {
		return IndexStats{}, fmt.Errorf("cannot refresh %s: %w", cfg.Index, err)
	}
	st := IndexStats{Docs: done.Load() - failed.Load(), Failed: failed.Load(), Duration: time.Since(start)}
	if v := firstErr.Load(); v != nil {
		st.FirstErr = v.(string)
	}
	if st.Failed > 0 {
		return st, fmt.Errorf("%d of %d documents failed, first: %s", st.Failed, total, st.FirstErr)
	}
	if done.Load() != total {
		return st, errors.New("the bulk processor acknowledged fewer documents than were added")
	}
	return st, nil
}
