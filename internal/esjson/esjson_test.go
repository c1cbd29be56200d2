package esjson

import (
	"encoding/json"
	"testing"
)

func TestAppendStringExact(t *testing.T) {
	for in, want := range map[string]string{
		"plain":               `"plain"`,
		"红色 \"跑鞋\"\n\t\u2028": `"红色 \"跑鞋\"\n\t\u2028"`,
		"bad \xff \x01 <&>":   `"bad \ufffd \u0001 <&>"`,
	} {
		if got := string(AppendString(nil, in)); got != want {
			t.Errorf("AppendString(%q) = %s, want %s", in, got, want)
		}
	}
	if got := string(AppendStrings(nil, []string{"a", "b\""})); got != `["a","b\""]` {
		t.Errorf("AppendStrings = %s", got)
	}
	if got := string(AppendStrings(nil, nil)); got != `[]` {
		t.Errorf("AppendStrings(nil) = %s", got)
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("plain")
	f.Add("红色 \"跑鞋\"\n\t\u2028\xff\x01")
	f.Fuzz(func(t *testing.T, s string) {
		b := AppendString(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("invalid JSON %q: %v", b, err)
		}
		want, _ := json.Marshal(s)
		var w string
		json.Unmarshal(want, &w)
		if back != w {
			t.Fatalf("round trip %q != %q", back, w)
		}
	})
}
