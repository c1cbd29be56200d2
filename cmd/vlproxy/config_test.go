package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vlproxy/vlproxy/proxy"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vlproxy.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func envOf(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestPrecedenceFlagEnvFileDefault(t *testing.T) {
	file := writeFile(t, `
proxy:
  listen: "127.0.0.1:1111"
  upstreams: ["http://file:9200"]
  max_body_size: 10MiB
  dial_timeout: 7s
  max_retries: 5
`)
	f := func(args []string, env func(string) string, want func(c *proxy.Config)) {
		t.Helper()
		got, err := loadConfig(args, env, &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		exp := got.Proxy
		want(&exp)
		g := got.Proxy
		if g.Listen != exp.Listen || strings.Join(g.Upstreams, ",") != strings.Join(exp.Upstreams, ",") ||
			g.MaxBodySize != exp.MaxBodySize || g.DialTimeout != exp.DialTimeout || g.MaxRetries != exp.MaxRetries {
			t.Fatalf("args %v: got %+v", args, got)
		}
	}
	def := proxy.DefaultConfig()
	// file over defaults
	f([]string{"-config", file}, envOf(), func(c *proxy.Config) {
		c.Listen, c.Upstreams, c.MaxBodySize, c.DialTimeout, c.MaxRetries = "127.0.0.1:1111", []string{"http://file:9200"}, 10<<20, 7*time.Second, 5
	})
	// env over file; file still fills the rest; defaults the remainder
	f([]string{"-config", file}, envOf("VLPROXY_LISTEN", "127.0.0.1:2222", "VLPROXY_MAX_BODY_SIZE", "1GiB"), func(c *proxy.Config) {
		c.Listen, c.MaxBodySize, c.Upstreams, c.DialTimeout, c.MaxRetries = "127.0.0.1:2222", 1<<30, []string{"http://file:9200"}, 7*time.Second, 5
	})
	// flag over env over file
	f([]string{"-config", file, "-listen", "127.0.0.1:3333", "-upstream", "http://a:1, http://b:2"},
		envOf("VLPROXY_LISTEN", "127.0.0.1:2222", "VLPROXY_UPSTREAM", "http://env:9200"), func(c *proxy.Config) {
			c.Listen, c.Upstreams = "127.0.0.1:3333", []string{"http://a:1", "http://b:2"}
		})
	// config path from env
	f(nil, envOf("VLPROXY_CONFIG", file), func(c *proxy.Config) { c.Listen = "127.0.0.1:1111" })
	// no file: defaults plus the required upstream
	f([]string{"-upstream", "http://x:9200"}, envOf(), func(c *proxy.Config) {
		c.Listen, c.MaxBodySize, c.DialTimeout, c.MaxRetries = def.Listen, def.MaxBodySize, def.DialTimeout, def.MaxRetries
	})
}

func TestConfigErrorsNameTheSetting(t *testing.T) {
	f := func(args []string, env func(string) string, want string) {
		t.Helper()
		_, err := loadConfig(args, env, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("args %v: error %v, want it to mention %q", args, err, want)
		}
	}
	f(nil, envOf(), "upstream")
	f([]string{"-upstream", "http://x", "-max-body-size", "12 parsecs"}, envOf(), "-max-body-size")
	f([]string{"-upstream", "http://x"}, envOf("VLPROXY_DIAL_TIMEOUT", "soon"), "VLPROXY_DIAL_TIMEOUT")
	f([]string{"-upstream", "ftp://x"}, envOf(), "scheme")
	f([]string{"-upstream", "http://x", "-log-level", "loud"}, envOf(), "log_level")
	f([]string{"-config", writeFile(t, "proxy:\n  max_body_sise: 1MiB\n")}, envOf(), "max_body_sise")
	f([]string{"-config", writeFile(t, "proxy:\n  upstreams: [http://x]\n  max_body_size: lots\n")}, envOf(), "lots")
	f([]string{"-config", filepath.Join(t.TempDir(), "missing.yaml")}, envOf(), "cannot read -config")
	f([]string{"-upstream", "http://x", "stray"}, envOf(), "unexpected arguments")
}

