package rewrite

import (
	"bytes"
	"context"
	"encoding/base64"
	"github.com/vlproxy/vlproxy/media/mediatest"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
)

// TestBadInputs: each bad clause or image is a 4xx ES-shaped error and the model is never asked.
func TestBadInputs(t *testing.T) {
	cfg := testConfig()
	cfg.Image.MaxBytes = 64 << 10
	fake := newFake()
	r := newTestRewriter(t, cfg, fake, nil)
	f := func(body string, wantStatus int, wantReason string) {
		t.Helper()
		res, err := r.Rewrite(context.Background(), Request{Index: "products", Body: []byte(body)})
		if err == nil {
			t.Fatalf("%.120s: no error, body %.200s", body, res.Body)
		}
		status, typ, reason := esStatus(t, err)
		if status != wantStatus || typ == "" || !strings.Contains(reason, wantReason) {
			t.Fatalf("%.120s: got %d %s %q, want %d with %q", body, status, typ, reason, wantStatus, wantReason)
		}
		if !bytes.Equal(res.Body, []byte(body)) {
			t.Fatalf("the body changed on error")
		}
	}
	img := func(s string) string { return string(bodyWith(s)) }
	jpg := mediatest.JPEG(t, 200, 150, 90)

	f(img(base64.StdEncoding.EncodeToString([]byte("hello, this is not an image at all"))), 400, "not a JPEG, PNG, WebP or GIF")
	f(img(dataURI("image/jpeg", jpg[:len(jpg)/2])), 400, "cannot decode the jpeg data")
	f(img(dataURI("image/png", mediatest.HugePNG(t, 50000, 50000))), 400, "50000x50000 pixels is more than image.max_pixels")
	f(img(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xFF}, 100<<10))), 413, "image.max_bytes")
	f(img(base64.StdEncoding.EncodeToString(append([]byte{0xFF, 0xD8, 0xFF}, make([]byte, 65<<10)...))), 413, "image.max_bytes")
	f(img("%%%not base64%%%"), 400, "invalid base64")
	f(img("data:image/png,rawbytes"), 400, "only base64 data URIs")
	f(img("data:text/plain;base64,aGVsbG8="), 400, "not an image")
	f(img("ftp://example.com/a.jpg"), 400, "only data URIs")
	f(img("GIF89a"), 400, "not a JPEG") // valid base64 of garbage
	f(`{"query":{"multimodal":{"text":"a","colour":"red"}}}`, 400, "does not support [colour]")
	f(`{"query":{"multimodal":{}}}`, 400, "needs [text] or [image]")
	f(`{"query":{"multimodal":{"text":"  "}}}`, 400, "needs [text] or [image]")
	f(`{"query":{"multimodal":"red dress"}}`, 400, "expected an object")
	f(`{"query":{"multimodal":{"text":5}}}`, 400, "[text] must be a string")
	f(`{"query":{"multimodal":{"text":"a","fields":[1]}}}`, 400, "[fields]")
	f(`{"query":{"multimodal":{"text":"a","boost":"high"}}}`, 400, "[boost]")
	f(`{"query":{"multimodal":{"text":"a","operator":"xor"}}}`, 400, "[operator]")
	f(`{"query":{"multimodal":{"text":"a","language":"fr"}}}`, 400, "[language]")
	f(`{"query":{"multimodal":{"text":"a","attributes":"yes"}}}`, 400, "[attributes]")
	f(`{"query":{"multimodal":{"text":"a","minimum_should_match":[1]}}}`, 400, "[minimum_should_match]")
	f(`{"query":{"multimodal":{"text":"a"}},"size":}`, 400, "invalid JSON")
	f(img("http://example.com/shoe.jpg"), 400, "not in image.allowed_hosts")
	if n := fake.calls.Load(); n != 0 {
		t.Fatalf("the model was called %d times for bad inputs", n)
	}
}

