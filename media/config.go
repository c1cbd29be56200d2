package media

import (
	"fmt"
	"runtime"
	"time"
)

// Config limits and shapes images.
type Config struct {
	// MaxBytes is the largest decoded image accepted; larger is a 413. Default 8 MiB.
	MaxBytes int `yaml:"max_bytes"`
	// MaxPixels is the largest width*height accepted, read from the header before
	// decoding so a decompression bomb is refused with a 400. Default 40 000 000.
	MaxPixels int `yaml:"max_pixels"`
	// MaxDecodedBytes bounds the memory of a decoded image, width*height*bytes per pixel as its
	// header says (16-bit channels and alpha counted: a 16-bit RGBA PNG is 8 bytes per pixel),
	// so a small file that would decode to hundreds of MB is refused (400) before decoding.
	// Default 64 MiB.
	MaxDecodedBytes int `yaml:"max_decoded_bytes"`
	// MaxDecodes bounds the images decoded at once, process-wide. Default: the number of CPUs.
	MaxDecodes int `yaml:"max_decodes"`
	// MaxDecodeQueue bounds the images waiting for a decode slot; one more is refused with a
	// 429. Default 4 per decode slot.
	MaxDecodeQueue int `yaml:"max_decode_queue"`
	// PixelBudget is the most width*height sent to the model. A JPEG within it is
	// forwarded as the client sent it (header and markers checked, pixels never
	// decoded); a larger image, or one in another format, is decoded, shrunk to
	// it and re-encoded as JPEG. Qwen3-VL spends one visual token per 32x32
	// pixels (model-servers.md §1.6), so the default, 1024*32*32 = 1 048 576,
	// is 1024 visual tokens: the top of the 256-1024 range that keeps prefill
	// small, enough for an 864x1152 catalogue shot as sent, while a 12 MP phone
	// photo (11 750 tokens at the server's default) is cut to 1024. Keep it at
	// or below the server's longest_edge (mm_processor_kwargs), which would
	// otherwise shrink the image again. Default 1048576.
	PixelBudget int `yaml:"pixel_budget"`
	// JPEGQuality of re-encoded (downscaled or converted) images. Default 85.
	JPEGQuality int `yaml:"jpeg_quality"`
	// AllowedHosts lists the hosts http(s) image URLs may name (exact names, or
	// "*.example.com" for subdomains). Default none: URLs are refused. Loopback,
	// private, link-local and metadata addresses are refused even when allowed.
	AllowedHosts []string `yaml:"allowed_hosts"`
	// FetchTimeout bounds one image download. Default 3s.
	FetchTimeout time.Duration `yaml:"fetch_timeout"`
	// MaxRedirects followed by an image download (each one checked again). Default 3.
	MaxRedirects int `yaml:"max_redirects"`
}

// DefaultConfig returns the defaults every zero field of a Config takes.
func DefaultConfig() Config {
	return Config{
		MaxBytes:        8 << 20,
		MaxPixels:       40_000_000,
		MaxDecodedBytes: 64 << 20,
		MaxDecodes:      runtime.NumCPU(),
		MaxDecodeQueue:  4 * runtime.NumCPU(),
		PixelBudget:     1024 * 32 * 32,
		JPEGQuality:     85,
		FetchTimeout:    3 * time.Second,
		MaxRedirects:    3,
	}
}

// WithDefaults fills zero fields from DefaultConfig and validates the result.
func (c Config) WithDefaults() (Config, error) {
	d := DefaultConfig()
	for _, f := range []struct {
		v   *int
		def int
	}{
		{&c.MaxBytes, d.MaxBytes}, {&c.MaxPixels, d.MaxPixels}, {&c.PixelBudget, d.PixelBudget},
		{&c.JPEGQuality, d.JPEGQuality}, {&c.MaxRedirects, d.MaxRedirects},
		{&c.MaxDecodedBytes, d.MaxDecodedBytes}, {&c.MaxDecodes, d.MaxDecodes},
	} {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if c.MaxDecodeQueue == 0 {
		c.MaxDecodeQueue = 4 * c.MaxDecodes
	}
	if c.FetchTimeout == 0 {
		c.FetchTimeout = d.FetchTimeout
	}
	if c.JPEGQuality < 1 || c.JPEGQuality > 100 {
		return c, fmt.Errorf("cannot use image.jpeg_quality %d: want 1..100", c.JPEGQuality)
	}
	if c.PixelBudget < 32*32 {
		return c, fmt.Errorf("cannot use image.pixel_budget %d: want at least 1024", c.PixelBudget)
	}
	return c, nil
}
