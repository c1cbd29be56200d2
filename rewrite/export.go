package rewrite

import (
	"bytes"
	"context"
)

// PrepareImage validates raw image bytes (magic bytes, header dimensions against
// cfg.MaxPixels before decoding) and returns the JPEG to send to the model: the
// original when it is a JPEG within cfg.PixelBudget (its markers are walked, its
// pixels are not decoded), else a decoded, downscaled re-encode. Zero fields of cfg take DefaultConfig values. Errors implement ESError.
func PrepareImage(raw []byte, cfg ImageConfig) ([]byte, error) {
	full, err := Config{Image: cfg}.withDefaults()
	if err != nil {
		return nil, err
	}
	q, err := processImage(raw, &full.Image)
	return q.JPEG, err
}

// DecodeImageString turns a data URI or raw base64 string into bytes, at most maxBytes.
func DecodeImageString(s string, maxBytes int) ([]byte, error) {
	r := &Rewriter{cfg: Config{Image: ImageConfig{MaxBytes: maxBytes}}}
	if r.cfg.Image.MaxBytes <= 0 {
		r.cfg.Image.MaxBytes = DefaultConfig().Image.MaxBytes
	}
	in, err := r.imageBytes(context.Background(), s) // r.fetch is nil: URLs are refused
	if err != nil {
		return nil, err
	}
	b := bytes.Clone(in.raw)
	in.release()
	return b, nil
}

// ParseKeywords reads a model answer the way Rewrite does: a JSON object (also
// inside ``` fences), a JSON array of strings or a plain list. It returns at most
// maxKeywords distinct phrases, or an error when none is usable.
func ParseKeywords(content string, maxKeywords int) (Keywords, error) {
	return parseOutput(content, maxKeywords)
}
