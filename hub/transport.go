package hub

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/commongrounds/commongrounds/rooms"
)

// A socket's transport is the WebSocket itself: its reader (reader.go, park.go), its send queue
// and writer (writer.go, cork.go), its keepalive (keepalive.go), its buffers (buffers.go) and
// its close codes. It knows nothing of rooms or of the protocol beyond decoding a client frame:
// it hands each decoded frame to its receiver (the socket's session) and writes the frames it is
// given.

// Close codes of our own (4000–4999), and the standard ones we use.
const (
	// CloseSessionEnded: the session was revoked or expired; sign in again.
	CloseSessionEnded websocket.StatusCode = 4001
	// CloseSlowConsumer: the client did not read its frames fast enough; reconnect and resume
	// with since_seq.
	CloseSlowConsumer websocket.StatusCode = 4008
	// CloseServiceRestart: the server is shutting down; reconnect after the delay in the reason.
	CloseServiceRestart = websocket.StatusServiceRestart
)

// transport is a client's socket as its session sees it: a queue of frames to write that never
// blocks, and the socket's lifetime. wsTransport is the WebSocket one; tests use a fake.
type transport interface {
	// recipient is how the rooms queue frames for the socket; the session joins rooms with the
	// transport as its key there.
	recipient
	// Write queues a frame without blocking. A queue past Options.MaxQueueBytes closes the
	// socket with CloseSlowConsumer.
	Write(frame []byte)
	// Close stops accepting frames and closes the socket with code, dropping what is queued.
	Close(code websocket.StatusCode, reason string)
	// holdWrites keeps the writer from starting until releaseWrites, so that the frames
	// queued meanwhile, by the session and by the rooms it joins, go out in one write.
	holdWrites()
	// releaseWrites ends holdWrites and starts the writer for what was queued meanwhile.
	releaseWrites()
	// queuedBytes returns the bytes queued and not yet written.
	queuedBytes() int
	// waitQueueBelow blocks until fewer than n bytes are queued (releasing a held writer), the
	// socket ends or ctx does.
	waitQueueBelow(ctx context.Context, n int) error
	// work returns the context of one piece of the session's work (the lookups of a batch of
	// subscribes, a publish, a join): it ends with done, with the socket, or after timeout if
	// set.
	work(timeout time.Duration) (ctx context.Context, done func())
	// nextMessageBuffered reports whether the client's next frame is already whole in the
	// socket's read buffer: reading it waits for nothing.
	nextMessageBuffered() bool
}

// receiver is what a transport hands the client's frames to: the socket's session, through the
// hub's record of the socket.
type receiver interface {
	// receive answers one client frame: f, or, when the frame was not valid, ferr.
	receive(f *rooms.ClientFrame, ferr *rooms.FrameError)
	// ended is called once, after the last receive, when the socket has ended.
	ended()
}

var _ transport = (*wsTransport)(nil)

// wsTransport is the WebSocket transport of one client socket.
//
// Its lock guards the send queue, the writer's state, the keepalive's timer and the socket's
// closing; the library's own reads and writes happen outside it, but for the parked reader's
// reads ahead, which never block.
type wsTransport struct {
	hub     *Hub
	ws      *websocket.Conn
	tcp     *corkConn       // the connection under ws, when the server's listener made it corkable
	raw     syscall.RawConn // tcp's descriptor, when the reader can park (park.go)
	br      *readBuffer     // ws's read buffer, when known: read by the reader goroutine, and by Close after closed is set
	expires time.Time       // the session's end: the socket is closed then with CloseSessionEnded
	recv    receiver        // what the client's frames go to

	mu       sync.Mutex
	queue    [][]byte      // guarded by mu
	queued   int           // guarded by mu: bytes in queue
	writing  bool          // guarded by mu: a writer goroutine runs
	held     bool          // guarded by mu: the session holds the writer back (holdWrites)
	closed   bool          // guarded by mu: no more frames are accepted
	slow     bool          // guarded by mu: the queue overflowed; the socket is being closed
	drained  chan struct{} // guarded by mu: closed when the queue empties, if someone waits
	pingT    *time.Timer   // guarded by mu: the keepalive's next step, or the session's end if sooner (armLocked)
	pingAt   time.Time     // guarded by mu: when the keepalive's next step is due
	pongDue  bool          // guarded by mu: a ping was sent and no pong has come since
	closeErr error         // guarded by mu
	endWork  func()        // guarded by mu: ends the context of the session's work under way (work)

	pingDue atomic.Bool // the writer is to send a ping (keepalive); set under mu
}

// work returns the context for one piece of the session's work: it ends with done, with the
// socket (at once when the socket fails or is closed, after the close frame when the instance
// shuts down), or, if timeout is set, after it. The socket has no context of its own (Hub.ctx
// says why); this one lives only while the work does.
func (t *wsTransport) work(timeout time.Duration) (ctx context.Context, done func()) {
	var cancel context.CancelFunc
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(t.hub.ctx, timeout)
	} else {
		ctx, cancel = context.WithCancel(t.hub.ctx)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		cancel()
		return ctx, cancel
	}
	t.endWork = cancel
	return ctx, func() {
		t.mu.Lock()
		t.endWork = nil
		t.mu.Unlock()
		cancel()
	}
}

// endWorkLocked ends the session's work under way, if any: the socket is closed. t.mu is held.
func (t *wsTransport) endWorkLocked() {
	if t.endWork != nil {
		t.endWork()
		t.endWork = nil
	}
}

// fail records a broken connection and ends it without a close handshake.
func (t *wsTransport) fail(err error) {
	t.mu.Lock()
	if t.closeErr == nil {
		t.closeErr = err
	}
	t.closed = true
	t.endWorkLocked()
	t.mu.Unlock()
	_ = t.ws.CloseNow()
}

// Close stops accepting frames and closes the socket with code, dropping what is queued.
func (t *wsTransport) Close(code websocket.StatusCode, reason string) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	t.endWorkLocked()
	t.mu.Unlock()
	t.endPings()
	_ = t.ws.Close(code, reason)
}

// shutdown flushes the queue (until ctx ends), then closes with 1012 and a suggested random
// reconnect delay, so that a deploy does not turn into a reconnect storm.
func (t *wsTransport) shutdown(ctx context.Context) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true // nothing new is queued; what is queued is still written
	if t.held && !t.writing && t.pendingLocked() {
		t.startWriterLocked(false) // what the session queued while holding the writer back, too
	}
	t.mu.Unlock()
	// The writer wakes the waiters after every batch; wait until it has written everything,
	// or until ctx ends (then close anyway).
	for ch := t.writerWake(); ch != nil && ctx.Err() == nil; ch = t.writerWake() {
		select {
		case <-ch:
		case <-ctx.Done():
		}
	}
	delay := rand.N(t.hub.opts.RestartJitter) + 500*time.Millisecond
	t.endPings()
	_ = t.ws.Close(CloseServiceRestart, fmt.Sprintf("server restart; reconnect_after_ms=%d", delay.Milliseconds()))
	// Only now: a commit under way may still finish (its ack is not sent, the socket being
	// closed; the client's resend with the same client_msg_id finds the message).
	t.mu.Lock()
	t.endWorkLocked()
	t.mu.Unlock()
}

// end runs once the socket's last reader is done: it stops the socket's timer and work, tells
// the receiver, and drops the connection.
func (t *wsTransport) end() {
	t.mu.Lock()
	t.closed = true
	t.endWorkLocked()
	if t.pingT != nil {
		t.pingT.Stop()
	}
	t.mu.Unlock()
	t.recv.ended()
	_ = t.ws.CloseNow()
}
