package model

import (
	"context"
	"errors"
	"fmt"
)

// Error kinds. A kind is what consumers put after "fallback:" in X-VLProxy-* headers.
const (
	KindTimeout     = "timeout"      // the deadline passed before the model answered
	KindOverloaded  = "overloaded"   // the endpoint's concurrency limit and wait queue are full
	KindCircuitOpen = "circuit_open" // the circuit breaker refuses calls after repeated failures
	KindUnavailable = "unavailable"  // connection refused/reset, 5xx, 503 from the server
	KindBadRequest  = "bad_request"  // the server rejected the request (4xx)
	KindBadOutput   = "bad_output"   // the server answered 200 with output that cannot be used
	KindCanceled    = "canceled"     // the caller went away
)

// Error is every error the client returns.
type Error struct {
	Kind    string
	Status  int    // HTTP status from the model server, 0 when none
	Message string // the server's message or a description of the failure
	Err     error  // the underlying error, if any
}

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("model %s (status %d): %s", e.Kind, e.Status, e.Message)
	}
	return fmt.Sprintf("model %s: %s", e.Kind, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Reason classifies any error into a short token for status headers and metrics.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	var me *Error
	if errors.As(err, &me) {
		return me.Kind
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return KindTimeout
	case errors.Is(err, context.Canceled):
		return KindCanceled
	}
	return KindUnavailable
}
