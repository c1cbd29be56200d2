// Package pdftest writes the PDFs the tests of documents need: text price
// lists, scans of rendered tables, and a hostile corpus (truncated,
// encrypted, object loops, a stream that inflates to 1 GiB, 10 000 pages).
// Everything is generated; nothing is read from disk.
package pdftest

import (
	"bytes"
	"compress/zlib"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/filter"
)

// Writer assembles a PDF from numbered objects and writes a classic xref table.
type Writer struct {
	objs    [][]byte // object i+1
	Root    int
	Trailer string // extra trailer entries, e.g. "/Encrypt 9 0 R"
}

// Add appends an object's body (without "n 0 obj"/"endobj") and returns its number.
func (w *Writer) Add(body string) int {
	w.objs = append(w.objs, []byte(body))
	return len(w.objs)
}

// AddStream appends a stream object with the dictionary entries dict (without << >>).
func (w *Writer) AddStream(dict string, data []byte) int {
	var b bytes.Buffer
	fmt.Fprintf(&b, "<< %s /Length %d >>\nstream\n", dict, len(data))
	b.Write(data)
	b.WriteString("\nendstream")
	w.objs = append(w.objs, b.Bytes())
	return len(w.objs)
}

// Reserve appends a placeholder to fill with Set (for objects that refer forward).
func (w *Writer) Reserve() int { return w.Add("null") }

// Set replaces object n's body.
func (w *Writer) Set(n int, body string) { w.objs[n-1] = []byte(body) }

