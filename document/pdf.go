package document

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"sort"
	"strings"

	"github.com/pdfcpu/pdfcpu/pkg/filter"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

func init() {
	// pdfcpu otherwise writes a config directory under $HOME on first use.
	model.ConfigPath = "disable"
}

const (
	maxTreeDepth = 32 // page tree levels
	maxFormDepth = 4  // form XObjects inside form XObjects
	maxRefChain  = 8  // an indirect reference whose object is again a reference
	minImageSide = 32 // smaller images are bullets and logos, not pages
	maxPageImgs  = 4  // images kept per page, largest first
)

// pdfConfig is pdfcpu's configuration under our limits.
func pdfConfig(lim *Limits) *model.Configuration {
	conf := model.NewDefaultConfiguration()
	conf.ValidationMode = model.ValidationRelaxed
	l := &conf.Limits
	l.MaxStreamBytes = int64(lim.MaxBytes)
	l.MaxDecodeBytes = lim.MaxDecodedBytes
	l.MaxImagePixels = int64(lim.MaxPagePixels)
	l.MaxImageBytes = lim.MaxDecodedBytes
	l.MaxObjectCount = lim.MaxObjects
	l.MaxObjectStreamCount = lim.MaxObjects
	l.MaxXRefEntries = lim.MaxObjects
	l.MaxRecursionDepth = 64
	return conf
}

// pdfReader walks one PDF's objects under the document's budget.
type pdfReader struct {
	ctx     context.Context
	xt      *model.XRefTable
	lim     *Limits
	decoded int64 // stream bytes decoded so far
	fonts   map[int]*font
	forms   map[int]bool // form XObjects on the current page's stack
}

func readPDF(ctx context.Context, raw []byte, lim *Limits) (*Document, error) {
	if err := precheck(raw, lim); err != nil {
		return nil, err
	}
	pc, err := pdfcpu.ReadWithContext(ctx, bytes.NewReader(raw), pdfConfig(lim))
	if err != nil {
		return nil, readError(err, lim)
	}
	xt := pc.XRefTable
	if xt.Encrypt != nil {
		return nil, badDocument(nil, "cannot read [multimodal] [document]: the PDF is encrypted")
	}
	if n := len(xt.Table); n > lim.MaxObjects {
		return nil, badDocument(nil, "cannot read [multimodal] [document]: %d objects is more than document.max_objects (%d)", n, lim.MaxObjects)
	}
	r := &pdfReader{ctx: ctx, xt: xt, lim: lim, fonts: map[int]*font{}}
	pages, err := r.pages()
	if err != nil {
		return nil, err
	}
	doc := &Document{Kind: "pdf", Objects: len(xt.Table)}
	for i, p := range pages {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		pg, err := r.page(p)
		if err != nil {
			return nil, err
		}
		pg.Number = i + 1
		doc.Pages = append(doc.Pages, pg)
	}
	doc.Decoded = r.decoded
	return doc, nil
}

// precheck refuses, for the cost of two byte scans, files that are plainly
// over the object or page limit before pdfcpu parses every object: the
// " obj" keywords and the uncompressed page dictionaries are counted. Pages
// rewritten by incremental updates count more than once, so only four times
// the page limit refuses here; the page tree walk enforces the exact limit.
func precheck(raw []byte, lim *Limits) error {
	if n := bytes.Count(raw, []byte(" obj")); n > lim.MaxObjects {
		return badDocument(nil, "cannot read [multimodal] [document]: %d objects is more than document.max_objects (%d)", n, lim.MaxObjects)
	}
	pages := 0
	for _, key := range [][]byte{[]byte("/Type/Page"), []byte("/Type /Page")} {
		for b := raw; ; {
			i := bytes.Index(b, key)
			if i < 0 {
				break
			}
			b = b[i+len(key):]
			if len(b) == 0 || b[0] != 's' {
				pages++
			}
		}
	}
	if pages > 4*lim.MaxPages {
		return badDocument(nil, "cannot read [multimodal] [document]: %d pages is more than document.max_pages (%d)", pages, lim.MaxPages)
	}
	return nil
}