// TestImageURLs: URLs only for allowed hosts, never to internal addresses, checked
// after DNS resolution and on redirects.
func TestImageURLs(t *testing.T) {
	jpg := mediatest.JPEG(t, 100, 80, 90)
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		served.Add(1)
		switch req.URL.Path {
		case "/ok.jpg":
			w.Write(jpg)
		case "/to-localhost":
			http.Redirect(w, req, strings.Replace(req.URL.String(), "/to-localhost", "/ok.jpg", 1), http.StatusFound)
		case "/to-metadata":
			http.Redirect(w, req, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		default:
			http.NotFound(w, req)
		}
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]

	cfg := testConfig()
	cfg.Image.AllowedHosts = []string{"localhost", "127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "*.internal.example"}
	r := newTestRewriter(t, cfg, newFake(), nil)
	f := func(url string, wantStatus int, wantReason string) {
		t.Helper()
		res, err := r.Rewrite(context.Background(), Request{Index: "products", Body: bodyWith(url)})
		if wantStatus == 0 {
			if err != nil || res.Status != "applied" {
				t.Fatalf("%s: %v %s", url, err, res.Status)
			}
			return
		}
		if err == nil {
			t.Fatalf("%s: no error", url)
		}
		status, _, reason := esStatus(t, err)
		if status != wantStatus || !strings.Contains(reason, wantReason) {
			t.Fatalf("%s: got %d %q, want %d %q", url, status, reason, wantStatus, wantReason)
		}
	}
	// Default policy: every internal address is refused, by literal or after resolution.
	f("http://127.0.0.1:"+port+"/ok.jpg", 400, "address not allowed")
	f("http://10.0.0.1/ok.jpg", 400, "address not allowed")
	f("http://169.254.169.254/latest/meta-data/", 400, "address not allowed")
	f("http://[::1]:"+port+"/ok.jpg", 400, "address not allowed")
	f("http://localhost:"+port+"/ok.jpg", 400, "address not allowed") // resolves to loopback: refused at dial
	f("http://evil.example.com/ok.jpg", 400, "not in image.allowed_hosts")
	f("file:///etc/passwd", 400, "only data URIs")
	if n := served.Load(); n != 0 {
		t.Fatalf("the test server was reached %d times", n)
	}

	// Let loopback through (the test server lives there) to check redirects and downloads.
	r.images.SetDeniedIP(func(a netip.Addr) bool { return a != netip.MustParseAddr("127.0.0.1") })
	f("http://127.0.0.1:"+port+"/ok.jpg", 0, "")
	f("http://127.0.0.1:"+port+"/missing.jpg", 400, "status 404")
	f("http://127.0.0.1:"+port+"/to-metadata", 400, "address not allowed")
	r.cfg.Image.AllowedHosts = []string{"127.0.0.1"}
	f("http://127.0.0.1:"+port+"/to-localhost", 0, "") // same host: allowed
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, "http://localhost:"+port+"/ok.jpg", http.StatusFound)
	})
	f("http://127.0.0.1:"+port+"/x", 400, `host "localhost": not in image.allowed_hosts`)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Write(bytes.Repeat([]byte{0xFF}, cfg.Image.MaxBytes+10))
	})
	f("http://127.0.0.1:"+port+"/big", 413, "image.max_bytes")
}

func TestParseOptions(t *testing.T) {
	f := func(in string, want string, wantErr string) {
		t.Helper()
		o, err := ParseOptions([]byte(in))
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Fatalf("%s: err %v, want %q", in, err, wantErr)
			}
			if s, _, _ := esStatus(t, err); s != 400 {
				t.Fatalf("%s: status %d", in, s)
			}
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		got := "nil"
		if o.Enabled != nil {
			got = map[bool]string{true: "true", false: "false"}[*o.Enabled]
		}
		if got != want {
			t.Fatalf("%s: enabled %s, want %s", in, got, want)
		}
	}
	f(``, "nil", "")
	f(`{}`, "nil", "")
	f(`{"enabled":true}`, "true", "")
	f(`{"enabled":false}`, "false", "")
	f(`{"enabled":"no"}`, "", "[ext.vlproxy.rewrite.enabled]")
	f(`{"enabeld":true}`, "", "option [enabeld]")
	f(`[true]`, "", "must be an object")
	f(`{"enabled":true`, "", "must be an object")
}
