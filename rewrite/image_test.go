package rewrite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/image/draw"

	"github.com/vlproxy/vlproxy/cache"
)

func TestProcessImage(t *testing.T) {
	cfg := DefaultConfig().Image
	cfg.PixelBudget = 448 * 448 // the expectations below were made at this budget
	f := func(name string, raw []byte, wantW, wantH int, wantSame bool) {
		t.Helper()
		q, err := processImage(raw, &cfg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if q.Sum != sha256.Sum256(raw) {
			t.Fatalf("%s: the sum is not of the original bytes", name)
		}
		if sniff(q.JPEG) != "jpeg" {
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
	f("small jpeg", jpegBytes(t, 300, 200, 90), 300, 200, true)
	f("large jpeg", jpegBytes(t, 1600, 1200, 90), 517, 387, false)
	f("small png", pngBytes(t, 64, 48), 64, 48, false)
	f("tall png", pngBytes(t, 200, 4000), 100, 2003, false)
	var g bytes.Buffer
	if err := gif.Encode(&g, testImage(50, 50), nil); err != nil {
		t.Fatal(err)
	}
	f("gif", g.Bytes(), 50, 50, false)
	cfg.PixelBudget = DefaultConfig().Image.PixelBudget // 1024 visual tokens
	f("default budget, large jpeg", jpegBytes(t, 1600, 1200, 90), 1182, 886, false)
	f("default budget, catalogue-size jpeg", jpegBytes(t, 864, 1152, 90), 864, 1152, true)
	f("default budget, grey jpeg", greyJPEG(t, 2000, 1000), 1448, 724, false)
	f("default budget, png within budget", pngBytes(t, 900, 900), 900, 900, false)
	cfg.PixelBudget = 448 * 448
	// A WebP header (lossless, 1x1), hand-made: RIFF size WEBP VP8L ...
	webp := []byte("RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00")
	if got := sniff(webp); got != "webp" {
		t.Fatalf("sniff(webp) = %q", got)
	}
	if q, err := processImage(webp, &cfg); err == nil && sniff(q.JPEG) != "jpeg" {
		t.Fatalf("webp: %v", err)
	}

	// Real catalogue photos, read in place.
	files, _ := filepath.Glob("/work/shared/data/fashion/images/1*.jpg")
	if len(files) == 0 {
		t.Skip("no catalogue photos")
	}
	for _, p := range files[:min(5, len(files))] {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		c, _, err := image.DecodeConfig(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if _, err := processImage(raw, &cfg); err != nil {
			t.Fatalf("%s (%dx%d): %v", p, c.Width, c.Height, err)
		}
	}
}

func TestParseOutput(t *testing.T) {
	f := func(content, want string) {
		t.Helper()
		kw, err := parseOutput(content, 5)
		got := ""
		if err != nil {
			got = "ERR"
		} else {
			for i, k := range kw.Keywords {
				if i > 0 {
					got += "|"
				}
				got += k
			}
			if kw.Category != "" {
				got += " cat=" + kw.Category
			}
			for _, a := range attributeNames {
				if v, ok := kw.Attributes[a]; ok {
					got += " " + a + "=" + v
				}
			}
		}
		if got != want {
			t.Fatalf("%q\ngot  %q\nwant %q", content, got, want)
		}
	}
	f(`{"keywords":["red dress","Summer"]}`, "red dress|Summer")
	f(`{"keywords":["a","A","b"],"category":"Tops","attributes":{"Colour":"blue","gender":"unknown","style":3}}`, "a|b cat=Tops colour=blue")
	f("```json\n{\"keywords\":[\"linen shirt\"]}\n```", "linen shirt")
	f("Here you go:\n```\n[\"boots\", \"leather\"]\n```", "boots|leather")
	f(`["x","y","z","w","v","u"]`, "x|y|z|w|v")
	f(`{"keywords":"red dress, blue jeans"}`, "red dress|blue jeans")
	f("1. red dress\n2) floral print\n- beach", "red dress|floral print|beach")
	f("连衣裙，红色、夏季", "连衣裙|红色|夏季")
	f(`"sneakers"`, "sneakers")
	f(`{"keywords":[]}`, "ERR")
	f(`{"keywords": [`, "ERR")
	f(`{"kw":["a"]}`, "ERR")
	f(``, "ERR")
	f("\x00\x01\x02", "ERR")
	f(`[1,2]`, "ERR")
	f("this is a very long sentence that no shopper would ever type as a keyword phrase", "ERR")
}

func TestPrompt(t *testing.T) {
	r := newTestRewriter(t, testConfig(), newFake(), nil)
	f := func(c clause, img string, wantLang string, wantParts int) {
		t.Helper()
		lang := r.language(&c)
		if lang != wantLang {
			t.Fatalf("%+v: language %s, want %s", c, lang, wantLang)
		}
		req := r.chatRequest(&c, lang, img)
		if len(req.Messages) != 2 || req.Messages[0].Text != promptsByLanguage[lang].system {
			t.Fatalf("messages %+v", req.Messages)
		}
		if n := len(req.Messages[1].Parts); n != wantParts {
			t.Fatalf("%d parts, want %d", n, wantParts)
		}
		if req.MaxTokens == 0 || req.TopP == 0 || req.Temperature == 0 || len(req.ResponseFormat) == 0 {
			t.Fatalf("sampling not explicit: %+v", req)
		}
	}
	f(clause{Text: "red dress"}, "", "en", 1)
	f(clause{Text: "适合夏季海边度假穿"}, "", "zh", 1)
	f(clause{Text: "red dress", Language: "zh"}, "data:image/jpeg;base64,AA==", "zh", 2)
	f(clause{Image: "x"}, "data:image/jpeg;base64,AA==", "en", 2)
	if got := string(responseFormat(8, true)); !bytes.Contains([]byte(got), []byte(`"maxItems":8`)) || !bytes.Contains([]byte(got), []byte(`"attributes"`)) {
		t.Fatalf("response format %s", got)
	}
}

func greyJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	src := testImage(w, h)
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
	good := jpegBytes(t, 300, 200, 90)
	f := func(name string, raw []byte, wantErr string) {
		t.Helper()
		err := checkJPEG(raw)
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
	cfg := DefaultConfig().Image
	q, err := processImage(damaged, &cfg)
	if err != nil || !bytes.Equal(q.JPEG, damaged) {
		t.Fatalf("damaged entropy data: %v", err)
	}
}

// progressiveLike returns a JPEG with restart markers in its entropy data and
// fill bytes before a marker, hand-spliced from a real one.
func progressiveLike(t testing.TB) []byte {
	good := jpegBytes(t, 64, 64, 90)
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
	src := testImage(1200, 900)
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

// TestImageSent: what the model and Query.Image get for each kind of image.
func TestImageSent(t *testing.T) {
	small := jpegBytes(t, 640, 480, 90)
	big := jpegBytes(t, 1600, 1200, 90)
	std := base64.StdEncoding.EncodeToString(small)
	f := func(name, image string, c Cache, want func(uri string) error) {
		t.Helper()
		fake := newFake()
		r := newTestRewriter(t, testConfig(), fake, c)
		for round := range 2 {
			res, err := r.Rewrite(context.Background(), Request{Index: "products", Body: bodyWith(image)})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			sent := ""
			for _, p := range fake.lastRequest().Messages[1].Parts {
				if p.Type == "image_url" {
					sent = p.URL
				}
			}
			if round == 0 && sent != res.Query.Image {
				t.Fatalf("%s: the model got another image than Query.Image", name)
			}
			if err := want(res.Query.Image); err != nil {
				t.Fatalf("%s (round %d): %v", name, round, err)
			}
		}
	}
	same := func(uri string) error {
		if uri != "data:image/jpeg;base64,"+std {
			return fmt.Errorf("not the original bytes: %.60s", uri)
		}
		return nil
	}
	size := func(w, h int) func(string) error {
		return func(uri string) error {
			b, err := DecodeImageString(uri, 8<<20)
			if err != nil {
				return err
			}
			c, err := jpeg.DecodeConfig(bytes.NewReader(b))
			if err != nil || c.Width != w || c.Height != h {
				return fmt.Errorf("%dx%d %v, want %dx%d", c.Width, c.Height, err, w, h)
			}
			return nil
		}
	}
	f("within budget, data URI", dataURI("image/jpeg", small), nil, same)
	f("within budget, raw base64", std, nil, same)
	f("within budget, URL-safe base64", base64.RawURLEncoding.EncodeToString(small), nil, same)
	f("within budget, line breaks", std[:76]+"\n"+std[76:], nil, same)
	f("within budget, cached", std, cache.New(cache.Config{Name: "rewrite-test-img-small"}), same)
	f("over budget", dataURI("image/jpeg", big), nil, size(1182, 886))
	f("over budget, cached", dataURI("image/jpeg", big), cache.New(cache.Config{Name: "rewrite-test-img-big"}), size(1182, 886))
	f("png within budget", dataURI("image/png", pngBytes(t, 300, 200)), nil, size(300, 200))
}
