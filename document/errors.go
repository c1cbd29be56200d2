package document

import (
	"fmt"

	"github.com/vlproxy/vlproxy/internal/eserr"
)

// Errors are *eserr.Error: 400 for a bad or hostile document, 413 over
// max_bytes, 429 with no reading slot. The cause (a pdfcpu message, say)
// stays out of what the client reads.

func badDocument(err error, format string, args ...any) *eserr.Error {
	return &eserr.Error{Status: 400, Type: eserr.TypeIllegalArgument, Reason: fmt.Sprintf(format, args...), Err: err}
}

func tooLarge(format string, args ...any) *eserr.Error {
	return eserr.New(413, eserr.TypeTooLarge, fmt.Sprintf(format, args...))
}

func tooMany(format string, args ...any) *eserr.Error {
	return eserr.New(429, "too_many_requests", fmt.Sprintf(format, args...))
}
