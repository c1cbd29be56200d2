package model

import (
	"testing"
	"time"
)

func TestBreakerStates(t *testing.T) {
	now := time.Unix(1000, 0)
	b := newBreaker(BreakerConfig{Failures: 2, OpenFor: 5 * time.Second})
	b.now = func() time.Time { return now }
	step := func(wantOK, wantProbe bool, wantState string) bool {
		t.Helper()
		ok, probe := b.allow()
		if ok != wantOK || probe != wantProbe || b.current() != wantState {
			t.Fatalf("allow() = %v,%v state %s; want %v,%v %s", ok, probe, b.current(), wantOK, wantProbe, wantState)
		}
		return probe
	}
	step(true, false, BreakerClosed)
	b.done(false, true, false)
	b.done(false, false, false) // a success resets the count
	b.done(false, true, false)
	if b.current() != BreakerClosed {
		t.Fatalf("opened after non-consecutive failures")
	}
	b.done(false, true, false)
	step(false, false, BreakerOpen)
	now = now.Add(5 * time.Second)
	p := step(true, true, BreakerHalfOpen)
	step(false, false, BreakerHalfOpen) // only one probe at a time
	b.done(p, true, false)              // probe failed: open again
	step(false, false, BreakerOpen)
	now = now.Add(5 * time.Second)
	p = step(true, true, BreakerHalfOpen)
	b.done(p, false, true) // neutral (caller went away): still half-open, next call probes
	p = step(true, true, BreakerHalfOpen)
	b.done(p, false, false) // probe succeeded
	step(true, false, BreakerClosed)

	off := newBreaker(BreakerConfig{Failures: -1})
	for range 10 {
		off.done(false, true, false)
	}
	if ok, _ := off.allow(); !ok || off.current() != "disabled" {
		t.Fatalf("disabled breaker refused a call")
	}
}
