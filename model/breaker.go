package model

import (
	"sync"
	"time"
)

// Breaker states as shown in Health.
const (
	BreakerClosed   = "closed"
	BreakerOpen     = "open"
	BreakerHalfOpen = "half_open"
)

// breaker is a consecutive-failure circuit breaker: closed → open after
// `failures` failures in a row → after openFor one probe call goes through
// (half-open) → its success closes the circuit, its failure reopens it.
type breaker struct {
	failures int // <= 0: disabled
	openFor  time.Duration
	now      func() time.Time

	mu        sync.Mutex
	state     string
	count     int
	openUntil time.Time
	probing   bool
}

func newBreaker(cfg BreakerConfig) *breaker {
	return &breaker{failures: cfg.Failures, openFor: cfg.OpenFor, now: time.Now, state: BreakerClosed}
}

// allow reports whether a call may go out; probe is true for the one
// half-open trial call, whose outcome must be reported with done.
func (b *breaker) allow() (ok, probe bool) {
	if b.failures <= 0 {
		return true, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerClosed:
		return true, false
	case BreakerOpen:
		if b.now().Before(b.openUntil) {
			return false, false
		}
		b.state = BreakerHalfOpen
		b.probing = true
		return true, true
	}
	// Half-open: only the probe is in flight.
	if b.probing {
		return false, false
	}
	b.probing = true
	return true, true
}

// done records a call outcome: failed counts toward opening; neutral
// outcomes (caller canceled, 4xx) only end a probe without a verdict.
func (b *breaker) done(probe, failed, neutral bool) {
	if b.failures <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
	}
	switch {
	case neutral:
		return
	case failed:
		b.count++
		if b.state == BreakerHalfOpen || b.count >= b.failures {
			b.state = BreakerOpen
			b.openUntil = b.now().Add(b.openFor)
		}
	default:
		b.count = 0
		if b.state == BreakerHalfOpen || b.state == BreakerClosed {
			b.state = BreakerClosed
		}
	}
}

func (b *breaker) current() string {
	if b.failures <= 0 {
		return "disabled"
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == BreakerOpen && !b.now().Before(b.openUntil) {
		return BreakerHalfOpen
	}
	return b.state
}
