package media

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"strings"
	"sync"

	"net/netip"

	"github.com/vlproxy/vlproxy/internal/bytesconv"
	"golang.org/x/image/draw"
	"golang.org/x/image/webp"
)

// Image is a validated image.
type Image struct {
	Sum  [32]byte // sha256 of the original bytes: the cache identity
	JPEG []byte   // what the model gets (Process only: rewrite leaves it nil)
	URI  string   // the JPEG as a data URI, for model requests (rewrite only)
}

// JPEGURIPrefix starts every data URI JPEGURI returns.
const JPEGURIPrefix = "data:image/jpeg;base64,"

// JPEGURI returns a JPEG as a data URI; b64, when not empty, is that JPEG
// already in standard padded base64 (the client's own), which is then copied
// instead of encoded again.
func JPEGURI(jpeg []byte, b64 string) string {
	if b64 != "" {
		return JPEGURIPrefix + b64
	}
	dst := make([]byte, 0, len(JPEGURIPrefix)+base64.StdEncoding.EncodedLen(len(jpeg)))
	dst = append(dst, JPEGURIPrefix...)
	dst = base64.StdEncoding.AppendEncode(dst, jpeg)
	return bytesconv.String(dst) // dst is never written again
}

// Input is an image as bytes. Raw may live in a pooled buffer: call Release when done with
// it, or Keep to hand it to code that outlives the call.
type Input struct {
	Raw []byte
	B64 string // the standard padded base64 Raw was decoded from, "" when it was not that
	buf *[]byte
}

// Release returns Raw's buffer to the pool; Raw must not be used afterwards.
func (in *Input) Release() {
	if in.buf != nil && cap(*in.buf) <= maxPooledImage {
		rawPool.Put(in.buf)
	}
	in.buf, in.Raw = nil, nil
}

// Keep takes Raw out of the pool's hands: it stays valid however long it is used.
func (in *Input) Keep() { in.buf = nil }

// maxPooledImage: larger buffers are left to the garbage collector rather than
// held by the pool.
const maxPooledImage = 2 << 20

var rawPool = sync.Pool{New: func() any { return new([]byte) }}

// Loader turns image strings into bytes under one Config. It is safe for concurrent use.
type Loader struct {
	cfg   *Config
	fetch *Fetcher // nil: URLs are refused
}

// NewLoader returns a Loader reading cfg (with defaults applied) on every call; it fetches
// http(s) URLs of cfg.AllowedHosts.
func NewLoader(cfg *Config) *Loader { return &Loader{cfg: cfg, fetch: NewFetcher(cfg)} }

// SetDeniedIP replaces the test of addresses never dialled (tests let loopback through).
func (l *Loader) SetDeniedIP(denied func(netip.Addr) bool) { l.fetch.SetDeniedIP(denied) }

// Load turns an image string into raw bytes: a data URI, raw base64, or (through the
// fetcher) an http(s) URL of an allowed host.
func (l *Loader) Load(ctx context.Context, s string) (Input, error) {
	lower := strings.ToLower(s[:min(len(s), 16)])
	switch {
	case strings.HasPrefix(lower, "http://"), strings.HasPrefix(lower, "https://"):
		if l.fetch == nil {
			return Input{}, imageError(nil, "cannot fetch image URLs here")
		}
		raw, err := l.fetch.Get(ctx, s, Resource{Name: "[multimodal] [image]", MaxBytes: l.cfg.MaxBytes,
			Limit: "image.max_bytes", Accept: "image/jpeg, image/png, image/webp, image/gif"})
		return Input{Raw: raw}, err
	case strings.HasPrefix(lower, "data:"):
		meta, payload, ok := strings.Cut(s[len("data:"):], ",")
		if !ok {
			return Input{}, imageError(nil, "cannot parse [multimodal] [image]: data URI without a comma")
		}
		mt, isB64 := strings.CutSuffix(strings.ToLower(meta), ";base64")
		if !isB64 {
			return Input{}, imageError(nil, "cannot parse [multimodal] [image]: only base64 data URIs are supported")
		}
		if mt != "" && !strings.HasPrefix(mt, "image/") {
			return Input{}, imageError(nil, "cannot parse [multimodal] [image]: media type %q is not an image", mt)
		}
		return decodeBase64(payload, l.cfg.MaxBytes)
	case strings.Contains(lower, "://"):
		return Input{}, imageError(nil, "cannot use [multimodal] [image]: only data URIs, base64 and http(s) URLs are supported")
	}
	return decodeBase64(s, l.cfg.MaxBytes)
}

