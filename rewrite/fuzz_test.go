package rewrite

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"github.com/vlproxy/vlproxy/media/mediatest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vlproxy/vlproxy/document/pdftest"
)

// FuzzRewriteBody: the rewriter never panics, keeps valid JSON valid, and leaves
// no multimodal clause behind when it succeeds.
func FuzzRewriteBody(f *testing.F) {
	files, _ := filepath.Glob("testdata/golden/*.in.json")
	png := dataURI("image/png", mediatest.PNG(f, 8, 8))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(strings.ReplaceAll(string(b), "IMAGE_PNG", png))
	}
	f.Add(`{"query":{"multimodal":{"text":"a","bogus":1}}}`)
	f.Add(`{"query":{"bool":{"must":[{"multimodal":{}}]}}}`)
	f.Add(`{"query":{"multimodal":{"image":"` + dataURI("image/png", mediatest.HugePNG(f, 50000, 50000)) + `"}}}`)
	f.Add(`{"query":{"multimodal":{"text":"\ud800 \u0000 x"}}}`)
	f.Add(`{"query":`)
	pdf := base64.StdEncoding.EncodeToString(pdftest.TextTable("Order", docRows))
	f.Add(`{"query":{"bool":{"should":[{"multimodal":{"document":"` + pdf + `","group_by_row":true,"fields":["title"]}}]}},"size":2}`)
	f.Add(`{"query":{"multimodal":{"document":"data:application/pdf;base64,` + pdf + `","text":"jackets"}}}`)
	f.Add(`{"size":3,"query":{"bool":{"must":[{"multimodal":{"image":"` + png + `","mode":"hybrid","k":20,"fusion":{"method":"linear","weights":[0.2,0.8]}}}],"filter":{"term":{"a":1}}}}}`)
	f.Add(`{"query":{"multimodal":{"image":"` + png + `","text":"red","mode":"vector","num_candidates":50,"fusion":"rrf"}}}`)
	f.Add(`{"query":{"multimodal":{"image":"` + png + `","fusion":{"method":"rrf","rank_constant":0}}}}`)
	f.Add(`{"query":{"multimodal":{"image":"` + png + `","moments":true,"mode":"hybrid","k":5}}}`)
	f.Add(`{"query":{"bool":{"should":[{"multimodal":{"text":"turns around","moments":"clip.moments","boost":3}}]}}}`)
	f.Add(`{"query":{"multimodal":{"text":"x","moments":"a..b"}}}`)
	cfg := testConfig()
	cfg.Image.MaxBytes = 256 << 10
	cfg.Profiles[0].Vector = &VectorProfile{Field: "image_vec", Dims: 3}
	r := newTestRewriter(f, cfg, newFake(), nil)
	r.SetEmbedder(&fakeEmbedder{vec: []float32{0.6, 0.8, 0}}, nil)
	f.Fuzz(func(t *testing.T, body string) {
		res, err := r.Rewrite(context.Background(), Request{Index: "products", Body: []byte(body)})
		if err != nil {
			esStatus(t, err)
			return
		}
		if p := res.Vector; p != nil && json.Valid([]byte(body)) {
			lex, vec, _, _, err := p.Sides(res.Body)
			if err == nil && (!json.Valid(lex) || !json.Valid(vec)) {
				t.Fatalf("invalid hybrid sides for %s:\n%s\n%s", body, lex, vec)
			}
			if vb, err := p.VectorBody(res.Body); err == nil && !json.Valid(vb) {
				t.Fatalf("invalid vector body for %s: %s", body, vb)
			}
		}
		if json.Valid([]byte(body)) && !json.Valid(res.Body) {
			t.Fatalf("valid input became invalid:\n%s\n%s", body, res.Body)
		}
		if cs, err := findClauses(res.Body); err == nil && len(cs) != 0 {
			t.Fatalf("a multimodal clause survived: %s", res.Body)
		}
		for _, g := range res.Groups {
			if json.Valid([]byte(body)) && !json.Valid(g.Body) {
				t.Fatalf("valid input gave an invalid row body:\n%s\n%s", body, g.Body)
			}
		}
		if !res.Found && string(res.Body) != body {
			t.Fatalf("a body without clauses changed")
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
