package hub

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"sync"
)

// On hijack the HTTP server hands the connection over with its two 4 KiB buffers, and the
// WebSocket library keeps both for the socket's life: as much memory as the reader's stack,
// and most of it never used. smallBuffers hands the library smaller ones instead. A frame larger
// than the read buffer is read past it, straight into the message. On a corked connection
// (Listener and ConnContext) the writer's batches go through the cork's pooled buffer, so the
// small write buffer costs nothing; without it a frame larger than the buffer takes two writes.
//
// While the socket's reader is parked (park.go), nothing is being read, so the read buffer goes
// back to a pool and the library is left a 16-byte one, in case its close handshake reads; a
// woken reader takes one from the pool again (readBuffer).

// socketBufferSize is the size of a socket's read buffer, and of its write buffer when the
// connection is not corked.
const socketBufferSize = 512

// readBuffers holds the read buffers of sockets whose reader is not parked.
var readBuffers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, socketBufferSize) }}

// smallBuffers is a ResponseWriter whose Hijack gives the connection small buffers.
type smallBuffers struct {
	http.ResponseWriter
	corked bool        // the hub's writer corks the connection
	reader *readBuffer // the read buffer handed over, once hijacked
}

// withSmallBuffers wraps w when it can be hijacked (through Unwrap, as the library and
// http.ResponseController look), and otherwise leaves it as it is (sb nil), so that the library
// still refuses it before answering.
// corked tells whether the hub's writer corks the connection (then the write buffer can be
// smaller).
func withSmallBuffers(w http.ResponseWriter, corked bool) (_ http.ResponseWriter, sb *smallBuffers) {
	for rw := w; ; {
		switch t := rw.(type) {
		case http.Hijacker:
			sb = &smallBuffers{ResponseWriter: w, corked: corked}
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
func (w *smallBuffers) Reader() *readBuffer {
	if w == nil {
		return nil
	}
	return w.reader
}

func (w *smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	r, bw := brw.Reader, brw.Writer
	if bw.Buffered() == 0 { // the server flushed the 101 before handing over
		size := socketBufferSize
		if w.corked {
			size = corkedWriteBufferSize
		}
		bw = bufio.NewWriterSize(conn, size)
	}
	rb := &readBuffer{Reader: new(bufio.Reader), lead: &leadConn{Conn: conn}}
	conn = rb.lead
	// Bytes the client sent right behind its request (or right after the 101, before the
	// hijack) are in the server's read buffer: the connection handed over returns them first.
	// Not the server's buffer itself: the library would move them out of it, into a reader of
	// its own, where the socket's reader could not see that they are still to be read (park.go).
	if n := r.Buffered(); n > 0 {
		b, _ := r.Peek(n)
		rb.lead.lead = bytes.Clone(b)
	}
	rb.grow()
	w.reader = rb
	return conn, bufio.NewReadWriter(rb.Reader, bw), nil
}

// readBuffer is a socket's read buffer: the bufio.Reader the library reads through, whose
// buffer is a pooled one except while the socket's reader is parked. Only the socket's reader
// uses it, and, after the socket is closed, the library's close handshake.
type readBuffer struct {
	*bufio.Reader
	lead  *leadConn     // what it reads from: the connection, behind bytes already read from it
	large *bufio.Reader // the pooled reader whose buffer it has, or nil
	small *bufio.Reader // the reader whose 16-byte buffer it has while large is nil
}

// pending reports whether anything the client sent is in the buffer, or still to be read in
// front of the connection.
func (b *readBuffer) pending() bool { return b.Buffered() > 0 || b.lead.pending() }

// shrink gives the buffer back to the pool and keeps a 16-byte one. Nothing may be pending.
func (b *readBuffer) shrink() {
	if b.large == nil {
		return
	}
	if b.small == nil {
		b.small = bufio.NewReaderSize(b.lead, parkedReadBufferSize)
	}
	b.small.Reset(b.lead)
	*b.Reader = *b.small // the pooled buffer is no longer used here before it goes back
	readBuffers.Put(b.large)
	b.large = nil
}

// grow takes a buffer from the pool again. Nothing may be pending.
func (b *readBuffer) grow() {
	if b.large != nil {
		return
	}
	b.large = readBuffers.Get().(*bufio.Reader)
	b.large.Reset(b.lead)
	*b.Reader = *b.large
}

// leadConn is a connection whose first reads return bytes read from it before: those the
// client sent behind its request, or those a parked reader read ahead (park.go).
type leadConn struct {
	net.Conn
	lead []byte  // read by the socket's reader, and by Close after closed is set
	buf  *[]byte // lead's pooled buffer, if it has one
}

// leadBufs holds the buffers parked readers read ahead into.
var leadBufs = sync.Pool{New: func() any { b := make([]byte, socketBufferSize); return &b }}

func (c *leadConn) Read(p []byte) (int, error) {
	if len(c.lead) == 0 {
		return c.Conn.Read(p)
	}
	n := copy(p, c.lead)
	c.lead = c.lead[n:]
	if len(c.lead) == 0 {
		c.lead = nil
		if c.buf != nil {
			leadBufs.Put(c.buf)
			c.buf = nil
		}
	}
	return n, nil
}

// pending reports whether bytes read before are still to be returned.
func (c *leadConn) pending() bool { return c != nil && len(c.lead) > 0 }