func readError(err error, lim *Limits) error {
	switch {
	case errors.Is(err, filter.ErrDecodeLimitExceeded):
		return badDocument(err, "cannot read [multimodal] [document]: its streams decode to more than document.max_decoded_bytes (%d bytes)", lim.MaxDecodedBytes)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return badDocument(err, "cannot read [multimodal] [document] within document.read_timeout (%s)", lim.ReadTimeout)
	case strings.Contains(strings.ToLower(err.Error()), "password"), strings.Contains(strings.ToLower(err.Error()), "encrypt"):
		return badDocument(err, "cannot read [multimodal] [document]: the PDF is encrypted")
	}
	return badDocument(err, "cannot read [multimodal] [document]: malformed PDF")
}

// deref follows indirect references, refusing chains that loop.
func (r *pdfReader) deref(o types.Object) (types.Object, error) {
	for range maxRefChain {
		if _, ok := o.(types.IndirectRef); !ok {
			return o, nil
		}
		var err error
		if o, err = r.xt.Dereference(o); err != nil {
			return nil, badDocument(err, "cannot read [multimodal] [document]: malformed object")
		}
	}
	return nil, badDocument(nil, "cannot read [multimodal] [document]: an object refers to itself")
}

func (r *pdfReader) dict(o types.Object) types.Dict {
	o, err := r.deref(o)
	if err != nil {
		return nil
	}
	switch d := o.(type) {
	case types.Dict:
		return d
	case types.StreamDict:
		return d.Dict
	}
	return nil
}

func (r *pdfReader) number(o types.Object) (float64, bool) {
	o, err := r.deref(o)
	if err != nil {
		return 0, false
	}
	switch v := o.(type) {
	case types.Integer:
		return float64(v), true
	case types.Float:
		return float64(v), true
	}
	return 0, false
}

func (r *pdfReader) name(o types.Object) string {
	o, _ = r.deref(o)
	if n, ok := o.(types.Name); ok {
		return string(n)
	}
	return ""
}

func objNr(o types.Object) int {
	if ir, ok := o.(types.IndirectRef); ok {
		return int(ir.ObjectNumber)
	}
	return -1
}

type pageRef struct {
	dict types.Dict
	res  types.Dict
}

