package pipeline_test

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vlproxy/vlproxy/model/modeltest"
)

// Each benchmark sends the same search sequentially, once through the in-process proxy (with
// the zero-latency simulator) and once straight to the fake ES with the body the proxy forwards,
// so the difference of the two ns/op is what the proxy adds. Everything runs in this process:
// allocs/op count the fake ES (and, through the proxy, the simulator) too.

// photoLike returns a w x h JPEG of about size bytes that compresses like a photo: smooth
// shapes and shading plus mild sensor-like noise, at the quality nearest size.
var photoCache sync.Map

func photoLike(tb testing.TB, w, h, size int) []byte {
	tb.Helper()
	if b, ok := photoCache.Load(size); ok {
		return b.([]byte)
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(7, 11))
	for y := range h {
		for x := range w {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			// A garment-like blob on a shaded background, with folds.
			d := math.Hypot(fx-0.5, (fy-0.55)*0.8)
			r, g, bl := 220-60*fy, 215-50*fy, 205-40*fy
			if d < 0.3 {
				fold := 25 * math.Sin(fx*40+math.Sin(fy*9)*3)
				r, g, bl = 180+fold, 30+fold/2, 40+fold/3
			}
			n := float64(rng.IntN(13) - 6)
			img.SetRGBA(x, y, color.RGBA{clamp(r + n), clamp(g + n), clamp(bl + n), 255})
		}
	}
	var best []byte
	lo, hi := 1, 100
	for lo <= hi {
		q := (lo + hi) / 2
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
			tb.Fatal(err)
		}
		if best == nil || absInt(buf.Len()-size) < absInt(len(best)-size) {
			best = buf.Bytes()
		}
		if buf.Len() < size {
			lo = q + 1
		} else {
			hi = q - 1
		}
	}
	if absInt(len(best)-size) > size/10 {
		tb.Fatalf("no quality gives about %d bytes (nearest %d)", size, len(best))
	}
	photoCache.Store(size, best)
	return best
}

func clamp(v float64) uint8 { return uint8(min(255, max(0, v))) }
func absInt(n int) int      { return max(n, -n) }

// benchPair runs sub-benchmarks "proxy" and "direct" for one search.
func benchPair(b *testing.B, s setup, uri, body string, hdr ...string) {
	es := startES(b)
	es.NoRecord = false
	es.SourceBytes, es.Docs = s.es.SourceBytes, s.es.Docs
	s.es = es
	e := start(b, s)
	// One request through the proxy shows what it forwards; the direct baseline sends that.
	r := e.do(b, "POST", uri, []byte(body), hdr...)
	if r.Status != 200 {
		b.Fatalf("status %d %s", r.Status, r.Body)
	}
	up := es.last(b)
	es.NoRecord = true

	run := func(b *testing.B, addr string, c *fasthttp.HostClient, uri string, body []byte, hdr []string) {
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.Header.SetMethod("POST")
		req.SetRequestURI(uri)
		req.Header.SetHost(addr)
		req.Header.SetContentType("application/json")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		req.SetBody(body)
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if err := c.DoTimeout(req, resp, 10*time.Second); err != nil || resp.StatusCode() != 200 {
				b.Fatalf("%v status %d %s", err, resp.StatusCode(), resp.Body())
			}
		}
	}
	b.Run("proxy", func(b *testing.B) { run(b, e.Addr, e.c, uri, []byte(body), hdr) })
	b.Run("direct", func(b *testing.B) {
		c := &fasthttp.HostClient{Addr: es.Addr, MaxConns: 16, ReadBufferSize: 64 << 10, NoDefaultUserAgentHeader: true}
		run(b, es.Addr, c, up.URI, up.Body, nil)
	})
}

func BenchmarkPipeline(b *testing.B) {
	sim := modeltest.Config{Rules: []modeltest.Rule{seasideRule}, ScoreFunc: scoreByTitle}
	b.Run("plain", func(b *testing.B) {
		benchPair(b, setup{sim: sim, es: &fakeES{}}, "/products/_search", `{"query":{"match":{"title":"red dress"}},"size":10}`)
	})
	b.Run("text-rewrite", func(b *testing.B) {
		benchPair(b, setup{sim: sim, noKeywords: true, es: &fakeES{}}, "/products/_search", `{"query":`+seasideClause+`,"size":10}`)
	})
	b.Run("text-rewrite-cached", func(b *testing.B) {
		benchPair(b, setup{sim: sim, es: &fakeES{}}, "/products/_search", `{"query":`+seasideClause+`,"size":10}`)
	})
	photo := photoLike(b, 864, 1152, 200<<10)
	imgBody := `{"query":{"multimodal":{"image":"` + dataURI("image/jpeg", photo) + `"}},"size":10}`
	b.Run("image-200KB", func(b *testing.B) {
		benchPair(b, setup{sim: sim, noKeywords: true, es: &fakeES{}}, "/products/_search", imgBody)
	})
	b.Run("image-200KB-cached", func(b *testing.B) {
		benchPair(b, setup{sim: sim, es: &fakeES{}}, "/products/_search", imgBody)
	})
	b.Run("rerank-50x2KB", func(b *testing.B) {
		benchPair(b, setup{sim: sim, es: &fakeES{SourceBytes: 2048, Docs: 200}}, "/products/_search",
			`{"query":{"match":{"title":"red"}},"size":10,"ext":{"vlproxy":{"rerank":{"enabled":true,"rank_window_size":50}}}}`)
	})
}

func TestPhotoLike(t *testing.T) {
	p := photoLike(t, 864, 1152, 200<<10)
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(p))
	if err != nil || cfg.Width != 864 || cfg.Height != 1152 || !strings.HasPrefix(string(p), "\xff\xd8") {
		t.Fatalf("photo: %v %+v", err, cfg)
	}
}
