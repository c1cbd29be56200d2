package model

import (
	"bytes"
	"context"
	"sync"
	"time"
)

// Health states.
const (
	StateUp      = "up"
	StateDown    = "down"
	StateUnknown = "unknown"
)

// HealthStatus is one endpoint's state for /_vlproxy/health.
type HealthStatus struct {
	Role        string `json:"role"`
	URL         string `json:"url"`
	Model       string `json:"model"`
	API         string `json:"api"`
	State       string `json:"state"`   // up, down or unknown (no probe or call yet)
	Breaker     string `json:"breaker"` // closed, open, half_open or disabled
	InFlight    int64  `json:"in_flight"`
	Queued      int64  `json:"queued"`
	LastError   string `json:"last_error,omitempty"`
	LastErrorAt string `json:"last_error_at,omitempty"` // RFC 3339
	CheckedAt   string `json:"checked_at,omitempty"`    // last probe, RFC 3339
}

type healthState struct {
	mu          sync.Mutex
	state       string
	lastError   string
	lastErrorAt time.Time
	checkedAt   time.Time
}

func (h *healthState) noteSuccess() {
	h.mu.Lock()
	h.state = StateUp
	h.mu.Unlock()
}

// noteError records a call error; only an unreachable or failing server
// (not a 4xx, a timeout or a bad answer) marks the endpoint down.
func (h *healthState) noteError(err error) {
	h.mu.Lock()
	h.lastError = clip(err.Error())
	h.lastErrorAt = time.Now()
	if Reason(err) == KindUnavailable {
		h.state = StateDown
	}
	h.mu.Unlock()
}

func (h *healthState) noteProbe(up bool, err string) {
	h.mu.Lock()
	h.checkedAt = time.Now()
	if up {
		h.state = StateUp
	} else {
		h.state = StateDown
		h.lastError = clip(err)
		h.lastErrorAt = h.checkedAt
	}
	h.mu.Unlock()
}

// Health reports the endpoint's state.
func (c *Client) Health() HealthStatus {
	c.health.mu.Lock()
	hs := HealthStatus{
		Role: c.role, URL: redactURL(c.cfg.URL), Model: c.cfg.Model, API: c.cfg.API,
		State: c.health.state, LastError: c.health.lastError,
	}
	if !c.health.lastErrorAt.IsZero() {
		hs.LastErrorAt = c.health.lastErrorAt.UTC().Format(time.RFC3339)
	}
	if !c.health.checkedAt.IsZero() {
		hs.CheckedAt = c.health.checkedAt.UTC().Format(time.RFC3339)
	}
	c.health.mu.Unlock()
	hs.Breaker = c.brk.current()
	hs.InFlight = c.lim.inFlight.Load()
	hs.Queued = c.lim.queued.Load()
	return hs
}

// probePaths lists the health paths per API (reference §6): /health, and
// /v1/models when /health is not served (404/405); Ollama has /api/tags.
// Hosted APIs (jina, cohere) have no health route and stay "unknown" until a call.
func probePaths(api string) []string {
	switch api {
	case APIOllama:
		return []string{"/api/tags"}
	case APIJina, APICohere:
		return nil
	}
	return []string{"/health", "/v1/models"}
}

func (c *Client) probeLoop() {
	defer c.stopped.Done()
	paths := probePaths(c.cfg.API)
	if len(paths) == 0 {
		return
	}
	tr := newTransport(c.tlsConfig, c.cfg.DialTimeout, 1)
	defer tr.close()
	t := time.NewTicker(c.cfg.HealthInterval)
	defer t.Stop()
	for {
		c.probe(tr, paths)
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
	}
}

// Probe runs one health check now (the background loop runs it every HealthInterval).
func (c *Client) Probe() {
	tr := newTransport(c.tlsConfig, c.cfg.DialTimeout, 1)
	defer tr.close()
	c.probe(tr, probePaths(c.cfg.API))
}

func (c *Client) probe(tr *transport, paths []string) {
	timeout := min(c.cfg.Timeout, c.cfg.DialTimeout+2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var buf bytes.Buffer
	for _, p := range paths {
		buf.Reset()
		deadline, _ := ctx.Deadline()
		st, err := tr.do(ctx, deadline, c.uri+c.prefix+p, c.auth, nil, 1<<20, &buf)
		if err != nil {
			c.health.noteProbe(false, "health probe "+p+": "+err.Error())
			return
		}
		switch {
		case st >= 200 && st < 300:
			c.health.noteProbe(true, "")
			return
		case st == 404 || st == 405:
			continue // try the next path
		default:
			c.health.noteProbe(false, "health probe "+p+": "+decodeError(st, buf.Bytes()).Error())
			return
		}
	}
	c.health.noteProbe(false, "health probe: no health route answered")
}
