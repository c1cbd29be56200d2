package searchbody

import (
	"errors"
	"github.com/vlproxy/vlproxy/internal/eserr"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

func TestExtractOptions(t *testing.T) {
	f := func(in, wantBody string, want Options) {
		t.Helper()
		o, out, err := ExtractOptions([]byte(in))
		if err != nil {
			t.Fatalf("ExtractOptions(%s): %v", in, err)
		}
		if string(out) != wantBody {
			t.Fatalf("ExtractOptions(%s) body\n got %s\nwant %s", in, out, wantBody)
		}
		if string(o.Rewrite) != string(want.Rewrite) || string(o.Rerank) != string(want.Rerank) ||
			o.Explain != want.Explain || o.Present != want.Present {
			t.Fatalf("ExtractOptions(%s) options = %+v, want %+v", in, o, want)
		}
	}
	// No block: the very same bytes.
	f(`{"query":{"match_all":{}}}`, `{"query":{"match_all":{}}}`, Options{})
	f(`{"ext":{"other":1}}`, `{"ext":{"other":1}}`, Options{})
	// The block goes, and so does an ext that held nothing else.
	f(`{"size":3,"ext":{"vlproxy":{"explain":true}}}`, `{"size":3}`, Options{Explain: true, Present: true})
	f(`{"ext":{"vlproxy":{"rerank":{"rank_window_size":20}},"other":{"a":1}},"size":1}`,
		`{"ext":{"other":{"a":1}},"size":1}`, Options{Rerank: []byte(`{"rank_window_size":20}`), Present: true})
	f(`{"ext": {"vlproxy": {"rewrite": {"enabled": false}, "explain": false}}, "query": {"term": {"a": "vlproxy"}}}`,
		`{ "query": {"term": {"a": "vlproxy"}}}`, Options{Rewrite: []byte(`{"enabled": false}`), Present: true})
}

func TestExtractOptionsErrors(t *testing.T) {
	f := func(in, wantReason string) {
		t.Helper()
		_, _, err := ExtractOptions([]byte(in))
		var e *eserr.Error
		if !errors.As(err, &e) {
			t.Fatalf("ExtractOptions(%s) error = %v, want *eserr.Error", in, err)
		}
		if status, _, reason := e.ESError(); status != 400 || !strings.Contains(reason, wantReason) {
			t.Fatalf("ExtractOptions(%s) = %d %q, want 400 containing %q", in, status, reason, wantReason)
		}
	}
	f(`{"ext":{"vlproxy":{"rerank":{},"explian":true}}}`, "unknown option [ext.vlproxy.explian]")
	f(`{"ext":{"vlproxy":[]}}`, "[ext.vlproxy] must be an object, got an array")
	f(`{"ext":{"vlproxy":{"explain":"yes"}}}`, "[ext.vlproxy.explain] must be a boolean, got a string")
	f(`{"ext":{"vlproxy":{}}`, "not valid JSON")
}

func TestParseSwitches(t *testing.T) {
	f := func(h http.Header, want Switches, wantErr string) {
		t.Helper()
		got, err := ParseSwitches(h.Get)
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Fatalf("ParseSwitches(%v) error = %v, want %q", h, err, wantErr)
			}
			return
		}
		if err != nil || got != want {
			t.Fatalf("ParseSwitches(%v) = %+v, %v; want %+v", h, got, err, want)
		}
	}
	f(http.Header{}, Switches{}, "")
	f(http.Header{"X-Vlproxy-Rewrite": {"OFF"}, "X-Vlproxy-Rerank": {"shadow"}, "X-Vlproxy-Variant": {" b "}},
		Switches{Rewrite: SwitchOff, Rerank: SwitchShadow, Variant: "b"}, "")
	f(http.Header{"X-Vlproxy-Rerank": {"on"}}, Switches{Rerank: SwitchOn}, "")
	f(http.Header{"X-Vlproxy-Retrieval": {" Hybrid"}}, Switches{Retrieval: "hybrid"}, "")
	f(http.Header{"X-Vlproxy-Retrieval": {"semantic"}}, Switches{}, "header [X-VLProxy-Retrieval] has value [semantic]; allowed values: keywords, vector, hybrid")
	f(http.Header{"X-Vlproxy-Rewrite": {"shadow"}}, Switches{}, "header [X-VLProxy-Rewrite] has value [shadow]; allowed values: on, off")
	f(http.Header{"X-Vlproxy-Rerank": {"maybe"}}, Switches{}, "allowed values: on, off, shadow")
}

