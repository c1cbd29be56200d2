package rewrite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"strings"
	"sync"

	"golang.org/x/image/draw"
	"golang.org/x/image/webp"
)

// queryImage is a validated query image.
type queryImage struct {
	Sum  [32]byte // sha256 of the original bytes: the cache identity
	JPEG []byte   // what the model gets (processImage only: Rewriter.image leaves it nil)
	URI  string   // the JPEG as a data URI, for model requests (Rewriter.image only)
}

const jpegURIPrefix = "data:image/jpeg;base64,"

// jpegURI returns a JPEG as a data URI; b64, when not empty, is that JPEG
// already in standard padded base64 (the client's own), which is then copied
// instead of encoded again.
func jpegURI(jpeg []byte, b64 string) string {
	if b64 != "" {
		return jpegURIPrefix + b64
	}
	dst := make([]byte, 0, len(jpegURIPrefix)+base64.StdEncoding.EncodedLen(len(jpeg)))
	dst = append(dst, jpegURIPrefix...)
	dst = base64.StdEncoding.AppendEncode(dst, jpeg)
	return bytesString(dst) // dst is never written again
}

// imageInput is a clause image as bytes. raw may live in a pooled buffer:
// call release when done with it, or keep to hand it to code that outlives the call.
type imageInput struct {
	raw []byte
	b64 string // the standard padded base64 raw was decoded from, "" when it was not that
	buf *[]byte
}

func (in *imageInput) release() {
	if in.buf != nil && cap(*in.buf) <= maxPooledImage {
		rawPool.Put(in.buf)
	}
	in.buf, in.raw = nil, nil
}

// keep takes raw out of the pool's hands: it stays valid however long it is used.
func (in *imageInput) keep() { in.buf = nil }

// maxPooledImage: larger buffers are left to the garbage collector rather than
// held by the pool.
const maxPooledImage = 2 << 20

var rawPool = sync.Pool{New: func() any { return new([]byte) }}

// imageBytes turns the clause's image string into raw bytes: a data URI, raw
// base64, or (through the fetcher) an http(s) URL of an allowed host.
func (r *Rewriter) imageBytes(ctx context.Context, s string) (imageInput, error) {
	lower := strings.ToLower(s[:min(len(s), 16)])
	switch {
	case strings.HasPrefix(lower, "http://"), strings.HasPrefix(lower, "https://"):
		if r.fetch == nil {
			return imageInput{}, imageError(nil, "cannot fetch image URLs here")
		}
		raw, err := r.fetch.get(ctx, s)
		return imageInput{raw: raw}, err
	case strings.HasPrefix(lower, "data:"):
		meta, payload, ok := strings.Cut(s[len("data:"):], ",")
		if !ok {
			return imageInput{}, imageError(nil, "cannot parse [multimodal] [image]: data URI without a comma")
		}
		mt, isB64 := strings.CutSuffix(strings.ToLower(meta), ";base64")
		if !isB64 {
			return imageInput{}, imageError(nil, "cannot parse [multimodal] [image]: only base64 data URIs are supported")
		}
		if mt != "" && !strings.HasPrefix(mt, "image/") {
			return imageInput{}, imageError(nil, "cannot parse [multimodal] [image]: media type %q is not an image", mt)
		}
		return r.decodeBase64(payload)
	case strings.Contains(lower, "://"):
		return imageInput{}, imageError(nil, "cannot use [multimodal] [image]: only data URIs, base64 and http(s) URLs are supported")
	}
	return r.decodeBase64(s)
}

// decodeBase64 decodes standard, URL-safe, padded or raw base64 into a pooled
// buffer, reading s in place.
func (r *Rewriter) decodeBase64(s string) (imageInput, error) {
	limit := r.cfg.Image.MaxBytes
	// Base64 is 4/3 of the bytes plus line breaks; refuse before allocating.
	if len(s)/4*3 > limit+limit/32+64 {
		return imageInput{}, tooLarge("cannot accept [multimodal] [image]: larger than image.max_bytes (%d bytes)", limit)
	}
	in := imageInput{buf: rawPool.Get().(*[]byte)}
	need := base64.RawStdEncoding.DecodedLen(len(s)) // the largest of the four
	if cap(*in.buf) < need {
		*in.buf = make([]byte, need)
	}
	b := (*in.buf)[:need]
	src := stringBytes(s)
	var (
		n   int
		err error
	)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if n, err = enc.Decode(b, src); err == nil {
			if enc == base64.StdEncoding && base64.StdEncoding.EncodedLen(n) == len(s) {
				in.b64 = s // canonical: no line breaks, padded
			}
			break
		}
	}
	if err != nil {
		in.release()
		return imageInput{}, imageError(err, "cannot decode [multimodal] [image]: invalid base64")
	}
	if n > limit {
		in.release()
		return imageInput{}, tooLarge("cannot accept [multimodal] [image]: %d bytes is larger than image.max_bytes (%d bytes)", n, limit)
	}
	in.raw = b[:n]
	return in, nil
}

