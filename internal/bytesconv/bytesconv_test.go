package bytesconv

import "testing"

func TestRoundTrip(t *testing.T) {
	for _, s := range []string{"", "a", "multimodal 红色"} {
		b := Bytes(s)
		if string(b) != s || String(b) != s {
			t.Fatalf("round trip of %q gave %q / %q", s, b, String(b))
		}
	}
	if String(nil) != "" || String([]byte{}) != "" {
		t.Fatal("empty slice must be the empty string")
	}
	b := []byte("abc")
	s := String(b)
	b[0] = 'x'
	if s != "xbc" {
		t.Fatalf("String copied: %q", s)
	}
}
