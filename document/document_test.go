package document

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/vlproxy/vlproxy/document/pdftest"
	"github.com/vlproxy/vlproxy/internal/eserr"
)

var priceList = [][]string{
	{"Item", "Colour", "Size", "Brand", "Qty", "Price"},
	{"Denim Jacket", "Blue", "M", "Levis", "2", "59.90"},
	{"Running Shoes", "White", "42", "Nike", "1", "89.00"},
	{"Leather Belt", "Brown", "L", "Fossil", "3", "24.50"},
}

func newReader(t testing.TB, lim Limits) *Reader {
	t.Helper()
	r, err := NewReader(lim)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReadTextPDF(t *testing.T) {
	r := newReader(t, Limits{})
	doc, err := r.Read(context.Background(), pdftest.TextTable("Spring order (€)", priceList))
	if err != nil {
		t.Fatal(err)
	}
	if doc.Kind != "pdf" || len(doc.Pages) != 1 || !doc.HasText() {
		t.Fatalf("got %+v", doc)
	}
	lines := doc.Pages[0].Lines
	if len(lines) != 1+len(priceList) {
		t.Fatalf("want %d lines, got %d:\n%s", 1+len(priceList), len(lines), doc.Text())
	}
	if got := lines[0].Text(); got != "Spring order (€)" {
		t.Errorf("title: got %q", got)
	}
	for i, want := range priceList {
		if got := lines[i+1].Cells; strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("row %d: got %q, want %q", i, got, want)
		}
	}
}

func TestReadScanPDF(t *testing.T) {
	jpg, w, h, err := pdftest.RenderTable("Order", priceList)
	if err != nil {
		t.Fatal(err)
	}
	r := newReader(t, Limits{})
	doc, err := r.Read(context.Background(), pdftest.Scan([][]byte{jpg, jpg}, [][2]int{{w, h}, {w, h}}, true))
	if err != nil {
		t.Fatal(err)
	}
	if doc.HasText() || len(doc.Pages) != 2 {
		t.Fatalf("got %d pages, text %q", len(doc.Pages), doc.Text())
	}
	for _, p := range doc.Pages {
		if len(p.Images) != 1 || p.Images[0].Format != "jpeg" || p.Images[0].Width != w || string(p.Images[0].Data) != string(jpg) {
			t.Fatalf("page %d: want the scan as stored, got %d images", p.Number, len(p.Images))
		}
	}
}

func TestReadRawImagePDF(t *testing.T) {
	const w, h = 64, 48
	pix := make([]byte, w*h*3)
	for i := range pix {
		pix[i] = byte(i)
	}
	r := newReader(t, Limits{})
	doc, err := r.Read(context.Background(), pdftest.RawImage(pix, w, h, 3))
	if err != nil {
		t.Fatal(err)
	}
	im := doc.Pages[0].Images
	if len(im) != 1 || im[0].Format != "png" || im[0].Width != w || im[0].Height != h || Sniff(im[0].Data) != "png" {
		t.Fatalf("got %+v", im)
	}
}

func TestReadImageDocument(t *testing.T) {
	jpg, w, h, err := pdftest.RenderTable("Order", priceList)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := newReader(t, Limits{}).Read(context.Background(), jpg)
	if err != nil {
		t.Fatal(err)
	}
	if doc.Kind != "image" || doc.Pages[0].Images[0].Width != w || doc.Pages[0].Images[0].Height != h {
		t.Fatalf("got %+v", doc)
	}
	_, err = newReader(t, Limits{MaxPagePixels: 1000}).Read(context.Background(), jpg)
	wantError(t, err, 400, "document.max_page_pixels")
}

func wantError(t *testing.T, err error, status int, substr string) {
	t.Helper()
	e, ok := err.(*eserr.Error)
	if !ok {
		t.Fatalf("want an *eserr.Error with %d, got %T %v", status, err, err)
	}
	if e.Status != status || !strings.Contains(e.Error(), substr) {
		t.Fatalf("want %d naming %q, got %d %q", status, substr, e.Status, e.Error())
	}
}

