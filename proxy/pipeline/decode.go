package pipeline

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/vlproxy/vlproxy/internal/eserr"
)

// decodeBody is decodeBody under the gate of decompressions in flight.
func (p *Pipeline) decodeBody(ctx context.Context, h *fasthttp.RequestHeader, body []byte) ([]byte, bool, error) {
	if len(h.ContentEncoding()) == 0 {
		return body, true, nil
	}
	select {
	case p.decompress <- struct{}{}:
	default:
		if p.waiting.Add(1) > int64(4*cap(p.decompress)) {
			p.waiting.Add(-1)
			return nil, false, eserr.New(429, "es_rejected_execution_exception",
				"cannot decompress the request body now: pipeline.max_decompressions bodies are being decompressed and four times as many wait; retry later or raise -max-decompressions")
		}
		select {
		case p.decompress <- struct{}{}:
			p.waiting.Add(-1)
		case <-ctx.Done():
			p.waiting.Add(-1)
			return nil, false, stopped(ctx)
		}
	}
	defer func() { <-p.decompress }()
	return decodeBody(h, body, p.cfg.MaxDecodedBodySize)
}

// decodeBody returns the request body as ES reads it. raw reports whether it is body itself,
// i.e. there was no Content-Encoding to undo. The encodings undone are those ES and OpenSearch
// accept (Netty's HttpContentDecompressor as they configure it: gzip, x-gzip, deflate,
// x-deflate); any other is forwarded untouched for the node to refuse.
//
// limit bounds the decompressed size and is checked while decoding: the body is inflated once
// to count its size, keeping nothing, and once more into a slice of exactly that size. A bomb
// thus costs CPU up to limit bytes of inflating and no memory, and an honest body one
// allocation.
func decodeBody(h *fasthttp.RequestHeader, body []byte, limit int64) (plain []byte, raw bool, err error) {
	ce := bytes.TrimSpace(h.ContentEncoding())
	var open func() (io.Reader, error)
	name := ""
	switch {
	case len(ce) == 0, bytes.EqualFold(ce, []byte("identity")):
		return body, true, nil
	case bytes.EqualFold(ce, []byte("gzip")), bytes.EqualFold(ce, []byte("x-gzip")):
		name = "gzip"
		// The trailer holds the size of the last member: the whole is at least that, so a bomb
		// that says so is refused without being inflated. A trailer that lies fails the
		// reader's own check at the end, and the limit holds while counting either way.
		if len(body) >= 18 && int64(binary.LittleEndian.Uint32(body[len(body)-4:])) > limit {
			return nil, false, ErrDecodedTooLarge(limit)
		}
		open = func() (io.Reader, error) { return gzip.NewReader(bytes.NewReader(body)) }
	case bytes.EqualFold(ce, []byte("deflate")), bytes.EqualFold(ce, []byte("x-deflate")):
		// HTTP's deflate is zlib-wrapped; Netty also takes raw deflate, so do we.
		name = "deflate"
		if len(body) >= 2 && body[0]&0x0f == 8 && (uint16(body[0])<<8|uint16(body[1]))%31 == 0 {
			open = func() (io.Reader, error) { return zlib.NewReader(bytes.NewReader(body)) }
		} else {
			open = func() (io.Reader, error) { return flate.NewReader(bytes.NewReader(body)), nil }
		}
	default:
		return body, true, nil // an encoding ES answers itself (with a 4xx)
	}
	zr, err := open()
	if err != nil {
		return nil, false, decodeError(name, err)
	}
	n, err := io.Copy(io.Discard, io.LimitReader(zr, limit+1))
	if n > limit {
		return nil, false, ErrDecodedTooLarge(limit)
	}
	if err != nil {
		return nil, false, decodeError(name, err)
	}
	if zr, err = open(); err != nil {
		return nil, false, decodeError(name, err)
	}
	b, err := readLimited(zr, int(n)+1, n)
	if err != nil {
		return nil, false, decodeError(name, err)
	}
	return b, false, nil
}

var errOverLimit = errors.New("over the limit")

// readLimited reads r to its end into a slice that never grows past limit+1 bytes (a bytes.Buffer
// would double to twice the limit).
func readLimited(r io.Reader, initial int, limit int64) ([]byte, error) {
	b := make([]byte, 0, int(min(int64(max(initial, 512)), limit+1)))
	for {
		if len(b) == cap(b) {
			if int64(len(b)) > limit {
				return nil, errOverLimit
			}
			nb := make([]byte, len(b), int(min(int64(cap(b))*2, limit+1)))
			copy(nb, b)
			b = nb
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			return nil, errOverLimit
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func decodeError(name string, err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return eserr.New(400, "parse_exception", "cannot decompress the "+name+" request body: "+err.Error())
}

// ErrDecodedTooLarge is the 413 of a compressed body that decompresses to more than limit bytes.
func ErrDecodedTooLarge(limit int64) error {
	return eserr.New(413, "content_too_long_exception",
		"cannot accept the request body: it decompresses to more than pipeline.max_decoded_body_size ("+
			strconv.FormatInt(limit, 10)+" bytes); raise -max-decoded-body-size")
}
