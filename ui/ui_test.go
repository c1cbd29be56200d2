package ui_test

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vlproxy/vlproxy/internal/promexp"
	"github.com/vlproxy/vlproxy/media"
	"github.com/vlproxy/vlproxy/proxy/experiment"
	"github.com/vlproxy/vlproxy/ui"
)

func newHandler(t *testing.T, token string) *ui.Handler {
	t.Helper()
	h, err := ui.New(ui.DefaultConfig(), ui.Deps{
		AdminToken: token,
		Downscale:  func(raw []byte) ([]byte, error) { return media.Prepare(raw, media.Config{}) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// serve runs one request through h as if it came from remote; hdr holds name/value pairs.
func serve(h *ui.Handler, remote, method, uri string, body []byte, hdr ...string) *fasthttp.Response {
	var ctx fasthttp.RequestCtx
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(uri)
	req.Header.SetHost("127.0.0.1:8080")
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Header.SetHost(hdr[i+1])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	req.SetBody(body)
	addr, _ := net.ResolveTCPAddr("tcp", remote)
	ctx.Init(&req, addr, nil)
	h.Serve(&ctx)
	var resp fasthttp.Response
	ctx.Response.CopyTo(&resp)
	return &resp
}

func TestAccess(t *testing.T) {
	h := newHandler(t, "s3cret")
	f := func(remote string, want int, hdr ...string) *fasthttp.Response {
		t.Helper()
		r := serve(h, remote, "GET", "/_vlproxy/ui/", nil, hdr...)
		if r.StatusCode() != want {
			t.Fatalf("from %s %v: status %d, want %d; body %s", remote, hdr, r.StatusCode(), want, r.Body())
		}
		return r
	}
	f("127.0.0.1:5000", 200)
	f("[::1]:5000", 200, "Host", "[::1]:8080")
	f("127.0.0.1:5000", 200, "Host", "localhost:8080")
	// A DNS-rebinding page reaches loopback under its own name: refused without the token.
	f("127.0.0.1:5000", 403, "Host", "evil.example:8080")
	f("10.1.2.3:5000", 403)
	f("10.1.2.3:5000", 403, "Authorization", "Bearer wrong")
	f("10.1.2.3:5000", 200, "Authorization", "Bearer s3cret")

	// ?token= sets a session cookie (not the token itself) and drops the token from the URL.
	r := serve(h, "10.1.2.3:5000", "GET", "/_vlproxy/ui?token=s3cret", nil)
	if r.StatusCode() != 303 || string(r.Header.Peek("Location")) != "/_vlproxy/ui/" {
		t.Fatalf("token login: %d %s", r.StatusCode(), r.Header.Peek("Location"))
	}
	var ck fasthttp.Cookie
	ck.SetKey("vlproxy_ui")
	if !r.Header.Cookie(&ck) || !ck.HTTPOnly() || ck.SameSite() != fasthttp.CookieSameSiteStrictMode || strings.Contains(string(ck.Value()), "s3cret") {
		t.Fatalf("session cookie: %s", ck.String())
	}
	f("10.1.2.3:5000", 200, "Cookie", "vlproxy_ui="+string(ck.Value()))
	f("10.1.2.3:5000", 403, "Cookie", "vlproxy_ui=0000")
	if r := serve(h, "10.1.2.3:5000", "GET", "/_vlproxy/ui?token=nope", nil); r.StatusCode() != 403 {
		t.Fatalf("wrong ?token: %d", r.StatusCode())
	}

	// Without a token nobody but loopback gets in, whatever they send.
	h = newHandler(t, "")
	if r := serve(h, "10.1.2.3:5000", "GET", "/_vlproxy/ui/", nil, "Authorization", "Bearer "); r.StatusCode() != 403 ||
		!strings.Contains(string(r.Body()), "loopback clients only") {
		t.Fatalf("no token: %d %s", r.StatusCode(), r.Body())
	}
}

func TestSecurityHeaders(t *testing.T) {
	h := newHandler(t, "")
	for _, c := range []struct {
		remote, uri string
		status      int
	}{
		{"127.0.0.1:1", "/_vlproxy/ui/", 200},
		{"127.0.0.1:1", "/_vlproxy/ui/app.js", 200},
		{"127.0.0.1:1", "/_vlproxy/ui/nope.js", 404},
		{"10.0.0.1:1", "/_vlproxy/ui/", 403},
	} {
		r := serve(h, c.remote, "GET", c.uri, nil)
		if r.StatusCode() != c.status {
			t.Fatalf("%s: status %d, want %d", c.uri, r.StatusCode(), c.status)
		}
		csp := string(r.Header.Peek("Content-Security-Policy"))
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", c.uri, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q", c.uri, csp)
		}
		if string(r.Header.Peek("X-Content-Type-Options")) != "nosniff" || string(r.Header.Peek("X-Frame-Options")) != "DENY" {
			t.Errorf("%s: headers %s", c.uri, r.Header.String())
		}
		if c.status >= 400 {
			var e struct {
				Error struct {
					Type, Reason string
				}
				Status int
			}
			if err := json.Unmarshal(r.Body(), &e); err != nil || e.Status != c.status || e.Error.Type == "" || e.Error.Reason == "" {
				t.Errorf("%s: not an ES-shaped error: %s", c.uri, r.Body())
			}
		}
	}
	// Configured image origins, and only those, join img-src.
	h2, err := ui.New(ui.Config{ImageOrigins: []string{"https://img.example.com"}}, ui.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	csp := string(serve(h2, "127.0.0.1:1", "GET", "/_vlproxy/ui/", nil).Header.Peek("Content-Security-Policy"))
	if !strings.Contains(csp, "img-src 'self' data: blob: https://img.example.com;") {
		t.Errorf("CSP with an image origin: %q", csp)
	}
	if _, err := ui.New(ui.Config{ImageOrigins: []string{"https://x.example.com; script-src *"}}, ui.Deps{}); err == nil {
		t.Error("an origin that injects a CSP directive was accepted")
	}
}

// The assets load nothing from elsewhere and hold no inline script or style (the CSP would
// block them, and the page must not need them).
func TestAssetsAreSelfContained(t *testing.T) {
	h := newHandler(t, "")
	page := serve(h, "127.0.0.1:1", "GET", "/_vlproxy/ui/", nil)
	body := string(page.Body())
	if regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]`).MatchString(body) || strings.Contains(body, " style=") || strings.Contains(body, "<style") {
		t.Error("index.html has inline script or style")
	}
	for _, ref := range regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(body, -1) {
		if strings.Contains(ref[1], "//") {
			t.Errorf("index.html loads %s", ref[1])
		}
		r := serve(h, "127.0.0.1:1", "GET", "/_vlproxy/ui/"+ref[1], nil)
		if r.StatusCode() != 200 {
			t.Errorf("asset %s: %d", ref[1], r.StatusCode())
		}
		if strings.HasSuffix(ref[1], ".js") && !strings.HasPrefix(string(r.Header.ContentType()), "text/javascript") {
			t.Errorf("asset %s: content type %s", ref[1], r.Header.ContentType())
		}
	}
	for _, name := range []string{"app.js", "api.js", "render.js", "style.css"} {
		b := string(serve(h, "127.0.0.1:1", "GET", "/_vlproxy/ui/"+name, nil).Body())
		if regexp.MustCompile(`(?:import|from)\s*['"]https?:|@import|url\(\s*['"]?https?:|innerHTML|eval\(`).MatchString(b) {
			t.Errorf("%s loads remote code or parses HTML", name)
		}
	}
	if n := h.AssetBytes(); n > 100<<10 {
		t.Errorf("page weight %d bytes, want under 100 KiB", n)
	}
	// Revalidation by ETag.
	etag := string(page.Header.Peek("ETag"))
	if r := serve(h, "127.0.0.1:1", "GET", "/_vlproxy/ui/", nil, "If-None-Match", etag); etag == "" || r.StatusCode() != 304 {
		t.Errorf("If-None-Match %s: %d", etag, r.StatusCode())
	}
}

func gradient(w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetRGBA(x, y, color.RGBA{uint8(x), uint8(y), 100, 255})
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

// The downscale endpoint runs the rewrite's own pipeline: a photo over the pixel budget comes
// back as the JPEG the model gets, with both sizes; bad images are ES-shaped errors.
func TestDownscale(t *testing.T) {
	h := newHandler(t, "")
	type info struct {
		Format        string
		Width, Height int
		Bytes         int
		DataURI       string `json:"data_uri"`
	}
	var out struct {
		Sent, Model info
		Resized     bool
	}
	in := gradient(1800, 1200)
	r := serve(h, "127.0.0.1:1", "POST", "/_vlproxy/ui/api/downscale", in, "Content-Type", "image/png")
	if r.StatusCode() != 200 || json.Unmarshal(r.Body(), &out) != nil {
		t.Fatalf("downscale: %d %.300s", r.StatusCode(), r.Body())
	}
	if out.Sent != (info{Format: "png", Width: 1800, Height: 1200, Bytes: len(in)}) || !out.Resized {
		t.Errorf("sent = %+v, resized %v", out.Sent, out.Resized)
	}
	if out.Model.Format != "jpeg" || out.Model.Width != 1254 || out.Model.Height != 836 ||
		!strings.HasPrefix(out.Model.DataURI, "data:image/jpeg;base64,/9j/") || out.Model.Bytes == 0 {
		t.Errorf("model = %+v", out.Model)
	}

	f := func(body []byte, status int, reason string) {
		t.Helper()
		r := serve(h, "127.0.0.1:1", "POST", "/_vlproxy/ui/api/downscale", body)
		if r.StatusCode() != status || !strings.Contains(string(r.Body()), reason) || !strings.Contains(string(r.Body()), `"root_cause"`) {
			t.Errorf("status %d body %s, want %d with %q", r.StatusCode(), r.Body(), status, reason)
		}
	}
	f([]byte("not an image at all"), 400, "not a JPEG, PNG, WebP or GIF")
	f(nil, 400, "empty body")
	f(in[:200], 400, "png")

	small, _ := ui.New(ui.DefaultConfig(), ui.Deps{MaxImageBytes: 1000, Downscale: func(b []byte) ([]byte, error) { return b, nil }})
	if r := serve(small, "127.0.0.1:1", "POST", "/_vlproxy/ui/api/downscale", in); r.StatusCode() != 413 {
		t.Errorf("over max bytes: %d %s", r.StatusCode(), r.Body())
	}
	if r := serve(h, "127.0.0.1:1", "GET", "/_vlproxy/ui/api/downscale", nil); r.StatusCode() != 404 {
		t.Errorf("GET downscale: %d", r.StatusCode())
	}
}

// Experiment metrics are read from what proxy/experiment really writes.
func TestExperimentMetrics(t *testing.T) {
	set, err := experiment.New(experiment.Config{Experiments: []experiment.Experiment{{
		Name: "ui-test-exp", Variants: []experiment.Variant{{Name: "a", Weight: 1, Rerank: "shadow"}, {Name: "b", Weight: 1}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	v, _, _ := set.Pick(func(string) string { return "" }, "a")
	set.Observe(v, experiment.Observation{Latency: 30 * time.Millisecond, RerankStatus: "shadow", Compared: true, Top1Changed: true, Overlap: 0.5, Displacement: 2})
	set.Observe(v, experiment.Observation{Latency: 10 * time.Millisecond, RerankStatus: "shadow", Compared: true, Overlap: 1, Displacement: 0})
	set.Observe(v, experiment.Observation{Latency: 20 * time.Millisecond, RerankStatus: "fallback:timeout"})

	h, err := ui.New(ui.DefaultConfig(), ui.Deps{
		Experiments: []ui.Experiment{{Name: "ui-test-exp", Variants: []ui.Variant{{Name: "a", Weight: 1, Rerank: "shadow"}, {Name: "b", Weight: 1}}}},
		Metrics:     func(w io.Writer) { promexp.Write(w) },
	})
	if err != nil {
		t.Fatal(err)
	}
	r := serve(h, "127.0.0.1:1", "GET", "/_vlproxy/ui/api/experiments", nil)
	var out struct {
		Experiments []ui.Experiment
		Metrics     map[string]map[string]struct {
			Requests, Compared, Top1Changed float64
			Top1ChangeRate                  float64            `json:"top1_change_rate"`
			OverlapMean                     float64            `json:"overlap_mean"`
			DisplacementMean                float64            `json:"displacement_mean"`
			LatencyMeanMS                   float64            `json:"latency_mean_ms"`
			RerankStatus                    map[string]float64 `json:"rerank_status"`
		}
	}
	if err := json.Unmarshal(r.Body(), &out); err != nil {
		t.Fatalf("%v: %s", err, r.Body())
	}
	if len(out.Experiments) != 1 || len(out.Experiments[0].Variants) != 2 {
		t.Fatalf("experiments = %+v", out.Experiments)
	}
	m := out.Metrics["ui-test-exp"]["a"]
	if m.Requests != 3 || m.Compared != 2 || m.Top1ChangeRate != 0.5 || m.OverlapMean != 0.75 || m.DisplacementMean != 1 ||
		m.LatencyMeanMS < 19.9 || m.LatencyMeanMS > 20.1 || m.RerankStatus["shadow"] != 2 || m.RerankStatus["fallback:timeout"] != 1 {
		t.Errorf("metrics of variant a = %+v", m)
	}
}
