// Package searchbody parses what a client sends to the search endpoints before the pipeline
// touches it: the `_msearch` NDJSON framing, the `ext.vlproxy` options block (which it removes,
// since ES and OpenSearch reject unknown `ext` keys) and the X-VLProxy-* switch headers.
//
// Everything here is client input, so every function returns an *eserr.Error (ES-shaped, status 400)
// that names the offending line, option or header, and none of them panics on any input.
package searchbody

import (
	"bytes"
	"fmt"
	"github.com/vlproxy/vlproxy/internal/eserr"
	"github.com/vlproxy/vlproxy/internal/httphdr"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

func parseErr(format string, args ...any) *eserr.Error {
	return eserr.New(400, eserr.TypeParsing, fmt.Sprintf(format, args...))
}

func argErr(format string, args ...any) *eserr.Error {
	return eserr.New(400, eserr.TypeIllegalArgument, fmt.Sprintf(format, args...))
}

// Options is the `ext.vlproxy` block of one search body. Rewrite and Rerank are the raw JSON of
// their values (nil when absent); rewrite.ParseOptions and rerank.ParseOptions validate them.
type Options struct {
	Rewrite []byte
	Rerank  []byte
	Explain bool
	Present bool // the body had an ext.vlproxy block
}

// MaybeIntercepted reports whether body can carry anything vlproxy acts on. It is a cheap byte
// scan that lets plain searches skip JSON parsing entirely.
func MaybeIntercepted(body []byte) bool {
	return bytes.Contains(body, []byte("multimodal")) || bytes.Contains(body, []byte("vlproxy"))
}

// ExtractOptions reads `ext.vlproxy` from a search body and returns the body without it (and
// without `ext` when nothing else was in it). A body without the block is returned as is.
// The returned body may share memory with body.
func ExtractOptions(body []byte) (Options, []byte, error) {
	var o Options
	if !bytes.Contains(body, []byte("vlproxy")) {
		return o, body, nil
	}
	if !gjson.ValidBytes(body) {
		return o, nil, parseErr("cannot parse search body: it is not valid JSON")
	}
	ext := gjson.GetBytes(body, "ext")
	if !ext.Exists() {
		return o, body, nil
	}
	if !ext.IsObject() {
		return o, body, nil // ES reports its own error for a malformed ext
	}
	v := ext.Get("vlproxy")
	if !v.Exists() {
		return o, body, nil
	}
	o.Present = true
	if !v.IsObject() {
		return o, nil, parseErr("[ext.vlproxy] must be an object, got %s", kind(v))
	}
	var err error
	v.ForEach(func(k, val gjson.Result) bool {
		switch k.String() {
		case "rewrite": // rewrite.ParseOptions validates the value
			o.Rewrite = []byte(val.Raw)
		case "rerank": // rerank.ParseOptions validates the value (it also takes a bare boolean)
			o.Rerank = []byte(val.Raw)
		case "explain":
			if val.Type != gjson.True && val.Type != gjson.False {
				err = parseErr("[ext.vlproxy.explain] must be a boolean, got %s", kind(val))
				return false
			}
			o.Explain = val.Bool()
		default:
			err = parseErr("unknown option [ext.vlproxy.%s]; known options: rewrite, rerank, explain", k.String())
			return false
		}
		return true
	})
	if err != nil {
		return o, nil, err
	}
	out, derr := sjson.DeleteBytes(body, "ext.vlproxy")
	if derr != nil {
		return o, nil, parseErr("cannot remove [ext.vlproxy] from the body: %s", derr)
	}
	if rest := gjson.GetBytes(out, "ext"); rest.IsObject() && isEmptyObject(rest.Raw) {
		if out, derr = sjson.DeleteBytes(out, "ext"); derr != nil {
			return o, nil, parseErr("cannot remove the empty [ext] from the body: %s", derr)
		}
	}
	return o, out, nil
}

func isEmptyObject(raw string) bool {
	return strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(raw), "{"), "}")) == ""
}

func kind(v gjson.Result) string {
	switch v.Type {
	case gjson.String:
		return "a string"
	case gjson.Number:
		return "a number"
	case gjson.True, gjson.False:
		return "a boolean"
	case gjson.Null:
		return "null"
	}
	if v.IsArray() {
		return "an array"
	}
	if v.IsObject() {
		return "an object"
	}
	return "invalid JSON"
}

// Switch is the value of an X-VLProxy-Rewrite or X-VLProxy-Rerank header.
type Switch uint8

const (
	SwitchUnset Switch = iota
	SwitchOn
	SwitchOff
	SwitchShadow
)

func (s Switch) String() string {
	return [...]string{"", "on", "off", "shadow"}[s]
}

// Switches are the per-request A/B headers.
type Switches struct {
	Rewrite Switch
	Rerank  Switch
	Variant string
	// Retrieval forces the multimodal clauses' mode: "keywords", "vector", "hybrid", or "".
	Retrieval string
}

// ParseSwitches reads the X-VLProxy-* request headers through get (which returns "" for a
// missing header). Values are case-insensitive.
func ParseSwitches(get func(name string) string) (Switches, error) {
	var s Switches
	var err error
	if s.Rewrite, err = parseSwitch(httphdr.Rewrite, get(httphdr.Rewrite), false); err != nil {
		return s, err
	}
	if s.Rerank, err = parseSwitch(httphdr.Rerank, get(httphdr.Rerank), true); err != nil {
		return s, err
	}
	s.Variant = strings.TrimSpace(get(httphdr.Variant))
	switch r := strings.ToLower(strings.TrimSpace(get(httphdr.Retrieval))); r {
	case "", "keywords", "vector", "hybrid":
		s.Retrieval = r
	default:
		return s, argErr("header [X-VLProxy-Retrieval] has value [%s]; allowed values: keywords, vector, hybrid", r)
	}
	return s, nil
}

func parseSwitch(header, v string, shadowOK bool) (Switch, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "":
		return SwitchUnset, nil
	case "on":
		return SwitchOn, nil
	case "off":
		return SwitchOff, nil
	case "shadow":
		if shadowOK {
			return SwitchShadow, nil
		}
	}
	allowed := "on, off"
	if shadowOK {
		allowed = "on, off, shadow"
	}
	return SwitchUnset, argErr("header [%s] has value [%s]; allowed values: %s", header, v, allowed)
}
