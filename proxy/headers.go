package proxy

import (
	"bytes"
	"encoding/binary"
	"github.com/vlproxy/vlproxy/internal/httphdr"
	"net"
	"strconv"

	"github.com/valyala/fasthttp"
)

// Header names are left to fasthttp's normalization (content-type → Content-Type). HTTP/1.1 field
// names are case-insensitive (RFC 9110 §5.1), and fasthttp recognises its special headers
// (Content-Length, Connection, Transfer-Encoding) only in canonical form, so turning normalization off
// would make framing and hop-by-hop handling depend on a client's spelling. Values pass byte for byte.

// connectionTokens returns the field names listed in Connection headers (RFC 9110 §7.6.1), which are
// hop-by-hop as well. dst is reused.
func connectionTokens(dst [][]byte, all func(yield func(k, v []byte) bool)) [][]byte {
	all(func(k, v []byte) bool {
		if !bytes.EqualFold(k, []byte("Connection")) {
			return true
		}
		for len(v) > 0 {
			var tok []byte
			if i := bytes.IndexByte(v, ','); i >= 0 {
				tok, v = v[:i], v[i+1:]
			} else {
				tok, v = v, nil
			}
			tok = bytes.TrimSpace(tok)
			if len(tok) == 0 || bytes.EqualFold(tok, []byte("close")) || bytes.EqualFold(tok, []byte("keep-alive")) {
				continue
			}
			dst = append(dst, append([]byte(nil), tok...))
		}
		return true
	})
	return dst
}

// prepareUpstreamRequest copies the client's request header into dst and makes it the one sent
// upstream (forwardRequestHeader).
func prepareUpstreamRequest(dst *fasthttp.RequestHeader, ctx *fasthttp.RequestCtx) {
	ctx.Request.Header.CopyTo(dst)
	forwardRequestHeader(dst, ctx)
}

// forwardRequestHeader turns h, the client's request header or a copy of it, into the one sent
// upstream: hop-by-hop fields removed, Expect dropped (the proxy already answered 100-continue),
// X-Forwarded-For and X-Forwarded-Proto appended, and the client's Connection: close not
// propagated (the upstream connection is pooled). Editing the client's header itself is safe:
// fasthttp decided before the handler whether the client connection closes.
func forwardRequestHeader(h *fasthttp.RequestHeader, ctx *fasthttp.RequestCtx) {
	// Most requests carry no hop-by-hop field: look once, and only then pay for Del, which
	// normalizes and scans per name. Connection's tokens are parsed only when there is a
	// Connection field. The same look notes X-Forwarded-For and -Proto, so that the common
	// request, without them, sets them without looking them up (each lookup scans all fields).
	strip, conn, xf := false, false, false
	for k := range h.All() {
		if isHopByHop(k) || (len(k) == len("Expect") && bytes.EqualFold(k, []byte("Expect"))) {
			strip = true
			if bytes.EqualFold(k, []byte("Connection")) {
				conn = true
				xf = true // the look ends here: not known
				break
			}
		}
		// A parsed header's names are canonical, and so are those the proxy sets.
		xf = xf || string(k) == "X-Forwarded-For" || string(k) == "X-Forwarded-Proto"
	}
	if strip {
		var tokBuf [4][]byte
		var toks [][]byte
		if conn {
			toks = connectionTokens(tokBuf[:0], h.All())
		}
		for _, tok := range toks {
			h.DelBytes(tok)
		}
		for _, name := range httphdr.HopByHop {
			h.Del(name)
		}
		h.Del("Expect")
	}
	h.ResetConnectionClose()
	h.SetNoDefaultContentType(true)

	var buf [64]byte
	ip := appendIP(buf[:0], ctx.RemoteIP())
	proto := []byte("http")
	if ctx.IsTLS() {
		proto = []byte("https")
	}
	if !xf {
		h.SetCanonical(xForwardedFor, ip)
		h.SetCanonical(xForwardedProto, proto)
		return
	}
	appendHeaderList(h, xForwardedFor, ip)
	appendHeaderList(h, xForwardedProto, proto)
}

