package hub

import (
	"context"
	"runtime/debug"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/commongrounds/commongrounds/rooms"
)

// A socket's reader reads the client's frames, decodes each and hands it to the receiver, one
// after another, on goroutines of the socket's own: when nothing of the client's is left to
// read, the reader parks (park.go) and a new goroutine takes over when the client sends again.

// run is the body of the socket's reader goroutines: the first (start) sets the socket up;
// one that follows a parked reader waits for the client first. Each reads until the socket
// ends or goes idle; idle, it hands over to a new goroutine, whose stack is small, and ends.
func (t *wsTransport) run(start bool) {
	parked := false
	defer func() {
		// A bug in handling one frame ends that socket (serve's end has run), not the process,
		// as the HTTP server's own recovery did when this ran on its goroutine.
		if v := recover(); v != nil {
			t.hub.opts.Logger.Error("socket panic", "panic", v, "stack", string(debug.Stack()))
		}
		if parked {
			go t.run(false)
		} else {
			t.hub.wg.Done() // added by Hub.add
		}
	}()
	parked = t.serve(start)
}

// serve runs one reader goroutine's part; it returns true when the reader should park, and
// otherwise, the socket having ended, ends the socket (end).
func (t *wsTransport) serve(start bool) (park bool) {
	defer func() {
		if !park {
			t.end()
		}
	}()
	if start {
		t.start()
	} else {
		t.park()
		t.wake()
	}
	return t.read(!start)
}

// start arms the socket's timer (keepalive).
func (t *wsTransport) start() {
	t.ws.SetReadLimit(t.hub.opts.ReadLimit)
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		t.armLocked(t.hub.opts.PingInterval)
	}
}

// read reads the client's frames and hands them to the receiver until the socket ends, or until
// the reader should park (idle), when it returns true. woken is set after parking: what woke it
// is in the socket, not yet in its buffer.
//
// A receiver that holds a frame back to answer it with the next (a batch of subscribes) does
// so only while nextMessageBuffered: then the buffer is not empty and the reader does not park.
func (t *wsTransport) read(woken bool) (park bool) {
	for {
		if !woken && t.idle() {
			return true
		}
		woken = false
		// No context: whatever ends the socket closes the connection, which ends the read, and a
		// read with a context registers on it (a context per socket kept a map for that).
		typ, data, err := t.ws.Read(context.Background())
		if err != nil {
			return false
		}
		switch {
		case typ != websocket.MessageText:
			t.recv.receive(nil, &rooms.FrameError{Code: rooms.EINVALIDFRAME, Message: "Frames must be JSON text."})
		case !utf8.Valid(data):
			t.Close(websocket.StatusInvalidFramePayloadData, "text frame is not valid UTF-8")
			return false
		default:
			t.recv.receive(rooms.DecodeFrame(data))
		}
	}
}

// nextMessageBuffered reports whether the client's next frame is already whole in the socket's
// read buffer and is a complete data message (final, text or binary): reading it waits neither
// for the client nor, as after a control frame the library answers itself, for a frame after it.
func (t *wsTransport) nextMessageBuffered() bool {
	if t.br == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	// Close reads the peer's close frame through the same buffer; it runs after closed is set.
	if t.closed {
		return false
	}
	// Peek of no more than is buffered reads nothing from the connection.
	n := t.br.Buffered()
	head, _ := t.br.Peek(min(n, 4))
	return wholeDataMessage(head, n)
}
