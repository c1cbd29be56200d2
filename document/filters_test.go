package document

import (
	"bytes"
	"io"
	"testing"

	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"

	"github.com/vlproxy/vlproxy/document/pdftest"
)

// The streaming decoders give back what pdfcpu's encoders encoded, and what
// hand-written encodings (white space, an odd hex digit, "<~", "z") mean.
func TestStreamReader(t *testing.T) {
	f := func(name string, raw []byte, want string, filters ...string) {
		t.Helper()
		sd := &types.StreamDict{Raw: raw}
		for _, n := range filters {
			sd.FilterPipeline = append(sd.FilterPipeline, types.PDFFilter{Name: n})
		}
		r, ok := streamReader(sd)
		if !ok {
			t.Fatalf("%s: no streaming decoder", name)
		}
		got, err := io.ReadAll(r)
		if err != nil || string(got) != want {
			t.Fatalf("%s: %q %v, want %q", name, got, err, want)
		}
	}
	text := bytes.Repeat([]byte("BT /F1 10 Tf 50 700 Td (Denim Jacket) Tj ET\n"), 300)
	text = append(text, bytes.Repeat([]byte{' '}, 1000)...)
	for _, chain := range [][]string{
		{"FlateDecode"}, {"ASCIIHexDecode"}, {"ASCII85Decode"}, {"RunLengthDecode"},
		{"ASCIIHexDecode", "FlateDecode"}, {"ASCII85Decode", "RunLengthDecode"}, {"FlateDecode", "ASCII85Decode"},
	} {
		f(chain[0], pdftest.Encode(text, chain...), string(text), chain...)
	}
	f("hex spaced odd", []byte("48 65\n6c6C 6f2>ignored"), "Hello ", "ASCIIHexDecode")
	f("hex without end", []byte("4865"), "He", "ASCIIHexDecode")
	f("a85 marked", []byte("<~87cURDZ~>"), "Hello", "ASCII85Decode")
	f("a85 z", []byte("z~>"), "\x00\x00\x00\x00", "ASCII85Decode")
	f("rle", []byte{2, 'a', 'b', 'c', 254, 'x', 128, 'j', 'u', 'n', 'k'}, "abcxxx", "RunLengthDecode")
	f("rle without end", []byte{0, 'a', 255, 'b'}, "abb", "RunLengthDecode")

	for _, sd := range []*types.StreamDict{
		{Raw: []byte("x"), FilterPipeline: []types.PDFFilter{{Name: "LZWDecode"}}},
		{Raw: []byte("x"), FilterPipeline: []types.PDFFilter{{Name: "FlateDecode"}}}, // broken zlib header
		{Raw: pdftest.Encode(text, "FlateDecode"), FilterPipeline: []types.PDFFilter{{Name: "FlateDecode",
			DecodeParms: types.Dict{"Predictor": types.Integer(12)}}}},
	} {
		if _, ok := streamReader(sd); ok {
			t.Errorf("%v: streams, want pdfcpu's decoder", sd.FilterPipeline)
		}
	}
}

// FuzzStreamReader: the streaming decoders never panic, stop at the byte budget they are
// read under, and where both they and pdfcpu's decoder accept a stream, they agree.
func FuzzStreamReader(f *testing.F) {
	text := []byte("BT /F1 10 Tf 50 700 Td (Denim Jacket) Tj ET\n")
	for i, chain := range [][]string{{"ASCIIHexDecode"}, {"ASCII85Decode"}, {"RunLengthDecode"}, {"FlateDecode"}} {
		f.Add(uint8(i), pdftest.Encode(text, chain...))
	}
	f.Add(uint8(0), []byte("48 65\n6c6C 6f2>"))
	f.Add(uint8(1), []byte("<~87cURDZ~>"))
	f.Add(uint8(2), []byte{2, 'a', 'b', 'c', 254, 'x', 128})
	names := []string{"ASCIIHexDecode", "ASCII85Decode", "RunLengthDecode", "FlateDecode"}
	f.Fuzz(func(t *testing.T, which uint8, raw []byte) {
		name := names[int(which)%len(names)]
		sd := &types.StreamDict{Raw: raw, FilterPipeline: []types.PDFFilter{{Name: name}}}
		r, ok := streamReader(sd)
		if !ok {
			return
		}
		const budget = 1 << 20
		got, err := io.ReadAll(io.LimitReader(r, budget+1))
		if len(got) > budget+1 {
			t.Fatalf("%s: read %d bytes past the limit", name, len(got))
		}
		if err != nil || len(got) > budget {
			return
		}
		want, perr := (&types.StreamDict{Raw: raw, FilterPipeline: sd.FilterPipeline}).DecodeLengthWithLimit(-1, budget)
		if perr == nil && !bytes.Equal(got, want) {
			t.Fatalf("%s of %q: streaming %q, pdfcpu %q", name, raw, got, want)
		}
	})
}
