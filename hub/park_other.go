//go:build !unix

package hub

import (
	"errors"
	"net"
	"syscall"
)

// rawConnOf returns nil: readers park only on Unix systems (park_unix.go).
func rawConnOf(net.Conn) syscall.RawConn { return nil }

func readFD(uintptr, []byte) (int, error) { return 0, errors.ErrUnsupported }
