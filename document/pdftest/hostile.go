package pdftest

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
)

// Hostile is one document of the hostile corpus.
type Hostile struct {
	Name string
	PDF  []byte
}

// HostileCorpus builds the corpus: each entry must be refused with a 400.
func HostileCorpus() ([]Hostile, error) {
	text := TextTable("Price list", [][]string{{"Item", "Qty", "Price"}, {"Blue denim jacket", "2", "59.90"}})
	enc, err := Encrypted(text, "secret")
	if err != nil {
		return nil, err
	}
	return []Hostile{
		{"truncated", text[:len(text)/2]},
		{"not_a_pdf_body", append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("garbage "), 1000)...)},
		{"encrypted", enc},
		{"page_tree_loop", PageTreeLoop()},
		{"reference_loop", ReferenceLoop()},
		{"stream_bomb_1GiB", Bomb(1 << 30)},
		{"stream_bomb_1GiB_hex_flate", FilteredBomb(1<<30, "ASCIIHexDecode")},
		{"stream_bomb_1GiB_a85_flate", FilteredBomb(1<<30, "ASCII85Decode")},
		{"form_xobject_bomb_1GiB", FormBomb(1 << 30)},
		{"pages_10000", ManyPages(10_000, true)},
		{"pages_10000_lying_count", ManyPages(10_000, false)},
		{"pages_60_lying_count", ManyPages(60, false)}, // under the byte-scan precheck: the page walk refuses it
		{"deep_page_tree", DeepTree(200)},
	}, nil
}

// Encrypted encrypts a PDF with a user password using pdfcpu's writer (AES-256).
func Encrypted(pdf []byte, password string) ([]byte, error) {
	conf := model.NewAESConfiguration(password, password+"-owner", 256)
	var out bytes.Buffer
	if err := api.Encrypt(bytes.NewReader(pdf), &out, conf); err != nil {
		return nil, fmt.Errorf("cannot encrypt the test PDF: %w", err)
	}
	return out.Bytes(), nil
}

// PageTreeLoop is a page tree whose node lists itself among its kids.
func PageTreeLoop() []byte {
	var w Writer
	catalog := w.Reserve()
	pages := w.Reserve()
	page := w.Add(fmt.Sprintf("<< /Type /Page /Parent %d 0 R /MediaBox [0 0 10 10] >>", pages))
	w.Set(pages, fmt.Sprintf("<< /Type /Pages /Kids [%d 0 R %d 0 R] /Count 2 >>", page, pages))
	w.Set(catalog, fmt.Sprintf("<< /Type /Catalog /Pages %d 0 R >>", pages))
	w.Root = catalog
	return w.Bytes()
}

// ReferenceLoop has objects that are references to each other, and a
// content array that is one of them.
func ReferenceLoop() []byte {
	var w Writer
	catalog := w.Reserve()
	pages := w.Reserve()
	a := w.Reserve()
	b := w.Reserve()
	w.Set(a, fmt.Sprintf("%d 0 R", b))
	w.Set(b, fmt.Sprintf("%d 0 R", a))
	page := w.Add(fmt.Sprintf("<< /Type /Page /Parent %d 0 R /MediaBox [0 0 10 10] /Contents %d 0 R /Resources %d 0 R >>", pages, a, b))
	w.Set(pages, fmt.Sprintf("<< /Type /Pages /Kids [%d 0 R] /Count 1 >>", page))
	w.Set(catalog, fmt.Sprintf("<< /Type /Catalog /Pages %d 0 R >>", pages))
	w.Root = catalog
	return w.Bytes()
}

// Bomb is a one-page PDF whose content stream is a small FlateDecode stream
// that inflates to n bytes of spaces (n a multiple of 1 MiB).
func Bomb(n int64) []byte { return FilteredBomb(n) }

// FilteredBomb is Bomb with the zlib stream further encoded by outer filters, which
// come before FlateDecode in the stream's /Filter array (e.g. "ASCIIHexDecode").
func FilteredBomb(n int64, outer ...string) []byte {
	filters := append(append([]string(nil), outer...), "FlateDecode")
	var w Writer
	catalog := w.Reserve()
	pages := w.Reserve()
	content := w.AddStream(filterEntry(filters), Encode(zlibSpaces(n), outer...))
	page := w.Add(fmt.Sprintf("<< /Type /Page /Parent %d 0 R /MediaBox [0 0 10 10] /Contents %d 0 R >>", pages, content))
	w.Set(pages, fmt.Sprintf("<< /Type /Pages /Kids [%d 0 R] /Count 1 >>", page))
	w.Set(catalog, fmt.Sprintf("<< /Type /Catalog /Pages %d 0 R >>", pages))
	w.Root = catalog
	return w.Bytes()
}

