package media

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"image"
	"image/png"
	"testing"
	"time"

	"github.com/vlproxy/vlproxy/internal/eserr"
)

func TestGateQueueFullIs429(t *testing.T) {
	g := NewGate(&Config{MaxDecodes: 1, MaxDecodeQueue: 1})
	ctx := context.Background()
	if err := g.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- g.Acquire(ctx) }()
	for g.waiting.Load() != 1 {
		time.Sleep(time.Millisecond)
	}
	var e *eserr.Error
	if err := g.Acquire(ctx); !errors.As(err, &e) || e.Status != 429 {
		t.Fatalf("third Acquire: %v, want a 429", err)
	}
	g.Release()
	if err := <-waited; err != nil {
		t.Fatalf("queued Acquire: %v", err)
	}
	g.Release()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := g.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.Acquire(cctx); err == nil {
		t.Fatal("a cancelled waiter got a slot")
	}
	g.Release()
}

func TestInspectCountsBytesPerPixel(t *testing.T) {
	cfg, _ := Config{MaxDecodedBytes: 1 << 20}.WithDefaults()
	enc := func(img image.Image) []byte {
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	f := func(img image.Image, bpp int, ok bool) {
		t.Helper()
		hdr, err := Inspect(enc(img), &cfg)
		if hdr.BytesPerPixel != bpp || (err == nil) != ok {
			t.Fatalf("%T: %d bytes per pixel, err %v; want %d, ok %v", img, hdr.BytesPerPixel, err, bpp, ok)
		}
	}
	r := image.Rect(0, 0, 600, 600) // 360 000 pixels
	f(image.NewGray(r), 1, true)
	f(image.NewGray16(r), 2, true)
	f(image.NewNRGBA(r), 4, false)
	f(image.NewNRGBA64(r), 8, false)
	f(image.NewNRGBA64(image.Rect(0, 0, 300, 300)), 8, true)
}

func TestCheckStringReadsOnlyTheHeader(t *testing.T) {
	cfg, _ := Config{MaxDecodedBytes: 1 << 20}.WithDefaults()
	enc := func(img image.Image) string {
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(b.Bytes())
	}
	big := enc(image.NewNRGBA64(image.Rect(0, 0, 600, 600)))
	var e *eserr.Error
	if err := CheckString("data:image/png;base64,"+big, &cfg); !errors.As(err, &e) || e.Status != 400 {
		t.Fatalf("600x600 16-bit: %v, want a 400", err)
	}
	// The header alone says it: a string cut after the header is refused the same way.
	if err := CheckString(big[:64], &cfg); err == nil {
		t.Fatal("the header prefix of a 600x600 16-bit PNG passed")
	}
	if err := CheckString(enc(image.NewNRGBA64(image.Rect(0, 0, 300, 300))), &cfg); err != nil {
		t.Fatalf("300x300: %v", err)
	}
	for _, s := range []string{"", "data:,", "!!!!", "https://example.com/a.png", big[:3]} {
		if err := CheckString(s, &cfg); err != nil {
			t.Fatalf("%q: %v, want it left to the full path", s, err)
		}
	}
}

// FuzzCheckString: any string gives nil or a 400, never a panic.
func FuzzCheckString(f *testing.F) {
	f.Add("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk")
	f.Add("/9j/4AAQSkZJRgABAQ")
	f.Add("data:image/gif;base64,R0lGODlhAQABAAAAACw=")
	cfg, _ := Config{}.WithDefaults()
	f.Fuzz(func(t *testing.T, s string) {
		var e *eserr.Error
		if err := CheckString(s, &cfg); err != nil && (!errors.As(err, &e) || e.Status != 400) {
			t.Fatalf("%q: %v", s, err)
		}
	})
}
