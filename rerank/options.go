package rerank

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// Options are the per-request switches from ext.vlproxy.rerank. Nil means "not given".
type Options struct {
	Enabled    *bool
	WindowSize *int
	MinScore   *float64
	Weight     *float64
	Fields     *FieldsConfig
	Timeout    *time.Duration
}

const optPrefix = "ext.vlproxy.rerank"

// ParseOptions parses the JSON value of ext.vlproxy.rerank: an object, or a bare
// boolean as a shorthand for {"enabled": b}. Empty input means no options.
// Unknown or malformed options are a 400 *eserr.Error naming the option.
func ParseOptions(raw []byte) (Options, error) {
	var o Options
	if len(strings.TrimSpace(string(raw))) == 0 {
		return o, nil
	}
	if !gjson.ValidBytes(raw) {
		return o, badRequest("cannot parse [%s]: malformed JSON", optPrefix)
	}
	v := gjson.ParseBytes(raw)
	switch v.Type {
	case gjson.True, gjson.False:
		b := v.Bool()
		o.Enabled = &b
		return o, nil
	case gjson.JSON:
		if !v.IsObject() {
			return o, badRequest("[%s] must be an object or a boolean", optPrefix)
		}
	default:
		return o, badRequest("[%s] must be an object or a boolean", optPrefix)
	}
	var err error
	v.ForEach(func(k, val gjson.Result) bool {
		name := k.String()
		switch name {
		case "enabled":
			if val.Type != gjson.True && val.Type != gjson.False {
				err = badRequest("[%s.enabled] must be a boolean", optPrefix)
				return false
			}
			b := val.Bool()
			o.Enabled = &b
		case "rank_window_size":
			n, e := intOption(val, "rank_window_size")
			if e != nil {
				err = e
				return false
			}
			if n < 1 {
				err = badRequest("[%s.rank_window_size] must be >= 1, got %d", optPrefix, n)
				return false
			}
			o.WindowSize = &n
		case "min_score":
			if val.Type != gjson.Number {
				err = badRequest("[%s.min_score] must be a number", optPrefix)
				return false
			}
			f := val.Float()
			o.MinScore = &f
		case "weight":
			if val.Type != gjson.Number || !(val.Float() >= 0 && val.Float() <= 1) {
				err = badRequest("[%s.weight] must be a number in [0,1]", optPrefix)
				return false
			}
			f := val.Float()
			o.Weight = &f
		case "timeout":
			d, e := parseTimeValue(val)
			if e != nil {
				err = e
				return false
			}
			o.Timeout = &d
		case "fields":
			f, e := parseFields(val)
			if e != nil {
				err = e
				return false
			}
			o.Fields = &f
		default:
			err = badRequest("unknown option [%s.%s]", optPrefix, name)
			return false
		}
		return true
	})
	if err != nil {
		return Options{}, err
	}
	return o, nil
}

func intOption(v gjson.Result, name string) (int, error) {
	if v.Type != gjson.Number {
		return 0, badRequest("[%s.%s] must be an integer", optPrefix, name)
	}
	n, err := strconv.ParseInt(v.Raw, 10, 32)
	if err != nil {
		return 0, badRequest("[%s.%s] must be an integer, got %s", optPrefix, name, v.Raw)
	}
	return int(n), nil
}

func parseFields(v gjson.Result) (FieldsConfig, error) {
	var f FieldsConfig
	if !v.IsObject() {
		return f, badRequest("[%s.fields] must be an object with text and/or image", optPrefix)
	}
	var err error
	v.ForEach(func(k, val gjson.Result) bool {
		switch k.String() {
		case "text":
			switch {
			case val.Type == gjson.String:
				f.Text = []string{val.String()}
			case val.IsArray():
				for _, e := range val.Array() {
					if e.Type != gjson.String || e.String() == "" {
						err = badRequest("[%s.fields.text] must be a field name or a list of field names", optPrefix)
						return false
					}
					f.Text = append(f.Text, e.String())
				}
			default:
				err = badRequest("[%s.fields.text] must be a field name or a list of field names", optPrefix)
				return false
			}
		case "image":
			if val.Type != gjson.String {
				err = badRequest("[%s.fields.image] must be a field name", optPrefix)
				return false
			}
			f.Image = val.String()
		default:
			err = badRequest("unknown option [%s.fields.%s]", optPrefix, k.String())
			return false
		}
		return true
	})
	if err == nil && len(f.Text) == 0 && f.Image == "" {
		err = badRequest("[%s.fields] needs at least one text field or an image field", optPrefix)
	}
	return f, err
}

// parseTimeValue accepts ES time values: "300ms", "1s", "2m", "1h", "1d", "500micros", "100nanos".
func parseTimeValue(v gjson.Result) (time.Duration, error) {
	if v.Type != gjson.String {
		return 0, badRequest("[%s.timeout] must be a time value such as \"300ms\"", optPrefix)
	}
	s := strings.TrimSpace(v.String())
	units := []struct {
		suffix string
		d      time.Duration
	}{{"nanos", time.Nanosecond}, {"micros", time.Microsecond}, {"ms", time.Millisecond},
		{"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}, {"d", 24 * time.Hour}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseFloat(num, 64)
			if err != nil || !(n > 0) || n*float64(u.d) > math.MaxInt64/2 {
				break
			}
			return time.Duration(n * float64(u.d)), nil
		}
	}
	return 0, badRequest("[%s.timeout] must be a positive time value such as \"300ms\", got %q", optPrefix, s)
}

// Mode is the X-VLProxy-Rerank request header, as parsed by proxy/searchbody.ParseSwitches.
type Mode int

const (
	ModeDefault Mode = iota // no header: ext.vlproxy.rerank.enabled, else the per-index config
	ModeOn
	ModeOff
	ModeShadow
)

func (m Mode) String() string {
	switch m {
	case ModeOn:
		return "on"
	case ModeOff:
		return "off"
	case ModeShadow:
		return "shadow"
	}
	return "default"
}