// decodeBase64 decodes standard, URL-safe, padded or raw base64 of at most limit bytes into a
// pooled buffer, reading s in place.
func decodeBase64(s string, limit int) (Input, error) {
	// Base64 is 4/3 of the bytes plus line breaks; refuse before allocating.
	if len(s)/4*3 > limit+limit/32+64 {
		return Input{}, tooLarge("cannot accept [multimodal] [image]: larger than image.max_bytes (%d bytes)", limit)
	}
	in := Input{buf: rawPool.Get().(*[]byte)}
	need := base64.RawStdEncoding.DecodedLen(len(s)) // the largest of the four
	if cap(*in.buf) < need {
		*in.buf = make([]byte, need)
	}
	b := (*in.buf)[:need]
	src := bytesconv.Bytes(s)
	var (
		n   int
		err error
	)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if n, err = enc.Decode(b, src); err == nil {
			if enc == base64.StdEncoding && base64.StdEncoding.EncodedLen(n) == len(s) {
				in.B64 = s // canonical: no line breaks, padded
			}
			break
		}
	}
	if err != nil {
		in.Release()
		return Input{}, imageError(err, "cannot decode [multimodal] [image]: invalid base64")
	}
	if n > limit {
		in.Release()
		return Input{}, tooLarge("cannot accept [multimodal] [image]: %d bytes is larger than image.max_bytes (%d bytes)", n, limit)
	}
	in.Raw = b[:n]
	return in, nil
}

// Sniff names the image format from its magic bytes, "" when it is none we accept.
func Sniff(b []byte) string {
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

// Header is what an image's header says.
type Header struct {
	Format string // "jpeg", "png", "gif" or "webp"
	W, H   int
	// BytesPerPixel of the decoded image the header announces (1 for paletted or 8-bit grey,
	// 8 for 16-bit RGBA, ...).
	BytesPerPixel int
}

// bytesPerPixel is what the standard decoders allocate per pixel for a colour model.
func bytesPerPixel(m color.Model) int {
	switch m {
	case color.GrayModel, color.AlphaModel:
		return 1
	case color.Gray16Model, color.Alpha16Model:
		return 2
	case color.YCbCrModel:
		return 3 // 4:4:4 at worst
	case color.RGBAModel, color.NRGBAModel, color.CMYKModel, color.NYCbCrAModel:
		return 4
	case color.RGBA64Model, color.NRGBA64Model:
		return 8
	}
	if _, ok := m.(color.Palette); ok {
		return 1
	}
	return 8 // unknown: assume the widest
}

// PassThrough reports whether the image goes to the model as sent: a JPEG
// (the format every model server of model-servers.md takes) within the pixel budget.
func (h Header) PassThrough(cfg *Config) bool {
	return h.Format == "jpeg" && h.W*h.H <= cfg.PixelBudget
}

// Inspect checks magic bytes and reads the header: no pixel is decoded,
// so a decompression bomb is refused for the cost of its first bytes.
func Inspect(raw []byte, cfg *Config) (Header, error) {
	hdr, err := readHeader(raw)
	if err != nil {
		return hdr, err
	}
	return hdr, checkHeader(hdr, cfg)
}

func readHeader(raw []byte) (Header, error) {
	hdr := Header{Format: Sniff(raw)}
	var (
		c   image.Config
		err error
	)
	switch hdr.Format {
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
		return hdr, imageError(err, "cannot read the %s header of [multimodal] [image]", hdr.Format)
	}
	hdr.W, hdr.H = c.Width, c.Height
	hdr.BytesPerPixel = bytesPerPixel(c.ColorModel)
	return hdr, nil
}

func checkHeader(hdr Header, cfg *Config) error {
	if hdr.W <= 0 || hdr.H <= 0 {
		return imageError(nil, "cannot use [multimodal] [image]: %dx%d pixels", hdr.W, hdr.H)
	}
	if int64(hdr.W)*int64(hdr.H) > int64(cfg.MaxPixels) {
		return imageError(nil, "cannot use [multimodal] [image]: %dx%d pixels is more than image.max_pixels (%d); raise -image-max-pixels", hdr.W, hdr.H, cfg.MaxPixels)
	}
	if n := int64(hdr.W) * int64(hdr.H) * int64(hdr.BytesPerPixel); n > int64(cfg.MaxDecodedBytes) && !hdr.PassThrough(cfg) {
		return imageError(nil, "cannot use [multimodal] [image]: %dx%d pixels at %d bytes each decode to %d bytes, more than image.max_decoded_bytes (%d); raise -image-max-decoded-bytes",
			hdr.W, hdr.H, hdr.BytesPerPixel, n, cfg.MaxDecodedBytes)
	}
	return nil
}

// headerPrefix is how much of an image string CheckString decodes: PNG, GIF and WebP headers
// come first, a JPEG's frame header after its APP segments (EXIF is at most 64 KiB).
const headerPrefix = 96 << 10

// CheckString reads the header of an inline image (data URI or base64; URLs are not fetched
// here) from the first bytes of the string only, and returns the error Inspect would give
// when the header is over a limit. Anything it cannot tell from the prefix (invalid base64, a
// header past it) is left to Load and Inspect. It lets a request carrying a bomb be refused
// before its image is decoded or its body copied.
func CheckString(s string, cfg *Config) error {
	lower := strings.ToLower(s[:min(len(s), 16)])
	switch {
	case strings.HasPrefix(lower, "http://"), strings.HasPrefix(lower, "https://"):
		return nil
	case strings.HasPrefix(lower, "data:"):
		_, payload, ok := strings.Cut(s, ",")
		if !ok {
			return nil
		}
		s = payload
	}
	n := min(len(s), headerPrefix) &^ 3
	if n < len(s) && strings.ContainsAny(s[:n], "\r\n") {
		return nil // line breaks shift the 4-byte groups; the full path reads it
	}
	var buf [headerPrefix / 4 * 3]byte
	src := bytesconv.Bytes(s[:n])
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if k, err := enc.Decode(buf[:], src); err == nil {
			hdr, err := readHeader(buf[:k])
			if err != nil {
				return nil
			}
			return checkHeader(hdr, cfg)
		}
	}
	return nil
}

