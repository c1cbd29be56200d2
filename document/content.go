package document

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// Content streams are PostScript-like: operands, then an operator. The lexer
// below reads the subset that places and shows text (and the inline images
// and dictionaries it must skip); everything else is read and ignored. Every
// loop advances at least one byte, and nesting is capped, so any input ends.

type tokKind uint8

const (
	tokEOF tokKind = iota
	tokNum
	tokStr // literal or hex string, decoded to bytes
	tokName
	tokOp
	tokArrOpen
	tokArrClose
	tokDict // a whole << … >> dictionary, skipped
)

type token struct {
	kind tokKind
	num  float64
	str  []byte
	text string // name or operator
}

type lexer struct {
	b []byte
	i int
}

const maxNest = 32

func isSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == 0
}

func isDelim(c byte) bool {
	switch c {
	case '(', ')', '<', '>', '[', ']', '{', '}', '/', '%':
		return true
	}
	return false
}

func (l *lexer) next() token {
	for l.i < len(l.b) {
		c := l.b[l.i]
		switch {
		case isSpace(c):
			l.i++
		case c == '%':
			for l.i < len(l.b) && l.b[l.i] != '\n' && l.b[l.i] != '\r' {
				l.i++
			}
		case c == '(':
			l.i++
			return token{kind: tokStr, str: l.literal()}
		case c == '<':
			if l.i+1 < len(l.b) && l.b[l.i+1] == '<' {
				l.skipDict()
				return token{kind: tokDict}
			}
			l.i++
			return token{kind: tokStr, str: l.hex()}
		case c == '[':
			l.i++
			return token{kind: tokArrOpen}
		case c == ']':
			l.i++
			return token{kind: tokArrClose}
		case c == '/':
			l.i++
			s := l.i
			for l.i < len(l.b) && !isSpace(l.b[l.i]) && !isDelim(l.b[l.i]) {
				l.i++
			}
			return token{kind: tokName, text: string(l.b[s:l.i])}
		case c == '+' || c == '-' || c == '.' || c >= '0' && c <= '9':
			s := l.i
			l.i++
			for l.i < len(l.b) && (l.b[l.i] == '.' || l.b[l.i] >= '0' && l.b[l.i] <= '9') {
				l.i++
			}
			f, err := strconv.ParseFloat(string(l.b[s:l.i]), 64)
			if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				f = 0
			}
			return token{kind: tokNum, num: f}
		case isDelim(c): // stray ) > { }
			l.i++
		default:
			s := l.i
			for l.i < len(l.b) && !isSpace(l.b[l.i]) && !isDelim(l.b[l.i]) {
				l.i++
			}
			return token{kind: tokOp, text: string(l.b[s:l.i])}
		}
	}
	return token{kind: tokEOF}
}

// literal reads a (string) after its opening parenthesis.
func (l *lexer) literal() []byte {
	var out []byte
	depth := 1
	for l.i < len(l.b) {
		c := l.b[l.i]
		l.i++
		switch c {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return out
			}
		case '\\':
			if l.i >= len(l.b) {
				return out
			}
			e := l.b[l.i]
			l.i++
			switch e {
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case '\r':
				if l.i < len(l.b) && l.b[l.i] == '\n' {
					l.i++
				}
				continue
			case '\n':
				continue
			default:
				if e >= '0' && e <= '7' {
					v := int(e - '0')
					for k := 0; k < 2 && l.i < len(l.b) && l.b[l.i] >= '0' && l.b[l.i] <= '7'; k++ {
						v = v*8 + int(l.b[l.i]-'0')
						l.i++
					}
					c = byte(v)
				} else {
					c = e
				}
			}
		}
		out = append(out, c)
	}
	return out
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// hex reads a <hex string> after its opening bracket.
func (l *lexer) hex() []byte {
	var out []byte
	var hi byte
	half := false
	for l.i < len(l.b) {
		c := l.b[l.i]
		l.i++
		if c == '>' {
			break
		}
		v, ok := unhex(c)
		if !ok {
			continue
		}
		if half {
			out = append(out, hi<<4|v)
		} else {
			hi = v
		}
		half = !half
	}
	if half {
		out = append(out, hi<<4)
	}
	return out
}

