package rewrite

import (
	"bytes"
	"context"
	"fmt"
	"github.com/vlproxy/vlproxy/media/mediatest"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/image/draw"

	"github.com/vlproxy/vlproxy/cache"
	"github.com/vlproxy/vlproxy/testenv"
)

// photoSource is one catalogue photo (../shared from the repository root, read in
// place), or a generated picture when the catalogue is not on this machine (under
// CI=true a missing catalogue fails instead).
func photoSource(tb testing.TB) image.Image {
	dir, ok := testenv.OptionalCatalogue(tb)
	if !ok {
		return mediatest.Image(60, 80)
	}
	photoOnce.Do(func() {
		files, _ := filepath.Glob(filepath.Join(dir, "images", "1*.jpg"))
		if len(files) == 0 {
			photoErr = fmt.Errorf("cannot find images/1*.jpg in %s", dir)
			return
		}
		raw, err := os.ReadFile(files[0])
		if err == nil {
			photoImg, err = jpeg.Decode(bytes.NewReader(raw))
		}
		photoErr = err
	})
	if photoErr != nil {
		tb.Fatalf("cannot read a catalogue photo: %v", photoErr)
	}
	return photoImg
}

var (
	photoOnce sync.Once
	photoImg  image.Image
	photoErr  error
)

var photos sync.Map // "WxH/size" -> []byte

// photoJPEG returns a photo-like JPEG of w x h pixels close to size bytes: a
// catalogue photo upscaled with a smooth kernel, plus mild sensor-like noise,
// encoded at the quality whose output lands nearest size. Noise and quality
// are what make real photos weigh what they weigh; random pixels would not
// compress or decode like a photo.
func photoJPEG(tb testing.TB, w, h, size int) []byte {
	key := fmt.Sprintf("%dx%d/%d", w, h, size)
	if b, ok := photos.Load(key); ok {
		return b.([]byte)
	}
	src := photoSource(tb)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(img, img.Bounds(), src, src.Bounds(), draw.Src, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < len(img.Pix); i += 4 {
		n := rng.IntN(13) - 6 // luminance-like noise, ±6 levels
		for c := range 3 {
			img.Pix[i+c] = uint8(min(255, max(0, int(img.Pix[i+c])+n+rng.IntN(3)-1)))
		}
	}
	encode := func(q int) []byte {
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
			tb.Fatal(err)
		}
		return buf.Bytes()
	}
	// Size grows with quality: bisect for the quality nearest size.
	lo, hi := 1, 100
	best := encode(lo)
	for lo <= hi {
		q := (lo + hi) / 2
		b := encode(q)
		if abs(len(b)-size) < abs(len(best)-size) {
			best = b
		}
		if len(b) < size {
			lo = q + 1
		} else {
			hi = q - 1
		}
	}
	// The benchmarks' names promise this size: fail rather than measure something else.
	if abs(len(best)-size) > size/10 {
		tb.Fatalf("photo %s: no quality gives about %d bytes (nearest %d)", key, size, len(best))
	}
	photos.Store(key, best)
	return best
}

func abs(n int) int { return max(n, -n) }

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

// Benchmark images: a 3:4 catalogue shot of 864x1152 (972 visual tokens, within
// the default budget of 1024), and a 12 MP phone photo of 3000x4000 (11 750
// tokens) that must be downscaled; both about 200 KB.
const (
	photoW, photoH = 864, 1152
	phoneW, phoneH = 3000, 4000
	photoBytes     = 200 << 10
)

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

// BenchmarkRewriteImage200K: a ~200 KB photo within the pixel budget, new every
// time (no cache): validated from its header and forwarded as sent.
func BenchmarkRewriteImage200K(b *testing.B) {
	benchRewrite(b, bodyWith(dataURI("image/jpeg", photoJPEG(b, photoW, photoH, photoBytes))), nil)
}

// BenchmarkRewriteImage200KOverBudget: a ~200 KB 3000x4000 photo, new every
// time: decoded and downscaled to the budget (the slow path).
func BenchmarkRewriteImage200KOverBudget(b *testing.B) {
	benchRewrite(b, bodyWith(dataURI("image/jpeg", photoJPEG(b, phoneW, phoneH, photoBytes))), nil)
}

// BenchmarkRewriteImage200KCached: the within-budget photo with the cache warm
// (processed image and keywords).
func BenchmarkRewriteImage200KCached(b *testing.B) {
	benchRewrite(b, bodyWith(dataURI("image/jpeg", photoJPEG(b, photoW, photoH, photoBytes))), cache.New(cache.Config{Name: "rewrite-bench-img"}))
}

// BenchmarkRewriteImage200KOverBudgetCached: the 3000x4000 photo with the cache warm.
func BenchmarkRewriteImage200KOverBudgetCached(b *testing.B) {
	benchRewrite(b, bodyWith(dataURI("image/jpeg", photoJPEG(b, phoneW, phoneH, photoBytes))), cache.New(cache.Config{Name: "rewrite-bench-img-big"}))
}
