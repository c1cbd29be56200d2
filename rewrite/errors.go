package rewrite

import (
	"fmt"

	"github.com/vlproxy/vlproxy/internal/eserr"
)

// Client-visible failures of a rewrite (image failures are media's).

func parsingError(format string, args ...any) *eserr.Error {
	return eserr.New(400, eserr.TypeParsing, fmt.Sprintf(format, args...))
}

func illegalArgument(format string, args ...any) *eserr.Error {
	return eserr.New(400, eserr.TypeIllegalArgument, fmt.Sprintf(format, args...))
}

func modelUnavailable(reason string, err error) *eserr.Error {
	return &eserr.Error{Status: 503, Type: "model_unavailable_exception",
		Reason: "cannot rewrite an image-only multimodal query without the model (" + reason + ")", Err: err, ShowCause: true}
}
