package rewrite

import (
	"github.com/vlproxy/vlproxy/internal/esjson"

	"strconv"
	"strings"
)

// textBoost weighs the shopper's own words above the generated phrases.
const textBoost = 2

// appendKeywordQuery appends the standard query that replaces a clause: the
// original text and one multi_match per keyword phrase in a bool.should, plus
// attribute filters and boosts mapped through the profile.
func appendKeywordQuery(dst []byte, c *clause, fields []string, kw *Keywords, attrs []AttributeMapping) []byte {
	var filters, boosts [][2]string // field, value
	var boostW []float64
	if c.Attributes {
		for _, m := range attrs {
			v := kw.Attributes[m.Attribute]
			if m.Attribute == "category" {
				v = kw.Category
			}
			if v == "" {
				continue
			}
			if m.As == "filter" {
				filters = append(filters, [2]string{m.Field, v})
			} else {
				boosts = append(boosts, [2]string{m.Field, v})
				boostW = append(boostW, m.Boost)
			}
		}
	}
	wrapped := len(filters) > 0 || len(boosts) > 0

	dst = append(dst, `{"bool":{`...)
	if wrapped {
		dst = append(dst, `"must":[{"bool":{`...)
	}
	dst = append(dst, `"should":[`...)
	n := 0
	if c.Text != "" {
		dst = appendMultiMatch(dst, c.Text, fields, c, textBoost)
		n++
	}
	for _, k := range kw.Keywords {
		if strings.EqualFold(k, c.Text) {
			continue // the text clause already carries it, with more weight
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"multi_match":{"query":`...)
		dst = esjson.AppendString(dst, k)
		dst = appendFields(dst, fields)
		dst = append(dst, `,"type":"best_fields"}}`...)
		n++
	}
	dst = append(dst, `],"minimum_should_match":1`...)
	if wrapped {
		dst = append(dst, `}}]`...)
		if len(filters) > 0 {
			dst = append(dst, `,"filter":[`...)
			for i, f := range filters {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, `{"match":{`...)
				dst = esjson.AppendString(dst, f[0])
				dst = append(dst, `:{"query":`...)
				dst = esjson.AppendString(dst, f[1])
				dst = append(dst, `,"operator":"and"}}}`...)
			}
			dst = append(dst, ']')
		}
		if len(boosts) > 0 {
			dst = append(dst, `,"should":[`...)
			for i, f := range boosts {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, `{"match":{`...)
				dst = esjson.AppendString(dst, f[0])
				dst = append(dst, `:{"query":`...)
				dst = esjson.AppendString(dst, f[1])
				dst = append(dst, `,"boost":`...)
				dst = strconv.AppendFloat(dst, boostW[i], 'g', -1, 64)
				dst = append(dst, `}}}`...)
			}
			dst = append(dst, ']')
		}
	}
	if c.Boost != 0 {
		dst = append(dst, `,"boost":`...)
		dst = strconv.AppendFloat(dst, c.Boost, 'g', -1, 64)
	}
	return append(dst, `}}`...)
}

// appendTextQuery appends the plain-text query used when rewriting is off or
// the model failed: one multi_match on the clause's text.
func appendTextQuery(dst []byte, c *clause, fields []string) []byte {
	return appendMultiMatch(dst, c.Text, fields, c, c.Boost)
}

// appendMatchNone appends the query an image-only clause becomes without a model
// when fallback.image_only is "empty" or rewriting is off.
func appendMatchNone(dst []byte) []byte { return append(dst, `{"match_none":{}}`...) }

func appendMultiMatch(dst []byte, text string, fields []string, c *clause, boost float64) []byte {
	dst = append(dst, `{"multi_match":{"query":`...)
	dst = esjson.AppendString(dst, text)
	dst = appendFields(dst, fields)
	if c.Operator != "" {
		dst = append(dst, `,"operator":"`...)
		dst = append(dst, c.Operator...)
		dst = append(dst, '"')
	}
	if c.MinimumShouldMatch != "" {
		dst = append(dst, `,"minimum_should_match":`...)
		dst = append(dst, c.MinimumShouldMatch...)
	}
	if boost != 0 {
		dst = append(dst, `,"boost":`...)
		dst = strconv.AppendFloat(dst, boost, 'g', -1, 64)
	}
	return append(dst, `}}`...)
}

func appendFields(dst []byte, fields []string) []byte {
	if len(fields) == 0 {
		return dst // multi_match then searches index.query.default_field
	}
	dst = append(dst, `,"fields":[`...)
	for i, f := range fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = esjson.AppendString(dst, f)
	}
	return append(dst, ']')
}
