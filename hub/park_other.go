//go:build !unix

package hub

import (
	"errors"
	"net"
	"syscall"
)

// rawConnOf returns nil: readers park only where a socket can be peeked at (park_unix.go).
func rawConnOf(net.Conn) syscall.RawConn { return nil }

func peekFD(uintptr, []byte) (int, error) { return 0, errors.ErrUnsupported }

func readFD(uintptr, []byte) (int, error) { return 0, errors.ErrUnsupported }
