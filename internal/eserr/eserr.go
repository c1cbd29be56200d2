// Package eserr is the project's one client-visible error: an HTTP status, an Elasticsearch
// error type and a reason, with an optional cause, rendered as ES renders its own errors:
//
//	{"error":{"root_cause":[{"type":T,"reason":R}],"type":T,"reason":R},"status":N}
package eserr

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/vlproxy/vlproxy/internal/esjson"
	"github.com/vlproxy/vlproxy/model"
)

// ES error types shared by several packages.
const (
	TypeIllegalArgument = "illegal_argument_exception"
	TypeParsing         = "parsing_exception"
	TypeTooLarge        = "content_too_long_exception"
)

// Error is a failure with the shape an ES client should see.
type Error struct {
	Status int    // HTTP status
	Type   string // ES error type, e.g. "parsing_exception"
	Reason string // what the client reads
	Err    error  // the cause, if any: in Error(), errors.Is and errors.As
	// ShowCause puts ": " + Err.Error() after Reason in what the client reads too.
	ShowCause bool
	// causeInReason: Reason was formatted from a %w verb and already holds the cause.
	causeInReason bool
}

// New returns an error without a cause.
func New(status int, errType, reason string) *Error {
	return &Error{Status: status, Type: errType, Reason: reason}
}

// Errorf formats the reason like fmt.Errorf, %w included: the wrapped error is the cause
// (errors.Is sees it) and is already part of the reason.
func Errorf(status int, errType, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Status: status, Type: errType, Reason: err.Error(), Err: errors.Unwrap(err), causeInReason: true}
}

// BadRequest is a 400 illegal_argument_exception with a formatted reason.
func BadRequest(format string, args ...any) *Error {
	return Errorf(400, TypeIllegalArgument, format, args...)
}

func (e *Error) Error() string {
	if e.Err != nil && !e.causeInReason {
		return e.Reason + ": " + e.Err.Error()
	}
	return e.Reason
}

func (e *Error) Unwrap() error { return e.Err }

// ClientReason is the reason the client reads.
func (e *Error) ClientReason() string {
	if e.ShowCause {
		return e.Error()
	}
	return e.Reason
}

// ESError returns the status, the ES error type and the reason the client reads. Any error
// type with this method renders through it (proxy looks for the method, not for *Error).
func (e *Error) ESError() (status int, errType, reason string) {
	return e.Status, e.Type, e.ClientReason()
}

// FromModel maps a model client error to what an HTTP client sees: overloaded 429, timeout 504,
// circuit open and unavailable 503, a request the model server refused or an answer it could
// not give 502, canceled 499.
func FromModel(e *model.Error) *Error {
	reason := "cannot use the model: " + e.Error()
	out := &Error{Status: 503, Type: "model_unavailable_exception", Reason: reason, Err: e, causeInReason: true}
	switch e.Kind {
	case model.KindOverloaded:
		out.Status, out.Type = 429, "model_overloaded_exception"
	case model.KindTimeout:
		out.Status, out.Type = 504, "model_timeout_exception"
	case model.KindCircuitOpen:
		out.Status, out.Type = 503, "model_circuit_open_exception"
	case model.KindBadRequest:
		out.Status, out.Type = 502, "model_request_rejected_exception"
	case model.KindBadOutput:
		out.Status, out.Type = 502, "model_bad_output_exception"
	case model.KindCanceled:
		out.Status, out.Type = 499, "model_request_canceled_exception"
	}
	return out
}

// Append appends {"error":{"root_cause":[{"type":T,"reason":R}],"type":T,"reason":R},"status":N}.
func Append(dst []byte, status int, errType, reason string) []byte {
	dst = append(dst, `{"error":{"root_cause":[{"type":`...)
	dst = esjson.AppendString(dst, errType)
	dst = append(dst, `,"reason":`...)
	dst = esjson.AppendString(dst, reason)
	dst = append(dst, `}],"type":`...)
	dst = esjson.AppendString(dst, errType)
	dst = append(dst, `,"reason":`...)
	dst = esjson.AppendString(dst, reason)
	dst = append(dst, `},"status":`...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	return append(dst, '}')
}
