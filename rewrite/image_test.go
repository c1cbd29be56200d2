package rewrite

import (
	"bytes"
	"crypto/sha256"
	"image"
	"image/gif"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"
)

func TestProcessImage(t *testing.T) {
	cfg := DefaultConfig().Image
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
