package main

import (
	"bytes"
	"testing"
	"time"
)

func TestDocumentSettings(t *testing.T) {
	file := writeFile(t, `
proxy:
  upstreams: ["http://file:9200"]
rewrite:
  document:
    max_pages: 7
    max_objects: 900
    max_rows: 5
    timeout: 4s
`)
	cfg, err := loadConfig([]string{"-config", file, "-document-max-pages", "3", "-document-max-bytes", "2MiB"},
		envOf("VLPROXY_DOCUMENT_MAX_DECODED_BYTES", "8MiB", "VLPROXY_DOCUMENT_READ_TIMEOUT", "500ms"), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Rewrite.Document
	if d.MaxPages != 3 || d.MaxBytes != 2<<20 || d.MaxDecodedBytes != 8<<20 || d.ReadTimeout != 500*time.Millisecond ||
		d.MaxObjects != 900 || d.MaxRows != 5 || d.Timeout != 4*time.Second || d.MaxPagePixels != 40_000_000 {
		t.Fatalf("got %+v", d)
	}
}
