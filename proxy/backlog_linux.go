//go:build linux

package proxy

import (
	"net"
	"os"
	"syscall"
)

// maxBacklog bounds one closing burst (the kernel's default somaxconn is 4096).
const maxBacklog = 4096

// takeBacklog accepts, without blocking, every connection the kernel has queued on a TCP
// listener whose deadline has passed, and returns them as net.Conns.
func takeBacklog(ln net.Listener) []net.Conn {
	rl, ok := ln.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return nil
	}
	raw, err := rl.SyscallConn()
	if err != nil {
		return nil
	}
	// A raw listener has no Read (EINVAL); Control lends its descriptor, which the runtime
	// keeps non-blocking, so the loop ends at EAGAIN without waiting.
	var fds []int
	err = raw.Control(func(fd uintptr) {
		for len(fds) < maxBacklog {
			nfd, _, err := syscall.Accept4(int(fd), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
			if err == syscall.EINTR || err == syscall.ECONNABORTED {
				continue
			}
			if err != nil {
				return // EAGAIN: the queue is empty
			}
			fds = append(fds, nfd)
		}
	})
	if err != nil {
		return nil
	}
	conns := make([]net.Conn, 0, len(fds))
	for _, fd := range fds {
		f := os.NewFile(uintptr(fd), "backlog")
		c, err := net.FileConn(f) // dups the descriptor
		f.Close()
		if err == nil {
			conns = append(conns, c)
		}
	}
	return conns
}
