package rewrite

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/vlproxy/vlproxy/document"
	"github.com/vlproxy/vlproxy/internal/eserr"
	"github.com/vlproxy/vlproxy/internal/esjson"
	"github.com/vlproxy/vlproxy/media"
	"github.com/vlproxy/vlproxy/model"
)

// DocumentConfig configures `multimodal.document`: the limits of the document
// itself and of its table extraction.
type DocumentConfig struct {
	// Limits on one document (bytes, pages, objects, pixels per page, decoded bytes, time).
	document.Limits `yaml:",inline"`
	// MaxRows is the most table rows taken from a document; each becomes one query (and one
	// sub-search with group_by_row). Default 20.
	MaxRows int `yaml:"max_rows"`
	// MaxModelPages is the most pages sent to the model, one call each. Default 4.
	MaxModelPages int `yaml:"max_model_pages"`
	// MaxTokens is the completion budget of one extraction call. Default 1024.
	MaxTokens int `yaml:"max_tokens"`
	// Timeout bounds the extraction of one document (all its model calls). Default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

func (c *DocumentConfig) withDefaults() error {
	lim, err := c.Limits.WithDefaults()
	if err != nil {
		return err
	}
	c.Limits = lim
	if c.MaxRows == 0 {
		c.MaxRows = 20
	}
	if c.MaxModelPages == 0 {
		c.MaxModelPages = 4
	}
	if c.MaxTokens == 0 {
		c.MaxTokens = 1024
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.MaxRows < 1 || c.MaxRows > 200 {
		return fmt.Errorf("cannot use document.max_rows %d: want 1..200", c.MaxRows)
	}
	return nil
}

// DocumentPromptVersion names the table prompt; it is part of the row cache key.
const DocumentPromptVersion = "rows-1"

// RowsSchemaName is the json_schema name of the table extraction request; a
// model server may recognise it (the project's local OCR model does).
const RowsSchemaName = "vlproxy_table_rows"

// Group is one row of a group_by_row clause and the body searching for it alone.
type Group struct {
	Row  document.Row `json:"row"`
	Body []byte       `json:"-"`
}

var (
	documentsRead = promauto.NewCounter(prometheus.CounterOpts{Name: "vlproxy_rewrite_documents_total",
		Help: "Client documents (PDFs, page photos) read from multimodal clauses."})
	documentPages = promauto.NewCounter(prometheus.CounterOpts{Name: "vlproxy_rewrite_document_pages_total",
		Help: "Pages of the client documents read."})
	documentRowsOK = promauto.NewCounter(prometheus.CounterOpts{Name: "vlproxy_rewrite_document_rows_total",
		Help: "Table rows read from client documents."})
)

// documentBytes turns the clause's document string into bytes: a data URI
// (application/pdf or image/*), raw base64, or an allowed http(s) URL.
func (r *Rewriter) documentBytes(ctx context.Context, s string) ([]byte, error) {
	lower := strings.ToLower(s[:min(len(s), 16)])
	limit := r.cfg.Document.MaxBytes
	switch {
	case strings.HasPrefix(lower, "http://"), strings.HasPrefix(lower, "https://"):
		in, err := r.docURLs.Load(ctx, s)
		if err != nil {
			return nil, err
		}
		b := bytes.Clone(in.Raw)
		in.Release()
		return b, nil
	case strings.HasPrefix(lower, "data:"):
		meta, payload, ok := strings.Cut(s[len("data:"):], ",")
		if !ok {
			return nil, illegalArgument("cannot parse [multimodal] [document]: data URI without a comma")
		}
		mt, isB64 := strings.CutSuffix(strings.ToLower(meta), ";base64")
		if !isB64 {
			return nil, illegalArgument("cannot parse [multimodal] [document]: only base64 data URIs are supported")
		}
		if mt != "" && mt != "application/pdf" && !strings.HasPrefix(mt, "image/") {
			return nil, illegalArgument("cannot parse [multimodal] [document]: media type %q is not a PDF or an image", mt)
		}
		s = payload
	case strings.Contains(lower, "://"):
		return nil, illegalArgument("cannot use [multimodal] [document]: only data URIs, base64 and http(s) URLs are supported")
	}
	if len(s)/4*3 > limit+limit/32+64 {
		return nil, eserr.New(413, eserr.TypeTooLarge, fmt.Sprintf("cannot accept [multimodal] [document]: larger than document.max_bytes (%d bytes)", limit))
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, illegalArgument("cannot decode [multimodal] [document]: invalid base64")
}

// rewriteDocument replaces a document clause by the query of its table rows.
func (r *Rewriter) rewriteDocument(ctx context.Context, c *clause, prof *Profile, mode Mode, dst []byte) ([]byte, clauseOutcome, error) {
	var o clauseOutcome
	fields := prof.Fields
	if c.hasFields {
		fields = c.Fields
	}
	raw, err := r.documentBytes(ctx, c.Document)
	if err != nil {
		o.status = "error"
		return dst, o, err
	}
	doc, err := r.docs.Read(ctx, raw)
	if err != nil {
		o.status = "error"
		return dst, o, err
	}
	documentsRead.Inc()
	documentPages.Add(float64(len(doc.Pages)))
	o.doc = doc
	o.query = Query{Text: c.Text, Key: fmt.Sprintf("%x", doc.Sum[:16])}

	var rows []document.Row
	if mode == ModeOff {
		o.status = "off"
		rows = document.TextRows(doc, r.cfg.Document.MaxRows)
	} else {
		var hit bool
		rows, hit, err = r.documentRows(ctx, doc, &o)
		switch {
		case err == nil:
			o.status = "applied"
			if hit {
				o.status = "cached"
			}
		default:
			o.reason = model.Reason(err)
			if errors.Is(err, errNoModel) {
				o.reason = "no_model"
			} else if errors.Is(err, document.ErrNoRows) {
				o.reason = "no_rows"
			}
			o.status = "fallback:" + o.reason
			r.log.LogAttrs(ctx, slog.LevelWarn, "document rows fell back", slog.String("reason", o.reason), slog.Any("err", err))
			rows = document.TextRows(doc, r.cfg.Document.MaxRows) // a text PDF still has its table
			if len(rows) == 0 && c.Text == "" {
				if r.cfg.Fallback.ImageOnly == "empty" {
					return appendMatchNone(dst), o, nil
				}
				return dst, o, modelUnavailable(o.reason, err)
			}
		}
	}
	o.rows = rows
	documentRowsOK.Add(float64(len(rows)))
	if len(rows) == 0 {
		if c.Text != "" {
			return appendTextQuery(dst, c, fields), o, nil
		}
		return appendMatchNone(dst), o, nil
	}
	dst = appendRowsQuery(dst, c, fields, rows, prof.Attributes)
	if c.GroupByRow {
		o.rowQueries = make([][]byte, len(rows))
		for i := range rows {
			o.rowQueries[i] = appendRowQuery(nil, c, fields, &rows[i], prof.Attributes, c.Boost)
		}
	}
	return dst, o, nil
}

// documentRows asks the model (through the cache, keyed by the document's
// hash) for the document's table rows.
func (r *Rewriter) documentRows(ctx context.Context, doc *document.Document, o *clauseOutcome) ([]document.Row, bool, error) {
	if r.model == nil {
		return nil, false, errNoModel
	}
	call := func(ctx context.Context) ([]document.Row, error) {
		ctx, cancel := context.WithTimeout(ctx, r.cfg.Document.Timeout)
		defer cancel()
		return r.extractRows(ctx, doc)
	}
	start := time.Now()
	if r.cache == nil {
		rows, err := call(ctx)
		o.modelTime = time.Since(start)
		return rows, false, err
	}
	key := r.rowsKey(doc)
	val, hit, err := r.cache.Do(ctx, key, func(ctx context.Context) ([]byte, error) {
		rows, err := call(ctx)
		if err != nil {
			return nil, err
		}
		return json.Marshal(rows)
	})
	if !hit {
		o.modelTime = time.Since(start)
	}
	if err != nil {
		var me *model.Error
		if errors.As(err, &me) || errors.Is(err, document.ErrNoRows) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return nil, false, err
		}
		rows, err := call(ctx) // a cache fault is a miss
		return rows, false, err
	}
	var rows []document.Row
	if json.Unmarshal(val, &rows) != nil || len(rows) == 0 {
		rows, err = call(ctx)
		return rows, false, err
	}
	return rows, hit, nil
}

// rowsKey identifies a rows answer: a version byte, model, prompt version, row cap and document hash.
func (r *Rewriter) rowsKey(doc *document.Document) []byte {
	name := r.model.Name()
	key := make([]byte, 0, 64+len(name))
	key = append(key, 3, 'd', 'o', 'c', 0)
	key = append(key, name...)
	key = append(key, 0)
	key = append(key, DocumentPromptVersion...)
	key = append(key, 0)
	key = strconv.AppendInt(key, int64(r.cfg.Document.MaxRows), 10)
	key = append(key, 0)
	key = strconv.AppendInt(key, int64(r.cfg.Image.PixelBudget), 10)
	key = append(key, 0)
	return append(key, doc.Sum[:]...)
}

// extractRows makes one model call per page (text pages send their text,
// scanned pages their largest image, downscaled to the pixel budget) and
// joins the rows. A page whose answer has no rows is skipped; the first
// model error ends the extraction.
func (r *Rewriter) extractRows(ctx context.Context, doc *document.Document) ([]document.Row, error) {
	var rows []document.Row
	calls := 0
	for i := range doc.Pages {
		p := &doc.Pages[i]
		if calls == r.cfg.Document.MaxModelPages || len(rows) >= r.cfg.Document.MaxRows {
			break
		}
		var part model.Part
		switch {
		case len(p.Lines) >= 2:
			var b strings.Builder
			for _, l := range p.Lines {
				b.WriteString(l.Text())
				b.WriteByte('\n')
			}
			part = model.TextPart(b.String())
		case len(p.Images) > 0:
			q, err := r.decodes.Process(ctx, p.Images[0].Data, &r.cfg.Image) // under the query images' decode bound
			if err != nil {
				return nil, err
			}
			part = model.ImagePart(media.JPEGURI(q.JPEG, ""))
		default:
			continue
		}
		calls++
		modelCalls.Inc()
		resp, err := r.model.Chat(ctx, r.rowsRequest(part))
		if err != nil {
			return nil, err
		}
		got, err := document.ParseRows(resp.Content, r.cfg.Document.MaxRows-len(rows))
		if err != nil {
			continue
		}
		rows = append(rows, got...)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("cannot extract rows from %d pages: %w", calls, document.ErrNoRows)
	}
	return rows, nil
}

const (
	rowsSystem = "You read order sheets and price lists for an e-commerce catalogue. " +
		"Extract every table row that names a product. Reply with JSON only."
	rowsText  = "Below is the text of one page; table cells are separated by \" | \".\n\n%s\n"
	rowsImage = "The image is one page of the document."
	rowsAsk   = " Give every product row as {\"item\": product name, \"attributes\": {\"colour\", \"size\", \"brand\"}, " +
		"\"quantity\": number, \"price\": number}. Leave out attributes, quantities and prices the row does not give; " +
		"skip headers, totals and notes. At most %d rows."
)

func (r *Rewriter) rowsRequest(part model.Part) *model.ChatRequest {
	var user []model.Part
	ask := fmt.Sprintf(rowsAsk, r.cfg.Document.MaxRows)
	if part.Type == "image_url" {
		user = []model.Part{part, model.TextPart(rowsImage + ask)}
	} else {
		user = []model.Part{model.TextPart(fmt.Sprintf(rowsText, part.Text) + ask)}
	}
	return &model.ChatRequest{
		Messages:       []model.Message{{Role: "system", Text: rowsSystem}, {Role: "user", Parts: user}},
		MaxTokens:      r.cfg.Document.MaxTokens,
		Temperature:    0,
		TopP:           1,
		Seed:           &seed,
		ResponseFormat: json.RawMessage(formatRows),
	}
}

var formatRows = buildRowsFormat()

func buildRowsFormat() string {
	attrs := map[string]any{}
	for _, a := range document.AttributeNames {
		attrs[a] = map[string]any{"type": "string"}
	}
	row := map[string]any{
		"type": "object",
		"properties": map[string]any{
			"item":       map[string]any{"type": "string"},
			"attributes": map[string]any{"type": "object", "properties": attrs, "additionalProperties": false},
			"quantity":   map[string]any{"type": "number"},
			"price":      map[string]any{"type": "number"},
		},
		"required": []string{"item"},
	}
	f := map[string]any{
		"type": "json_schema",
		"json_schema": map[string]any{
			"name":   RowsSchemaName,
			"strict": true,
			"schema": map[string]any{
				"type":       "object",
				"properties": map[string]any{"rows": map[string]any{"type": "array", "items": row}},
				"required":   []string{"rows"},
			},
		},
	}
	b, err := json.Marshal(f)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// appendRowsQuery appends the query of a document clause: any of its rows.
func appendRowsQuery(dst []byte, c *clause, fields []string, rows []document.Row, attrs []AttributeMapping) []byte {
	dst = append(dst, `{"bool":{"should":[`...)
	for i := range rows {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendRowQuery(dst, c, fields, &rows[i], attrs, 0)
	}
	dst = append(dst, `],"minimum_should_match":1`...)
	if c.Boost != 0 {
		dst = append(dst, `,"boost":`...)
		dst = strconv.AppendFloat(dst, c.Boost, 'g', -1, 64)
	}
	return append(dst, `}}`...)
}

// unmappedBoost weighs a row attribute the profile does not map: it is
// searched in the clause's fields, below the item name.
const unmappedBoost = 0.5

// appendRowQuery appends one row's query: a multi_match on the item name,
// with the row's attributes as filters or boosts through the profile's
// mapping, and unmapped ones as weak multi_match boosts.
func appendRowQuery(dst []byte, c *clause, fields []string, row *document.Row, attrs []AttributeMapping, boost float64) []byte {
	dst = append(dst, `{"bool":{"must":[`...)
	if split := splitJoined(row.Item); split != "" {
		// OCR drops narrow spaces ("WoolScarf"): either spelling may match.
		dst = append(dst, `{"bool":{"should":[`...)
		dst = appendMultiMatch(dst, row.Item, fields, c, 0)
		dst = append(dst, ',')
		dst = appendMultiMatch(dst, split, fields, c, 0)
		dst = append(dst, `],"minimum_should_match":1}}`...)
	} else {
		dst = appendMultiMatch(dst, row.Item, fields, c, 0)
	}
	dst = append(dst, ']')
	var filters, shoulds []byte
	for _, name := range document.AttributeNames {
		v := row.Attributes[name]
		if v == "" {
			continue
		}
		mapped := false
		for _, m := range attrs {
			if m.Attribute != name {
				continue
			}
			mapped = true
			if m.As == "filter" {
				filters = appendMatch(appendComma(filters), m.Field, v, `,"operator":"and"`)
			} else {
				shoulds = appendMatch(appendComma(shoulds), m.Field, v, `,"boost":`+strconv.FormatFloat(m.Boost, 'g', -1, 64))
			}
		}
		if !mapped {
			shoulds = append(appendComma(shoulds), `{"multi_match":{"query":`...)
			shoulds = esjson.AppendString(shoulds, v)
			shoulds = appendFields(shoulds, fields)
			shoulds = append(shoulds, `,"boost":`...)
			shoulds = strconv.AppendFloat(shoulds, unmappedBoost, 'g', -1, 64)
			shoulds = append(shoulds, `}}`...)
		}
	}
	if len(filters) > 0 {
		dst = append(dst, `,"filter":[`...)
		dst = append(dst, filters...)
		dst = append(dst, ']')
	}
	if len(shoulds) > 0 {
		dst = append(dst, `,"should":[`...)
		dst = append(dst, shoulds...)
		dst = append(dst, ']')
	}
	if boost != 0 {
		dst = append(dst, `,"boost":`...)
		dst = strconv.AppendFloat(dst, boost, 'g', -1, 64)
	}
	return append(dst, `}}`...)
}

// splitJoined splits words that OCR ran together at a lower-to-upper case
// change ("WoolScarf" → "Wool Scarf"); "" when there is none.
func splitJoined(s string) string {
	var b strings.Builder
	prev := rune(0)
	split := false
	for _, r := range s {
		if unicode.IsUpper(r) && unicode.IsLower(prev) {
			b.WriteByte(' ')
			split = true
		}
		b.WriteRune(r)
		prev = r
	}
	if !split {
		return ""
	}
	return b.String()
}

func appendComma(b []byte) []byte {
	if len(b) > 0 {
		return append(b, ',')
	}
	return b
}

func appendMatch(dst []byte, field, value, extra string) []byte {
	dst = append(dst, `{"match":{`...)
	dst = esjson.AppendString(dst, field)
	dst = append(dst, `:{"query":`...)
	dst = esjson.AppendString(dst, value)
	dst = append(dst, extra...)
	return append(dst, `}}}`...)
}

// documentExplain summarises a document for explain.
type documentExplain struct {
	Kind    string `json:"kind"`
	Pages   int    `json:"pages"`
	Text    bool   `json:"text"`
	Images  int    `json:"images"`
	Objects int    `json:"objects,omitempty"`
	SHA256  string `json:"sha256"`
}

func explainDocument(d *document.Document) *documentExplain {
	e := &documentExplain{Kind: d.Kind, Pages: len(d.Pages), Text: d.HasText(), Objects: d.Objects, SHA256: fmt.Sprintf("%x", d.Sum)}
	for _, p := range d.Pages {
		e.Images += len(p.Images)
	}
	return e
}
