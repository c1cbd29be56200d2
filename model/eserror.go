package model

import (
	"math"
	"strings"
)

// ESError renders the error for an HTTP client (proxy/ makes it ES-shaped):
// overloaded 429, timeout 504, circuit open and unavailable 503, a request
// the model server refused or an answer it could not give 502, canceled 499.
func (e *Error) ESError() (status int, errType string, reason string) {
	reason = "cannot use the model: " + e.Error()
	switch e.Kind {
	case KindOverloaded:
		return 429, "model_overloaded_exception", reason
	case KindTimeout:
		return 504, "model_timeout_exception", reason
	case KindCircuitOpen:
		return 503, "model_circuit_open_exception", reason
	case KindBadRequest:
		return 502, "model_request_rejected_exception", reason
	case KindBadOutput:
		return 502, "model_bad_output_exception", reason
	case KindCanceled:
		return 499, "model_request_canceled_exception", reason
	}
	return 503, "model_unavailable_exception", reason
}

// ChoiceProb returns P(a) / (P(a) + P(b)) from the first token's top
// logprobs, e.g. ChoiceProb("yes", "no") for a yes/no judgment. Tokens are
// compared after trimming spaces and case folding, and variants ("Yes",
// " yes") are summed. ok is false when neither token is present. A missing
// token counts as probability 0.
func (r *ChatResponse) ChoiceProb(a, b string) (p float64, ok bool) {
	var pa, pb float64
	for tok, lp := range r.TopLogprobs {
		t := strings.TrimSpace(tok)
		switch {
		case strings.EqualFold(t, a):
			pa += math.Exp(lp)
			ok = true
		case strings.EqualFold(t, b):
			pb += math.Exp(lp)
			ok = true
		}
	}
	if !ok || pa+pb == 0 {
		return 0, false
	}
	return pa / (pa + pb), true
}
