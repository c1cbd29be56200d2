package model

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// transport sends the model requests over net/http. The request carries the caller's context,
// so when the caller goes away the connection is closed at once (vLLM aborts a generation only
// when the client closes the connection), and the dial honours that context too.
type transport struct {
	rt     *http.Transport
	client *http.Client
}

// idleTimeout is below uvicorn's keep-alive timeout (5s, used by vLLM and
// SGLang), so the pool rarely hands out a connection the server has closed.
const idleTimeout = 4 * time.Second

func newTransport(tlsConfig *tls.Config, dialTimeout time.Duration, maxIdle int) *transport {
	d := &net.Dialer{Timeout: dialTimeout}
	rt := &http.Transport{
		Proxy:               nil, // model servers are addressed directly
		DialContext:         d.DialContext,
		TLSClientConfig:     tlsConfig,
		TLSHandshakeTimeout: dialTimeout,
		MaxIdleConns:        maxIdle,
		MaxIdleConnsPerHost: maxIdle,
		IdleConnTimeout:     idleTimeout,
		DisableCompression:  true,
	}
	return &transport{rt: rt, client: &http.Client{Transport: rt}}
}

func (t *transport) close() { t.rt.CloseIdleConnections() }

var (
	errDeadline     = errors.New("deadline exceeded before the request was sent")
	errBodyTooLarge = errors.New("response body too large")
)

// do runs one exchange before deadline and returns the status and the whole body (at most
// maxBody bytes, else errBodyTooLarge). body nil is a GET, else a JSON POST. On a context end it
// returns an error wrapping the context's. A model call has no side effect, so a request that
// failed on a keep-alive connection the server had closed is sent again on a fresh one.
func (t *transport) do(ctx context.Context, deadline time.Time, url, auth string, body []byte, maxBody int, buf *bytes.Buffer) (int, error) {
	if !time.Now().Before(deadline) {
		return 0, errDeadline
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	method := http.MethodGet
	var rd io.Reader
	if body != nil {
		method, rd = http.MethodPost, bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, fmt.Errorf("cannot build the request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header["Idempotency-Key"] = nil // replayable on a stale connection; not sent
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.ContentLength > int64(maxBody) {
		return resp.StatusCode, errBodyTooLarge
	}
	if resp.ContentLength > 0 {
		buf.Grow(int(resp.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, int64(maxBody)+1))
	if err != nil {
		return resp.StatusCode, err
	}
	if n > int64(maxBody) {
		return resp.StatusCode, errBodyTooLarge
	}
	return resp.StatusCode, nil
}
