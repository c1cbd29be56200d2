// Package enrich is index-time enrichment: it walks an index, asks the
// vision-language model for keywords describing each document's image, and
// writes them into a field with bulk updates, so that plain text queries find
// products by what their photos show. cmd/vlbench wires it as `vlbench enrich`.
package enrich

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/vlproxy/vlproxy/document"
	"github.com/vlproxy/vlproxy/media"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/olivere/elastic/v7"

	"github.com/vlproxy/vlproxy/model"
	"github.com/vlproxy/vlproxy/rewrite"
	"github.com/vlproxy/vlproxy/video"
)

// Chatter is the part of the model client enrichment uses.
type Chatter interface {
	Chat(ctx context.Context, req *model.ChatRequest) (*model.ChatResponse, error)
	Name() string
}

// Embedder is the part of the embed model client enrichment uses.
type Embedder interface {
	EmbedOne(ctx context.Context, in model.EmbedInput) ([]float32, error)
	Name() string
}

// Models are what a run asks: keywords from Chat (when set) into TargetField, image vectors
// from Embed (when set) into VectorField. At least one is required.
type Models struct {
	Chat  Chatter
	Embed Embedder
}

// Config configures one enrichment run.
type Config struct {
	// ESURL is the cluster (or a vlproxy in front of it). Default "http://127.0.0.1:9200".
	ESURL string `yaml:"es_url"`
	// Index to walk. Required.
	Index string `yaml:"index"`
	// ImageField holds each document's image: an http(s) URL, a data URI or base64,
	// or a file path (relative paths are resolved against ImageDir). Default "image".
	ImageField string `yaml:"image_field"`
	// ImageDir resolves relative file paths in ImageField. Default "" (the working directory).
	ImageDir string `yaml:"image_dir"`
	// TargetField receives the keyword phrases (an array of strings; the category and
	// attribute values are appended). Default "vl_keywords".
	TargetField string `yaml:"target_field"`
	// BatchSize is the page size of the walk and of each bulk update. Default 50.
	BatchSize int `yaml:"batch_size"`
	// Rate caps model calls per second; 0 means no cap. Default 0.
	Rate float64 `yaml:"rate"`
	// Concurrency is the number of model calls in flight. Default 2.
	Concurrency int `yaml:"concurrency"`
	// Resume skips documents whose TargetField already exists, so a rerun
	// continues where a stopped or partly failed run left off. Default false.
	Resume bool `yaml:"resume"`
	// MaxKeywords per document. Default 10.
	MaxKeywords int `yaml:"max_keywords"`
	// Timeout of one model call. Default 30s.
	Timeout time.Duration `yaml:"timeout"`
	// Image limits and downscaling, as for query images. Image.MaxDecodes bounds the images
	// decoded at once (default: the number of CPUs), whatever Concurrency is, since a decoded
	// image is the run's largest allocation (up to Image.MaxDecodedBytes each).
	Image media.Config `yaml:"image"`
	// PDFField, when set, holds each document's PDF attachment (a spec sheet): a file path
	// (relative to ImageDir), an http(s) URL or base64. Its text is written to PDFTextField,
	// without a model. Default "" (off).
	PDFField string `yaml:"pdf_field"`
	// PDFTextField receives the attachment's text (lines, table cells joined by " | ").
	// Default "pdf_text".
	PDFTextField string `yaml:"pdf_text_field"`
	// Document limits the attachments as query documents are limited.
	Document document.Limits `yaml:"document"`
	// VectorField receives each image's embedding (with an embed model). The field is created
	// when the index lacks it: knn_vector with Lucene HNSW and cosine similarity on OpenSearch,
	// dense_vector with cosine similarity on ES. Default "vl_image_vector".
	VectorField string `yaml:"vector_field"`
	// Engine is "opensearch" or "elasticsearch" (the vector mapping differs). Default "opensearch".
	Engine string `yaml:"engine"`
	// VideoField, when set, holds each document's video: a file path (relative to ImageDir)
	// or an http(s) URL whose host is on Image.AllowedHosts, downloaded under media's address
	// checks (after DNS resolution and on every redirect). Its frames are sampled, labelled
	// by the models (keywords and/or vectors) and merged into segments written to
	// MomentsField. Default "" (off).
	VideoField string `yaml:"video_field"`
	// MomentsField receives the segments as a nested field {start, end, description,
	// keywords, vector}; it is created when the index lacks it. Default "moments".
	MomentsField string `yaml:"moments_field"`
	// Video limits sampling (size, duration, rate, frames, resolution, wall time, memory).
	Video video.Limits `yaml:"video"`
	// VideoInput is how a video reaches the chat model: "frames" (each sampled frame
	// labelled, similar frames merged), "video_url" (the sampled frames re-encoded as a
	// small MP4 in one video_url part; the model answers time-coded segments) or "auto":
	// video_url when the chat server is vLLM, until it refuses a video with a 400 before
	// taking any (started with --limit-mm-per-prompt '{"video":0}'), then frames for the
	// rest of the run (Stats.VideoFallback says why). Default "auto".
	VideoInput string `yaml:"video_input"`
}