// sniff names the image format from its magic bytes, "" when it is none we accept.
func sniff(b []byte) string {
	switch {
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return "jpeg"
	case len(b) >= 8 && string(b[:8]) == "\x89PNG\r\n\x1a\n":
		return "png"
	case len(b) >= 6 && (string(b[:6]) == "GIF87a" || string(b[:6]) == "GIF89a"):
		return "gif"
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return "webp"
	}
	return ""
}

// imageHeader is what an image's header says.
type imageHeader struct {
	format string // "jpeg", "png", "gif" or "webp"
	w, h   int
}

// passThrough reports whether the image goes to the model as sent: a JPEG
// (the format every model server of model-servers.md takes) within the pixel budget.
func (h imageHeader) passThrough(cfg *ImageConfig) bool {
	return h.format == "jpeg" && h.w*h.h <= cfg.PixelBudget
}

// inspectImage checks magic bytes and reads the header: no pixel is decoded,
// so a decompression bomb is refused for the cost of its first bytes.
func inspectImage(raw []byte, cfg *ImageConfig) (imageHeader, error) {
	hdr := imageHeader{format: sniff(raw)}
	var (
		c   image.Config
		err error
	)
	switch hdr.format {
	case "jpeg":
		c, err = jpeg.DecodeConfig(bytes.NewReader(raw))
	case "png":
		c, err = png.DecodeConfig(bytes.NewReader(raw))
	case "gif":
		c, err = gif.DecodeConfig(bytes.NewReader(raw))
	case "webp":
		c, err = webp.DecodeConfig(bytes.NewReader(raw))
	default:
		return hdr, imageError(nil, "cannot use [multimodal] [image]: not a JPEG, PNG, WebP or GIF image")
	}
	if err != nil {
		return hdr, imageError(err, "cannot read the %s header of [multimodal] [image]", hdr.format)
	}
	hdr.w, hdr.h = c.Width, c.Height
	if hdr.w <= 0 || hdr.h <= 0 {
		return hdr, imageError(nil, "cannot use [multimodal] [image]: %dx%d pixels", hdr.w, hdr.h)
	}
	if int64(hdr.w)*int64(hdr.h) > int64(cfg.MaxPixels) {
		return hdr, imageError(nil, "cannot use [multimodal] [image]: %dx%d pixels is more than image.max_pixels (%d)", hdr.w, hdr.h, cfg.MaxPixels)
	}
	return hdr, nil
}

// checkJPEG walks the markers of a JPEG that is forwarded without decoding:
// segment lengths must hold, a scan must exist and the image must end (EOI).
// It catches truncated uploads, the usual breakage, for one pass of
// bytes.IndexByte; damage inside the entropy-coded data is left to the model
// server, whose 400 becomes a fallback.
func checkJPEG(raw []byte) error {
	bad := func(why string) error {
		return imageError(nil, "cannot decode the jpeg data of [multimodal] [image]: %s", why)
	}
	i, scans := 2, 0 // after SOI
	for {
		if i >= len(raw) {
			return bad("truncated")
		}
		if raw[i] != 0xFF {
			return bad("missing marker")
		}
		for i < len(raw) && raw[i] == 0xFF { // fill bytes
			i++
		}
		if i >= len(raw) {
			return bad("truncated")
		}
		m := raw[i]
		i++
		switch {
		case m == 0xD9: // EOI
			if scans == 0 {
				return bad("no image data")
			}
			return nil
		case m >= 0xD0 && m <= 0xD7, m == 0x01: // RSTn, TEM: no length
			continue
		case m == 0x00:
			return bad("missing marker")
		}
		if i+2 > len(raw) {
			return bad("truncated")
		}
		n := int(raw[i])<<8 | int(raw[i+1])
		if n < 2 || i+n > len(raw) {
			return bad("truncated")
		}
		i += n
		if m != 0xDA { // SOS: entropy-coded data follows, up to the next marker
			continue
		}
		scans++
		for {
			k := bytes.IndexByte(raw[i:], 0xFF)
			if k < 0 {
				return bad("truncated")
			}
			i += k
			if i+1 >= len(raw) {
				return bad("truncated")
			}
			if c := raw[i+1]; c == 0x00 || c >= 0xD0 && c <= 0xD7 { // stuffed byte, restart marker
				i += 2
				continue
			}
			break
		}
	}
}

