package main

import (
	"context"
	"net"
)

// listen opens the server's TCP listener; with reusePort, another process (the next release,
// during a restart) may listen on the same address beside it, and the kernel (Linux) spreads new
// connections over the two.
func listen(ctx context.Context, addr string, reusePort bool) (net.Listener, error) {
	var lc net.ListenConfig
	if reusePort {
		lc.Control = setReusePort
	}
	return lc.Listen(ctx, "tcp", addr)
}
