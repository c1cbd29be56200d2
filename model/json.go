package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// JSON encoding of the contract types. The request encoder appends bytes by
// hand (no reflection): a request may carry a 200 KB base64 image and runs on
// every search.

// MarshalJSON renders {"role":R,"content":"text"} when the message has no
// parts and {"role":R,"content":[parts]} otherwise.
func (m Message) MarshalJSON() ([]byte, error) {
	return m.appendJSON(nil), nil
}

func (m Message) appendJSON(dst []byte) []byte {
	dst = append(dst, `{"role":`...)
	dst = AppendJSONString(dst, m.Role)
	dst = append(dst, `,"content":`...)
	if m.Parts == nil {
		dst = AppendJSONString(dst, m.Text)
	} else {
		dst = appendParts(dst, m.Parts)
	}
	return append(dst, '}')
}

// UnmarshalJSON accepts content as a string, a list of parts or null.
func (m *Message) UnmarshalJSON(b []byte) error {
	if !gjson.ValidBytes(b) {
		return errors.New("cannot decode message: invalid JSON")
	}
	r := gjson.ParseBytes(b)
	if !r.IsObject() {
		return errors.New("cannot decode message: not an object")
	}
	*m = Message{Role: r.Get("role").String()}
	c := r.Get("content")
	switch {
	case c.IsArray():
		m.Parts = []Part{}
		for _, p := range c.Array() {
			var part Part
			if err := part.UnmarshalJSON([]byte(p.Raw)); err != nil {
				return err
			}
			m.Parts = append(m.Parts, part)
		}
	case c.Type == gjson.String:
		m.Text = c.String()
	case c.Type == gjson.Null || !c.Exists():
	default:
		return fmt.Errorf("cannot decode message: content must be a string or a list of parts, got %s", c.Type)
	}
	return nil
}

// MarshalJSON renders {"type":"text","text":T} or
// {"type":"image_url","image_url":{"url":U}}.
func (p Part) MarshalJSON() ([]byte, error) {
	return p.appendJSON(nil), nil
}

func (p Part) appendJSON(dst []byte) []byte {
	if p.Type == "image_url" {
		dst = append(dst, `{"type":"image_url","image_url":{"url":`...)
		dst = AppendJSONString(dst, p.URL)
		return append(dst, `}}`...)
	}
	dst = append(dst, `{"type":`...)
	t := p.Type
	if t == "" {
		t = "text"
	}
	dst = AppendJSONString(dst, t)
	dst = append(dst, `,"text":`...)
	dst = AppendJSONString(dst, p.Text)
	return append(dst, '}')
}

// UnmarshalJSON accepts image_url as {"url":U} or as a bare string (Ollama).
func (p *Part) UnmarshalJSON(b []byte) error {
	if !gjson.ValidBytes(b) {
		return errors.New("cannot decode content part: invalid JSON")
	}
	r := gjson.ParseBytes(b)
	if !r.IsObject() {
		return errors.New("cannot decode content part: not an object")
	}
	*p = Part{Type: r.Get("type").String()}
	switch p.Type {
	case "text":
		p.Text = r.Get("text").String()
	case "image_url":
		u := r.Get("image_url")
		if u.IsObject() {
			u = u.Get("url")
		}
		p.URL = u.String()
	default:
		// Other part types (video_url, input_audio, ...) keep their type only.
	}
	return nil
}

// appendArray appends items as a JSON array, each encoded by enc.
func appendArray[T any](dst []byte, items []T, enc func([]byte, T) []byte) []byte {
	dst = append(dst, '[')
	for i, it := range items {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = enc(dst, it)
	}
	return append(dst, ']')
}

func appendParts(dst []byte, parts []Part) []byte {
	return appendArray(dst, parts, func(b []byte, p Part) []byte { return p.appendJSON(b) })
}

func appendMessages(dst []byte, msgs []Message) []byte {
	return appendArray(dst, msgs, func(b []byte, m Message) []byte { return m.appendJSON(b) })
}

func appendStrings(dst []byte, ss []string) []byte { return appendArray(dst, ss, AppendJSONString) }

func appendFloat(dst []byte, f float64) []byte {
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

const hexDigits = "0123456789abcdef"

// safeASCII marks bytes copied as is into a JSON string.
var safeASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// AppendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does, so the reader never sees a body it cannot parse. It is the one JSON
// string encoder of the project (rewrite/ and proxy/ use it too).
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Tight loop over plain ASCII: base64 images are all of it.
		for i < len(s) && safeASCII[s[i]] {
			i++
		}
		if i == len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

var _ json.Marshaler = Message{}