// DefaultConfig returns the defaults of every field.
func DefaultConfig() Config {
	return Config{
		ESURL:        "http://127.0.0.1:9200",
		ImageField:   "image",
		TargetField:  "vl_keywords",
		BatchSize:    50,
		Concurrency:  2,
		MaxKeywords:  10,
		Timeout:      30 * time.Second,
		Image:        media.DefaultConfig(),
		Document:     document.DefaultLimits(),
		VectorField:  "vl_image_vector",
		Engine:       "opensearch",
		MomentsField: "moments",
		Video:        video.DefaultLimits(),
		VideoInput:   VideoAuto,
	}
}

func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.ESURL == "" {
		c.ESURL = d.ESURL
	}
	if c.ImageField == "" {
		c.ImageField = d.ImageField
	}
	if c.TargetField == "" {
		c.TargetField = d.TargetField
	}
	if c.BatchSize <= 0 {
		c.BatchSize = d.BatchSize
	}
	if c.Concurrency <= 0 {
		c.Concurrency = d.Concurrency
	}
	if c.MaxKeywords <= 0 {
		c.MaxKeywords = d.MaxKeywords
	}
	if c.Timeout <= 0 {
		c.Timeout = d.Timeout
	}
	img, err := c.Image.WithDefaults()
	if err != nil {
		return c, err
	}
	c.Image = img
	if c.PDFTextField == "" {
		c.PDFTextField = "pdf_text"
	}
	lim, err := c.Document.WithDefaults()
	if err != nil {
		return c, err
	}
	c.Document = lim
	if c.VectorField == "" {
		c.VectorField = d.VectorField
	}
	if c.Engine == "" {
		c.Engine = d.Engine
	}
	if c.MomentsField == "" {
		c.MomentsField = d.MomentsField
	}
	vl, err := c.Video.WithDefaults()
	if err != nil {
		return c, err
	}
	c.Video = vl
	switch c.VideoInput {
	case "":
		c.VideoInput = d.VideoInput
	case VideoFrames, VideoURL, VideoAuto:
	default:
		return c, fmt.Errorf("cannot use video_input %q: want frames, video_url or auto", c.VideoInput)
	}
	if c.Engine != "opensearch" && c.Engine != "elasticsearch" {
		return c, fmt.Errorf("cannot use engine %q: want opensearch or elasticsearch", c.Engine)
	}
	if c.Index == "" {
		return c, errors.New("cannot enrich: no index given")
	}
	if c.Rate < 0 {
		return c, fmt.Errorf("cannot use rate %v: want >= 0", c.Rate)
	}
	return c, nil
}

// Stats counts what a run did.
type Stats struct {
	Total, Done, Failed, NoImage int
	// PDFText counts attachments whose text was written; PDFFailed those that could not be read.
	PDFText, PDFFailed int
	// Videos counts videos whose moments were written, Moments their segments, VideoFailed
	// the videos refused or that could not be labelled.
	Videos, Moments, VideoFailed int
	// VideoSeconds is the length of the videos sampled; SampleCPU the CPU time ffprobe and
	// ffmpeg spent on them (model time is the model server's).
	VideoSeconds float64
	SampleCPU    time.Duration
	// VideoClips counts videos whose segments the chat model gave from a video_url clip;
	// SegmentsDropped and SegmentsMerged the rows of its answers dropped as unusable and
	// merged into an overlapping one. VideoFallback is why auto mode went to frames ("":
	// it did not).
	VideoClips, SegmentsDropped, SegmentsMerged int
	VideoFallback                               string
}

