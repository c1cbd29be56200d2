package rewrite

import (
	"context"
	"errors"
	"github.com/vlproxy/vlproxy/media/mediatest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/vlproxy/vlproxy/cache"
	"github.com/vlproxy/vlproxy/model"
)

const (
	textBody  = `{"query":{"multimodal":{"text":"red dress","boost":2}},"size":5}`
	plainText = `{"query":{"multi_match":{"query":"red dress","fields":["title^3","description"],"boost":2}},"size":5}`
	matchNone = `{"query":{"match_none":{}}}`
)

func TestFallback(t *testing.T) {
	png := dataURI("image/png", mediatest.PNG(t, 40, 30))
	imageOnly := string(bodyWith(png))
	imageText := `{"query":{"multimodal":{"text":"red dress","boost":2,"image":"` + png + `"}},"size":5}`

	f := func(m Chatter, cfg Config, mode Mode, body, wantBody, wantStatus string, wantErr int) {
		t.Helper()
		r := newTestRewriter(t, cfg, m, nil)
		res, err := r.Rewrite(context.Background(), Request{Index: "products", Body: []byte(body), Mode: mode})
		if wantErr != 0 {
			if err == nil {
				t.Fatalf("no error; status %s body %s", res.Status, res.Body)
			}
			status, typ, reason := esStatus(t, err)
			if status != wantErr || typ != "model_unavailable_exception" {
				t.Fatalf("got %d %s %s", status, typ, reason)
			}
			if want := wantStatus[len("fallback:"):]; !strings.Contains(reason, want) {
				t.Fatalf("reason %q does not name %q", reason, want)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if string(res.Body) != wantBody || res.Status != wantStatus {
			t.Fatalf("got %s %s\nwant %s %s", res.Status, res.Body, wantStatus, wantBody)
		}
		if e := gjson.GetBytes(res.Explain, "fallback").Str; wantStatus != "off" && "fallback:"+e != wantStatus {
			t.Fatalf("explain fallback %q, status %s", e, wantStatus)
		}
	}
	cfg := testConfig()
	empty := testConfig()
	empty.Fallback.ImageOnly = "empty"
	failing := func(kind string) *fakeChatter {
		fc := newFake()
		fc.err = &model.Error{Kind: kind, Message: "test"}
		return fc
	}
	garbage := newFake()
	garbage.text, garbage.withImage = `{"keywords": [`, "\x00\x01{}"

	f(failing(model.KindUnavailable), cfg, ModeOn, textBody, plainText, "fallback:unavailable", 0)
	f(failing(model.KindOverloaded), cfg, ModeOn, textBody, plainText, "fallback:overloaded", 0)
	f(failing(model.KindCircuitOpen), cfg, ModeOn, imageText, plainText, "fallback:circuit_open", 0)
	f(garbage, cfg, ModeOn, textBody, plainText, "fallback:bad_output", 0)
	f(nil, cfg, ModeOn, textBody, plainText, "fallback:no_model", 0)
	f(errChatter{errors.New("connection reset")}, cfg, ModeOn, textBody, plainText, "fallback:unavailable", 0)

	slow := newFake()
	slow.block = true
	short := testConfig()
	short.Timeout = 5 * time.Millisecond
	f(slow, short, ModeOn, textBody, plainText, "fallback:timeout", 0)

	// Image-only: a 503 naming the cause, or no hits when configured so.
	f(failing(model.KindUnavailable), cfg, ModeOn, imageOnly, "", "fallback:unavailable", 503)
	f(garbage, cfg, ModeOn, imageOnly, "", "fallback:bad_output", 503)
	f(nil, cfg, ModeOn, imageOnly, "", "fallback:no_model", 503)
	f(slow, short, ModeOn, imageOnly, "", "fallback:timeout", 503)
	f(failing(model.KindTimeout), empty, ModeOn, imageOnly, matchNone, "fallback:timeout", 0)

	// Off: the plain-text query without asking the model; image-only becomes match_none.
	never := failing(model.KindUnavailable)
	f(never, cfg, ModeOff, textBody, plainText, "off", 0)
	f(never, cfg, ModeOff, imageText, plainText, "off", 0)
	f(never, cfg, ModeOff, imageOnly, matchNone, "off", 0)
	if n := never.calls.Load(); n != 0 {
		t.Fatalf("mode off called the model %d times", n)
	}
}

type errChatter struct{ err error }

func (e errChatter) Name() string { return "err" }
func (e errChatter) Chat(context.Context, *model.ChatRequest) (*model.ChatResponse, error) {
	return nil, e.err
}

// TestStatusMix: with several clauses a fallback wins and "cached" needs every clause cached.
func TestStatusMix(t *testing.T) {
	c := cache.New(cache.Config{Name: "rewrite-test-mix"})
	fake := newFake()
	r := newTestRewriter(t, testConfig(), fake, c)
	two := `{"query":{"bool":{"must":[{"multimodal":{"text":"a"}},{"multimodal":{"text":"b"}}]}}}`
	f := func(body, want string) {
		t.Helper()
		res, err := r.Rewrite(context.Background(), Request{Index: "products", Body: []byte(body)})
		if err != nil || res.Status != want {
			t.Fatalf("%s: %v status %s, want %s", body, err, res.Status, want)
		}
	}
	f(`{"query":{"multimodal":{"text":"a"}}}`, "applied")
	f(two, "applied") // b is new
	f(two, "cached")
	fake.err = &model.Error{Kind: model.KindTimeout}
	f(`{"query":{"bool":{"must":[{"multimodal":{"text":"a"}},{"multimodal":{"text":"c"}}]}}}`, "fallback:timeout")
}

// TestCacheKeys: the cache key separates model, prompt version, language, text and
// image content, and identical requests make one model call.
func TestCacheKeys(t *testing.T) {
	c := cache.New(cache.Config{Name: "rewrite-test-keys"})
	fake := newFake()
	r := newTestRewriter(t, testConfig(), fake, c)
	png1 := dataURI("image/png", mediatest.PNG(t, 40, 30))
	png2 := dataURI("image/png", mediatest.PNG(t, 41, 30))
	calls := int64(0)
	f := func(body, wantStatus string, wantNewCall bool) {
		t.Helper()
		res, err := r.Rewrite(context.Background(), Request{Index: "products", Body: []byte(body)})
		if err != nil || res.Status != wantStatus {
			t.Fatalf("%.80s: %v %s, want %s", body, err, res.Status, wantStatus)
		}
		if wantNewCall {
			calls++
		}
		if n := fake.calls.Load(); n != calls {
			t.Fatalf("%.80s: model calls %d, want %d", body, n, calls)
		}
		if wantStatus == "cached" && res.ModelTime != 0 {
			t.Fatalf("a cache hit spent model time %v", res.ModelTime)
		}
	}
	f(`{"query":{"multimodal":{"text":"red"}}}`, "applied", true)
	f(`{"query":{"multimodal":{"text":"red"}},"size":3}`, "cached", false)
	f(`{"query":{"multimodal":{"text":"red","language":"zh"}}}`, "applied", true)
	f(`{"query":{"multimodal":{"text":"red","attributes":true}}}`, "applied", true)
	f(`{"query":{"multimodal":{"text":"blue"}}}`, "applied", true)
	f(string(bodyWith(png1)), "applied", true)
	f(string(bodyWith(png1)), "cached", false)
	f(string(bodyWith(png2)), "applied", true)
	f(`{"query":{"multimodal":{"text":"red","image":"`+png1+`"}}}`, "applied", true)

	other := newTestRewriter(t, func() Config { c := testConfig(); c.Prompt.Version = "kw-test"; return c }(), fake, c)
	if res, err := other.Rewrite(context.Background(), Request{Body: []byte(`{"query":{"multimodal":{"text":"red"}}}`)}); err != nil || res.Status != "applied" {
		t.Fatalf("another prompt version must miss: %v %s", err, res.Status)
	}
}

// TestSingleFlight: 200 identical concurrent cold image queries make one model call.
func TestSingleFlight(t *testing.T) {
	c := cache.New(cache.Config{Name: "rewrite-test-flight"})
	gate := make(chan struct{})
	fake := &gatedChatter{fakeChatter: newFake(), gate: gate}
	r := newTestRewriter(t, testConfig(), fake, c)
	body := bodyWith(dataURI("image/jpeg", mediatest.JPEG(t, 600, 400, 85)))
	const n = 200
	var wg sync.WaitGroup
	statuses := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := r.Rewrite(context.Background(), Request{Index: "products", Body: body})
			statuses[i], errs[i] = res.Status, err
		}()
	}
	// Release the model once the first call arrived; the other 199 are queued behind it or hit the cache.
	for fake.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(gate)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || (statuses[i] != "applied" && statuses[i] != "cached") {
			t.Fatalf("request %d: %v %s", i, errs[i], statuses[i])
		}
	}
	if got := fake.calls.Load(); got != 1 {
		t.Fatalf("model calls = %d, want 1", got)
	}
}

type gatedChatter struct {
	*fakeChatter
	gate chan struct{}
}

func (g *gatedChatter) Chat(ctx context.Context, req *model.ChatRequest) (*model.ChatResponse, error) {
	g.calls.Add(1)
	<-g.gate
	g.calls.Add(-1)
	resp, err := g.fakeChatter.Chat(ctx, req)
	return resp, err
}