// appendIP appends ip as net.IP.String writes it; IPv4 without the detour through netip.
func appendIP(dst []byte, ip net.IP) []byte {
	ip4 := ip.To4()
	if ip4 == nil {
		b, _ := ip.AppendText(dst)
		return b
	}
	// Each octet is one 8-byte store of its digits and a dot; the last dot is cut off.
	var b [32]byte
	n := 0
	for _, x := range ip4[:4] {
		d := octetText[x]
		binary.LittleEndian.PutUint64(b[n&15:], d) // n < 16 always; the mask spares a bounds check
		n += int(d >> 56)
	}
	return append(dst, b[:n-1]...)
}

// octetText holds, for each byte value, its decimal digits and a dot in the low bytes (little
// endian) and their count in the high byte.
var octetText = func() (t [256]uint64) {
	for i := range t {
		s := strconv.Itoa(i) + "."
		var w [8]byte
		copy(w[:], s)
		w[7] = byte(len(s))
		t[i] = binary.LittleEndian.Uint64(w[:])
	}
	return t
}()

// Canonical names, so that setting them skips fasthttp's key normalization.
var (
	xForwardedFor   = []byte("X-Forwarded-For")
	xForwardedProto = []byte("X-Forwarded-Proto")
)

// appendHeaderList appends v to a comma-separated list header, creating it when absent. name is
// canonical, and so are the names of a parsed header, so the lookup skips normalization.
func appendHeaderList(h *fasthttp.RequestHeader, name, v []byte) {
	old := h.PeekCanonical(name)
	if len(old) == 0 {
		h.SetCanonical(name, v)
		return
	}
	nv := make([]byte, 0, len(old)+2+len(v))
	nv = append(append(append(nv, old...), ", "...), v...)
	h.SetCanonical(name, nv)
}

// hopByHopByLen lists the hop-by-hop names by length: most fields (Host, Content-Type, X-*…) are
// told apart by their length alone, and the rest compared with one or two names.
var hopByHopByLen = func() (t [20][]string) {
	for _, h := range httphdr.HopByHop {
		t[len(h)] = append(t[len(h)], h)
	}
	return t
}()

func isHopByHop(k []byte) bool {
	if len(k) >= len(hopByHopByLen) {
		return false
	}
	for _, h := range hopByHopByLen[len(k)] {
		if h[0]|0x20 == k[0]|0x20 && bytes.EqualFold(k, []byte(h)) {
			return true
		}
	}
	return false
}

func inTokens(k []byte, toks [][]byte) bool {
	for _, t := range toks {
		if bytes.EqualFold(k, t) {
			return true
		}
	}
	return false
}

// clearResponseHeader empties h of the fields an upstream answer put there. Reset would also
// forget the server's no-default-Date setting, so fields are deleted one by one (error path only).
func clearResponseHeader(h *fasthttp.ResponseHeader) {
	var keys [][]byte
	for k := range h.All() {
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		h.DelBytes(k)
	}
	h.SetStatusMessage(nil)
	h.ResetConnectionClose()
}

// stripResponseHopByHop removes hop-by-hop fields (and those Connection names) from an upstream
// response header in place: the client response of a pass-through, or the pipeline's upstream
// response, whose rest it copies into its outcome; most responses have none, and then nothing is
// deleted. timing says the upstream sent a Server-Timing field.
func stripResponseHopByHop(h *fasthttp.ResponseHeader) (timing bool) {
	h.SetNoDefaultContentType(true) // else All() reports fasthttp's default as if the upstream sent it
	strip, conn := false, false
	for k := range h.All() {
		if isHopByHop(k) {
			strip = true
			conn = conn || bytes.EqualFold(k, []byte("Connection"))
		}
		timing = timing || string(k) == "Server-Timing" // parsed names are canonical
	}
	if strip {
		if conn {
			var tokBuf [4][]byte
			for _, tok := range connectionTokens(tokBuf[:0], h.All()) {
				h.DelBytes(tok)
			}
		}
		for _, name := range httphdr.HopByHop {
			h.Del(name)
		}
	}
	h.ResetConnectionClose()
	return timing
}
