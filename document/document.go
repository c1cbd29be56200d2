package document

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"strings"

	"golang.org/x/image/webp"

	"github.com/vlproxy/vlproxy/internal/eserr"
	"github.com/vlproxy/vlproxy/media"
)

// Document is what a client document holds, ready for the model.
type Document struct {
	Kind  string   // "pdf" or "image"
	Sum   [32]byte // sha256 of the document's bytes: its cache identity
	Pages []Page
	// Objects is the number of PDF objects (0 for an image).
	Objects int
	// Decoded is the number of stream bytes decoded while reading it.
	Decoded int64
}

// Page is one page: its text lines in reading order and its embedded images.
type Page struct {
	Number int
	Lines  []Line
	Images []Image // largest first; an image document is one page with one image
	// Skipped counts embedded images left out (an unsupported filter or colour space).
	Skipped int
}

// Line is one line of text, split into cells where the PDF positioned its
// text runs apart (a table's columns).
type Line struct {
	Cells []string
}

// Text joins the cells with " | ".
func (l Line) Text() string { return strings.Join(l.Cells, " | ") }

// Image is an embedded image as an encoded file: the PDF's own JPEG
// (DCTDecode) as stored, raw pixels re-encoded as PNG, or an uploaded image
// as sent. Consumers validate and downscale it like a query image.
type Image struct {
	Format        string // "jpeg", "png", "gif" or "webp"
	Data          []byte
	Width, Height int
}

// HasText reports whether the document has any text (a text PDF, not a scan).
func (d *Document) HasText() bool {
	for i := range d.Pages {
		if len(d.Pages[i].Lines) > 0 {
			return true
		}
	}
	return false
}

// Text is the document's text: one line per line, cells joined by " | ",
// pages separated by a blank line.
func (d *Document) Text() string {
	var b strings.Builder
	for i := range d.Pages {
		if i > 0 && b.Len() > 0 {
			b.WriteByte('\n')
		}
		for _, l := range d.Pages[i].Lines {
			b.WriteString(l.Text())
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// Reader reads documents under Limits. It is safe for concurrent use.
type Reader struct {
	lim   Limits
	slots chan struct{}
}

// NewReader returns a Reader; zero limits take their defaults.
func NewReader(lim Limits) (*Reader, error) {
	lim, err := lim.WithDefaults()
	if err != nil {
		return nil, err
	}
	return &Reader{lim: lim, slots: make(chan struct{}, lim.MaxInFlight)}, nil
}

// Limits returns the limits in effect.
func (r *Reader) Limits() Limits { return r.lim }

// Sniff names a document's format from its first bytes: "pdf", an image
// format, or "" when it is neither.
func Sniff(b []byte) string {
	// The spec lets "%PDF-" appear within the first 1024 bytes.
	if i := bytes.Index(b[:min(len(b), 1024)], []byte("%PDF-")); i >= 0 {
		return "pdf"
	}
	return media.Sniff(b)
}

// Read checks and reads one document. raw must stay unchanged while the
// returned Document is used (images of a PDF may share its bytes). A
// returned error is an *eserr.Error: 400 for a malformed, encrypted or hostile
// document or a limit other than bytes, 413 over max_bytes, 429 when no
// reading slot frees up before ctx ends.
func (r *Reader) Read(ctx context.Context, raw []byte) (*Document, error) {
	if len(raw) > r.lim.MaxBytes {
		return nil, tooLarge("cannot accept [multimodal] [document]: %d bytes is larger than document.max_bytes (%d bytes)", len(raw), r.lim.MaxBytes)
	}
	format := Sniff(raw)
	if format == "" {
		return nil, badDocument(nil, "cannot use [multimodal] [document]: not a PDF, JPEG, PNG, WebP or GIF file")
	}
	if format != "pdf" {
		return r.readImage(raw, format)
	}
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, tooMany("cannot read [multimodal] [document]: more than document.max_in_flight (%d) documents are being read", r.lim.MaxInFlight)
	}
	ctx, cancel := context.WithTimeout(ctx, r.lim.ReadTimeout)
	defer cancel()
	type result struct {
		doc *Document
		err error
	}
	done := make(chan result, 1)
	go func() {
		var res result
		// The slot is the goroutine's: one that overran the deadline still holds it until it
		// has stopped, so max_in_flight bounds the work really running.
		defer func() { <-r.slots }()
		defer func() {
			if p := recover(); p != nil {
				res = result{err: badDocument(fmt.Errorf("%v", p), "cannot read [multimodal] [document]: malformed PDF")}
			}
			done <- res
		}()
		res.doc, res.err = readPDF(ctx, raw, &r.lim)
	}()
	select {
	case res := <-done:
		if res.err != nil {
			return nil, asError(res.err)
		}
		res.doc.Sum = sha256.Sum256(raw)
		return res.doc, nil
	case <-ctx.Done():
		// The reader checks ctx between objects, pages and streams and stops soon after.
		return nil, badDocument(ctx.Err(), "cannot read [multimodal] [document] within document.read_timeout (%s)", r.lim.ReadTimeout)
	}
}

func asError(err error) error {
	var e *eserr.Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return badDocument(err, "cannot read [multimodal] [document] within document.read_timeout")
	}
	return badDocument(err, "cannot read [multimodal] [document]: malformed PDF")
}

// readImage takes an uploaded photo of a page: one page with one image.
func (r *Reader) readImage(raw []byte, format string) (*Document, error) {
	var (
		c   image.Config
		err error
	)
	rd := bytes.NewReader(raw)
	switch format {
	case "jpeg":
		c, err = jpeg.DecodeConfig(rd)
	case "png":
		c, err = png.DecodeConfig(rd)
	case "gif":
		c, err = gif.DecodeConfig(rd)
	case "webp":
		c, err = webp.DecodeConfig(rd)
	}
	if err != nil {
		return nil, badDocument(err, "cannot read the %s header of [multimodal] [document]", format)
	}
	if c.Width <= 0 || c.Height <= 0 || int64(c.Width)*int64(c.Height) > int64(r.lim.MaxPagePixels) {
		return nil, badDocument(nil, "cannot use [multimodal] [document]: %dx%d pixels is more than document.max_page_pixels (%d)", c.Width, c.Height, r.lim.MaxPagePixels)
	}
	return &Document{
		Kind:  "image",
		Sum:   sha256.Sum256(raw),
		Pages: []Page{{Number: 1, Images: []Image{{Format: format, Data: raw, Width: c.Width, Height: c.Height}}}},
	}, nil
}
