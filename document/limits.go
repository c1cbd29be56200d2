package document

import (
	"fmt"
	"time"
)

// Limits bound the work one document may cost. Zero fields take the value of
// DefaultLimits; each error caused by a limit names its key (document.<key>).
type Limits struct {
	// MaxBytes is the largest document accepted (decoded from base64); larger is a 413. Default 16 MiB.
	MaxBytes int `yaml:"max_bytes"`
	// MaxPages is the most pages a PDF may have; more is a 400. Default 20.
	MaxPages int `yaml:"max_pages"`
	// MaxObjects is the most objects a PDF may have; more is a 400. Default 50 000.
	MaxObjects int `yaml:"max_objects"`
	// MaxPagePixels is the largest width*height of a page image (an embedded scan or an
	// uploaded photo), read from its header before decoding; larger is a 400. Default 40 000 000.
	MaxPagePixels int `yaml:"max_page_pixels"`
	// MaxDecodedBytes bounds the bytes all streams of one PDF may decode to (content streams,
	// object streams, raw images), checked while inflating, so a decompression bomb stops
	// there with a 400. Default 64 MiB.
	MaxDecodedBytes int64 `yaml:"max_decoded_bytes"`
	// ReadTimeout bounds reading one document; a document that takes longer is a 400. Default 2s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// MaxInFlight bounds the documents read at once in the process; a request that cannot get
	// a slot before its deadline is a 429. Default 2.
	MaxInFlight int `yaml:"max_in_flight"`
}

// DefaultLimits returns the defaults every zero field of Limits takes.
func DefaultLimits() Limits {
	return Limits{
		MaxBytes:        16 << 20,
		MaxPages:        20,
		MaxObjects:      50_000,
		MaxPagePixels:   40_000_000,
		MaxDecodedBytes: 64 << 20,
		ReadTimeout:     2 * time.Second,
		MaxInFlight:     2,
	}
}

// WithDefaults fills zero fields from DefaultLimits and validates the result.
func (l Limits) WithDefaults() (Limits, error) {
	d := DefaultLimits()
	set := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	set(&l.MaxBytes, d.MaxBytes)
	set(&l.MaxPages, d.MaxPages)
	set(&l.MaxObjects, d.MaxObjects)
	set(&l.MaxPagePixels, d.MaxPagePixels)
	set(&l.MaxInFlight, d.MaxInFlight)
	if l.MaxDecodedBytes == 0 {
		l.MaxDecodedBytes = d.MaxDecodedBytes
	}
	if l.ReadTimeout == 0 {
		l.ReadTimeout = d.ReadTimeout
	}
	if l.MaxBytes < 0 || l.MaxPages < 0 || l.MaxObjects < 0 || l.MaxPagePixels < 0 || l.MaxDecodedBytes < 0 || l.ReadTimeout < 0 || l.MaxInFlight < 0 {
		return l, fmt.Errorf("cannot use negative document limits")
	}
	return l, nil
}
