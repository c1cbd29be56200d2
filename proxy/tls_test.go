package proxy

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An https node serves pass-through, searches and health checks alike (HostClient refuses a
// request whose URI scheme is not its own, and a client's request arrives as http).
func TestHTTPSUpstream(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"path":"` + r.URL.Path + `"}`))
	}))
	t.Cleanup(ts.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, []string{ts.URL}, func(c *Config) { c.HealthCheckInterval, c.UpstreamCAFile = 20*time.Millisecond, ca })
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/idx/_doc/1", ""},
		{"POST", "/idx/_search", `{"query":{"match_all":{}}}`},
		{"GET", "/idx/_count", ""},
	} {
		var body []byte
		if tc.body != "" {
			body = []byte(tc.body)
		}
		resp := p.do(t, tc.method, tc.path, body, "Content-Type", "application/json")
		if resp.StatusCode() != 200 || string(resp.Body()) != `{"path":"`+tc.path+`"}` {
			t.Fatalf("%s %s through an https node: %d %s", tc.method, tc.path, resp.StatusCode(), resp.Body())
		}
	}
	time.Sleep(100 * time.Millisecond) // a few health checks
	for _, n := range p.nodes {
		if !n.healthy.Load() || n.lastErr.Load() != nil && *n.lastErr.Load() != "" {
			t.Fatalf("https node after its health checks: healthy %v, last error %v", n.healthy.Load(), *n.lastErr.Load())
		}
	}
}

// A CA file that cannot be read or holds no certificate is a start-up error naming the setting.
func TestUpstreamCAFileErrors(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.pem")
	os.WriteFile(empty, []byte("not a certificate"), 0o600)
	for _, file := range []string{filepath.Join(t.TempDir(), "missing.pem"), empty} {
		cfg := DefaultConfig()
		cfg.Upstreams, cfg.UpstreamCAFile = []string{"https://127.0.0.1:9200"}, file
		if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "upstream_ca_file") {
			t.Fatalf("CA file %s: %v", file, err)
		}
	}
}
