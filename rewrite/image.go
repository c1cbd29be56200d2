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

	"golang.org/x/image/draw"
	"golang.org/x/image/webp"
)

// queryImage is a validated query image.
type queryImage struct {
	Sum  [32]byte // sha256 of the original bytes: the cache identity
	JPEG []byte   // what the model gets: the original JPEG when it fits the budget, else a downscaled re-encode
}

// DataURI returns the image as a data URI for model requests.
func (q *queryImage) DataURI() string {
	const prefix = "data:image/jpeg;base64,"
	b := make([]byte, len(prefix)+base64.StdEncoding.EncodedLen(len(q.JPEG)))
	copy(b, prefix)
	base64.StdEncoding.Encode(b[len(prefix):], q.JPEG)
	return string(b)
}

// imageBytes turns the clause's image string into raw bytes: a data URI, raw
// base64, or (through the fetcher) an http(s) URL of an allowed host.
func (r *Rewriter) imageBytes(ctx context.Context, s string) ([]byte, error) {
	lower := strings.ToLower(s[:min(len(s), 16)])
	switch {
	case strings.HasPrefix(lower, "http://"), strings.HasPrefix(lower, "https://"):
		if r.fetch == nil {
			return nil, imageError(nil, "cannot fetch image URLs here")
		}
		return r.fetch.get(ctx, s)
	case strings.HasPrefix(lower, "data:"):
		meta, payload, ok := strings.Cut(s[len("data:"):], ",")
		if !ok {
			return nil, imageError(nil, "cannot parse [multimodal] [image]: data URI without a comma")
		}
		mt, isB64 := strings.CutSuffix(strings.ToLower(meta), ";base64")
		if !isB64 {
			return nil, imageError(nil, "cannot parse [multimodal] [image]: only base64 data URIs are supported")
		}
		if mt != "" && !strings.HasPrefix(mt, "image/") {
			return nil, imageError(nil, "cannot parse [multimodal] [image]: media type %q is not an image", mt)
		}
		return r.decodeBase64(payload)
	case strings.Contains(lower, "://"):
		return nil, imageError(nil, "cannot use [multimodal] [image]: only data URIs, base64 and http(s) URLs are supported")
	}
	return r.decodeBase64(s)
}

func (r *Rewriter) decodeBase64(s string) ([]byte, error) {
	limit := r.cfg.Image.MaxBytes
	// Base64 is 4/3 of the bytes plus line breaks; refuse before allocating.
	if len(s)/4*3 > limit+limit/32+64 {
		return nil, tooLarge("cannot accept [multimodal] [image]: larger than image.max_bytes (%d bytes)", limit)
	}
	var (
		b   []byte
		err error
	)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b = make([]byte, enc.DecodedLen(len(s)))
		var n int
		if n, err = enc.Decode(b, []byte(s)); err == nil {
			b = b[:n]
			break
		}
	}
	if err != nil {
		return nil, imageError(err, "cannot decode [multimodal] [image]: invalid base64")
	}
	if len(b) > limit {
		return nil, tooLarge("cannot accept [multimodal] [image]: %d bytes is larger than image.max_bytes (%d bytes)", len(b), limit)
	}
	return b, nil
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

// processImage validates raw image bytes and shrinks them to the pixel budget.
// The header is read before any pixel is decoded, so a bomb costs nothing.
func processImage(raw []byte, cfg *ImageConfig) (queryImage, error) {
	q := queryImage{Sum: sha256.Sum256(raw)}
	format := sniff(raw)
	if format == "" {
		return q, imageError(nil, "cannot use [multimodal] [image]: not a JPEG, PNG, WebP or GIF image")
	}
	var (
		decodeConfig func([]byte) (image.Config, error)
		decode       func([]byte) (image.Image, error)
	)
	switch format {
	case "jpeg":
		decodeConfig = func(b []byte) (image.Config, error) { return jpeg.DecodeConfig(bytes.NewReader(b)) }
		decode = func(b []byte) (image.Image, error) { return jpeg.Decode(bytes.NewReader(b)) }
	case "png":
		decodeConfig = func(b []byte) (image.Config, error) { return png.DecodeConfig(bytes.NewReader(b)) }
		decode = func(b []byte) (image.Image, error) { return png.Decode(bytes.NewReader(b)) }
	case "gif":
		decodeConfig = func(b []byte) (image.Config, error) { return gif.DecodeConfig(bytes.NewReader(b)) }
		decode = func(b []byte) (image.Image, error) { return gif.Decode(bytes.NewReader(b)) }
	case "webp":
		decodeConfig = func(b []byte) (image.Config, error) { return webp.DecodeConfig(bytes.NewReader(b)) }
		decode = func(b []byte) (image.Image, error) { return webp.Decode(bytes.NewReader(b)) }
	}
	hdr, err := decodeConfig(raw)
	if err != nil {
		return q, imageError(err, "cannot read the %s header of [multimodal] [image]", format)
	}
	w, h := hdr.Width, hdr.Height
	if w <= 0 || h <= 0 {
		return q, imageError(nil, "cannot use [multimodal] [image]: %dx%d pixels", w, h)
	}
	if int64(w)*int64(h) > int64(cfg.MaxPixels) {
		return q, imageError(nil, "cannot use [multimodal] [image]: %dx%d pixels is more than image.max_pixels (%d)", w, h, cfg.MaxPixels)
	}
	img, err := decodeImage(decode, raw)
	if err != nil {
		return q, imageError(err, "cannot decode the %s data of [multimodal] [image]", format)
	}
	b := img.Bounds()
	if b.Dx() != w || b.Dy() != h {
		return q, imageError(nil, "cannot use [multimodal] [image]: header says %dx%d, data %dx%d", w, h, b.Dx(), b.Dy())
	}
	if format == "jpeg" && w*h <= cfg.PixelBudget {
		q.JPEG = raw // already small and in the format every server takes
		return q, nil
	}
	opaque := false
	switch img.(type) {
	case *image.YCbCr, *image.Gray:
		opaque = true
	}
	nw, nh := w, h
	if w*h > cfg.PixelBudget {
		s := math.Sqrt(float64(cfg.PixelBudget) / float64(w*h))
		nw, nh = max(1, int(float64(w)*s)), max(1, int(float64(h)*s))
	}
	if nw != w || !opaque {
		dst := image.NewRGBA(image.Rect(0, 0, nw, nh))
		op := draw.Src
		if !opaque {
			// JPEG has no alpha: flatten onto white, black backgrounds mislead the model.
			draw.Draw(dst, dst.Bounds(), image.White, image.Point{}, draw.Src)
			op = draw.Over
		}
		draw.BiLinear.Scale(dst, dst.Bounds(), img, b, op, nil)
		img = dst
	}
	var buf bytes.Buffer
	buf.Grow(64 << 10)
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: cfg.JPEGQuality}); err != nil {
		return q, imageError(err, "cannot encode [multimodal] [image]")
	}
	q.JPEG = buf.Bytes()
	return q, nil
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