// skipDict skips a << … >> dictionary, nested ones and strings inside included.
func (l *lexer) skipDict() {
	depth := 0
	for l.i < len(l.b) {
		switch {
		case l.b[l.i] == '<' && l.i+1 < len(l.b) && l.b[l.i+1] == '<':
			depth++
			l.i += 2
		case l.b[l.i] == '>' && l.i+1 < len(l.b) && l.b[l.i+1] == '>':
			depth--
			l.i += 2
			if depth <= 0 {
				return
			}
		case l.b[l.i] == '(':
			l.i++
			l.literal()
		default:
			l.i++
		}
	}
}

// skipInlineImage skips the data of an inline image after ID, up to EI.
func (l *lexer) skipInlineImage() {
	for l.i+2 < len(l.b) {
		if isSpace(l.b[l.i]) && l.b[l.i+1] == 'E' && l.b[l.i+2] == 'I' && (l.i+3 == len(l.b) || isSpace(l.b[l.i+3]) || isDelim(l.b[l.i+3])) {
			l.i += 3
			return
		}
		l.i++
	}
	l.i = len(l.b)
}

// operand is one value on the interpreter's stack.
type operand struct {
	kind tokKind
	num  float64
	str  []byte
	name string
	arr  []operand
}

const maxOperands = 64

type matrix [6]float64

var identity = matrix{1, 0, 0, 1, 0, 0}

// mul returns m × n (m applied first).
func (m matrix) mul(n matrix) matrix {
	return matrix{
		m[0]*n[0] + m[1]*n[2], m[0]*n[1] + m[1]*n[3],
		m[2]*n[0] + m[3]*n[2], m[2]*n[1] + m[3]*n[3],
		m[4]*n[0] + m[5]*n[2] + n[4], m[4]*n[1] + m[5]*n[3] + n[5],
	}
}

// segment is one positioned run of text.
type segment struct {
	x, y, size float64
	text       strings.Builder
	runes      int
}

type textState struct {
	ctm      matrix
	stack    []matrix
	tm, tlm  matrix
	leading  float64
	fontSize float64
	font     *font
	segs     []*segment
	cur      *segment
	runes    int
}

// maxPageRunes caps the text kept per page.
const maxPageRunes = 200_000

func newTextState() *textState {
	return &textState{ctm: identity, tm: identity, tlm: identity, fontSize: 1}
}

// run interprets a content stream with its resources.
func (r *pdfReader) run(b []byte, res types.Dict, t *textState, pg *Page, depth int) error {
	l := lexer{b: b}
	var ops []operand
	var arrs [][]operand // open arrays
	num := func(i int) float64 {
		if i < len(ops) && ops[i].kind == tokNum {
			return ops[i].num
		}
		return 0
	}
	steps := 0
	for {
		tok := l.next()
		if tok.kind == tokEOF {
			return nil
		}
		if steps++; steps&0xFFF == 0 {
			if err := r.ctx.Err(); err != nil {
				return err
			}
		}
		var op operand
		switch tok.kind {
		case tokArrOpen:
			if len(arrs) < maxNest {
				arrs = append(arrs, nil)
			}
			continue
		case tokArrClose:
			if len(arrs) == 0 {
				continue
			}
			op = operand{kind: tokArrOpen, arr: arrs[len(arrs)-1]}
			arrs = arrs[:len(arrs)-1]
		case tokNum, tokStr, tokName, tokDict:
			op = operand{kind: tok.kind, num: tok.num, str: tok.str, name: tok.text}
		case tokOp:
			if len(arrs) > 0 {
				continue // an operator inside an array: malformed, ignored
			}
			if err := r.do(tok.text, ops, num, res, t, pg, depth, &l); err != nil {
				return err
			}
			ops = ops[:0]
			continue
		}
		if len(arrs) > 0 {
			if a := &arrs[len(arrs)-1]; len(*a) < 4096 {
				*a = append(*a, op)
			}
			continue
		}
		if len(ops) == maxOperands {
			copy(ops, ops[1:])
			ops = ops[:maxOperands-1]
		}
		ops = append(ops, op)
	}
}