func TestLimits(t *testing.T) {
	text := pdftest.TextTable("x", priceList)
	f := func(lim Limits, raw []byte, status int, substr string) {
		t.Helper()
		_, err := newReader(t, lim).Read(context.Background(), raw)
		wantError(t, err, status, substr)
	}
	f(Limits{MaxBytes: 100}, text, 413, "document.max_bytes")
	f(Limits{MaxPages: 2}, pdftest.ManyPages(3, true), 400, "document.max_pages")
	f(Limits{MaxPages: 2}, pdftest.ManyPages(3, false), 400, "document.max_pages")
	f(Limits{MaxObjects: 5}, pdftest.ManyPages(10, true), 400, "document.max_objects")
	f(Limits{MaxDecodedBytes: 1 << 20}, pdftest.Bomb(4<<20), 400, "document.max_decoded_bytes")
	f(Limits{}, []byte("hello"), 400, "not a PDF")
}

// Text comes out of compressed content streams: every filter pipeline a writer uses
// for page content, and a PDF written by pdfcpu's own writer (FlateDecode content).
func TestReadCompressedTextPDF(t *testing.T) {
	r := newReader(t, Limits{})
	f := func(name string, pdf []byte, title string) {
		t.Helper()
		if !bytes.Contains(pdf, []byte("/Filter")) {
			t.Fatalf("%s: the content stream is not encoded", name)
		}
		doc, err := r.Read(context.Background(), pdf)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		lines := doc.Pages[0].Lines
		if title != "" {
			if len(lines) == 0 || lines[0].Text() != title {
				t.Fatalf("%s: title line %v, want %q:\n%s", name, lines, title, doc.Text())
			}
			lines = lines[1:]
		}
		if len(lines) != len(priceList) {
			t.Fatalf("%s: %d table lines, want %d:\n%s", name, len(lines), len(priceList), doc.Text())
		}
		for i, want := range priceList {
			if got := lines[i].Cells; strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("%s: row %d: got %q, want %q", name, i, got, want)
			}
		}
		if doc.Decoded == 0 {
			t.Errorf("%s: no decoded bytes counted", name)
		}
	}
	for _, filters := range [][]string{
		{"FlateDecode"},
		{"ASCIIHexDecode", "FlateDecode"},
		{"ASCII85Decode", "FlateDecode"},
		{"ASCII85Decode"},
		{"RunLengthDecode"},
		{"LZWDecode"}, // no streaming decoder here: pdfcpu's, under the same limit
		{"FlateDecode", "ASCIIHexDecode"},
	} {
		f(strings.Join(filters, "+"), pdftest.FilteredTextTable("Spring order (€)", priceList, filters...), "Spring order (€)")
	}
	pdf, err := pdftest.PdfcpuTextTable(priceList)
	if err != nil {
		t.Fatal(err)
	}
	f("pdfcpu writer", pdf, "")
}

// A compressed content stream counts what it decodes to against max_decoded_bytes.
func TestCompressedContentBudget(t *testing.T) {
	pdf := pdftest.FilteredTextTable("Spring order", priceList, "ASCIIHexDecode", "FlateDecode")
	doc, err := newReader(t, Limits{}).Read(context.Background(), pdf)
	if err != nil {
		t.Fatal(err)
	}
	_, err = newReader(t, Limits{MaxDecodedBytes: doc.Decoded - 1}).Read(context.Background(), pdf)
	if e, ok := err.(*eserr.Error); !ok || e.Status != 400 || !strings.Contains(e.Reason, "max_decoded_bytes") {
		t.Fatalf("a budget one byte short: %v, want a 400 naming max_decoded_bytes", err)
	}
	if _, err := newReader(t, Limits{MaxDecodedBytes: doc.Decoded}).Read(context.Background(), pdf); err != nil {
		t.Fatalf("a budget of exactly %d bytes: %v", doc.Decoded, err)
	}
}