func TestHelpDocumentsEveryFlag(t *testing.T) {
	var out bytes.Buffer
	_, err := loadConfig([]string{"-help"}, envOf(), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err %v", err)
	}
	help := out.String()
	def := defaultConfig()
	for _, o := range options {
		line := "-" + o.name + "\n"
		if !strings.Contains(help, line) || !strings.Contains(help, "env "+envName(o.name)+"; default ") {
			t.Errorf("help does not document -%s with its env var", o.name)
		}
		if d := o.get(&def); d != "" && !strings.Contains(help, "default "+d+")") {
			t.Errorf("help does not show the default %q of -%s", d, o.name)
		}
	}
	if names := sortedEnvNames(); len(names) != len(options)+1 || names[0] != "VLPROXY_CONFIG" {
		t.Errorf("env names %v", names)
	}
}

func TestByteSizes(t *testing.T) {
	f := func(in string, want proxy.ByteSize) {
		t.Helper()
		cfg, err := loadConfig([]string{"-upstream", "http://x", "-max-body-size", in}, envOf(), &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Proxy.MaxBodySize != want {
			t.Fatalf("%q: got %d, want %d", in, cfg.Proxy.MaxBodySize, want)
		}
	}
	f("65536", 65536)
	f("64KiB", 64<<10)
	f("100MiB", 100<<20)
	f("1GiB", 1<<30)
	f("1.5GiB", 3<<29)
	f("2MB", 2000000)
}

// -ui is a switch: alone it turns the playground on; env and file can too; the file's ui:
// section sets the cards.
func TestUISwitch(t *testing.T) {
	f := func(args []string, env func(string) string, want bool) {
		t.Helper()
		got, err := loadConfig(append([]string{"-upstream", "http://es:9200"}, args...), env, &bytes.Buffer{})
		if err != nil {
			t.Fatalf("args %v: %v", args, err)
		}
		if got.UI.Enabled != want {
			t.Fatalf("args %v: UI.Enabled = %v, want %v", args, got.UI.Enabled, want)
		}
	}
	f(nil, envOf(), false)
	f([]string{"-ui"}, envOf(), true)
	f([]string{"-ui=false"}, envOf("VLPROXY_UI", "true"), false)
	f(nil, envOf("VLPROXY_UI", "true"), true)
	file := writeFile(t, "ui:\n  enabled: true\n  image_field: photo\n  fields: [brand]\n")
	f([]string{"-config", file}, envOf(), true)
	got, err := loadConfig([]string{"-upstream", "http://es:9200", "-config", file}, envOf(), &bytes.Buffer{})
	if err != nil || got.UI.ImageField != "photo" || strings.Join(got.UI.Fields, ",") != "brand" || got.UI.TitleField != "title" {
		t.Fatalf("ui section: %+v, %v", got.UI, err)
	}
	if _, err := loadConfig([]string{"-upstream", "http://es:9200"}, envOf("VLPROXY_UI", "yes please"), &bytes.Buffer{}); err == nil {
		t.Fatal("VLPROXY_UI=yes please was accepted")
	}
}

func TestRedisConfig(t *testing.T) {
	file := writeFile(t, `
proxy:
  upstreams: ["http://file:9200"]
redis:
  url: "redis://file:6379/0"
  lock_wait: 2s
  max_value_bytes: 1000
`)
	got, err := loadConfig([]string{"-config", file, "-redis-timeout", "20ms"}, envOf("VLPROXY_REDIS_URL", "redis://env:6379/1"), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	r := got.Redis
	if r.URL != "redis://env:6379/1" || r.Timeout != 20*time.Millisecond || r.LockWait != 2*time.Second || r.MaxValueBytes != 1000 {
		t.Fatalf("redis config %+v", r)
	}
	// A malformed URL stops start-up and names the flag; an unreachable Redis does not.
	got.Redis.URL = "http://nope"
	if _, _, err := wire(got, nil); err == nil || !strings.Contains(err.Error(), "-redis-url") {
		t.Fatalf("wire with a bad redis URL: %v", err)
	}
	got.Redis.URL = "redis://127.0.0.1:1/0"
	opts, closeAll, err := wire(got, nil)
	if err != nil || len(opts) == 0 {
		t.Fatalf("wire with an unreachable redis: %v", err)
	}
	closeAll()
}
