package resultcache

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestBulkScannerStreams(t *testing.T) {
	f := func(path, body string, want Write) {
		t.Helper()
		// Every split of the body into pieces gives the same result as the whole body.
		for _, piece := range []int{1, 2, 3, 7, 64, len(body) + 1} {
			s := NewBulkScanner([]byte(path), nil)
			for b := []byte(body); len(b) > 0; {
				n := min(piece, len(b))
				s.Write(b[:n]) //nolint:errcheck
				b = b[n:]
			}
			if got := s.Result(); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s pieces of %d: %+v, want %+v", path, piece, got, want)
			}
		}
	}
	src := `{"title":"` + strings.Repeat("x", 100) + `","_index":"evil"}`
	f("/_bulk", `{"index":{"_index":"a","_id":"1"}}`+"\n"+src+"\n"+`{"delete":{"_index":"b","_id":"2"}}`+"\n"+`{"update":{"_index":"a","_id":"3"}}`+"\n"+`{"doc":{}}`+"\n",
		Write{Indices: []string{"a", "b"}})
	f("/a/_bulk", "\n"+`{"index":{}}`+"\n"+src+"\n"+`{"create":{"_index":"c"}}`+"\n"+src, Write{Indices: []string{"a", "c"}})
	f("/a/_bulk", "", Write{Indices: []string{"a"}})
	f("/a/_bulk", `{"index":{}}`, Write{Indices: []string{"a"}})           // final line without a newline
	f("/_bulk", `{"index":{"_index":"a"}`+"\n"+src+"\n", Write{All: true}) // unparseable action line
	f("/_bulk", `{"index":{"_index":"logs-*"}}`+"\n"+src+"\n", Write{All: true})
	f("/_bulk", `{"index":{"_index":"a","pipeline":"p"}}`+"\n"+src+"\n", Write{All: true})
	f("/_bulk", `{"index":{"_index":7}}`+"\n"+src+"\n", Write{All: true})
	f("/_bulk", `{"index":{"_index":"`+strings.Repeat("a", maxActionLine)+`"}}`+"\n", Write{All: true})
	if w := NewBulkScanner([]byte("/a/_bulk"), []byte("pipeline=x")).Result(); !w.All {
		t.Fatalf("?pipeline: %+v", w)
	}
}

// A large bulk costs the scanner one action line, not the body.
func TestBulkScannerHoldsOnlyActionLines(t *testing.T) {
	s := NewBulkScanner([]byte("/_bulk"), nil)
	src := `{"body":"` + strings.Repeat("y", 1<<20) + `"}` + "\n"
	for i := 0; i < 8; i++ {
		fmt.Fprintf(s, `{"index":{"_index":"i%d"}}`+"\n", i%2)
		s.Write([]byte(src)) //nolint:errcheck
	}
	if cap(s.line) > 1024 {
		t.Fatalf("scanner holds %d bytes", cap(s.line))
	}
	if w := s.Result(); !reflect.DeepEqual(w, Write{Indices: []string{"i0", "i1"}}) {
		t.Fatalf("%+v", w)
	}
}

// FuzzBulkScanner: fed in pieces, the scanner agrees with the whole-body reading.
func FuzzBulkScanner(f *testing.F) {
	f.Add([]byte(`{"index":{"_index":"a"}}`+"\n{}\n"+`{"delete":{"_index":"b"}}`+"\n"), uint8(3))
	f.Add([]byte("\n\n{\"create\":{}}\n{\"x\":1}"), uint8(1))
	f.Add([]byte(`{"update":{"_index":"a*"}}`+"\n"), uint8(5))
	f.Fuzz(func(t *testing.T, body []byte, piece uint8) {
		want := bulkWrite("d", nil, body)
		s := NewBulkScanner([]byte("/d/_bulk"), nil)
		n := int(piece) + 1
		for b := body; len(b) > 0; {
			k := min(n, len(b))
			s.Write(b[:k]) //nolint:errcheck
			b = b[k:]
		}
		if got := s.Result(); !reflect.DeepEqual(got, want) {
			t.Fatalf("pieces of %d: %+v, whole body: %+v", n, got, want)
		}
		if !want.All && len(want.Indices) == 0 {
			t.Fatalf("a bulk to /d/_bulk touches nothing: %+v", want)
		}
	})
}
