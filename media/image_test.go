package media

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/image/draw"

	"github.com/vlproxy/vlproxy/media/mediatest"
	"github.com/vlproxy/vlproxy/testenv"
)

// esStatus returns the ESError status and type of err, failing when err has none.
func esStatus(t *testing.T, err error) (int, string, string) {
	t.Helper()
	var e interface {
		ESError() (int, string, string)
	}
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) does not implement ESError", err, err)
	}
	return e.ESError()
}

func TestProcessImage(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PixelBudget = 448 * 448 // the expectations below were made at this budget
	f := func(name string, raw []byte, wantW, wantH int, wantSame bool) {
		t.Helper()
		q, err := Process(raw, &cfg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if q.Sum != sha256.Sum256(raw) {
			t.Fatalf("%s: the sum is not of the original bytes", name)
		}
		if Sniff(q.JPEG) != "jpeg" {
			t.Fatalf("%s: output is not a JPEG", name)
		}
		c, err := jpeg.DecodeConfig(bytes.NewReader(q.JPEG))
		if err != nil || c.Width != wantW || c.Height != wantH {
			t.Fatalf("%s: %dx%d %v, want %dx%d", name, c.Width, c.Height, err, wantW, wantH)
		}
		if c.Width*c.Height > cfg.PixelBudget {
			t.Fatalf("%s: %d pixels over the budget", name, c.Width*c.Height)
		}
		if same := bytes.Equal(q.JPEG, raw); same != wantSame {
			t.Fatalf("%s: passed through = %v, want %v", name, same, wantSame)
		}
	}
	f("small jpeg", mediatest.JPEG(t, 300, 200, 90), 300, 200, true)
	f("large jpeg", mediatest.JPEG(t, 1600, 1200, 90), 517, 387, false)
	f("small png", mediatest.PNG(t, 64, 48), 64, 48, false)
	f("tall png", mediatest.PNG(t, 200, 4000), 100, 2003, false)
	var g bytes.Buffer
	if err := gif.Encode(&g, mediatest.Image(50, 50), nil); err != nil {
		t.Fatal(err)
	}
	f("gif", g.Bytes(), 50, 50, false)
	cfg.PixelBudget = DefaultConfig().PixelBudget // 1024 visual tokens
	f("default budget, large jpeg", mediatest.JPEG(t, 1600, 1200, 90), 1182, 886, false)
	f("default budget, catalogue-size jpeg", mediatest.JPEG(t, 864, 1152, 90), 864, 1152, true)
	f("default budget, grey jpeg", greyJPEG(t, 2000, 1000), 1448, 724, false)
	f("default budget, png within budget", mediatest.PNG(t, 900, 900), 900, 900, false)
	cfg.PixelBudget = 448 * 448
	// A WebP header (lossless, 1x1), hand-made: RIFF size WEBP VP8L ...
	webp := []byte("RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00")
	if got := Sniff(webp); got != "webp" {
		t.Fatalf("Sniff(webp) = %q", got)
	}
	if q, err := Process(webp, &cfg); err == nil && Sniff(q.JPEG) != "jpeg" {
		t.Fatalf("webp: %v", err)
	}

	// Real catalogue photos, read in place from ../shared (skipped without them, failed
	// under CI=true).
	for _, p := range testenv.CataloguePhotos(t, "1*.jpg", 5) {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		c, _, err := image.DecodeConfig(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if _, err := Process(raw, &cfg); err != nil {
			t.Fatalf("%s (%dx%d): %v", p, c.Width, c.Height, err)
		}
	}
}

func greyJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	src := mediatest.Image(w, h)
	g := image.NewGray(src.Bounds())
	draw.Draw(g, g.Bounds(), src, image.Point{}, draw.Src)
	var b bytes.Buffer
	if err := jpeg.Encode(&b, g, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestCheckJPEG: the marker walk that stands in for decoding a forwarded JPEG.
func TestCheckJPEG(t *testing.T) {
	good := mediatest.JPEG(t, 300, 200, 90)
	f := func(name string, raw []byte, wantErr string) {
		t.Helper()
		err := CheckJPEG(raw)
		if wantErr == "" {
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("%s: err %v, want %q", name, err, wantErr)
		}
		if s, _, _ := esStatus(t, err); s != 400 {
			t.Fatalf("%s: status %d", name, s)
		}
	}
	f("complete", good, "")
	f("trailing bytes after EOI", append(bytes.Clone(good), 0, 0, 0), "")
	f("progressive, restart markers", progressiveLike(t), "")
	f("cut in the entropy data", good[:len(good)/2], "truncated")
	f("cut before EOI", good[:len(good)-2], "truncated")
	f("cut in a header segment", good[:30], "truncated")
	f("SOI only", []byte{0xFF, 0xD8}, "truncated")
	f("no scan", []byte{0xFF, 0xD8, 0xFF, 0xD9}, "no image data")
	f("not a marker", []byte{0xFF, 0xD8, 0x12, 0x34}, "missing marker")
	f("zero length", []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x00}, "truncated")

	// A JPEG within the budget is not decoded: damaged entropy data with
	// intact markers goes through (the model server judges it), which is the
	// price of not decoding 200 KB per request.
	damaged := bytes.Clone(good)
	sos := bytes.Index(damaged, []byte{0xFF, 0xDA})
	for i := sos + 20; i < len(damaged)-10; i += 7 {
		if damaged[i] != 0xFF && damaged[i-1] != 0xFF {
			damaged[i] = 0x55
		}
	}
	cfg := DefaultConfig()
	q, err := Process(damaged, &cfg)
	if err != nil || !bytes.Equal(q.JPEG, damaged) {
		t.Fatalf("damaged entropy data: %v", err)
	}
}

// progressiveLike returns a JPEG with restart markers in its entropy data and
// fill bytes before a marker, hand-spliced from a real one.
func progressiveLike(t testing.TB) []byte {
	good := mediatest.JPEG(t, 64, 64, 90)
	sos := bytes.Index(good, []byte{0xFF, 0xDA})
	n := int(good[sos+2])<<8 | int(good[sos+3])
	data := sos + 2 + n
	out := append([]byte(nil), good[:data+10]...)
	out = append(out, 0xFF, 0xD0) // RST0
	out = append(out, good[data+10:len(good)-2]...)
	out = append(out, 0xFF, 0xFF, 0xFF, 0xD9) // fill bytes, EOI
	return out
}

// TestAreaResize: area averaging keeps flat areas flat, averages exactly on
// whole-pixel ratios and keeps the picture where it was.
func TestAreaResize(t *testing.T) {
	for _, c := range [][2]int{{4000, 1182}, {3, 2}, {7, 7}, {5, 9}, {1, 1}, {1000, 1}} {
		first, off, w := areaWeights(c[0], c[1])
		for i := range c[1] {
			sum := int32(0)
			for _, x := range w[off[i]:off[i+1]] {
				sum += x
			}
			if sum != weightOne || int(first[i])+int(off[i+1]-off[i]) > c[0] {
				t.Fatalf("%v: output %d: weights %v sum %d from %d", c, i, w[off[i]:off[i+1]], sum, first[i])
			}
		}
	}
	f := func(src []byte, sw, sh, dw, dh int, want string) {
		t.Helper()
		dst := make([]byte, dw*dh)
		resizePlane(dst, dw, dh, dw, src, sw, sh, sw)
		if got := fmt.Sprint(dst); got != want {
			t.Fatalf("%v %dx%d -> %dx%d: %s, want %s", src, sw, sh, dw, dh, got, want)
		}
	}
	f([]byte{10, 20, 30, 40}, 2, 2, 1, 1, "[25]")
	f([]byte{0, 255, 0, 255, 0, 255}, 6, 1, 3, 1, "[128 128 128]")
	f([]byte{0, 90, 180, 0, 90, 180}, 3, 2, 2, 1, "[30 150]") // 0+90/2, 90/2+180
	f(bytes.Repeat([]byte{77}, 35), 7, 5, 3, 2, "[77 77 77 77 77 77]")
	f([]byte{255, 0, 0, 0}, 4, 1, 4, 1, "[255 0 0 0]") // same size: copied

	// A YCbCr photo: the red block of testImage stays red and in the middle.
	src := mediatest.Image(1200, 900)
	var b bytes.Buffer
	if err := jpeg.Encode(&b, src, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	img, err := jpeg.Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	small := shrinkYCbCr(img.(*image.YCbCr), 400, 300)
	if small.Rect.Dx() != 400 || small.Rect.Dy() != 300 {
		t.Fatalf("size %v", small.Rect)
	}
	for _, p := range []image.Point{{200, 150}, {30, 30}, {370, 270}} {
		r1, g1, b1, _ := small.At(p.X, p.Y).RGBA()
		r0, g0, b0, _ := src.At(p.X*3+1, p.Y*3+1).RGBA()
		for _, d := range []int{int(r1>>8) - int(r0>>8), int(g1>>8) - int(g0>>8), int(b1>>8) - int(b0>>8)} {
			if d < -12 || d > 12 {
				t.Fatalf("at %v: %d,%d,%d, source %d,%d,%d", p, r1>>8, g1>>8, b1>>8, r0>>8, g0>>8, b0>>8)
			}
		}
	}
}

// FuzzImage: the image validator never panics and either refuses with an
// ES-shaped error or returns a JPEG within the pixel budget.
func FuzzImage(f *testing.F) {
	f.Add(mediatest.PNG(f, 16, 9))
	f.Add(mediatest.JPEG(f, 40, 30, 80))
	f.Add(mediatest.JPEG(f, 500, 500, 80)[:900])
	f.Add(mediatest.HugePNG(f, 50000, 50000))
	f.Add([]byte("GIF89a\x01\x00\x01\x00"))
	f.Add([]byte("RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"))
	if dir, ok := testenv.OptionalCatalogue(f); ok {
		files, _ := filepath.Glob(filepath.Join(dir, "images", "100*.jpg"))
		if len(files) == 0 {
			f.Fatalf("no images/100*.jpg in the catalogue %s", dir)
		}
		for _, p := range files[:min(3, len(files))] {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	cfg := DefaultConfig()
	cfg.MaxPixels = 4_000_000
	f.Fuzz(func(t *testing.T, raw []byte) {
		q, err := Process(raw, &cfg)
		if err != nil {
			esStatus(t, err)
			return
		}
		if Sniff(q.JPEG) != "jpeg" {
			t.Fatalf("output is not a JPEG")
		}
	})
}

func TestDeniedIP(t *testing.T) {
	f := func(addr string, want bool) {
		t.Helper()
		if got := deniedIP(netip.MustParseAddr(addr)); got != want {
			t.Fatalf("deniedIP(%s) = %v, want %v", addr, got, want)
		}
	}
	for _, a := range []string{"127.0.0.1", "127.9.9.9", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
		"169.254.1.1", "100.64.0.1", "0.0.0.0", "::1", "::", "fe80::1", "fd00:ec2::254", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "224.0.0.1", "64:ff9b::a9fe:a9fe"} {
		f(a, true)
	}
	for _, a := range []string{"93.184.216.34", "8.8.8.8", "2606:4700::1111"} {
		f(a, false)
	}
}
