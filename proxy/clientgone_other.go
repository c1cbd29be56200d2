//go:build !unix

package proxy

import (
	"context"
	"net"
)

// watchClient does not watch the connection where MSG_PEEK is not available: only the
// request's deadline stops its work.
func watchClient(parent context.Context, _ net.Conn) (context.Context, func()) {
	return parent, func() {}
}