// pages walks the page tree with a visited set and the page cap.
func (r *pdfReader) pages() ([]pageRef, error) {
	root, err := r.xt.Catalog()
	if err != nil || root == nil {
		return nil, badDocument(err, "cannot read [multimodal] [document]: the PDF has no catalog")
	}
	top, ok := root.Find("Pages")
	if !ok {
		return nil, badDocument(nil, "cannot read [multimodal] [document]: the PDF has no page tree")
	}
	if d := r.dict(top); d != nil {
		if n, ok := r.number(d["Count"]); ok && n > float64(r.lim.MaxPages) {
			return nil, r.tooManyPages(int(n))
		}
	}
	var out []pageRef
	visited := map[int]bool{}
	var walk func(o types.Object, res types.Dict, depth int) error
	walk = func(o types.Object, res types.Dict, depth int) error {
		if depth > maxTreeDepth {
			return badDocument(nil, "cannot read [multimodal] [document]: page tree deeper than %d levels", maxTreeDepth)
		}
		if nr := objNr(o); nr >= 0 {
			if visited[nr] {
				return badDocument(nil, "cannot read [multimodal] [document]: the page tree loops (object %d)", nr)
			}
			visited[nr] = true
		}
		d := r.dict(o)
		if d == nil {
			return nil // a missing kid is a null object (7.3.10)
		}
		if rd := r.dict(d["Resources"]); rd != nil {
			res = rd
		}
		kids, hasKids := d.Find("Kids")
		if t := d.Type(); t != nil && *t == "Page" || !hasKids {
			if len(out) == r.lim.MaxPages {
				return r.tooManyPages(len(out) + 1)
			}
			out = append(out, pageRef{dict: d, res: res})
			return nil
		}
		ko, err := r.deref(kids)
		if err != nil {
			return err
		}
		arr, _ := ko.(types.Array)
		for _, k := range arr {
			if err := r.ctx.Err(); err != nil {
				return err
			}
			if err := walk(k, res, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(top, nil, 0); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, badDocument(nil, "cannot read [multimodal] [document]: the PDF has no pages")
	}
	return out, nil
}

func (r *pdfReader) tooManyPages(n int) error {
	return badDocument(nil, "cannot read [multimodal] [document]: %d pages is more than document.max_pages (%d)", n, r.lim.MaxPages)
}

// stream returns the stream an object refers to, nil when it is none.
func (r *pdfReader) stream(o types.Object) *types.StreamDict {
	o, err := r.deref(o)
	if err != nil {
		return nil
	}
	if sd, ok := o.(types.StreamDict); ok {
		return &sd
	}
	return nil
}

// decode decodes a stream within what is left of the document's budget.
func (r *pdfReader) decode(sd *types.StreamDict) ([]byte, error) {
	if err := r.ctx.Err(); err != nil {
		return nil, err
	}
	left := r.lim.MaxDecodedBytes - r.decoded
	if int64(len(sd.Raw)) > left && len(sd.FilterPipeline) == 0 || left <= 0 {
		return nil, r.overBudget(nil)
	}
	for _, f := range sd.FilterPipeline {
		switch f.Name {
		case filter.Flate, filter.LZW, filter.ASCII85, filter.ASCIIHex, filter.RunLength:
		default:
			return nil, errUnsupported
		}
	}
	if len(sd.FilterPipeline) == 0 {
		r.decoded += int64(len(sd.Raw))
		return sd.Raw, nil
	}
	if b, ok, err := r.decodeStreaming(sd, left); ok {
		return b, err
	}
	sd.Content = nil
	b, err := sd.DecodeLengthWithLimit(-1, left)
	if err != nil {
		if errors.Is(err, filter.ErrDecodeLimitExceeded) {
			return nil, r.overBudget(err)
		}
		return nil, badDocument(err, "cannot decode a stream of [multimodal] [document]")
	}
	if int64(len(b)) > left {
		return nil, r.overBudget(nil)
	}
	r.decoded += int64(len(b))
	return b, nil
}

var errUnsupported = errors.New("unsupported filter")

// decodeStreaming decodes a pipeline of streaming filters (filters.go) in two passes:
// the first counts what it decodes to without keeping a byte and stops past limit, so a
// decompression bomb is refused before any buffer is allocated; the second decodes a
// legitimate stream into a buffer of its size. ok is false when the pipeline cannot
// stream, or when a stream ends in an error (truncated, bad checksum): pdfcpu's decoder,
// which repairs some of those, then decodes it under the same limit.
func (r *pdfReader) decodeStreaming(sd *types.StreamDict, limit int64) (b []byte, ok bool, err error) {
	rd, ok := streamReader(sd)
	if !ok {
		return nil, false, nil
	}
	n, err := io.Copy(io.Discard, io.LimitReader(rd, limit+1))
	if n > limit {
		return nil, true, r.overBudget(nil)
	}
	if err != nil {
		return nil, false, nil
	}
	rd, _ = streamReader(sd)
	b = make([]byte, n)
	if _, err := io.ReadFull(rd, b); err != nil {
		return nil, false, nil
	}
	r.decoded += n
	return b, true, nil
}

func (r *pdfReader) overBudget(err error) error {
	return badDocument(err, "cannot read [multimodal] [document]: its streams decode to more than document.max_decoded_bytes (%d bytes)", r.lim.MaxDecodedBytes)
}

// page reads one page's text and images.
func (r *pdfReader) page(p pageRef) (Page, error) {
	var pg Page
	var content []byte
	co, _ := p.dict.Find("Contents")
	o, err := r.deref(co)
	if err != nil {
		return pg, err
	}
	var parts []types.Object
	if arr, ok := o.(types.Array); ok {
		parts = arr
	} else if o != nil {
		parts = []types.Object{co}
	}
	for _, part := range parts {
		sd := r.stream(part)
		if sd == nil {
			continue
		}
		b, err := r.decode(sd)
		if errors.Is(err, errUnsupported) {
			continue
		}
		if err != nil {
			return pg, err
		}
		content = append(content, b...)
		content = append(content, '\n')
	}
	r.forms = map[int]bool{}
	t := newTextState()
	if err := r.run(content, p.res, t, &pg, 0); err != nil {
		return pg, err
	}
	pg.Lines = t.lines()
	sort.SliceStable(pg.Images, func(i, j int) bool {
		return pg.Images[i].Width*pg.Images[i].Height > pg.Images[j].Width*pg.Images[j].Height
	})
	if len(pg.Images) > maxPageImgs {
		pg.Skipped += len(pg.Images) - maxPageImgs
		pg.Images = pg.Images[:maxPageImgs]
	}
	return pg, nil
}

// xobject draws the XObject named by Do: an image is kept, a form is run.
func (r *pdfReader) xobject(name string, res types.Dict, t *textState, pg *Page, depth int) error {
	xs := r.dict(res["XObject"])
	if xs == nil {
		return nil
	}
	ref, ok := xs[name]
	if !ok {
		return nil
	}
	sd := r.stream(ref)
	if sd == nil {
		return nil
	}
	switch r.name(sd.Dict["Subtype"]) {
	case "Image":
		return r.image(sd, pg)
	case "Form":
		nr := objNr(ref)
		if depth >= maxFormDepth || nr >= 0 && r.forms[nr] {
			return nil // a form drawing itself
		}
		r.forms[nr] = true
		defer delete(r.forms, nr)
		b, err := r.decode(sd)
		if errors.Is(err, errUnsupported) {
			return nil
		}
		if err != nil {
			return err
		}
		fres := r.dict(sd.Dict["Resources"])
		if fres == nil {
			fres = res
		}
		return r.run(b, fres, t, pg, depth+1)
	}
	return nil
}

// image keeps an image XObject as an encoded file.
func (r *pdfReader) image(sd *types.StreamDict, pg *Page) error {
	w, _ := r.number(sd.Dict["Width"])
	h, _ := r.number(sd.Dict["Height"])
	if w <= 0 || h <= 0 || w > 1<<20 || h > 1<<20 {
		pg.Skipped++
		return nil
	}
	if w*h > float64(r.lim.MaxPagePixels) {
		return badDocument(nil, "cannot read [multimodal] [document]: a %gx%g page image is more than document.max_page_pixels (%d)", w, h, r.lim.MaxPagePixels)
	}
	if w < minImageSide || h < minImageSide {
		return nil
	}
	if m, ok := sd.Dict["ImageMask"].(types.Boolean); ok && bool(m) {
		return nil
	}
	iw, ih := int(w), int(h)
	fp := sd.FilterPipeline
	if len(fp) == 1 && fp[0].Name == filter.DCT {
		c, err := jpeg.DecodeConfig(bytes.NewReader(sd.Raw))
		if err != nil || c.Width != iw || c.Height != ih {
			pg.Skipped++
			return nil
		}
		pg.Images = append(pg.Images, Image{Format: "jpeg", Data: sd.Raw, Width: iw, Height: ih})
		return nil
	}
	comps := r.components(sd.Dict["ColorSpace"])
	if bpc, _ := r.number(sd.Dict["BitsPerComponent"]); bpc != 8 || comps == 0 {
		pg.Skipped++
		return nil
	}
	need := int64(iw) * int64(ih) * int64(comps)
	if need > r.lim.MaxDecodedBytes-r.decoded {
		return r.overBudget(nil)
	}
	b, err := r.decode(sd)
	if errors.Is(err, errUnsupported) {
		pg.Skipped++
		return nil
	}
	if err != nil {
		return err
	}
	if int64(len(b)) < need {
		pg.Skipped++
		return nil
	}
	var img image.Image
	if comps == 1 {
		img = &image.Gray{Pix: b[:need], Stride: iw, Rect: image.Rect(0, 0, iw, ih)}
	} else {
		rgba := image.NewRGBA(image.Rect(0, 0, iw, ih))
		for i, j := 0, 0; i < int(need); i, j = i+3, j+4 {
			rgba.Pix[j], rgba.Pix[j+1], rgba.Pix[j+2], rgba.Pix[j+3] = b[i], b[i+1], b[i+2], 0xFF
		}
		img = rgba
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		pg.Skipped++
		return nil
	}
	pg.Images = append(pg.Images, Image{Format: "png", Data: buf.Bytes(), Width: iw, Height: ih})
	return nil
}

// components is the number of colour components of a device or ICC colour
// space, 0 for the ones left out (indexed, separation, Lab, CMYK).
func (r *pdfReader) components(o types.Object) int {
	o, _ = r.deref(o)
	switch v := o.(type) {
	case types.Name:
		switch v {
		case "DeviceGray", "G", "CalGray":
			return 1
		case "DeviceRGB", "RGB", "CalRGB":
			return 3
		}
	case types.Array:
		if len(v) == 2 && r.name(v[0]) == "ICCBased" {
			if d := r.dict(v[1]); d != nil {
				if n, _ := r.number(d["N"]); n == 1 || n == 3 {
					return int(n)
				}
			}
		}
	}
	return 0
}
