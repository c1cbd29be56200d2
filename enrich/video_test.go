package enrich

import (
	"context"
	"strings"
	"testing"
)

func TestVideoFileAllowList(t *testing.T) {
	e := &enricher{cfg: Config{ImageDir: "/data"}}
	e.cfg.Image.AllowedHosts = []string{"*.cdn.example"}
	f := func(v, wantPath, wantErr string) {
		t.Helper()
		p, cleanup, err := e.videoFile(context.Background(), v)
		defer cleanup()
		switch {
		case wantErr != "":
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Fatalf("%s: %v, want %q", v, err, wantErr)
			}
		case err != nil || p != wantPath:
			t.Fatalf("%s: %q %v, want %q", v, p, err, wantPath)
		}
	}
	f("clips/a.mp4", "/data/clips/a.mp4", "")
	f("/abs/b.mp4", "/abs/b.mp4", "")
	f("http://evil.example/v.mp4", "", "not on the allow-list")
	f("https://cdn.example.evil/v.mp4", "", "not on the allow-list")
	f("data:video/mp4;base64,AAAA", "", "give a file path or an http(s) URL")
}
