package rerank

import "fmt"

// Error is a client-input error (bad option, window over the maximum, negative size).
// It implements ESError so proxy/ renders it as an Elasticsearch-shaped error.
type Error struct {
	Status int
	Type   string
	Reason string
	Err    error
}

func (e *Error) Error() string { return e.Reason }
func (e *Error) Unwrap() error { return e.Err }

// ESError returns the HTTP status, the ES error type and the reason.
func (e *Error) ESError() (int, string, string) { return e.Status, e.Type, e.Reason }

func badRequest(format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Status: 400, Type: "illegal_argument_exception", Reason: err.Error(), Err: err}
}
