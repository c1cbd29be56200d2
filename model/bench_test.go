package model_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/vlproxy/vlproxy/model"
	"github.com/vlproxy/vlproxy/model/modeltest"
)

// BenchmarkChat is a full Chat round trip (build JSON, limiter, breaker,
// transport, decode) against the simulator with no latency;
// BenchmarkChatRawFasthttp posts the same bytes with a plain fasthttp.Client
// and does not decode: the difference is the client's own cost.
func BenchmarkChat(b *testing.B) {
	srv := modeltest.NewServer(modeltest.Config{})
	defer srv.Close()
	c := newClient(b, model.RoleChat, srv.URL, nil)
	req := keywordRequest()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Chat(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChatRawFasthttp(b *testing.B) {
	srv := modeltest.NewServer(modeltest.Config{})
	defer srv.Close()
	c := newClient(b, model.RoleChat, srv.URL, nil)
	body := c.AppendChatBody(nil, keywordRequest())
	hc := &fasthttp.Client{}
	b.ReportAllocs()
	for b.Loop() {
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		req.SetRequestURI(srv.URL + "/v1/chat/completions")
		req.Header.SetMethod("POST")
		req.Header.SetContentType("application/json")
		req.SetBodyRaw(body)
		if err := hc.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			b.Fatal(err, resp.StatusCode())
		}
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
	}
}

// BenchmarkChatRawNetHTTP posts the same bytes with a plain net/http client (what the client's
// transport is built on) and reads the body without decoding.
func BenchmarkChatRawNetHTTP(b *testing.B) {
	srv := modeltest.NewServer(modeltest.Config{})
	defer srv.Close()
	c := newClient(b, model.RoleChat, srv.URL, nil)
	body := c.AppendChatBody(nil, keywordRequest())
	hc := &http.Client{}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := hc.Post(srv.URL+"/v1/chat/completions", "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != 200 {
			b.Fatal(err, resp.StatusCode)
		}
		resp.Body.Close()
	}
}

// BenchmarkAppendChatBody is the request encoding alone (a 200 KB image inlined).
func BenchmarkAppendChatBody(b *testing.B) {
	c := newClient(b, model.RoleChat, "http://127.0.0.1:1", nil)
	req := keywordRequest()
	req.Messages[1].Parts[0] = model.ImagePart("data:image/jpeg;base64," + strings.Repeat("QUJD", 50<<10))
	buf := make([]byte, 0, 256<<10)
	b.ReportAllocs()
	b.SetBytes(200 << 10)
	for b.Loop() {
		buf = c.AppendChatBody(buf[:0], req)
	}
}
