package rewrite

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"testing"

	"github.com/vlproxy/vlproxy/cache"
)

// noisyJPEG returns a JPEG of about size bytes: noise compresses badly, so the
// size is reached at a realistic photo resolution.
func noisyJPEG(b *testing.B, size int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	for side := 256; ; side += 64 {
		img := image.NewRGBA(image.Rect(0, 0, side, side*3/4))
		for i := range img.Pix {
			img.Pix[i] = uint8(rng.IntN(256))
			if i%4 == 3 {
				img.Pix[i] = 255
			}
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 75}); err != nil {
			b.Fatal(err)
		}
		if buf.Len() >= size {
			return buf.Bytes()
		}
	}
}

func benchRewrite(b *testing.B, body []byte, c Cache) {
	wantFound := bytes.Contains(body, multimodalKey)
	r := newTestRewriter(b, testConfig(), newFake(), c)
	ctx := context.Background()
	req := Request{Index: "products", Body: body}
	if _, err := r.Rewrite(ctx, req); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := r.Rewrite(ctx, req)
		if err != nil || res.Found != wantFound {
			b.Fatal(err)
		}
	}
}

// BenchmarkRewriteNoClause is the pass-through baseline: a body without a clause.
func BenchmarkRewriteNoClause(b *testing.B) {
	benchRewrite(b, []byte(`{"query":{"bool":{"must":[{"match":{"title":"red dress"}}],"filter":[{"term":{"in_stock":true}}]}},"size":10}`), nil)
}

// BenchmarkRewriteText: a text clause, zero-latency model, no cache (every call parses the model output).
func BenchmarkRewriteText(b *testing.B) {
	benchRewrite(b, []byte(`{"query":{"bool":{"must":[{"multimodal":{"text":"red summer dress for the beach","boost":2}}],"filter":[{"term":{"in_stock":true}}]}},"size":10}`), nil)
}

// BenchmarkRewriteTextCached: the same with the keyword cache warm.
func BenchmarkRewriteTextCached(b *testing.B) {
	benchRewrite(b, []byte(`{"query":{"bool":{"must":[{"multimodal":{"text":"red summer dress for the beach","boost":2}}],"filter":[{"term":{"in_stock":true}}]}},"size":10}`),
		cache.New(cache.Config{Name: "rewrite-bench-text"}))
}

// BenchmarkRewriteImage200K: a ~200 KB JPEG, decoded, validated and downscaled every time (cold path).
func BenchmarkRewriteImage200K(b *testing.B) {
	benchRewrite(b, bodyWith(dataURI("image/jpeg", noisyJPEG(b, 200<<10))), nil)
}

// BenchmarkRewriteImage200KCached: the same image with the cache warm (processed image and keywords).
func BenchmarkRewriteImage200KCached(b *testing.B) {
	benchRewrite(b, bodyWith(dataURI("image/jpeg", noisyJPEG(b, 200<<10))), cache.New(cache.Config{Name: "rewrite-bench-img"}))
}
