//go:build unix && !solaris && !illumos

package main

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
)

// TestListenReusePort: with HTTP_REUSE_PORT a second server listens beside the first and takes
// the connections once the first has closed its listener; without it, the second fails.
func TestListenReusePort(t *testing.T) {
	ctx := context.Background()
	old, err := listen(ctx, "127.0.0.1:0", true)
	if err != nil {
		t.Fatal(err)
	}
	addr := old.Addr().String()
	if l, err := listen(ctx, addr, false); !errors.Is(err, syscall.EADDRINUSE) {
		if l != nil {
			_ = l.Close()
		}
		t.Fatalf("a listener without reuse beside one with it: err=%v, want address in use", err)
	}
	next, err := listen(ctx, addr, true)
	if err != nil {
		t.Fatalf("second listener with reuse: %v", err)
	}
	defer func() { _ = next.Close() }()
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	accepted := make(chan error, 1)
	go func() {
		c, err := next.Accept()
		if err == nil {
			_ = c.Close()
		}
		accepted <- err
	}()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial after the first listener closed: %v", err)
	}
	_ = c.Close()
	if err := <-accepted; err != nil {
		t.Fatalf("the second listener did not accept: %v", err)
	}
}
