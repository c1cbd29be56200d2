package pdftest

import (
	"bytes"
	"compress/zlib"
	"io"
	"testing"
)

// TestBombInflates checks the bomb is what it claims: a valid zlib stream of
// exactly 1 GiB (checksum included) inside a file of about 1 MiB.
func TestBombInflates(t *testing.T) {
	if testing.Short() {
		t.Skip("inflates 1 GiB")
	}
	pdf := Bomb(1 << 30)
	i := bytes.Index(pdf, []byte("stream\n"))
	j := bytes.LastIndex(pdf, []byte("\nendstream"))
	zr, err := zlib.NewReader(bytes.NewReader(pdf[i+7 : j]))
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, zr)
	if err != nil {
		t.Fatalf("after %d bytes: %v", n, err)
	}
	if n != 1<<30 || len(pdf) > 2<<20 {
		t.Fatalf("inflates to %d bytes from a %d-byte file", n, len(pdf))
	}
}
