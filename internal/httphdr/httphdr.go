// Package httphdr is the header policy shared by proxy, proxy/pipeline and proxy/resultcache
// (which may not import proxy): which fields are hop-by-hop, which a cached result keeps, and
// the X-VLProxy-* fields set on an outcome.
package httphdr

import "bytes"

// HopByHop are the connection-specific fields of RFC 9110 §7.6.1 plus the legacy ones proxies drop.
var HopByHop = []string{
	"Connection",
	"Proxy-Connection",
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// The X-VLProxy-* fields an outcome sets (and a cached result replays).
const (
	Rewrite = "X-VLProxy-Rewrite"
	Rerank  = "X-VLProxy-Rerank"
	Variant = "X-VLProxy-Variant"
	// Retrieval says (response) or forces (request) the multimodal clauses' retrieval mode.
	Retrieval = "X-VLProxy-Retrieval"
)

var stored = [][]byte{
	[]byte("Content-Type"), []byte("Content-Encoding"), []byte("Warning"),
	[]byte("X-Elastic-Product"), // clients of Elasticsearch 7.14+ refuse responses without it
	[]byte(Rewrite), []byte(Rerank), []byte(Variant),
}

// EqualName is bytes.EqualFold for header names, lengths first: most names differ from most
// others in length, and bytes.EqualFold compares bytes first.
func EqualName(a, b []byte) bool { return len(a) == len(b) && bytes.EqualFold(a, b) }

// Stored reports whether a response header is kept with a cached result. It runs for every
// field of every response a result-cache miss stores.
func Stored(name []byte) bool {
	for _, h := range stored {
		if EqualName(name, h) {
			return true
		}
	}
	return false
}
