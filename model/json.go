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
// hand around encoding/json's string encoder (no reflection over the structs).

// MarshalJSON renders {"role":R,"content":"text"} when the message has no
// parts and {"role":R,"content":[parts]} otherwise.
func (m Message) MarshalJSON() ([]byte, error) {
	return m.appendJSON(nil), nil
}

func (m Message) appendJSON(dst []byte) []byte {
	dst = append(dst, `{"role":`...)
	dst = appendString(dst, m.Role)
	dst = append(dst, `,"content":`...)
	if m.Parts == nil {
		dst = appendString(dst, m.Text)
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

// MarshalJSON renders {"type":"text","text":T},
// {"type":"image_url","image_url":{"url":U}} or {"type":"video_url","video_url":{"url":U}}.
func (p Part) MarshalJSON() ([]byte, error) {
	return p.appendJSON(nil), nil
}

func (p Part) appendJSON(dst []byte) []byte {
	switch p.Type {
	case "image_url":
		dst = append(dst, `{"type":"image_url","image_url":{"url":`...)
		dst = appendString(dst, p.URL)
		return append(dst, `}}`...)
	case "video_url":
		dst = append(dst, `{"type":"video_url","video_url":{"url":`...)
		dst = appendString(dst, p.URL)
		return append(dst, `}}`...)
	}
	dst = append(dst, `{"type":`...)
	t := p.Type
	if t == "" {
		t = "text"
	}
	dst = appendString(dst, t)
	dst = append(dst, `,"text":`...)
	dst = appendString(dst, p.Text)
	return append(dst, '}')
}

// UnmarshalJSON accepts image_url (and video_url) as {"url":U} or as a bare string (Ollama).
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
	case "image_url", "video_url":
		u := r.Get(p.Type)
		if u.IsObject() {
			u = u.Get("url")
		}
		p.URL = u.String()
	default:
		// Other part types (input_audio, ...) keep their type only.
	}
	return nil
}

// appendList appends n JSON values as an array, the i-th written by enc.
func appendList(dst []byte, n int, enc func([]byte, int) []byte) []byte {
	dst = append(dst, '[')
	for i := range n {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = enc(dst, i)
	}
	return append(dst, ']')
}

func appendParts(dst []byte, parts []Part) []byte {
	return appendList(dst, len(parts), func(b []byte, i int) []byte { return parts[i].appendJSON(b) })
}

func appendMessages(dst []byte, msgs []Message) []byte {
	return appendList(dst, len(msgs), func(b []byte, i int) []byte { return msgs[i].appendJSON(b) })
}

func appendStrings(dst []byte, ss []string) []byte {
	return appendList(dst, len(ss), func(b []byte, i int) []byte { return appendString(b, ss[i]) })
}

func appendFloat(dst []byte, f float64) []byte {
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// appendString appends s as a JSON string. A string of printable ASCII without quote or
// backslash (a base64 data URI, most prompts) is copied as is; anything else goes through
// encoding/json (the model package imports nothing of the project, so not its hand-written
// encoder): invalid UTF-8 becomes U+FFFD, and the extra escapes encoding/json writes (<, >, &)
// mean the same string to the server.
func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
			b, err := json.Marshal(s)
			if err != nil { // a string always encodes; keep the body valid regardless
				return append(dst, `""`...)
			}
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

var _ json.Marshaler = Message{}
