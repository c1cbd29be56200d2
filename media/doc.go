// Package media is the image pipeline shared by every feature that hands an image to a model:
// turning a data URI, base64 or an allowed http(s) URL into bytes (the fetch refuses internal
// addresses after DNS resolution and on every redirect), validation by magic bytes, byte size
// and header pixel count before any decoding, and downscaling to a pixel budget as JPEG.
// Errors are *eserr.Error: 400 for a bad image, 413 for one too large.
package media

import (
	"bytes"
	"context"
	"fmt"

	"github.com/vlproxy/vlproxy/internal/eserr"
)

// Prepare validates raw image bytes (magic bytes, header dimensions against cfg.MaxPixels
// before decoding) and returns the JPEG to send to the model: the original when it is a JPEG
// within cfg.PixelBudget (its markers are walked, its pixels are not decoded), else a decoded,
// downscaled re-encode. Zero fields of cfg take DefaultConfig values.
func Prepare(raw []byte, cfg Config) ([]byte, error) {
	full, err := cfg.WithDefaults()
	if err != nil {
		return nil, err
	}
	q, err := Process(raw, &full)
	return q.JPEG, err
}

// DecodeString turns a data URI or raw base64 string into bytes, at most maxBytes (0: the
// default). URLs are refused.
func DecodeString(s string, maxBytes int) ([]byte, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultConfig().MaxBytes
	}
	l := &Loader{cfg: &Config{MaxBytes: maxBytes}} // no fetcher: URLs are refused
	in, err := l.Load(context.Background(), s)
	if err != nil {
		return nil, err
	}
	b := bytes.Clone(in.Raw)
	in.Release()
	return b, nil
}

// The cause of an image error is part of what the client reads.
func imageError(err error, format string, args ...any) *eserr.Error {
	return &eserr.Error{Status: 400, Type: eserr.TypeIllegalArgument, Reason: fmt.Sprintf(format, args...), Err: err, ShowCause: true}
}

func tooLarge(format string, args ...any) *eserr.Error {
	return eserr.New(413, eserr.TypeTooLarge, fmt.Sprintf(format, args...))
}
