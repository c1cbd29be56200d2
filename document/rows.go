package document

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Row is one line of an order sheet or price list.
type Row struct {
	Item       string            `json:"item"`
	Attributes map[string]string `json:"attributes,omitempty"` // colour, size, brand
	Quantity   float64           `json:"quantity,omitempty"`
	Price      float64           `json:"price,omitempty"`
}

// AttributeNames are the row attributes asked for and kept.
var AttributeNames = []string{"colour", "size", "brand"}

var attributeAliases = map[string]string{
	"colour": "colour", "color": "colour", "颜色": "colour", "顏色": "colour",
	"size": "size", "尺码": "size", "尺寸": "size", "规格": "size",
	"brand": "brand", "品牌": "brand",
}

// ErrNoRows is returned when the content holds no usable row.
var ErrNoRows = errors.New("no usable table rows")

const (
	maxItemRunes = 96
	maxAttrRunes = 48
)

// ParseRows reads a model's table answer defensively: {"rows":[…]}, the same
// inside ``` fences or after chatter, or a bare array of rows. Rows without
// an item are dropped, strings are cleaned, numbers may be strings with
// currency signs; at most max rows are kept.
func ParseRows(content string, max int) ([]Row, error) {
	s := strings.TrimSpace(content)
	if i := strings.Index(s, "```"); i >= 0 {
		inner := s[i+3:]
		if nl := strings.IndexByte(inner, '\n'); nl >= 0 && !strings.ContainsAny(inner[:nl], "{[") {
			inner = inner[nl+1:]
		}
		if j := strings.Index(inner, "```"); j >= 0 {
			inner = inner[:j]
		}
		s = strings.TrimSpace(inner)
	}
	if i := strings.IndexAny(s, "{["); i > 0 {
		s = s[i:]
	}
	var raw []map[string]any
	switch {
	case strings.HasPrefix(s, "{"):
		var obj map[string]any
		if err := json.Unmarshal([]byte(s), &obj); err != nil {
			return nil, ErrNoRows
		}
		for _, k := range []string{"rows", "items", "table", "data"} {
			if arr, ok := obj[k].([]any); ok {
				raw = objects(arr)
				break
			}
		}
	case strings.HasPrefix(s, "["):
		var arr []any
		if err := json.Unmarshal([]byte(s), &arr); err != nil {
			return nil, ErrNoRows
		}
		raw = objects(arr)
	}
	var rows []Row
	for _, m := range raw {
		if row, ok := rowOf(m); ok {
			rows = append(rows, row)
			if len(rows) == max {
				break
			}
		}
	}
	if len(rows) == 0 {
		return nil, ErrNoRows
	}
	return rows, nil
}

func objects(arr []any) []map[string]any {
	out := make([]map[string]any, 0, len(arr))
	for _, v := range arr {
		if m, ok := v.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func rowOf(m map[string]any) (Row, bool) {
	var r Row
	for _, k := range []string{"item", "name", "product", "description", "商品", "品名"} {
		if s, ok := m[k].(string); ok {
			if r.Item = clean(s, maxItemRunes); r.Item != "" {
				break
			}
		}
	}
	if r.Item == "" || isNumber(r.Item) {
		return r, false
	}
	put := func(k string, v any) {
		name, ok := attributeAliases[strings.ToLower(k)]
		if !ok {
			return
		}
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case float64:
			s = strconv.FormatFloat(v, 'f', -1, 64)
		}
		if s = clean(s, maxAttrRunes); s == "" || unknown(s) {
			return
		}
		if r.Attributes == nil {
			r.Attributes = map[string]string{}
		}
		if _, seen := r.Attributes[name]; !seen {
			r.Attributes[name] = s
		}
	}
	if attrs, ok := m["attributes"].(map[string]any); ok {
		for k, v := range attrs {
			put(k, v)
		}
	}
	for k, v := range m {
		put(k, v)
	}
	r.Quantity = number(first(m, "quantity", "qty", "数量"))
	r.Price = number(first(m, "price", "unit_price", "单价", "价格"))
	return r, true
}

func first(m map[string]any, keys ...string) any {
	for _, k := range keys {
		if v, ok := m[k]; ok {
			return v
		}
	}
	return nil
}

// number reads 59.9, "59.90", "$59.90", "¥ 1,299.00" or "2 pcs"; 0 when it is none.
func number(v any) float64 {
	var f float64
	switch v := v.(type) {
	case float64:
		f = v
	case string:
		f, _ = parseNumber(v)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e9 {
		return 0
	}
	return f
}

func parseNumber(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	start := strings.IndexFunc(s, func(r rune) bool { return r >= '0' && r <= '9' })
	if start < 0 {
		return 0, false
	}
	end := start
	for end < len(s) && (s[end] >= '0' && s[end] <= '9' || s[end] == '.' || s[end] == ',') {
		end++
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(s[start:end], ",", ""), 64)
	return f, err == nil
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimLeft(s, "$€£¥")), 64)
	return err == nil
}

func unknown(s string) bool {
	switch strings.ToLower(s) {
	case "unknown", "n/a", "na", "none", "null", "-", "—", "未知", "无":
		return true
	}
	return false
}

// clean trims quotes and punctuation and refuses what is not a short label.
func clean(s string, maxRunes int) string {
	s = strings.Join(strings.Fields(strings.Trim(strings.TrimSpace(s), "\"'`“”‘’:：|")), " ")
	if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxRunes {
		return ""
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == utf8.RuneError || r == '{' || r == '}' {
			return ""
		}
	}
	return s
}

// header names the column each header cell stands for.
var header = map[string]string{
	"item": "item", "items": "item", "product": "item", "name": "item", "description": "item", "article": "item",
	"商品": "item", "品名": "item", "名称": "item", "商品名称": "item",
	"colour": "colour", "color": "colour", "颜色": "colour",
	"size": "size", "尺码": "size", "尺寸": "size", "规格": "size",
	"brand": "brand", "品牌": "brand",
	"qty": "quantity", "quantity": "quantity", "数量": "quantity",
	"price": "price", "unit price": "price", "单价": "price", "价格": "price",
}

// TextRows reads table rows straight from a text PDF's lines, without a
// model: a header line naming an item column (and others of colour, size,
// brand, quantity, price) maps the cells of the lines below it. It is the
// fallback when the model is down; nil when no header is found.
func TextRows(doc *Document, max int) []Row {
	var rows []Row
	for _, p := range doc.Pages {
		var cols []string // column names of the current table
		for _, l := range p.Lines {
			if c := headerOf(l); c != nil {
				cols = c
				continue
			}
			if cols == nil || len(l.Cells) < 2 {
				continue
			}
			m := map[string]any{}
			attrs := map[string]any{}
			for i, cell := range l.Cells {
				if i >= len(cols) || cols[i] == "" {
					continue
				}
				switch cols[i] {
				case "colour", "size", "brand":
					attrs[cols[i]] = cell
				default:
					m[cols[i]] = cell
				}
			}
			m["attributes"] = attrs
			if r, ok := rowOf(m); ok {
				rows = append(rows, r)
				if len(rows) == max {
					return rows
				}
			}
		}
	}
	return rows
}

func headerOf(l Line) []string {
	cols := make([]string, len(l.Cells))
	item := false
	for i, c := range l.Cells {
		cols[i] = header[strings.ToLower(strings.TrimSpace(c))]
		item = item || cols[i] == "item"
	}
	if !item || len(cols) < 2 {
		return nil
	}
	return cols
}
