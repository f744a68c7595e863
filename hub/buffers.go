package hub

import (
	"bufio"
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
type smallBuffers struct{ http.ResponseWriter }

// withSmallBuffers wraps w when it can be hijacked (through Unwrap, as the library and
// http.ResponseController look), and otherwise leaves it as it is, so that the library still
// refuses it before answering.
func withSmallBuffers(w http.ResponseWriter) http.ResponseWriter {
	for rw := w; ; {
		switch t := rw.(type) {
		case http.Hijacker:
			return smallBuffers{w}
		case interface{ Unwrap() http.ResponseWriter }:
			rw = t.Unwrap()
		default:
			return w
		}
	}
}

func (w smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	r, bw := brw.Reader, brw.Writer
	// Bytes the client sent right behind its request are in the server's read buffer: keep
	// that one then (the library reads them from it). Clients wait for the 101 first.
	if r.Buffered() == 0 {
		r = bufio.NewReaderSize(conn, socketBufferSize)
	}
	if bw.Buffered() == 0 { // the server flushed the 101 before handing over
		bw = bufio.NewWriterSize(conn, socketBufferSize)
	}
	return conn, bufio.NewReadWriter(r, bw), nil
}
