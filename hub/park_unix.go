//go:build unix

package hub

import (
	"net"
	"syscall"
)

// rawConnOf returns the descriptor of a TCP connection, or nil.
func rawConnOf(c net.Conn) syscall.RawConn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// readFD reads from a socket; one that would block fails with EAGAIN.
func readFD(fd uintptr, p []byte) (int, error) { return syscall.Read(int(fd), p) }
