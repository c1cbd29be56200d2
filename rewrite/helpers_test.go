package rewrite

import (
	"context"
	"encoding/base64"
	"errors"
	"github.com/vlproxy/vlproxy/internal/esjson"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vlproxy/vlproxy/model"
)

// fakeChatter answers keyword requests from fixed contents, one for requests with
// an image and one without, and records what it was asked.
type fakeChatter struct {
	name      string
	text      string // content for text-only requests
	withImage string // content for requests carrying an image
	err       error
	block     bool // wait for the context to end, then return its error
	calls     atomic.Int64

	mu   sync.Mutex
	last *model.ChatRequest
}

func (f *fakeChatter) Name() string { return f.name }

func (f *fakeChatter) Chat(ctx context.Context, req *model.ChatRequest) (*model.ChatResponse, error) {
	f.calls.Add(1)
	f.mu.Lock()
	f.last = req
	f.mu.Unlock()
	if f.block {
		<-ctx.Done()
		return nil, &model.Error{Kind: model.KindTimeout, Message: "deadline", Err: ctx.Err()}
	}
	if f.err != nil {
		return nil, f.err
	}
	content := f.text
	for _, p := range req.Messages[len(req.Messages)-1].Parts {
		if p.Type == "image_url" {
			content = f.withImage
		}
	}
	return &model.ChatResponse{Model: f.name, Content: content}, nil
}

func (f *fakeChatter) lastRequest() *model.ChatRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

func newFake() *fakeChatter {
	return &fakeChatter{
		name:      "qwen3-vl-4b",
		text:      `{"keywords":["floral dress","beach","summer"]}`,
		withImage: "```json\n{\"keywords\":[\"red maxi dress\",\"floral print\"],\"category\":\"Dresses\",\"attributes\":{\"colour\":\"red\",\"material\":\"cotton\",\"gender\":\"Women\",\"style\":\"unknown\"}}\n```",
	}
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Profiles = []Profile{
		{Index: "products*", Fields: []string{"title^3", "description"}, Attributes: []AttributeMapping{
			{Attribute: "colour", Field: "baseColour", As: "boost", Boost: 1.5},
			{Attribute: "gender", Field: "gender", As: "filter"},
			{Attribute: "category", Field: "articleType"},
		}},
		{Index: "*", Fields: []string{"name"}},
	}
	return cfg
}

func newTestRewriter(t testing.TB, cfg Config, m Chatter, c Cache) *Rewriter {
	t.Helper()
	r, err := New(cfg, m, c, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func dataURI(mime string, b []byte) string {
	return "data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(b)
}

// esStatus returns the ESError status and type of err, failing when err has none.
func esStatus(t *testing.T, err error) (int, string, string) {
	t.Helper()
	var e interface {
		ESError() (int, string, string)
	}
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) does not implement ESError", err, err)
	}
	return e.ESError()
}

func bodyWith(img string) []byte {
	return []byte(`{"query":{"multimodal":{"image":` + string(esjson.AppendString(nil, img)) + `}}}`)
}
