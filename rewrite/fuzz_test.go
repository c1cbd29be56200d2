package rewrite

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzRewriteBody: the rewriter never panics, keeps valid JSON valid, and leaves
// no multimodal clause behind when it succeeds.
func FuzzRewriteBody(f *testing.F) {
	files, _ := filepath.Glob("testdata/golden/*.in.json")
	png := dataURI("image/png", pngBytes(f, 8, 8))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(strings.ReplaceAll(string(b), "IMAGE_PNG", png))
	}
	f.Add(`{"query":{"multimodal":{"text":"a","bogus":1}}}`)
	f.Add(`{"query":{"bool":{"must":[{"multimodal":{}}]}}}`)
	f.Add(`{"query":{"multimodal":{"image":"` + dataURI("image/png", hugePNG(f, 50000, 50000)) + `"}}}`)
	f.Add(`{"query":{"multimodal":{"text":"\ud800 \u0000 x"}}}`)
	f.Add(`{"query":`)
	cfg := testConfig()
	cfg.Image.MaxBytes = 256 << 10
	r := newTestRewriter(f, cfg, newFake(), nil)
	f.Fuzz(func(t *testing.T, body string) {
		res, err := r.Rewrite(context.Background(), Request{Index: "products", Body: []byte(body)})
		if err != nil {
			esStatus(t, err)
			return
		}
		if json.Valid([]byte(body)) && !json.Valid(res.Body) {
			t.Fatalf("valid input became invalid:\n%s\n%s", body, res.Body)
		}
		if cs, err := findClauses(res.Body); err == nil && len(cs) != 0 {
			t.Fatalf("a multimodal clause survived: %s", res.Body)
		}
		if !res.Found && string(res.Body) != body {
			t.Fatalf("a body without clauses changed")
		}
	})
}

// FuzzImage: the image validator never panics and either refuses with an
// ES-shaped error or returns a JPEG within the pixel budget.
func FuzzImage(f *testing.F) {
	f.Add(pngBytes(f, 16, 9))
	f.Add(jpegBytes(f, 40, 30, 80))
	f.Add(jpegBytes(f, 500, 500, 80)[:900])
	f.Add(hugePNG(f, 50000, 50000))
	f.Add([]byte("GIF89a\x01\x00\x01\x00"))
	f.Add([]byte("RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"))
	if files, _ := filepath.Glob("/work/shared/data/fashion/images/100*.jpg"); len(files) > 0 {
		for _, p := range files[:min(3, len(files))] {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	cfg := DefaultConfig().Image
	cfg.MaxPixels = 4_000_000
	f.Fuzz(func(t *testing.T, raw []byte) {
		q, err := processImage(raw, &cfg)
		if err != nil {
			esStatus(t, err)
			return
		}
		if sniff(q.JPEG) != "jpeg" {
			t.Fatalf("output is not a JPEG")
		}
	})
}