// Bytes writes the file.
func (w *Writer) Bytes() []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	offs := make([]int, len(w.objs))
	for i, o := range w.objs {
		offs[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n", i+1)
		b.Write(o)
		b.WriteString("\nendobj\n")
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(w.objs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root %d 0 R %s >>\nstartxref\n%d\n%%%%EOF\n", len(w.objs)+1, w.Root, w.Trailer, xref)
	return b.Bytes()
}

// literal escapes s as a PDF (string) in WinAnsi bytes (Latin-1 here).
func literal(s string) string {
	var b strings.Builder
	b.WriteByte('(')
	for _, r := range s {
		switch {
		case r == '(' || r == ')' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '€':
			b.WriteString("\\200") // WinAnsi
		case r < 0x20 || r > 0xFF:
			b.WriteByte('?')
		case r >= 0x80:
			fmt.Fprintf(&b, "\\%03o", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(')')
	return b.String()
}

// Page size: A4 in points.
const pageW, pageH = 595, 842

// TextTable writes a text PDF: a title and a table, one text run per cell,
// columns at fixed x positions, rows per page as many as fit.
func TextTable(title string, rows [][]string) []byte { return FilteredTextTable(title, rows) }

// FilteredTextTable is TextTable with every content stream encoded by filters, named
// in the order of the stream's /Filter array (the order a reader decodes them in),
// e.g. "FlateDecode", or "ASCIIHexDecode", "FlateDecode". No filter: uncompressed.
func FilteredTextTable(title string, rows [][]string, filters ...string) []byte {
	var w Writer
	catalog := w.Reserve()
	pages := w.Reserve()
	fnt := w.Add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
	var kids []string
	const perPage = 40
	for start := 0; start == 0 || start < len(rows); start += perPage {
		var c bytes.Buffer
		y := pageH - 60
		if start == 0 && title != "" {
			fmt.Fprintf(&c, "BT /F1 16 Tf 1 0 0 1 50 %d Tm %s Tj ET\n", y, literal(title))
			y -= 30
		}
		for _, row := range rows[start:min(len(rows), start+perPage)] {
			x := 50
			for i, cell := range row {
				fmt.Fprintf(&c, "BT /F1 10 Tf %d %d Td %s Tj ET\n", x, y, literal(cell))
				x += colWidth(i)
			}
			y -= 16
		}
		content := w.AddStream(filterEntry(filters), Encode(c.Bytes(), filters...))
		kids = append(kids, fmt.Sprintf("%d 0 R", w.Add(fmt.Sprintf(
			"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %d %d] /Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>",
			pages, pageW, pageH, fnt, content))))
	}
	w.Set(pages, fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), len(kids)))
	w.Set(catalog, fmt.Sprintf("<< /Type /Catalog /Pages %d 0 R >>", pages))
	w.Root = catalog
	return w.Bytes()
}

// colWidth is the width in points of table column i (the item column is wide).
func colWidth(i int) int {
	if i == 0 {
		return 170
	}
	return 75
}

// Scan writes an image-only PDF: one page per JPEG, the image filling the page
// as a scanner writes it (DCTDecode, DeviceRGB or DeviceGray).
func Scan(jpegs [][]byte, sizes [][2]int, gray bool) []byte {
	var w Writer
	catalog := w.Reserve()
	pages := w.Reserve()
	cs := "/DeviceRGB"
	if gray {
		cs = "/DeviceGray"
	}
	var kids []string
	for i, j := range jpegs {
		iw, ih := sizes[i][0], sizes[i][1]
		img := w.AddStream(fmt.Sprintf("/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace %s /BitsPerComponent 8 /Filter /DCTDecode", iw, ih, cs), j)
		content := w.AddStream("", fmt.Appendf(nil, "q %d 0 0 %d 0 0 cm /Im1 Do Q\n", pageW, pageH))
		kids = append(kids, fmt.Sprintf("%d 0 R", w.Add(fmt.Sprintf(
			"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %d %d] /Resources << /XObject << /Im1 %d 0 R >> >> /Contents %d 0 R >>",
			pages, pageW, pageH, img, content))))
	}
	w.Set(pages, fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), len(kids)))
	w.Set(catalog, fmt.Sprintf("<< /Type /Catalog /Pages %d 0 R >>", pages))
	w.Root = catalog
	return w.Bytes()
}

// RawImage writes a one-page PDF whose image is raw 8-bit pixels behind
// FlateDecode (comps 1 or 3), the way some scanners and converters store it.
func RawImage(pix []byte, iw, ih, comps int) []byte {
	var w Writer
	catalog := w.Reserve()
	pages := w.Reserve()
	cs := "/DeviceRGB"
	if comps == 1 {
		cs = "/DeviceGray"
	}
	img := w.AddStream(fmt.Sprintf("/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace %s /BitsPerComponent 8 /Filter /FlateDecode", iw, ih, cs), deflate(pix))
	content := w.AddStream("", fmt.Appendf(nil, "q %d 0 0 %d 0 0 cm /Im1 Do Q\n", pageW, pageH))
	page := w.Add(fmt.Sprintf("<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %d %d] /Resources << /XObject << /Im1 %d 0 R >> >> /Contents %d 0 R >>",
		pages, pageW, pageH, img, content))
	w.Set(pages, fmt.Sprintf("<< /Type /Pages /Kids [%d 0 R] /Count 1 >>", page))
	w.Set(catalog, fmt.Sprintf("<< /Type /Catalog /Pages %d 0 R >>", pages))
	w.Root = catalog
	return w.Bytes()
}

// Encode applies filters (named in /Filter order) to data with pdfcpu's encoders, last
// filter first, so that a reader decoding in /Filter order gets data back. It panics on
// an unknown filter name (a test bug).
func Encode(data []byte, filters ...string) []byte {
	for i := len(filters) - 1; i >= 0; i-- {
		f, err := filter.NewFilter(filters[i], nil)
		if err != nil {
			panic(err)
		}
		r, err := f.Encode(bytes.NewReader(data))
		if err != nil {
			panic(err)
		}
		if data, err = io.ReadAll(r); err != nil {
			panic(err)
		}
	}
	return data
}

// filterEntry is the /Filter dictionary entry for filters ("" for none).
func filterEntry(filters []string) string {
	if len(filters) == 0 {
		return ""
	}
	return "/Filter [/" + strings.Join(filters, " /") + "]"
}

func deflate(b []byte) []byte {
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// PdfcpuTextTable writes the table with pdfcpu's own PDF writer (api.Create from its
// JSON page description): one text box per cell in Helvetica, the content stream
// FlateDecode-compressed as pdfcpu writes it, the way an office suite's export is.
func PdfcpuTextTable(rows [][]string) ([]byte, error) {
	type box struct {
		Value string         `json:"value"`
		Pos   [2]int         `json:"pos"`
		Font  map[string]any `json:"font"`
	}
	var boxes []box
	y := pageH - 60
	for _, row := range rows {
		x := 50
		for i, cell := range row {
			boxes = append(boxes, box{Value: cell, Pos: [2]int{x, y}, Font: map[string]any{"name": "Helvetica", "size": 10}})
			x += colWidth(i)
		}
		y -= 16
	}
	js, err := json.Marshal(map[string]any{"paper": "A4P", "origin": "LowerLeft",
		"pages": map[string]any{"1": map[string]any{"content": map[string]any{"text": boxes}}}})
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := api.Create(nil, bytes.NewReader(js), &out, nil); err != nil {
		return nil, fmt.Errorf("cannot write the test PDF with pdfcpu: %w", err)
	}
	return out.Bytes(), nil
}