func (r *pdfReader) do(name string, ops []operand, num func(int) float64, res types.Dict, t *textState, pg *Page, depth int, l *lexer) error {
	switch name {
	case "q":
		if len(t.stack) < 64 {
			t.stack = append(t.stack, t.ctm)
		}
	case "Q":
		if n := len(t.stack); n > 0 {
			t.ctm = t.stack[n-1]
			t.stack = t.stack[:n-1]
		}
	case "cm":
		if len(ops) >= 6 {
			t.ctm = matrix{num(0), num(1), num(2), num(3), num(4), num(5)}.mul(t.ctm)
		}
	case "BT":
		t.tm, t.tlm, t.cur = identity, identity, nil
	case "ET":
		t.cur = nil
	case "Tf":
		if len(ops) >= 2 {
			t.fontSize = num(1)
			if ops[0].kind == tokName {
				t.font = r.font(res, ops[0].name)
			}
		}
	case "TL":
		t.leading = num(0)
	case "Td", "TD":
		if len(ops) >= 2 {
			if name == "TD" {
				t.leading = -num(1)
			}
			t.moveLine(num(0), num(1))
		}
	case "Tm":
		if len(ops) >= 6 {
			t.tm = matrix{num(0), num(1), num(2), num(3), num(4), num(5)}
			t.tlm, t.cur = t.tm, nil
		}
	case "T*":
		t.moveLine(0, -t.leading)
	case "Tj":
		if len(ops) >= 1 {
			t.show(ops[len(ops)-1].str)
		}
	case "'":
		t.moveLine(0, -t.leading)
		if len(ops) >= 1 {
			t.show(ops[len(ops)-1].str)
		}
	case "\"":
		t.moveLine(0, -t.leading)
		if len(ops) >= 3 {
			t.show(ops[2].str)
		}
	case "TJ":
		if len(ops) >= 1 {
			for _, e := range ops[len(ops)-1].arr {
				switch e.kind {
				case tokStr:
					t.show(e.str)
				case tokNum:
					t.adjust(e.num)
				}
			}
		}
	case "ID":
		l.skipInlineImage()
	case "Do":
		if len(ops) >= 1 && ops[0].kind == tokName {
			return r.xobject(ops[0].name, res, t, pg, depth)
		}
	}
	return nil
}

func (t *textState) moveLine(tx, ty float64) {
	t.tlm = matrix{1, 0, 0, 1, tx, ty}.mul(t.tlm)
	t.tm, t.cur = t.tlm, nil
}

// show appends the text of a string operand at the current position.
func (t *textState) show(b []byte) {
	if len(b) == 0 || t.runes >= maxPageRunes {
		return
	}
	s, glyphs := t.font.decode(b)
	if t.cur == nil {
		m := t.tm.mul(t.ctm)
		size := math.Abs(t.fontSize) * math.Hypot(m[2], m[3])
		if size == 0 || math.IsNaN(size) || math.IsInf(size, 0) {
			size = 1
		}
		t.cur = &segment{x: m[4], y: m[5], size: size}
		if len(t.segs) < 20_000 {
			t.segs = append(t.segs, t.cur)
		}
	}
	n := utf8.RuneCountInString(s)
	t.cur.text.WriteString(s)
	t.cur.runes += n
	t.runes += n
	// No font metrics: half an em per glyph is close for Latin text and keeps
	// later runs of the same line in place.
	t.tm = matrix{1, 0, 0, 1, float64(glyphs) * 0.5 * t.fontSize, 0}.mul(t.tm)
}

// adjust applies a TJ displacement; a wide one is a word gap.
func (t *textState) adjust(n float64) {
	if n < -250 && t.cur != nil {
		t.cur.text.WriteByte(' ')
		t.cur.runes++
	}
	t.tm = matrix{1, 0, 0, 1, -n / 1000 * t.fontSize, 0}.mul(t.tm)
}

// lines groups the page's runs into lines (top to bottom) and cells (left to right).
func (t *textState) lines() []Line {
	segs := make([]*segment, 0, len(t.segs))
	for _, s := range t.segs {
		if strings.TrimSpace(s.text.String()) != "" {
			segs = append(segs, s)
		}
	}
	sort.SliceStable(segs, func(i, j int) bool { return segs[i].y > segs[j].y })
	var out []Line
	for i := 0; i < len(segs); {
		y, tol := segs[i].y, segs[i].size*0.4
		j := i + 1
		for j < len(segs) && segs[i].y-segs[j].y <= tol {
			j++
		}
		row := segs[i:j]
		sort.SliceStable(row, func(a, b int) bool { return row[a].x < row[b].x })
		_ = y
		var cells []string
		var end float64
		for k, s := range row {
			txt := strings.Join(strings.Fields(s.text.String()), " ")
			if k > 0 && s.x-end < 1.2*s.size {
				cells[len(cells)-1] += " " + txt
			} else {
				cells = append(cells, txt)
			}
			end = s.x + 0.5*s.size*float64(s.runes)
		}
		out = append(out, Line{Cells: cells})
		i = j
	}
	return out
}