func TestSplitMsearch(t *testing.T) {
	f := func(in string, want ...string) {
		t.Helper()
		items, err := SplitMsearch([]byte(in))
		if err != nil {
			t.Fatalf("SplitMsearch(%q): %v", in, err)
		}
		var got []string
		for _, it := range items {
			got = append(got, string(it.Header)+" | "+string(it.Body)+" | "+it.Index())
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("SplitMsearch(%q)\n got %q\nwant %q", in, got, want)
		}
	}
	f("{\"index\":\"a\"}\n{\"size\":1}\n{}\n{\"query\":{}}\n",
		`{"index":"a"} | {"size":1} | a`, `{} | {"query":{}} | `)
	f("{\"index\":[\"a\",\"b\"]}\r\n{}\r\n", `{"index":["a","b"]} | {} | a,b`)
	f("\n{\"size\":0}", `{} | {"size":0} | `) // empty header line, no final newline
}

func TestSplitMsearchErrors(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		_, err := SplitMsearch([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("SplitMsearch(%q) error = %v, want %q", in, err, want)
		}
	}
	f("{\"index\":\"a\"}\n", "the header on line 1 has no body line")
	f("{\"index\":\"a\"}\n{\"size\":\n", "line 2 (a body) is not a JSON object")
	f("[1]\n{}\n", "line 1 (a header) is not a JSON object")
	f("", "no requests added")
}

func TestMsearchRoundTrip(t *testing.T) {
	in := "{\"index\":\"a\"}\n{\"size\":1}\n{}\n{\"query\":{\"match_all\":{}}}\n"
	items, err := SplitMsearch([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(AppendMsearch(nil, items)); got != in {
		t.Fatalf("AppendMsearch = %q, want %q", got, in)
	}
}

func TestResponses(t *testing.T) {
	resp := []byte(`{"took":3,"responses":[{"hits":{"hits":[]}},{"error":{"type":"x"},"status":404}]}`)
	parts, ok := SplitResponses(resp)
	if !ok || len(parts) != 2 || string(parts[1]) != `{"error":{"type":"x"},"status":404}` {
		t.Fatalf("SplitResponses = %q, %v", parts, ok)
	}
	parts[0] = []byte(`{"hits":{"hits":[{"_id":"1"}]}}`)
	out, err := ReplaceResponses(resp, parts)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"took":3,"responses":[{"hits":{"hits":[{"_id":"1"}]}},{"error":{"type":"x"},"status":404}]}`
	if string(out) != want {
		t.Fatalf("ReplaceResponses = %s, want %s", out, want)
	}
	if _, ok := SplitResponses([]byte(`{"error":{}}`)); ok {
		t.Fatal("SplitResponses accepted a body without responses")
	}
}

func FuzzExtractOptions(f *testing.F) {
	for _, s := range []string{
		`{"size":3,"ext":{"vlproxy":{"explain":true}}}`,
		`{"ext":{"vlproxy":{"rerank":{"rank_window_size":20},"rewrite":{"enabled":false}},"other":{}}}`,
		`{"query":{"multimodal":{"text":"red shoes"}},"ext":{"vlproxy":{"explain":true}}}`,
		`{"ext":{"vlproxy":[]}}`, `{"ext":"vlproxy"}`, `vlproxy`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		o, out, err := ExtractOptions(body)
		if err != nil {
			return
		}
		if !o.Present {
			if string(out) != string(body) {
				t.Fatalf("body without ext.vlproxy changed: %q -> %q", body, out)
			}
			return
		}
		if !gjson.ValidBytes(out) {
			t.Fatalf("valid body %q became invalid JSON %q", body, out)
		}
		if gjson.GetBytes(out, "ext.vlproxy").Exists() {
			t.Fatalf("ext.vlproxy survived: %q", out)
		}
	})
}

func FuzzSplitMsearch(f *testing.F) {
	for _, s := range []string{
		"{\"index\":\"a\"}\n{\"size\":1}\n{}\n{\"query\":{}}\n",
		"\n{\"size\":0}", "{\"index\":[\"a\",\"b\"]}\r\n{}\r\n", "{}\n", "\n\n\n", "{\"a\":1}\n[1]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		items, err := SplitMsearch(body)
		if err != nil {
			return
		}
		again, err := SplitMsearch(AppendMsearch(nil, items))
		if err != nil || len(again) != len(items) {
			t.Fatalf("round trip of %q: %d items, then %d, %v", body, len(items), len(again), err)
		}
		for i := range items {
			if string(again[i].Body) != string(items[i].Body) {
				t.Fatalf("item %d body %q became %q", i, items[i].Body, again[i].Body)
			}
		}
	})
}

func FuzzParseSwitches(f *testing.F) {
	for _, s := range []string{"on", "off", "shadow", "", "ON ", "maybe"} {
		f.Add(s, s, s)
	}
	f.Fuzz(func(t *testing.T, rw, rr, v string) {
		h := map[string]string{"X-VLProxy-Rewrite": rw, "X-VLProxy-Rerank": rr, "X-VLProxy-Variant": v}
		s, err := ParseSwitches(func(k string) string { return h[k] })
		if err == nil && (s.Rewrite == SwitchShadow || s.Rewrite > SwitchShadow || s.Rerank > SwitchShadow) {
			t.Fatalf("impossible switches %+v from %q %q", s, rw, rr)
		}
	})
}
