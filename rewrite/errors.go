package rewrite

import "fmt"

// Error is a client-visible failure. proxy/ renders it ES-shaped through ESError.
type Error struct {
	Status int    // HTTP status: 400, 413 or 503
	Type   string // ES error type, e.g. "parsing_exception"
	Reason string
	Err    error // cause, if any
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

func parsingError(format string, args ...any) *Error {
	return &Error{Status: 400, Type: "parsing_exception", Reason: fmt.Sprintf(format, args...)}
}

func illegalArgument(format string, args ...any) *Error {
	return &Error{Status: 400, Type: "illegal_argument_exception", Reason: fmt.Sprintf(format, args...)}
}

func imageError(err error, format string, args ...any) *Error {
	return &Error{Status: 400, Type: "illegal_argument_exception", Reason: fmt.Sprintf(format, args...), Err: err}
}

func tooLarge(format string, args ...any) *Error {
	return &Error{Status: 413, Type: "content_too_long_exception", Reason: fmt.Sprintf(format, args...)}
}

func modelUnavailable(reason string, err error) *Error {
	return &Error{Status: 503, Type: "model_unavailable_exception",
		Reason: "cannot rewrite an image-only multimodal query without the model (" + reason + ")", Err: err}
}
