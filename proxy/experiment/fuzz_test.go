package experiment

import (
	"errors"
	"github.com/vlproxy/vlproxy/internal/eserr"
	"testing"
)

// FuzzPick feeds arbitrary key and X-VLProxy-Variant values: Pick never panics, always
// returns a configured variant or a 400 *eserr.Error, and is deterministic.
func FuzzPick(f *testing.F) {
	for _, s := range [][2]string{{"user-1", ""}, {"", "control"}, {"u", "rerank-ab/rerank"}, {"\x00\xff", "/"}, {"x", "a/b/c"}} {
		f.Add(s[0], s[1])
	}
	s, err := New(ab(3, 2, 1))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, key, forced string) {
		h := headers("X-User-Id", key)
		v, ok, err := s.Pick(h, forced)
		if err != nil {
			var e *eserr.Error
			if !errors.As(err, &e) || ok {
				t.Fatalf("error %v (ok=%v)", err, ok)
			}
			return
		}
		if !ok || v.Experiment != "rerank-ab" {
			t.Fatalf("variant %+v ok=%v", v, ok)
		}
		again, _, _ := s.Pick(h, forced)
		if again.Name != v.Name {
			t.Fatalf("not deterministic: %s then %s", v.Name, again.Name)
		}
	})
}
