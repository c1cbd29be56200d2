package searchbody

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzSwitchProperties checks the switch headers beyond not panicking:
//   - a value is accepted exactly when, trimmed and lower-cased, it is on, off or (rerank
//     only) shadow, or empty; anything else is an ES-shaped 400 (illegal_argument_exception)
//     whose reason names the header and quotes the value, and renders as valid JSON;
//   - an accepted value round-trips: its String() parses back to the same switch;
//   - case and surrounding whitespace never matter;
//   - the variant is the header trimmed, and never makes the parse fail.
func FuzzSwitchProperties(f *testing.F) {
	for _, s := range []string{"on", "off", "shadow", "", "ON ", "maybe", " Shadow\t", "o\x00n", "\u00a0on", "0ff"} {
		f.Add(s, s, s)
	}
	type esErr interface{ ESError() (int, string, string) }
	allowed := func(v string, shadowOK bool) (Switch, bool) {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "":
			return SwitchUnset, true
		case "on":
			return SwitchOn, true
		case "off":
			return SwitchOff, true
		case "shadow":
			return SwitchShadow, shadowOK
		}
		return SwitchUnset, false
	}
	f.Fuzz(func(t *testing.T, rw, rr, variant string) {
		h := map[string]string{"X-VLProxy-Rewrite": rw, "X-VLProxy-Rerank": rr, "X-VLProxy-Variant": variant}
		get := func(k string) string { return h[k] }
		s, err := ParseSwitches(get)
		wantRW, okRW := allowed(rw, false)
		wantRR, okRR := allowed(rr, true)
		if !okRW || !okRR {
			if err == nil {
				t.Fatalf("rewrite %q rerank %q: accepted as %+v", rw, rr, s)
			}
			var e esErr
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not ES-shaped", err)
			}
			status, typ, reason := e.ESError()
			header, value := "X-VLProxy-Rewrite", rw
			if okRW {
				header, value = "X-VLProxy-Rerank", rr
			}
			if status != 400 || typ != "illegal_argument_exception" || !strings.Contains(reason, header) || !strings.Contains(reason, "["+value+"]") {
				t.Fatalf("error for %s %q: %d %s %q", header, value, status, typ, reason)
			}
			if b, err := json.Marshal(map[string]string{"reason": reason}); err != nil || !json.Valid(b) {
				t.Fatalf("reason %q does not render as JSON", reason)
			}
			return
		}
		if err != nil {
			t.Fatalf("rewrite %q rerank %q: %v", rw, rr, err)
		}
		if s.Rewrite != wantRW || s.Rerank != wantRR {
			t.Fatalf("rewrite %q rerank %q: got %+v, want %v %v", rw, rr, s, wantRW, wantRR)
		}
		if s.Variant != strings.TrimSpace(variant) {
			t.Fatalf("variant %q became %q", variant, s.Variant)
		}
		// Round trip and insensitivity to case and whitespace.
		for _, form := range []func(string) string{
			func(string) string { return s.Rewrite.String() + "|" + s.Rerank.String() },
			func(string) string { return strings.ToUpper(rw) + "|" + strings.ToUpper(rr) },
			func(string) string { return " \t" + rw + "\t |" + rr + " " },
		} {
			a, b, _ := strings.Cut(form(""), "|")
			if strings.Contains(rw, "|") || strings.Contains(rr, "|") {
				continue
			}
			again, err := ParseSwitches(func(k string) string {
				switch k {
				case "X-VLProxy-Rewrite":
					return a
				case "X-VLProxy-Rerank":
					return b
				}
				return ""
			})
			if err != nil || again.Rewrite != s.Rewrite || again.Rerank != s.Rerank {
				t.Fatalf("%q|%q parsed as %+v, but %q|%q as %+v (%v)", rw, rr, s, a, b, again, err)
			}
		}
	})
}
