package resultcache

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// fieldsOf fills a Fields from a fasthttp header the way the pipeline does.
func fieldsOf(h *fasthttp.RequestHeader) *Fields {
	f := new(Fields)
	f.Reset(h)
	for k, v := range h.All() {
		f.Add(k, v)
	}
	return f
}

// TestFieldsKeyLikeFasthttp: the key made through Fields is the key made through fasthttp's
// own header (Peek and All), for the same requests, and so is the decision to bypass.
func TestFieldsKeyLikeFasthttp(t *testing.T) {
	k := New(Config{AssumeConcrete: true, IdentityHeaders: []string{"X-Gateway-User"}})
	f := func(raw string) {
		t.Helper()
		parse := func() *fasthttp.RequestHeader {
			h := new(fasthttp.RequestHeader)
			if err := h.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
				t.Fatalf("%q: %v", raw, err)
			}
			return h
		}
		in := KeyInput{Method: []byte("POST"), Path: []byte("/p/_search"), Body: []byte(`{"size":1}`)}
		in.Header = parse()
		want, wantOK := k.Key(nil, in)
		in.Header = fieldsOf(parse())
		got, gotOK := k.Key(nil, in)
		if wantOK != gotOK || !bytes.Equal(got, want) {
			t.Fatalf("%q: through Fields %v %q; through fasthttp %v %q", raw, gotOK, got, wantOK, want)
		}
	}
	f("POST /p/_search HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n")
	f("POST /p/_search HTTP/1.1\r\nHost: a\r\nauthorization: Basic YQ==\r\nACCEPT: */*\r\nx-vlproxy-rerank: on\r\n\r\n")
	f("POST /p/_search HTTP/1.1\r\nHost: a\r\nAuthorization: first\r\nAuthorization: second\r\n\r\n")
	f("POST /p/_search HTTP/1.1\r\nHost: a\r\nCookie: a=1\r\nCookie: b=2; c=3\r\nX-Gateway-User: alice\r\n\r\n")
	f("POST /p/_search HTTP/1.1\r\nHost: a\r\nCache-Control: max-age=0, No-Store\r\n\r\n")
	f("POST /p/_search HTTP/1.1\r\nHost: a\r\nX-Auth-Token: t\r\n\r\n")
	f("POST /p/_search HTTP/1.1\r\nHost: a\r\nopendistro_security_impersonate_as: bob\r\nUser-Agent: curl\r\n\r\n")
	f("POST /p/_search HTTP/1.1\r\nHost: a\r\npragma: no-cache\r\n\r\n")
	f("POST /p/_search HTTP/1.1\r\nHost: a\r\nx-gateway-user: bob\r\nX-Session-Id: s\r\n\r\n")
	f("POST /p/_search HTTP/1.1\r\nHost: a\r\nX-" + strings.Repeat("a", 70) + ": v\r\n\r\n")
	f("POST /p/_search HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\nContent-Type: application/json\r\nX-VLProxy-Variant: b\r\nX-Api-Key: k\r\n\r\n")
	var many strings.Builder
	many.WriteString("POST /p/_search HTTP/1.1\r\nHost: a\r\n")
	for i := range maxFields + 5 {
		fmt.Fprintf(&many, "X-Filler-%d: %d\r\n", i, i)
	}
	many.WriteString("Authorization: late\r\n\r\n")
	f(many.String()) // past maxFields: looked up in the header itself
}

// TestFieldsCarriesSwitch: the switch fields are found in any case, and only when not empty.
func TestFieldsCarriesSwitch(t *testing.T) {
	f := func(name, value string, want bool) {
		t.Helper()
		var h fasthttp.RequestHeader
		h.Set("Content-Type", "application/json")
		h.Set(name, value)
		if got := fieldsOf(&h).CarriesSwitch(); got != want {
			t.Fatalf("%s: %q: CarriesSwitch %v, want %v", name, value, got, want)
		}
	}
	f("x-vlproxy-rewrite", "off", true)
	f("X-VLProxy-Rerank", "on", true)
	f("X-VLPROXY-VARIANT", "b", true)
	f("X-VLProxy-Retrieval", "text", true)
	f("Content-Encoding", "gzip", true)
	f("X-VLProxy-Rewrite", "", false)
	f("X-VLProxy-Other", "x", false)
}

func TestFieldsFallBack(t *testing.T) {
	var h fasthttp.RequestHeader
	h.Set("Authorization", "alice")
	fs := fieldsOf(&h)
	if fs.full || string(fs.Peek("authorization")) != "alice" {
		t.Fatalf("Peek through Fields = %q (full %v)", fs.Peek("authorization"), fs.full)
	}
	fs.Add([]byte("Trailer"), []byte("X-Checksum"))
	if !fs.full {
		t.Fatal("a Trailer field did not send lookups to the header (fasthttp's Peek finds trailer fields)")
	}
}

// TestCommonHeadersAreNotCredentials: the names LooksLikeCredentials answers without its word
// scan would get the same answer from it.
func TestCommonHeadersAreNotCredentials(t *testing.T) {
	for _, n := range []string{"host", "accept", "accept-encoding", "accept-language", "content-type", "content-length",
		"content-encoding", "connection", "user-agent", "x-opaque-id", "x-forwarded-for",
		"x-forwarded-proto", "x-forwarded-host", "x-real-ip", "traceparent", "tracestate",
		"cache-control", "pragma", "expect", "origin", "referer", "x-request-id", "transfer-encoding",
		"x-elastic-client-meta"} {
		if !commonHeader([]byte(n)) {
			t.Fatalf("%s is not in commonHeader", n)
		}
		if containsAny([]byte(n), credentialWords) && n != "user-agent" {
			t.Fatalf("%s contains a credential word: it must go through the scan", n)
		}
	}
}
