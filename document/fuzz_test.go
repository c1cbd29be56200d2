package document

import (
	"context"
	"testing"

	"github.com/vlproxy/vlproxy/document/pdftest"
	"github.com/vlproxy/vlproxy/internal/eserr"
)

// FuzzRead: any bytes give a Document or an *Error with a 4xx status, and never a panic.
func FuzzRead(f *testing.F) {
	f.Add(pdftest.TextTable("Order", priceList))
	f.Add(pdftest.FilteredTextTable("Order", priceList[:2], "ASCIIHexDecode", "FlateDecode"))
	f.Add(pdftest.FilteredTextTable("Order", priceList[:2], "ASCII85Decode", "RunLengthDecode"))
	jpg, w, h, err := pdftest.RenderTable("Order", priceList[:2])
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pdftest.Scan([][]byte{jpg}, [][2]int{{w, h}}, true))
	f.Add(pdftest.RawImage(make([]byte, 40*40), 40, 40, 1))
	f.Add(pdftest.PageTreeLoop())
	f.Add(pdftest.ReferenceLoop())
	f.Add(pdftest.Bomb(2 << 20))
	f.Add(pdftest.ManyPages(30, false))
	f.Add(pdftest.DeepTree(40))
	f.Add([]byte("%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 1 0 R >> endobj trailer << /Root 1 0 R >>"))
	r, err := NewReader(Limits{MaxDecodedBytes: 4 << 20})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		doc, err := r.Read(context.Background(), raw)
		if err != nil {
			e, ok := err.(*eserr.Error)
			if !ok || e.Status < 400 || e.Status > 499 {
				t.Fatalf("want a 4xx *eserr.Error, got %T %v", err, err)
			}
			return
		}
		if doc == nil || len(doc.Pages) == 0 {
			t.Fatalf("no error and no pages")
		}
		_ = doc.Text()
	})
}

// FuzzContent runs the content stream interpreter and the CMap parser on any bytes.
func FuzzContent(f *testing.F) {
	f.Add([]byte("BT /F1 10 Tf 50 700 Td (Denim Jacket) Tj 170 0 Td (2) Tj ET"))
	f.Add([]byte("q 1 0 0 1 0 0 cm BT 12 TL /F1 9 Tf 1 0 0 1 10 10 Tm [(A) -300 (B)] TJ T* (C) ' 1 2 (D) \" ET Q /Im1 Do"))
	f.Add([]byte("BI /W 4 /H 4 /CS /G /BPC 8 ID \x00\x01\x02 EI BT <48656c6c6f> Tj ET << /A << /B (x) >> >> BDC EMC"))
	f.Add([]byte("/CIDInit /ProcSet findresource begin 1 begincodespacerange <0000> <FFFF> endcodespacerange " +
		"2 beginbfchar <0001> <0041> <0002> <4E2D> endbfchar 1 beginbfrange <0010> <0020> <0061> endbfrange " +
		"1 beginbfrange <0030> <0031> [<0062> <0063>] endbfrange endcmap"))
	f.Add([]byte("((((( \\\\ \\( \\101 ) [ [ [ ] 1e999 -.5 +3 ."))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := &pdfReader{ctx: context.Background(), lim: &Limits{MaxDecodedBytes: 1 << 20}, fonts: map[int]*font{}, forms: map[int]bool{}}
		st := newTextState()
		var pg Page
		if err := r.run(b, nil, st, &pg, 0); err != nil {
			t.Fatal(err)
		}
		_ = st.lines()
		c := parseCMap(b)
		c.decode(b, true)
		c.decode(b, false)
	})
}
