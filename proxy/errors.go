package proxy

import (
	"github.com/vlproxy/vlproxy/internal/eserr"
	"github.com/vlproxy/vlproxy/model"

	"context"
	"errors"
	"net"
	"os"

	"github.com/valyala/fasthttp"
)

// esError is implemented by every error that knows how it should look to an ES client: *eserr.Error
// and any other type with the method. proxy only renders it.
type esError interface {
	ESError() (status int, errType string, reason string)
}

// ES error types used by the proxy. Upstream ES errors pass through unchanged and never use these.
const (
	typeBadRequest      = "illegal_argument_exception"
	typeHeaderTooLong   = "too_long_http_header_exception"
	typeTooLarge        = "content_too_long_exception"
	typeRejected        = "es_rejected_execution_exception"
	typeBadGateway      = "bad_gateway_exception"
	typeNoHealthy       = "no_healthy_upstream_exception"
	typeTimeout         = "timeout_exception"
	typeInternal        = "internal_proxy_exception"
	typeUpstreamRefused = "upstream_connect_exception"
)

func errBadRequest(reason string, err error) *eserr.Error {
	return &eserr.Error{Status: fasthttp.StatusBadRequest, Type: typeBadRequest, Reason: reason, Err: err}
}

func errBodyTooLarge(limit ByteSize) *eserr.Error {
	return &eserr.Error{Status: fasthttp.StatusRequestEntityTooLarge, Type: typeTooLarge,
		Reason: "request body is larger than max_body_size (" + limit.String() + "); raise -max-body-size"}
}

var errNoHealthy = &eserr.Error{Status: fasthttp.StatusServiceUnavailable, Type: typeNoHealthy,
	Reason: "no healthy upstream node is available"}

// dialError marks a failure to connect to a node: the request never left the proxy, so it may be
// retried on another node whatever its method.
type dialError struct {
	addr string
	err  error
}

func (e *dialError) Error() string {
	return "cannot connect to upstream " + e.addr + ": " + e.err.Error()
}
func (e *dialError) Unwrap() error { return e.err }

// upstreamError wraps a failure that happened after the request was (possibly) sent.
type upstreamError struct {
	addr string
	err  error
}

func (e *upstreamError) Error() string { return "upstream " + e.addr + ": " + e.err.Error() }
func (e *upstreamError) Unwrap() error { return e.err }

// isDialError reports whether err means the request never reached a node.
func isDialError(err error) bool {
	var de *dialError
	return errors.As(err, &de) || errors.Is(err, fasthttp.ErrNoFreeConns)
}

// isTimeout reports whether err is a deadline of ours expiring.
func isTimeout(err error) bool {
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// classify maps any error to (status, type, reason) once, at the edge: an error that knows its ES shape
// keeps it; a deadline is a 504; a refused connection or a broken upstream is a 502.
func classify(err error) (int, string, string) {
	var ee esError
	if errors.As(err, &ee) {
		return ee.ESError()
	}
	var me *model.Error
	if errors.As(err, &me) {
		return eserr.FromModel(me).ESError()
	}
	switch {
	case isDialError(err):
		// A dial timeout is a node that cannot be reached, not a slow answer.
		return fasthttp.StatusBadGateway, typeUpstreamRefused, err.Error()
	case isTimeout(err):
		return fasthttp.StatusGatewayTimeout, typeTimeout, "upstream did not answer within the deadline: " + err.Error()
	default:
		var ue *upstreamError
		if errors.As(err, &ue) {
			return fasthttp.StatusBadGateway, typeBadGateway, err.Error()
		}
		return fasthttp.StatusInternalServerError, typeInternal, err.Error()
	}
}
