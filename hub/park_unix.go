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

// peekFD reads what is at the front of a socket without taking it off.
func peekFD(fd uintptr, p []byte) (int, error) {
	n, _, err := syscall.Recvfrom(int(fd), p, syscall.MSG_PEEK)
	return n, err
}

func readFD(fd uintptr, p []byte) (int, error) { return syscall.Read(int(fd), p) }