// Run walks the index with a point in time and search_after, enriching every
// document (or, with Resume, every document still lacking the target field).
// Per-document failures are counted and logged to progress, not fatal: those
// documents keep no target field, so a Resume run retries them. Run fails when
// the cluster cannot be walked or written, or when every document failed.
func Run(ctx context.Context, cfg Config, m Chatter, progress io.Writer) error {
	_, err := RunStats(ctx, cfg, m, progress)
	return err
}

// RunStats is Run returning its counts.
func RunStats(ctx context.Context, cfg Config, m Chatter, progress io.Writer) (Stats, error) {
	if m == nil && cfg.PDFField == "" {
		return Stats{}, errors.New("cannot enrich without a model: set the model URL")
	}
	return RunModels(ctx, cfg, Models{Chat: m}, progress)
}

// RunModels is RunStats with keywords, vectors or both. With Resume a document is skipped
// only when it has every field this run writes.
func RunModels(ctx context.Context, cfg Config, ms Models, progress io.Writer) (Stats, error) {
	var st Stats
	cfg, err := cfg.withDefaults()
	if err != nil {
		return st, err
	}
	if ms.Chat == nil && ms.Embed == nil && cfg.PDFField == "" {
		return st, errors.New("cannot enrich without a model: set the chat or the embed model URL")
	}
	m := ms.Chat
	if progress == nil {
		progress = io.Discard
	}
	client, err := elastic.NewClient(elastic.SetURL(cfg.ESURL), elastic.SetSniff(false), elastic.SetHealthcheck(false))
	if err != nil {
		return st, fmt.Errorf("cannot connect to %s: %w", cfg.ESURL, err)
	}
	var q elastic.Query = elastic.NewMatchAllQuery()
	if cfg.Resume {
		var missing []elastic.Query
		if ms.Chat != nil {
			missing = append(missing, elastic.NewBoolQuery().MustNot(elastic.NewExistsQuery(cfg.TargetField)))
		}
		if ms.Embed != nil {
			missing = append(missing, elastic.NewBoolQuery().MustNot(elastic.NewExistsQuery(cfg.VectorField)))
		}
		if cfg.PDFField != "" {
			missing = append(missing, elastic.NewBoolQuery().MustNot(elastic.NewExistsQuery(cfg.PDFTextField)))
		}
		if cfg.VideoField != "" {
			missing = append(missing, elastic.NewBoolQuery().Must(elastic.NewExistsQuery(cfg.VideoField)).
				MustNot(elastic.NewNestedQuery(cfg.MomentsField, elastic.NewExistsQuery(cfg.MomentsField+".start"))))
		}
		q = missing[0]
		if len(missing) > 1 {
			q = elastic.NewBoolQuery().Should(missing...).MinimumNumberShouldMatch(1)
		}
	}
	total, err := client.Count(cfg.Index).Query(q).Do(ctx)
	if err != nil {
		return st, fmt.Errorf("cannot count documents of %s: %w", cfg.Index, err)
	}
	st.Total = int(total)

	p, err := openPIT(ctx, client, cfg.Index)
	if err != nil {
		return st, err
	}
	defer p.close(client)

	e := &enricher{cfg: cfg, m: m, emb: ms.Embed, http: &http.Client{Timeout: cfg.Image.FetchTimeout}, client: client,
		decodes: newDecodeGate(cfg)}
	if cfg.PDFField != "" {
		if e.docs, err = document.NewReader(cfg.Document); err != nil {
			return st, err
		}
	}
	if cfg.VideoField != "" {
		if e.videos, err = newVideoFetcher(cfg.Image); err != nil {
			return st, err
		}
	}
	if cfg.Rate > 0 {
		e.interval = time.Duration(float64(time.Second) / cfg.Rate)
	}
	bar := newBar(progress, st.Total)
	fetch := []string{cfg.ImageField}
	if cfg.PDFField != "" {
		fetch = append(fetch, cfg.PDFField)
	}
	if cfg.VideoField != "" {
		if ms.Chat == nil && ms.Embed == nil {
			return st, errors.New("cannot index videos without a model: set the chat or the embed model URL")
		}
		if ms.Chat == nil && cfg.VideoInput == VideoURL {
			return st, errors.New("cannot send videos as video_url without a chat model: set the chat model URL")
		}
		fetch = append(fetch, cfg.VideoField)
	}
	if cfg.Resume {
		fetch = append(fetch, cfg.TargetField, cfg.VectorField) // what is already there is not redone
		if cfg.VideoField != "" {
			fetch = append(fetch, cfg.MomentsField+".start")
		}
	}
	var after []any
	for {
		svc := client.Search().PointInTime(elastic.NewPointInTimeWithKeepAlive(p.id, "5m")).
			Query(q).Size(cfg.BatchSize).SortBy(p.sorter).
			FetchSourceContext(elastic.NewFetchSourceContext(true).Include(fetch...))
		if after != nil {
			svc = svc.SearchAfter(after...)
		}
		res, err := svc.Do(ctx)
		if err != nil {
			return st, fmt.Errorf("cannot walk %s: %w", cfg.Index, err)
		}
		if res.PitId != "" {
			p.id = res.PitId
		}
		hits := res.Hits.Hits
		if len(hits) == 0 {
			break
		}
		after = hits[len(hits)-1].Sort
		updates, err := e.batch(ctx, hits, &st, progress)
		if err != nil {
			return st, err
		}
		if len(updates) > 0 {
			bulk := client.Bulk()
			for _, u := range updates {
				bulk.Add(u)
			}
			br, err := bulk.Do(ctx)
			if err != nil {
				return st, fmt.Errorf("cannot write enrichment to %s: %w", cfg.Index, err)
			}
			for _, item := range br.Failed() {
				st.Done--
				st.Failed++
				fmt.Fprintf(progress, "\ndoc %s: cannot update: %v\n", item.Id, item.Error)
			}
		}
		bar.draw(st)
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
	}
	bar.finish(st)
	if st.Done == 0 && st.Failed > 0 {
		return st, fmt.Errorf("cannot enrich %s: all %d documents failed", cfg.Index, st.Failed)
	}
	if st.Done == 0 && st.Videos == 0 && st.VideoFailed > 0 {
		return st, fmt.Errorf("cannot index the videos of %s: all %d failed", cfg.Index, st.VideoFailed)
	}
	return st, nil
}