// processImage validates raw image bytes and shrinks them to the pixel budget.
// The header is read before any pixel is decoded, so a bomb costs nothing; a
// JPEG within the budget is only walked (checkJPEG), never decoded.
func processImage(raw []byte, cfg *ImageConfig) (queryImage, error) {
	q := queryImage{Sum: sha256.Sum256(raw)}
	hdr, err := inspectImage(raw, cfg)
	if err != nil {
		return q, err
	}
	if hdr.passThrough(cfg) {
		if err := checkJPEG(raw); err != nil {
			return q, err
		}
		q.JPEG = raw
		return q, nil
	}
	q.JPEG, err = shrinkImage(raw, hdr, cfg)
	return q, err
}

// shrinkImage decodes an image that cannot be forwarded as sent and returns a
// JPEG within the pixel budget.
func shrinkImage(raw []byte, hdr imageHeader, cfg *ImageConfig) ([]byte, error) {
	var decode func([]byte) (image.Image, error)
	switch hdr.format {
	case "jpeg":
		decode = func(b []byte) (image.Image, error) { return jpeg.Decode(bytes.NewReader(b)) }
	case "png":
		decode = func(b []byte) (image.Image, error) { return png.Decode(bytes.NewReader(b)) }
	case "gif":
		decode = func(b []byte) (image.Image, error) { return gif.Decode(bytes.NewReader(b)) }
	case "webp":
		decode = func(b []byte) (image.Image, error) { return webp.Decode(bytes.NewReader(b)) }
	}
	w, h := hdr.w, hdr.h
	img, err := decodeImage(decode, raw)
	if err != nil {
		return nil, imageError(err, "cannot decode the %s data of [multimodal] [image]", hdr.format)
	}
	b := img.Bounds()
	if b.Dx() != w || b.Dy() != h {
		return nil, imageError(nil, "cannot use [multimodal] [image]: header says %dx%d, data %dx%d", w, h, b.Dx(), b.Dy())
	}
	nw, nh := w, h
	if w*h > cfg.PixelBudget {
		s := math.Sqrt(float64(cfg.PixelBudget) / float64(w*h))
		nw, nh = max(1, int(float64(w)*s)), max(1, int(float64(h)*s))
	}
	switch src := img.(type) {
	case *image.YCbCr: // JPEG and lossy WebP: average the planes, no colour conversion
		if nw != w {
			img = shrinkYCbCr(src, nw, nh)
		}
	case *image.Gray:
		if nw != w {
			img = shrinkGray(src, nw, nh)
		}
	default:
		dst := image.NewRGBA(image.Rect(0, 0, nw, nh))
		// JPEG has no alpha: flatten onto white, black backgrounds mislead the model.
		draw.Draw(dst, dst.Bounds(), image.White, image.Point{}, draw.Src)
		draw.BiLinear.Scale(dst, dst.Bounds(), img, b, draw.Over, nil)
		img = dst
	}
	var buf bytes.Buffer
	buf.Grow(64 << 10)
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: cfg.JPEGQuality}); err != nil {
		return nil, imageError(err, "cannot encode [multimodal] [image]")
	}
	return buf.Bytes(), nil
}

// decodeImage turns a decoder panic (none known, but the input is hostile) into an error.
func decodeImage(decode func([]byte) (image.Image, error), raw []byte) (img image.Image, err error) {
	defer func() {
		if p := recover(); p != nil {
			img, err = nil, errors.New("decoder panic")
		}
	}()
	return decode(raw)
}
