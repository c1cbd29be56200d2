package l2

import (
	"strings"
	"testing"
)

// Every key the per-hit MGET reads carries the same Redis Cluster hash tag (the text between
// the first { and the next }), so a cluster maps them to one slot.
func TestGenerationKeysShareOneHashSlot(t *testing.T) {
	tag := func(key string) string {
		i := strings.IndexByte(key, '{')
		j := strings.IndexByte(key[i+1:], '}')
		if i < 0 || j <= 0 {
			t.Fatalf("key %q has no hash tag", key)
		}
		return key[i+1 : i+1+j]
	}
	c := &Client{cfg: Config{Prefix: "shop:vlproxy"}, clearKey: genPrefix("shop:vlproxy") + "clear"}
	k := &Counters{c: c, prefix: genPrefix(c.cfg.Prefix)}
	keys := []string{c.clearKey, k.prefix + "incarnation", k.prefix + "g:products", k.prefix + "t:orders-2026"}
	for _, key := range keys {
		if got := tag(key); got != "shop:vlproxy" {
			t.Fatalf("key %q hashes by %q, not by the prefix", key, got)
		}
	}
}
