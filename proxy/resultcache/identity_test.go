package resultcache

import (
	"iter"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestLooksLikeCredentials(t *testing.T) {
	f := func(name string, want bool) {
		t.Helper()
		if got := LooksLikeCredentials([]byte(name)); got != want {
			t.Fatalf("LooksLikeCredentials(%q) = %v, want %v", name, got, want)
		}
	}
	for _, n := range []string{"Authorization", "X-Auth-Token", "x-amz-security-token", "X-Session-Id", "Cookie",
		"X-Forwarded-User", "X-Proxy-Roles", "X-Api-Key", "opendistro_security_impersonate_as", "securitytenant", "X-JWT-Assertion"} {
		f(n, true)
	}
	for _, n := range []string{"User-Agent", "Accept", "Content-Type", "Accept-Encoding", "X-Opaque-Id", "Keep-Alive", "Host", "X-VLProxy-Rerank"} {
		f(n, false)
	}
}

// listed is hdr with All, as *fasthttp.RequestHeader has it.
type listed hdr

func (h listed) Peek(name string) []byte { return hdr(h).Peek(name) }
func (h listed) All() iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		for k, v := range h {
			if !yield([]byte(k), []byte(v)) {
				return
			}
		}
	}
}

func TestIdentityFailsClosed(t *testing.T) {
	k := New(Config{AssumeConcrete: true, IdentityHeaders: []string{"X-Gateway-User"}})
	body := `{"query":{"match_all":{}}}`
	key := func(h listed) ([]byte, bool) {
		return k.Key(nil, KeyInput{Method: []byte("POST"), Path: []byte("/p/_search"), Body: []byte(body), Header: h})
	}
	// Built-in identity headers separate callers.
	for _, name := range []string{"Authorization", "opendistro_security_impersonate_as", "X-Proxy-User", "X-Proxy-Roles", "Cookie", "X-Gateway-User"} {
		a, okA := key(listed{name: "alice"})
		b, okB := key(listed{name: "bob"})
		if !okA || !okB || string(a) == string(b) {
			t.Fatalf("%s: alice and bob share a key (ok %v %v)", name, okA, okB)
		}
	}
	// Unknown credential-like headers bypass; harmless ones do not.
	if _, ok := key(listed{"X-Auth-Token": "t"}); ok {
		t.Fatal("X-Auth-Token did not bypass the cache")
	}
	if _, ok := key(listed{"User-Agent": "curl", "X-Opaque-Id": "1"}); !ok {
		t.Fatal("User-Agent bypassed the cache")
	}
	// fasthttp's header is a HeaderLister.
	var h fasthttp.RequestHeader
	h.Set("X-Session", "s")
	if _, ok := k.Key(nil, KeyInput{Method: []byte("POST"), Path: []byte("/p/_search"), Body: []byte(body), Header: &h}); ok {
		t.Fatal("X-Session on a fasthttp header did not bypass the cache")
	}
}
