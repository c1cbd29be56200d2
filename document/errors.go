package document

import "fmt"

// Error is a client-visible failure; ESError renders it ES-shaped.
type Error struct {
	Status int    // 400 (bad or hostile document), 413 (too large), 429 (too many in flight)
	Type   string // ES error type
	Reason string
	Err    error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Reason + ": " + e.Err.Error()
	}
	return e.Reason
}

func (e *Error) Unwrap() error { return e.Err }

// ESError implements the interface proxy/ uses to render ES-shaped errors.
func (e *Error) ESError() (status int, errType, reason string) {
	return e.Status, e.Type, e.Error()
}

func badDocument(err error, format string, args ...any) *Error {
	return &Error{Status: 400, Type: "illegal_argument_exception", Reason: fmt.Sprintf(format, args...), Err: err}
}

func tooLarge(format string, args ...any) *Error {
	return &Error{Status: 413, Type: "content_too_long_exception", Reason: fmt.Sprintf(format, args...)}
}

func tooMany(format string, args ...any) *Error {
	return &Error{Status: 429, Type: "too_many_requests", Reason: fmt.Sprintf(format, args...)}
}
