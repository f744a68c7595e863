//go:build !unix || solaris || illumos

package main

import (
	"errors"
	"syscall"
)

func setReusePort(_, _ string, _ syscall.RawConn) error {
	return errors.New("HTTP_REUSE_PORT: SO_REUSEPORT is not available on this system")
}
