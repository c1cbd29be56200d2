package rewrite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
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

// FuzzScan: the one-pass scanner agrees with encoding/json on validity and with
// the gjson walker (the reference, and the path for invalid bodies) on which
// clauses a valid body holds and where they stand.
func FuzzScan(f *testing.F) {
	files, _ := filepath.Glob("testdata/golden/*.in.json")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(strings.ReplaceAll(string(b), "IMAGE_PNG", "iVBORw0KGgo="))
	}
	for _, s := range []string{
		`{"query":{"multimodal":{"text":"a\u0041\/","image":"QUJD\/"}}}`,
		`{"query":{"function_score":{"functions":{"a":{"filter":{"multimodal":{"text":"x"}}}},"query":{"multimodal":{"text":"y"}}}}}`,
		`{"query":{"nested":{"query":{"multimodal":{"text":"a"}},"query":{"multimodal":{"text":"b"}}}}}`,
		`{"query":{"multi\u006dodal":{"text":"a"}},"x":"multimodal"}`,
		`{"query":{"multimodal":{"text":"a"},"bool":{"must":{"multimodal":{"text":"b"}}}}}`,
		`{"query":{"bool":{"should":[[{"multimodal":{"text":"a"}}]]}}}`,
		`{"query":{"multimodal":{"text":"a","boost":-0.5e+3}}}`,
		`{"query":{"multimodal":{"text":"a"}}} x`,
		`{"query":{"multimodal":{"text":"a\x01"}}}`,
		`{"query":{"multimodal":{"text":01}}}`,
		`{"query":{"multimodal":[1,2,]}}`,
		`{"multimodal":` + strings.Repeat(`[`, 600) + strings.Repeat(`]`, 600) + `}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		b := []byte(body)
		trimmed := bytes.TrimLeft(b, " \t\r\n")
		if len(trimmed) == 0 || trimmed[0] != '{' {
			return
		}
		got, err := scanBody(b)
		valid := json.Valid(b)
		if errors.Is(err, errSyntax) {
			if valid {
				t.Fatalf("valid JSON refused: %s", body)
			}
			return
		}
		if err == nil && !valid {
			t.Fatalf("invalid JSON accepted: %q", body)
		}
		if errors.Is(err, errTooDeep) || !valid {
			return
		}
		want, werr := walkBody(trimmed, len(b)-len(trimmed))
		if (err == nil) != (werr == nil) {
			t.Fatalf("scanner error %v, walker error %v: %s", err, werr, body)
		}
		if err != nil {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("scanner found %d clauses, walker %d: %s", len(got), len(want), body)
		}
		for i := range got {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("clause %d: scanner %+v, walker %+v: %s", i, got[i], want[i], body)
			}
		}
	})
}