type enricher struct {
	cfg    Config
	m      Chatter
	docs   *document.Reader // nil without PDFField
	emb    Embedder
	client *elastic.Client
	mapped bool // the vector field exists (checked or created)
	// momentsMapped: the moments field exists (checked or created).
	momentsMapped bool
	http          *http.Client
	videos        *media.Fetcher // video URLs: media's allow list, redirects and post-DNS address check
	interval      time.Duration
	decodes       *media.Gate // image decodes in flight, across the run's workers

	clip clipState // video_url input

	mu   sync.Mutex
	next time.Time
}

// wait paces model calls to cfg.Rate.
func (e *enricher) wait(ctx context.Context) error {
	if e.interval == 0 {
		return nil
	}
	e.mu.Lock()
	now := time.Now()
	if e.next.Before(now) {
		e.next = now
	}
	at := e.next
	e.next = e.next.Add(e.interval)
	e.mu.Unlock()
	t := time.NewTimer(time.Until(at))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// batch enriches one page of hits concurrently and returns the bulk updates.
func (e *enricher) batch(ctx context.Context, hits []*elastic.SearchHit, st *Stats, progress io.Writer) ([]elastic.BulkableRequest, error) {
	type result struct {
		hit     *elastic.SearchHit
		doc     map[string]any
		dim     int
		err     error
		text    string
		textErr error
		moments []video.Segment
		vinfo   video.Info
		mdim    int
		momErr  error
	}
	results := make([]result, len(hits))
	sem := make(chan struct{}, e.cfg.Concurrency)
	var wg sync.WaitGroup
	for i, h := range hits {
		results[i].hit = h
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if e.m != nil || e.emb != nil {
				results[i].doc, results[i].dim, results[i].err = e.document(ctx, h)
			} else {
				results[i].err = errNoImage
			}
			if e.docs != nil {
				results[i].text, results[i].textErr = e.pdfText(ctx, h)
			}
			if e.cfg.VideoField != "" {
				results[i].moments, results[i].vinfo, results[i].mdim, results[i].momErr = e.moments(ctx, h)
			} else {
				results[i].momErr = errNoVideo
			}
		}()
	}
	wg.Wait()
	st.VideoClips, st.VideoFallback = int(e.clip.clips.Load()), e.clip.fallback()
	st.SegmentsDropped, st.SegmentsMerged = int(e.clip.dropped.Load()), int(e.clip.merged.Load())
	var out []elastic.BulkableRequest
	for _, r := range results {
		doc := map[string]any{}
		switch {
		case errors.Is(r.err, errNoImage):
			st.NoImage++
		case r.err != nil:
			st.Failed++
			fmt.Fprintf(progress, "\ndoc %s: %v\n", r.hit.Id, r.err)
		default:
			if r.dim > 0 && !e.mapped {
				if err := e.ensureVectorField(ctx, r.hit.Index, r.dim); err != nil {
					return nil, err
				}
			}
			st.Done++
			doc = r.doc
		}
		switch {
		case errors.Is(r.textErr, errNoPDF):
		case r.textErr != nil:
			st.PDFFailed++
			fmt.Fprintf(progress, "\ndoc %s: %v\n", r.hit.Id, r.textErr)
		case r.text != "":
			st.PDFText++
			if doc == nil {
				doc = map[string]any{}
			}
			doc[e.cfg.PDFTextField] = r.text
		}
		st.SampleCPU += r.vinfo.CPU
		switch {
		case errors.Is(r.momErr, errNoVideo):
		case r.momErr != nil:
			st.VideoFailed++
			fmt.Fprintf(progress, "\ndoc %s: %v\n", r.hit.Id, r.momErr)
		default:
			if !e.momentsMapped {
				if err := e.ensureMomentsField(ctx, r.hit.Index, r.mdim); err != nil {
					return nil, err
				}
			}
			st.Videos++
			st.VideoSeconds += r.vinfo.Duration.Seconds()
			st.Moments += len(r.moments)
			if doc == nil {
				doc = map[string]any{}
			}
			doc[e.cfg.MomentsField] = r.moments
		}
		if len(doc) > 0 {
			out = append(out, elastic.NewBulkUpdateRequest().Index(r.hit.Index).Id(r.hit.Id).Doc(doc))
		}
	}
	return out, nil
}

