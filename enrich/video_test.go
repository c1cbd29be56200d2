package enrich

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
)

// videoEnricher is an enricher with only what videoFile needs.
func videoEnricher(t *testing.T, allowed ...string) *enricher {
	t.Helper()
	e := &enricher{cfg: Config{ImageDir: "/data"}}
	e.cfg.Image.AllowedHosts = allowed
	var err error
	if e.videos, err = newVideoFetcher(e.cfg.Image); err != nil {
		t.Fatal(err)
	}
	return e
}

// check calls videoFile; wantErr "" wants the path wantPath (or, for a download, a file
// holding wantBody).
func check(t *testing.T, e *enricher, v, want, wantErr string) {
	t.Helper()
	p, cleanup, err := e.videoFile(context.Background(), v)
	defer cleanup()
	switch {
	case wantErr != "":
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("%s: %v, want %q", v, err, wantErr)
		}
	case err != nil:
		t.Fatalf("%s: %v", v, err)
	case strings.HasPrefix(v, "http"):
		if b, err := os.ReadFile(p); err != nil || string(b) != want {
			t.Fatalf("%s: downloaded %q %v, want %q", v, b, err, want)
		}
	case p != want:
		t.Fatalf("%s: %q, want %q", v, p, want)
	}
}

func TestVideoFileAllowList(t *testing.T) {
	e := videoEnricher(t, "*.cdn.example")
	f := func(v, wantPath, wantErr string) { t.Helper(); check(t, e, v, wantPath, wantErr) }
	f("clips/a.mp4", "/data/clips/a.mp4", "")
	f("/abs/b.mp4", "/abs/b.mp4", "")
	f("http://evil.example/v.mp4", "", "not in image.allowed_hosts")
	f("https://cdn.example.evil/v.mp4", "", "not in image.allowed_hosts")
	f("data:video/mp4;base64,AAAA", "", "give a file path or an http(s) URL")
}

// Video URLs get media's guard: the address is checked after DNS resolution (localhost is
// allowed by name but resolves to loopback) and on every redirect, and the size is bounded.
func TestVideoFileAddressCheck(t *testing.T) {
	clip := bytes.Repeat([]byte("webm"), 100)
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		served.Add(1)
		switch req.URL.Path {
		case "/v.webm":
			w.Write(clip)
		case "/to-metadata":
			http.Redirect(w, req, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		case "/to-other":
			http.Redirect(w, req, "http://evil.example/v.webm", http.StatusFound)
		case "/big":
			w.Write(bytes.Repeat([]byte{0}, 2000))
		default:
			http.NotFound(w, req)
		}
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]
	e := videoEnricher(t, "localhost", "127.0.0.1", "169.254.169.254")
	e.cfg.Video.MaxBytes = 1000
	f := func(v, want, wantErr string) { t.Helper(); check(t, e, v, want, wantErr) }

	f("http://localhost:"+port+"/v.webm", "", "address not allowed") // refused at dial, after DNS
	f("http://127.0.0.1:"+port+"/v.webm", "", "address not allowed")
	f("http://169.254.169.254/latest/meta-data/", "", "address not allowed")
	if n := served.Load(); n != 0 {
		t.Fatalf("the test server was reached %d times", n)
	}

	// Let 127.0.0.1 through (the test server lives there): redirects and size are still checked.
	e.videos.SetDeniedIP(func(a netip.Addr) bool { return a != netip.MustParseAddr("127.0.0.1") })
	f("http://127.0.0.1:"+port+"/v.webm", string(clip), "")
	f("http://127.0.0.1:"+port+"/to-metadata", "", "address not allowed")
	f("http://127.0.0.1:"+port+"/to-other", "", `host "evil.example": not in image.allowed_hosts`)
	f("http://127.0.0.1:"+port+"/big", "", "video.max_bytes")
	f("http://127.0.0.1:"+port+"/missing", "", "status 404")
}
