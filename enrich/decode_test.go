package enrich

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/olivere/elastic/v7"

	"github.com/vlproxy/vlproxy/media"
	"github.com/vlproxy/vlproxy/media/mediatest"
)

// TestDecodesWaitForTheGate: with the run's only decode slot taken, a JPEG within the pixel
// budget (never decoded) is still enriched, while PNGs (decoded and re-encoded) wait for the
// slot, every worker of the run in the queue and none refused, and finish once it is free.
func TestDecodesWaitForTheGate(t *testing.T) {
	cfg, err := Config{Index: "products", Concurrency: 4, Image: media.Config{MaxDecodes: 1}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	chat := &fakeChatter{}
	e := &enricher{cfg: cfg, m: chat, decodes: newDecodeGate(cfg)}
	hit := func(mime string, raw []byte) *elastic.SearchHit {
		src, _ := json.Marshal(map[string]any{"image": "data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(raw)})
		return &elastic.SearchHit{Id: "doc", Source: src}
	}
	ctx := context.Background()
	if err := e.decodes.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.document(ctx, hit("image/jpeg", mediatest.JPEG(t, 64, 64, 80))); err != nil {
		t.Fatalf("a JPEG within the budget: %v", err)
	}
	done := make(chan error, cfg.Concurrency)
	png := mediatest.PNG(t, 40, 30)
	for range cfg.Concurrency {
		go func() {
			_, _, err := e.document(ctx, hit("image/png", png))
			done <- err
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.decodes.Waiting() != cfg.Concurrency {
		select {
		case err := <-done:
			t.Fatalf("a PNG was enriched (or refused) without waiting for the decode slot: %v", err)
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d PNGs wait for the slot", e.decodes.Waiting(), cfg.Concurrency)
		}
	}
	e.decodes.Release()
	for range cfg.Concurrency {
		if err := <-done; err != nil {
			t.Fatalf("a PNG after the slot was freed: %v", err)
		}
	}
	if n := chat.calls.Load(); n != int64(1+cfg.Concurrency) {
		t.Fatalf("%d chat calls, want %d", n, 1+cfg.Concurrency)
	}
}