var (
	errNoImage = errors.New("document has no image")
	errNoPDF   = errors.New("document has no PDF attachment")
)

// pdfText reads the text of a hit's PDF attachment under the document limits
// ("" for a scan: its pages have images, no text).
func (e *enricher) pdfText(ctx context.Context, h *elastic.SearchHit) (string, error) {
	var src map[string]any
	if err := json.Unmarshal(h.Source, &src); err != nil {
		return "", fmt.Errorf("cannot read _source: %w", err)
	}
	v, _ := lookup(src, e.cfg.PDFField).(string)
	if v = strings.TrimSpace(v); v == "" {
		return "", errNoPDF
	}
	raw, err := e.loadBytes(ctx, v, e.cfg.Document.MaxBytes, "PDF")
	if err != nil {
		return "", err
	}
	if document.Sniff(raw) != "pdf" {
		return "", fmt.Errorf("cannot read the attachment %.60q: not a PDF", v)
	}
	doc, err := e.docs.Read(ctx, raw)
	if err != nil {
		return "", fmt.Errorf("cannot read the attachment %.60q: %w", v, err)
	}
	return strings.TrimSpace(doc.Text()), nil
}

// document returns the partial document for one hit (keywords and/or vector) and the
// vector's dimension (0 without one).
func (e *enricher) document(ctx context.Context, h *elastic.SearchHit) (map[string]any, int, error) {
	var src map[string]any
	if err := json.Unmarshal(h.Source, &src); err != nil {
		return nil, 0, fmt.Errorf("cannot read _source: %w", err)
	}
	v, _ := lookup(src, e.cfg.ImageField).(string)
	if strings.TrimSpace(v) == "" {
		return nil, 0, errNoImage
	}
	raw, err := e.load(ctx, strings.TrimSpace(v))
	if err != nil {
		return nil, 0, err
	}
	doc := map[string]any{}
	dim := 0
	wantVector := e.emb != nil && !(e.cfg.Resume && lookup(src, e.cfg.VectorField) != nil)
	wantKeywords := e.m != nil && !(e.cfg.Resume && lookup(src, e.cfg.TargetField) != nil)
	if !wantVector && !wantKeywords {
		return doc, 0, nil
	}
	// Both models get the photo as a query with it would: as sent when it is a JPEG within the
	// pixel budget (rewrite forwards such a JPEG untouched), else decoded and downscaled, the
	// decode under the run's gate.
	img, err := e.decodes.Process(ctx, raw, &e.cfg.Image)
	if err != nil {
		return nil, 0, err
	}
	if wantVector {
		uri := "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(img.JPEG)
		if err := e.wait(ctx); err != nil {
			return nil, 0, err
		}
		cctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
		vec, err := e.emb.EmbedOne(cctx, model.EmbedInput{Image: uri})
		cancel()
		if err != nil {
			return nil, 0, fmt.Errorf("cannot embed the image: %w", err)
		}
		doc[e.cfg.VectorField] = vec
		dim = len(vec)
	}
	if wantKeywords {
		if err := e.wait(ctx); err != nil {
			return nil, 0, err
		}
		cctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
		defer cancel()
		resp, err := e.m.Chat(cctx, chatRequest(img.JPEG, e.cfg.MaxKeywords))
		if err != nil {
			return nil, 0, fmt.Errorf("cannot get keywords: %w", err)
		}
		kw, err := rewrite.ParseKeywords(resp.Content, e.cfg.MaxKeywords)
		if err != nil {
			return nil, 0, fmt.Errorf("cannot parse keywords from %.80q: %w", resp.Content, err)
		}
		doc[e.cfg.TargetField] = phrases(kw)
	}
	return doc, dim, nil
}

