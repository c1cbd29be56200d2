package rerank

import "github.com/vlproxy/vlproxy/internal/eserr"

// badRequest is a client-input error (bad option, window over the maximum, negative size).
func badRequest(format string, args ...any) *eserr.Error { return eserr.BadRequest(format, args...) }
