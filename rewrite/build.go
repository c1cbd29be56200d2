package rewrite

import (
	"strconv"
	"strings"
	"unicode/utf8"
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
		dst = appendString(dst, k)
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
				dst = appendString(dst, f[0])
				dst = append(dst, `:{"query":`...)
				dst = appendString(dst, f[1])
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
				dst = appendString(dst, f[0])
				dst = append(dst, `:{"query":`...)
				dst = appendString(dst, f[1])
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
	dst = appendString(dst, text)
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
		dst = appendString(dst, f)
	}
	return append(dst, ']')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
