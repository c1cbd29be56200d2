package document

import (
	"bytes"
	"compress/zlib"
	"encoding/ascii85"
	"io"

	"github.com/pdfcpu/pdfcpu/pkg/filter"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// Streaming decoders for the filters that content streams use. pdfcpu decodes each
// filter of a pipeline into a whole buffer before the next one starts, so a bomb behind
// a second filter (/Filter [/ASCIIHexDecode /FlateDecode]) grows buffers up to its
// limit, 3.5 times max_decoded_bytes at the peak (227 MiB for 64). Chaining readers lets
// the pipeline's output be measured without keeping a byte, and then decoded into a
// buffer of exactly its size.

// streamReader chains decoders over sd.Raw in /Filter order. ok is false when a filter
// has no streaming decoder here (LZW, a predictor, image filters) or a zlib header is
// broken (pdfcpu repairs some): the caller then decodes with pdfcpu, under its limit.
func streamReader(sd *types.StreamDict) (r io.Reader, ok bool) {
	r = bytes.NewReader(sd.Raw)
	for _, f := range sd.FilterPipeline {
		switch f.Name {
		case filter.Flate:
			if p, found := f.DecodeParms.Find("Predictor"); found && p.String() != "1" {
				return nil, false
			}
			zr, err := zlib.NewReader(r)
			if err != nil {
				return nil, false
			}
			r = zr
		case filter.ASCIIHex:
			r = &hexReader{r: r, hi: -1}
		case filter.ASCII85:
			r = ascii85.NewDecoder(&a85Body{r: r})
		case filter.RunLength:
			r = &runLengthReader{r: r}
		default:
			return nil, false
		}
	}
	return r, true
}

// hexReader decodes ASCIIHexDecode: hex digits, white space ignored, '>' ends the data,
// an odd last digit is followed by an implied 0.
type hexReader struct {
	r    io.Reader
	buf  [512]byte
	hi   int // pending high nibble, -1 for none
	done bool
}

func (h *hexReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && !h.done {
		room := 2 * (len(p) - n) // digits that fit, with a pending nibble one fewer
		if h.hi >= 0 {
			room--
		}
		m, err := h.r.Read(h.buf[:min(len(h.buf), room)])
		for _, c := range h.buf[:m] {
			if c == '>' {
				h.done = true
				break
			}
			v, ok := unhex(c)
			if !ok {
				continue // white space; pdfcpu skips other bytes too
			}
			if h.hi < 0 {
				h.hi = int(v)
				continue
			}
			p[n] = byte(h.hi<<4) | v
			n++
			h.hi = -1
		}
		if err == io.EOF {
			h.done = true
		} else if err != nil {
			return n, err
		}
		if m == 0 && err == nil {
			break
		}
	}
	if h.done && h.hi >= 0 && n < len(p) {
		p[n] = byte(h.hi << 4)
		n++
		h.hi = -1
	}
	if n == 0 && h.done {
		return 0, io.EOF
	}
	return n, nil
}

// a85Body passes ASCII85 text up to its "~>" end marker, dropping a leading "<~"
// (encoding/ascii85 knows neither).
type a85Body struct {
	r     io.Reader
	start bool
	done  bool
}

func (a *a85Body) Read(p []byte) (int, error) {
	if a.done {
		return 0, io.EOF
	}
	n, err := a.r.Read(p)
	b := p[:n]
	if !a.start && n > 0 {
		a.start = true
		if t := bytes.TrimLeft(b, " \t\r\n\f\x00"); bytes.HasPrefix(t, []byte("<~")) {
			i := len(b) - len(t)
			copy(b[i:], t[2:])
			b = b[:len(b)-2]
		}
	}
	if i := bytes.IndexByte(b, '~'); i >= 0 {
		a.done = true
		return i, nil
	}
	return len(b), err
}

// runLengthReader decodes RunLengthDecode: a length byte L, then L+1 literal bytes
// (L < 128), or one byte repeated 257-L times (L > 128); 128 ends the data.
type runLengthReader struct {
	r    io.Reader
	one  [1]byte
	lit  int  // literal bytes left in the current run
	rep  int  // repeats left of b
	b    byte //
	done bool
}

func (rl *runLengthReader) byte() (byte, error) {
	_, err := io.ReadFull(rl.r, rl.one[:])
	return rl.one[0], err
}

func (rl *runLengthReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		switch {
		case rl.rep > 0:
			k := min(rl.rep, len(p)-n)
			for i := range k {
				p[n+i] = rl.b
			}
			n += k
			rl.rep -= k
		case rl.lit > 0:
			m, err := rl.r.Read(p[n : n+min(rl.lit, len(p)-n)])
			n += m
			rl.lit -= m
			if err != nil {
				rl.done = true
				return n, eofOr(n, err)
			}
		case rl.done:
			return n, eofOr(n, io.EOF)
		default:
			l, err := rl.byte()
			if err != nil || l == 128 {
				rl.done = true
				continue
			}
			if l < 128 {
				rl.lit = int(l) + 1
				continue
			}
			if rl.b, err = rl.byte(); err != nil {
				rl.done = true
				continue
			}
			rl.rep = 257 - int(l)
		}
	}
	return n, nil
}

// eofOr returns nil when bytes came with the error, so they are read first.
func eofOr(n int, err error) error {
	if n > 0 {
		return nil
	}
	return err
}
