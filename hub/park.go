package hub

import (
	"errors"
	"syscall"
)

// An idle socket's reader parks: most sockets spend their life waiting for the client's next
// frame, and a goroutine waiting inside the WebSocket library's frame reader keeps the 8 KiB
// stack its deepest call grew (the runtime halves a stack only when less than a quarter of it is
// in use, guard included), which is most of what an idle socket costs. So when nothing of the
// client's is buffered, the reader goroutine hands over to a new one (run) that waits for the
// descriptor to become readable on the smallest stack (2 KiB, of which it uses a few hundred
// bytes), and only then reads through
// the library, on a stack that grows as it needs and is freed when the goroutine next hands over.
//
// The keepalive must not wake it: had the library sent the pings, only its reader would hear the
// pongs, so a parked socket would go back into the library at every ping and stay there until
// the client's next message. Instead the writer sends an empty ping among its frames (keepalive),
// and the parked goroutine, which reads what arrives itself, drops the client's empty pongs.
// Anything else the client sends, a pong with a payload or a ping included, is left to the
// library, which reads it from in front of the connection (leadConn).
//
// Parking needs the socket's descriptor and its writer's corked connection (Listener and
// ConnContext) on a Unix system; without them the reader waits in the library, which pings.

// canPark reports whether the reader can park (raw is known only under a corked connection).
func (t *wsTransport) canPark() bool { return t.raw != nil && t.br != nil }

// idle reports whether the reader should park: it can, and nothing of the client's is left to
// read but what is in the socket; then the read buffer is given back meanwhile. Close reads the
// peer's close frame through the same buffer, so a closed socket's reader does not park: it
// goes on into the library, which ends it.
func (t *wsTransport) idle() bool {
	if !t.canPark() {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || t.br.pending() {
		return false
	}
	t.br.shrink()
	return true
}

// wake takes a read buffer for the reader that parked, unless the socket is closed: then its
// close handshake may be reading through the small one.
func (t *wsTransport) wake() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		t.br.grow()
	}
}

// park waits until the client has sent something other than empty pongs, or the connection has
// ended. It reads what arrives itself, in front of the read buffer (leadConn), counts and drops
// the empty pongs at its start, and leaves the rest for the library, which reads next whatever
// park returns for.
func (t *wsTransport) park() {
	t.hub.parked.Add(1)
	defer t.hub.parked.Add(-1)
	_ = t.raw.Read(func(fd uintptr) bool {
		for {
			more, err := t.readAhead(fd)
			switch {
			case errors.Is(err, syscall.EINTR):
				continue
			case errors.Is(err, syscall.EAGAIN):
				return false // nothing yet: wait
			case err != nil || more:
				return true // a frame, the end, an error or a close: for the library
			}
		}
	})
}

// readAhead reads what the client sent into the socket's lead, unless the socket is closing
// (then its close handshake reads instead), and drops the empty pongs at its start, each the
// answer to the last ping. It reports whether anything is left for the library.
func (t *wsTransport) readAhead(fd uintptr) (more bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return true, nil
	}
	buf := leadBufs.Get().(*[]byte)
	n, err := readFD(fd, *buf) // under t.mu, but it never waits: the socket does not block
	if err != nil || n <= 0 {
		leadBufs.Put(buf)
		return true, err // the end (n == 0) or an error: the library reads it again
	}
	data := (*buf)[:n]
	for len(data) >= emptyPongLen && [2]byte(data[:2]) == emptyPong {
		data = data[emptyPongLen:]
		t.pongLocked()
	}
	if len(data) == 0 {
		leadBufs.Put(buf)
		return false, nil
	}
	t.br.lead.lead, t.br.lead.buf = data, buf
	return true, nil
}
