//go:build !linux

package proxy

import "net"

// takeBacklog is Linux-only; elsewhere the backlog left at the deadline is reset on close.
func takeBacklog(net.Listener) []net.Conn { return nil }