// FormBomb is a one-page PDF whose page draws a form XObject whose content stream
// is Bomb's: the bomb sits one level below the page's own content.
func FormBomb(n int64) []byte {
	var w Writer
	catalog := w.Reserve()
	pages := w.Reserve()
	form := w.AddStream("/Type /XObject /Subtype /Form /BBox [0 0 10 10] /Filter /FlateDecode", zlibSpaces(n))
	content := w.AddStream("/Filter /FlateDecode", deflate([]byte("BT /F1 10 Tf 1 1 Td (cover) Tj ET /Fm1 Do")))
	page := w.Add(fmt.Sprintf("<< /Type /Page /Parent %d 0 R /MediaBox [0 0 10 10] /Resources << /XObject << /Fm1 %d 0 R >> >> /Contents %d 0 R >>", pages, form, content))
	w.Set(pages, fmt.Sprintf("<< /Type /Pages /Kids [%d 0 R] /Count 1 >>", page))
	w.Set(catalog, fmt.Sprintf("<< /Type /Catalog /Pages %d 0 R >>", pages))
	w.Root = catalog
	return w.Bytes()
}

// zlibSpaces is a zlib stream of n spaces (n a multiple of 1 MiB), built without
// compressing n bytes: after a sync flush, deflate encodes each further MiB of the
// same byte identically, so one block is repeated.
func zlibSpaces(n int64) []byte {
	const chunk = 1 << 20
	zeros := bytes.Repeat([]byte{' '}, chunk)
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestCompression)
	fw.Write(zeros)
	fw.Flush()
	head := len(buf.Bytes())
	fw.Write(zeros)
	fw.Flush()
	block := append([]byte(nil), buf.Bytes()[head:]...)
	prefix := append([]byte(nil), buf.Bytes()[:head]...)
	var z bytes.Buffer
	z.Write([]byte{0x78, 0xDA}) // zlib header, best compression
	z.Write(prefix)
	for i := int64(1); i < n/chunk; i++ {
		z.Write(block)
	}
	z.Write([]byte{0x03, 0x00}) // a final empty fixed-Huffman block
	// Adler-32 of n spaces: A = 1 + 32n, B = n + 32·n(n+1)/2, both mod 65521.
	const mod = 65521
	nn := uint64(n)
	a := (1 + 32*nn) % mod
	bsum := (nn%mod + 32*((nn%mod)*((nn+1)%mod)%mod*inv2%mod)) % mod
	binary.Write(&z, binary.BigEndian, uint32(bsum<<16|a))
	return z.Bytes()
}

// inv2 is the inverse of 2 modulo 65521.
const inv2 = (65521 + 1) / 2

// ManyPages is a PDF of n pages sharing one content stream; with honest
// false its page tree claims /Count 1.
func ManyPages(n int, honest bool) []byte {
	var w Writer
	catalog := w.Reserve()
	pages := w.Reserve()
	content := w.AddStream("", []byte("BT /F1 10 Tf 50 50 Td (page) Tj ET"))
	kids := make([]string, n)
	for i := range kids {
		kids[i] = fmt.Sprintf("%d 0 R", w.Add(fmt.Sprintf("<< /Type /Page /Parent %d 0 R /MediaBox [0 0 10 10] /Contents %d 0 R >>", pages, content)))
	}
	count := n
	if !honest {
		count = 1
	}
	w.Set(pages, fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), count))
	w.Set(catalog, fmt.Sprintf("<< /Type /Catalog /Pages %d 0 R >>", pages))
	w.Root = catalog
	return w.Bytes()
}

// DeepTree nests page tree nodes depth levels deep above one page.
func DeepTree(depth int) []byte {
	var w Writer
	catalog := w.Reserve()
	top := w.Reserve()
	parent := top
	for range depth {
		n := w.Reserve()
		w.Set(parent, fmt.Sprintf("<< /Type /Pages /Kids [%d 0 R] /Count 1 >>", n))
		parent = n
	}
	w.Set(parent, "<< /Type /Page /MediaBox [0 0 10 10] >>")
	w.Set(catalog, fmt.Sprintf("<< /Type /Catalog /Pages %d 0 R >>", top))
	w.Root = catalog
	return w.Bytes()
}