// phrases flattens the answer into searchable phrases: keywords, then the
// category and attribute values not already present.
func phrases(kw rewrite.Keywords) []string {
	out := append([]string(nil), kw.Keywords...)
	seen := map[string]bool{}
	for _, k := range out {
		seen[strings.ToLower(k)] = true
	}
	add := func(s string) {
		if s != "" && !seen[strings.ToLower(s)] {
			seen[strings.ToLower(s)] = true
			out = append(out, s)
		}
	}
	add(kw.Category)
	for _, a := range []string{"colour", "material", "pattern", "style", "gender", "season", "usage"} {
		add(kw.Attributes[a])
	}
	return out
}

// lookup reads a dotted field path from a _source map.
func lookup(src map[string]any, path string) any {
	var cur any = src
	for part := range strings.SplitSeq(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

// load reads the image a field value names: URL, data URI/base64 or file path.
func (e *enricher) load(ctx context.Context, v string) ([]byte, error) {
	return e.loadBytes(ctx, v, e.cfg.Image.MaxBytes, "image")
}

// loadBytes reads what a field value names, at most maxBytes: URL, data URI/base64 or file path.
func (e *enricher) loadBytes(ctx context.Context, v string, maxBytes int, what string) ([]byte, error) {
	lower := strings.ToLower(v[:min(len(v), 8)])
	switch {
	case strings.HasPrefix(lower, "http://"), strings.HasPrefix(lower, "https://"):
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, v, nil)
		if err != nil {
			return nil, fmt.Errorf("cannot fetch %s %s: %w", what, v, err)
		}
		resp, err := e.http.Do(req)
		if err != nil {
			return nil, fmt.Errorf("cannot fetch %s: %w", what, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("cannot fetch %s %s: status %d", what, v, resp.StatusCode)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, int64(maxBytes)+1))
		if err != nil {
			return nil, fmt.Errorf("cannot read %s %s: %w", what, v, err)
		}
		if len(b) > maxBytes {
			return nil, fmt.Errorf("cannot use %s %s: larger than %d bytes", what, v, maxBytes)
		}
		return b, nil
	case strings.HasPrefix(lower, "data:"):
		return media.DecodeString(v, maxBytes)
	}
	p := v
	if !filepath.IsAbs(p) && e.cfg.ImageDir != "" {
		p = filepath.Join(e.cfg.ImageDir, p)
	}
	if st, err := os.Stat(p); err == nil && !st.IsDir() {
		if st.Size() > int64(maxBytes) {
			return nil, fmt.Errorf("cannot use %s %s: larger than %d bytes", what, p, maxBytes)
		}
		return os.ReadFile(p)
	}
	if b, err := media.DecodeString(v, maxBytes); err == nil {
		return b, nil
	}
	return nil, fmt.Errorf("cannot load %s %.60q: not a URL, base64 or readable file", what, v)
}

// newDecodeGate bounds the run's image decodes to Image.MaxDecodes. Its queue holds every
// worker, so a decode waits for a slot instead of being refused as a query's would be.
func newDecodeGate(cfg Config) *media.Gate {
	return media.NewGate(&media.Config{MaxDecodes: cfg.Image.MaxDecodes, MaxDecodeQueue: cfg.Concurrency})
}
