package document

import (
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// font is what text extraction needs of a font: how its codes map to text.
type font struct {
	cmap    *cmap
	twoByte bool // a Type0 (composite) font without a usable cmap: 2-byte codes, unknown text
}

// font returns the decoder of the font named in the resources (nil: WinAnsi).
func (r *pdfReader) font(res types.Dict, name string) *font {
	fs := r.dict(res["Font"])
	if fs == nil {
		return nil
	}
	ref := fs[name]
	nr := objNr(ref)
	if f, ok := r.fonts[nr]; ok && nr >= 0 {
		return f
	}
	d := r.dict(ref)
	if d == nil {
		return nil
	}
	f := &font{twoByte: r.name(d["Subtype"]) == "Type0"}
	if sd := r.stream(d["ToUnicode"]); sd != nil {
		if b, err := r.decode(sd); err == nil {
			f.cmap = parseCMap(b)
		}
	}
	if nr >= 0 && len(r.fonts) < 1024 {
		r.fonts[nr] = f
	}
	return f
}

// decode turns a shown string into text and its glyph count.
func (f *font) decode(b []byte) (string, int) {
	if f != nil && f.cmap != nil && (len(f.cmap.chars) > 0 || len(f.cmap.ranges) > 0) {
		return f.cmap.decode(b, f.twoByte)
	}
	if f != nil && f.twoByte {
		return "", len(b) / 2
	}
	var sb strings.Builder
	for _, c := range b {
		sb.WriteRune(winAnsi(c))
	}
	return sb.String(), len(b)
}

// winAnsi maps a byte of WinAnsiEncoding (the standard fonts' usual
// encoding) to its rune: Latin-1 plus the printable 0x80-0x9F block.
func winAnsi(c byte) rune {
	if c >= 0x80 && c <= 0x9F {
		if r := winAnsiHigh[c-0x80]; r != 0 {
			return r
		}
		return ' '
	}
	if c < 0x20 {
		return ' '
	}
	return rune(c)
}

var winAnsiHigh = [32]rune{
	'€', 0, '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', 0, 'Ž', 0,
	0, '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', 0, 'ž', 'Ÿ',
}

// cmap is a ToUnicode CMap: code ranges kept as ranges, never expanded, so a
// hostile range costs its few bytes.
type cmap struct {
	spaces []codeRange // codespace ranges: which byte lengths codes have
	chars  map[uint32]string
	ranges []bfRange
}

type codeRange struct {
	n      int
	lo, hi uint32
}

type bfRange struct {
	lo, hi uint32
	n      int
	base   []rune   // destination of lo; the last rune counts up
	list   []string // explicit destinations, when given as an array
}

const maxCMapEntries = 100_000

func codeOf(b []byte) uint32 {
	var v uint32
	for _, c := range b[:min(len(b), 4)] {
		v = v<<8 | uint32(c)
	}
	return v
}

func utf16Text(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		u = append(u, uint16(b[i])<<8|uint16(b[i+1]))
	}
	return string(utf16.Decode(u))
}

// parseCMap reads the bfchar, bfrange and codespacerange sections of a ToUnicode CMap.
func parseCMap(b []byte) *cmap {
	c := &cmap{chars: map[uint32]string{}}
	l := lexer{b: b}
	var strs [][]byte
	entries := 0
	for entries < maxCMapEntries {
		tok := l.next()
		switch tok.kind {
		case tokEOF:
			return c
		case tokStr:
			strs = append(strs, tok.str)
		case tokArrOpen:
			// bfrange with an array of destinations: <lo> <hi> [<d1> <d2> …]
			var list []string
			for {
				t := l.next()
				if t.kind == tokStr && len(list) < 65536 {
					list = append(list, utf16Text(t.str))
					continue
				}
				if t.kind == tokArrClose || t.kind == tokEOF {
					break
				}
			}
			if len(strs) >= 2 {
				lo, hi := codeOf(strs[len(strs)-2]), codeOf(strs[len(strs)-1])
				if hi >= lo {
					c.ranges = append(c.ranges, bfRange{lo: lo, hi: hi, n: len(strs[len(strs)-2]), list: list})
					entries++
				}
			}
			strs = strs[:0]
		case tokOp:
			switch tok.text {
			case "endcodespacerange":
				for i := 0; i+1 < len(strs); i += 2 {
					if n := len(strs[i]); n >= 1 && n <= 4 {
						c.spaces = append(c.spaces, codeRange{n: n, lo: codeOf(strs[i]), hi: codeOf(strs[i+1])})
						entries++
					}
				}
			case "endbfchar":
				for i := 0; i+1 < len(strs); i += 2 {
					if len(strs[i]) >= 1 && len(strs[i]) <= 4 {
						c.chars[codeOf(strs[i])] = utf16Text(strs[i+1])
						entries++
					}
				}
				if len(c.spaces) == 0 && len(strs) >= 2 {
					n := len(strs[0])
					c.spaces = append(c.spaces, codeRange{n: n, lo: 0, hi: 1<<(8*min(n, 4)) - 1})
				}
			case "endbfrange":
				for i := 0; i+2 < len(strs); i += 3 {
					lo, hi := codeOf(strs[i]), codeOf(strs[i+1])
					if hi < lo || len(strs[i]) > 4 {
						continue
					}
					c.ranges = append(c.ranges, bfRange{lo: lo, hi: hi, n: len(strs[i]), base: []rune(utf16Text(strs[i+2]))})
					entries++
				}
			}
			if strings.HasPrefix(tok.text, "end") || strings.HasPrefix(tok.text, "begin") {
				strs = strs[:0]
			}
		}
		if len(strs) > 3*maxCMapEntries {
			strs = strs[:0]
		}
	}
	return c
}

// codeLen is the length of the code starting b.
func (c *cmap) codeLen(b []byte, twoByte bool) int {
	for n := 1; n <= 4 && n <= len(b); n++ {
		v := codeOf(b[:n])
		for _, s := range c.spaces {
			if s.n == n && v >= s.lo && v <= s.hi {
				return n
			}
		}
	}
	if twoByte && len(b) >= 2 {
		return 2
	}
	return 1
}

func (c *cmap) lookup(v uint32, n int) (string, bool) {
	if s, ok := c.chars[v]; ok {
		return s, true
	}
	for _, r := range c.ranges {
		if v < r.lo || v > r.hi || r.n != n {
			continue
		}
		off := v - r.lo
		if r.list != nil {
			if int(off) < len(r.list) {
				return r.list[off], true
			}
			return "", false
		}
		if len(r.base) == 0 {
			return "", false
		}
		out := append([]rune(nil), r.base...)
		last := out[len(out)-1] + rune(off)
		if !utf8.ValidRune(last) {
			return "", false
		}
		out[len(out)-1] = last
		return string(out), true
	}
	return "", false
}

func (c *cmap) decode(b []byte, twoByte bool) (string, int) {
	var sb strings.Builder
	glyphs := 0
	for len(b) > 0 {
		n := c.codeLen(b, twoByte)
		if s, ok := c.lookup(codeOf(b[:n]), n); ok {
			sb.WriteString(s)
		} else if !twoByte && n == 1 {
			sb.WriteRune(winAnsi(b[0]))
		}
		b = b[n:]
		glyphs++
	}
	return sb.String(), glyphs
}