// CheckJPEG walks the markers of a JPEG that is forwarded without decoding:
// segment lengths must hold, a scan must exist and the image must end (EOI).
// It catches truncated uploads, the usual breakage, for one pass of
// bytes.IndexByte; damage inside the entropy-coded data is left to the model
// server, whose 400 becomes a fallback.
func CheckJPEG(raw []byte) error {
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

// Process validates raw image bytes and shrinks them to the pixel budget.
// The header is read before any pixel is decoded, so a bomb costs nothing; a
// JPEG within the budget is only walked (CheckJPEG), never decoded.
func Process(raw []byte, cfg *Config) (Image, error) {
	return process(context.Background(), nil, raw, cfg)
}

// Process is media.Process with the decode, when one is needed, under the gate: a JPEG within
// the pixel budget takes no slot; any other image waits for one while ctx allows.
func (g *Gate) Process(ctx context.Context, raw []byte, cfg *Config) (Image, error) {
	return process(ctx, g, raw, cfg)
}

func process(ctx context.Context, g *Gate, raw []byte, cfg *Config) (Image, error) {
	q := Image{Sum: sha256.Sum256(raw)}
	hdr, err := Inspect(raw, cfg)
	if err != nil {
		return q, err
	}
	if hdr.PassThrough(cfg) {
		if err := CheckJPEG(raw); err != nil {
			return q, err
		}
		q.JPEG = raw
		return q, nil
	}
	if g != nil {
		if err := g.Acquire(ctx); err != nil {
			return q, err
		}
		defer g.Release()
	}
	q.JPEG, err = Shrink(raw, hdr, cfg)
	return q, err
}

// Shrink decodes an image that cannot be forwarded as sent and returns a
// JPEG within the pixel budget.
func Shrink(raw []byte, hdr Header, cfg *Config) ([]byte, error) {
	var decode func([]byte) (image.Image, error)
	switch hdr.Format {
	case "jpeg":
		decode = func(b []byte) (image.Image, error) { return jpeg.Decode(bytes.NewReader(b)) }
	case "png":
		decode = func(b []byte) (image.Image, error) { return png.Decode(bytes.NewReader(b)) }
	case "gif":
		decode = func(b []byte) (image.Image, error) { return gif.Decode(bytes.NewReader(b)) }
	case "webp":
		decode = func(b []byte) (image.Image, error) { return webp.Decode(bytes.NewReader(b)) }
	}
	w, h := hdr.W, hdr.H
	img, err := decodeImage(decode, raw)
	if err != nil {
		return nil, imageError(err, "cannot decode the %s data of [multimodal] [image]", hdr.Format)
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
