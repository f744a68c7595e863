package hub

import (
	"context"
	"net"
	"sync"
	"time"
)

// The WebSocket library writes each message with a system call of its own. A socket's writer
// usually finds more than one frame queued when it wakes (a busy room, a backfill), and on
// loopback a small write costs about as much as the whole fan-out work of a delivery: so the
// writer corks the connection, lets the library write every queued frame into memory, and
// uncorks it, which sends them all in one write.
//
// The write timeout bounds each write to the network (at most maxCork bytes), not a whole batch;
// a client that reads too slowly for its queue is cut off by the queue's size limit instead.
//
// Corking needs the server's TCP connection, which the library hides behind the hijack: the
// server's listener wraps each connection (Listener), and the server's ConnContext puts it in
// the request's context, where the hub finds it on upgrade. Without them the hub writes frame
// by frame.

// maxCork is the most a corked connection holds before it writes anyway.
const maxCork = 64 << 10

// corkBufs holds the buffers of corked connections between batches, so that an idle socket
// keeps none.
var corkBufs = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// corkConn is a server connection whose writes can be held back and sent together. It keeps
// the order of every write, held or not, whoever makes it.
type corkConn struct {
	net.Conn
	mu      sync.Mutex
	corked  bool
	buf     *[]byte       // while corked; guarded by mu
	noPings bool          // guarded by mu: the close frame may follow (endPings)
	timeout time.Duration // bounds each write to the network; guarded by mu
}

// Write holds p while the connection is corked, and writes it otherwise.
func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writeOrHoldLocked(p)
}

// writePing writes the hub's own ping frame as Write would, unless endPings was called: no ping
// follows the close frame the hub has the library send after it. (One the library sends on its
// own, answering a client's close, can still be followed by a ping, which RFC 6455 allows.)
func (c *corkConn) writePing() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.noPings {
		return nil
	}
	_, err := c.writeOrHoldLocked(pingFrame)
	return err
}

// endPings stops writePing for good.
func (c *corkConn) endPings() {
	c.mu.Lock()
	c.noPings = true
	c.mu.Unlock()
}

func (c *corkConn) writeOrHoldLocked(p []byte) (int, error) {
	if c.corked {
		if len(*c.buf)+len(p) <= maxCork {
			*c.buf = append(*c.buf, p...)
			return len(p), nil
		}
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return c.writeLocked(p)
}

// setTimeout bounds each write to the network, corked or not, by timeout from its start.
func (c *corkConn) setTimeout(timeout time.Duration) {
	c.mu.Lock()
	c.timeout = timeout
	c.mu.Unlock()
}

// Close sends what is held, within a second, then closes the connection. The library closes
// the connection right after answering a client's close frame, which may be held behind a
// batch the writer has not sent yet; without this the answer and the batch would be lost. If a
// write is in progress, Close does not wait for it: closing is what aborts a stuck write.
func (c *corkConn) Close() error {
	if c.mu.TryLock() {
		if c.corked && c.buf != nil && len(*c.buf) > 0 {
			if c.Conn.SetWriteDeadline(time.Now().Add(time.Second)) == nil {
				_, _ = c.Conn.Write(*c.buf)
			}
			*c.buf = (*c.buf)[:0]
		}
		c.mu.Unlock()
	}
	return c.Conn.Close()
}

// cork holds the writes that follow until uncork.
func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.buf = corkBufs.Get().(*[]byte)
	c.mu.Unlock()
}

// uncork writes what was held, in one write.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.flushLocked()
	c.corked = false
	if cap(*c.buf) <= maxCork*2 {
		*c.buf = (*c.buf)[:0]
		corkBufs.Put(c.buf)
	}
	c.buf = nil
	return err
}

func (c *corkConn) flushLocked() error {
	if len(*c.buf) == 0 {
		return nil
	}
	_, err := c.writeLocked(*c.buf)
	*c.buf = (*c.buf)[:0]
	return err
}

func (c *corkConn) writeLocked(p []byte) (int, error) {
	if c.timeout > 0 {
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(p)
}

// Listener wraps a server's listener so that the hub can send the frames queued for a socket
// in one write. Use it with ConnContext. With TLS, wrap the plain listener and put the TLS
// listener outside (or skip this): the hub then writes frame by frame.
func Listener(ln net.Listener) net.Listener { return corkListener{ln} }

type corkListener struct{ net.Listener }

func (l corkListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &corkConn{Conn: c}, nil
}

type corkKey struct{}

// ConnContext is for http.Server.ConnContext: it makes the connections of Listener known to
// the hub.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if cc, ok := c.(*corkConn); ok {
		return context.WithValue(ctx, corkKey{}, cc)
	}
	return ctx
}

// corkOf returns the corkable connection under a request, or nil.
func corkOf(ctx context.Context) *corkConn {
	cc, _ := ctx.Value(corkKey{}).(*corkConn)
	return cc
}
