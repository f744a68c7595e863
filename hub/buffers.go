package hub

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
)

// On hijack the HTTP server hands the connection over with its two 4 KiB buffers, and the
// WebSocket library keeps both for the socket's life: as much memory as the reader's stack,
// and most of it never used. smallBuffers hands the library smaller ones instead. A frame larger
// than the read buffer is read past it, straight into the message. On a corked connection
// (Listener) the writer's batches go through the cork's pooled buffer, so the small write
// buffer costs nothing; without it a frame larger than the buffer takes two writes.

// socketBufferSize is the size of a socket's read and write buffers.
const socketBufferSize = 512

// smallBuffers is a ResponseWriter whose Hijack gives the connection small buffers.
type smallBuffers struct {
	http.ResponseWriter
	reader *bufio.Reader // the read buffer handed over, once hijacked
	lead   *leadConn     // the connection handed over, when the client sent bytes behind its request
}

// withSmallBuffers wraps w when it can be hijacked (through Unwrap, as the library and
// http.ResponseController look), and otherwise leaves it as it is (sb nil), so that the library
// still refuses it before answering.
func withSmallBuffers(w http.ResponseWriter) (_ http.ResponseWriter, sb *smallBuffers) {
	for rw := w; ; {
		switch t := rw.(type) {
		case http.Hijacker:
			sb = &smallBuffers{ResponseWriter: w}
			return sb, sb
		case interface{ Unwrap() http.ResponseWriter }:
			rw = t.Unwrap()
		default:
			return w, nil
		}
	}
}

func (w *smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Reader returns the read buffer Hijack handed over, or nil.
func (w *smallBuffers) Reader() *bufio.Reader {
	if w == nil {
		return nil
	}
	return w.reader
}

// Lead returns the connection Hijack handed over when the client had sent bytes behind its
// request, or nil.
func (w *smallBuffers) Lead() *leadConn {
	if w == nil {
		return nil
	}
	return w.lead
}

func (w *smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	r, bw := brw.Reader, brw.Writer
	// Bytes the client sent right behind its request (or right after the 101, before the
	// hijack) are in the server's read buffer: the connection handed over returns them first.
	// Not the server's buffer itself: the library would move them out of it, into a reader of
	// its own, where the socket's reader could not see that they are still to be read (park.go).
	if n := r.Buffered(); n > 0 {
		b, _ := r.Peek(n)
		w.lead = &leadConn{Conn: conn, lead: bytes.Clone(b)}
		conn = w.lead
	}
	r = bufio.NewReaderSize(conn, socketBufferSize)
	if bw.Buffered() == 0 { // the server flushed the 101 before handing over
		bw = bufio.NewWriterSize(conn, socketBufferSize)
	}
	w.reader = r
	return conn, bufio.NewReadWriter(r, bw), nil
}

// leadConn is a connection whose first reads return bytes read from it before.
type leadConn struct {
	net.Conn
	lead []byte // read by the socket's reader, and by Close after closed is set
}

func (c *leadConn) Read(p []byte) (int, error) {
	if len(c.lead) == 0 {
		return c.Conn.Read(p)
	}
	n := copy(p, c.lead)
	c.lead = c.lead[n:]
	if len(c.lead) == 0 {
		c.lead = nil
	}
	return n, nil
}

// pending reports whether bytes read before are still to be returned.
func (c *leadConn) pending() bool { return c != nil && len(c.lead) > 0 }
