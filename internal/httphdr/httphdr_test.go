package httphdr

import "testing"

func TestStored(t *testing.T) {
	for name, want := range map[string]bool{"content-type": true, "X-ELASTIC-PRODUCT": true, Rerank: true,
		"Set-Cookie": false, "Content-Length": false, "Connection": false} {
		if got := Stored([]byte(name)); got != want {
			t.Errorf("Stored(%q) = %v, want %v", name, got, want)
		}
	}
}
