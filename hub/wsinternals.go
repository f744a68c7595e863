package hub

import "encoding/binary"

// This file owns every assumption the hub makes about the WebSocket library,
// github.com/coder/websocket, beyond its documented API. Each was checked against
// websocketVersion, which go.mod pins; TestWebsocketAssumptions checks each one directly, and
// fails first when an upgrade breaks one. Options.DisableParking turns off everything that
// relies on them (parked readers, corked writes, the peeks into the read buffer), leaving the
// library's ordinary read loop, its own pings and one write per frame.
//
//  1. Accept keeps, for the socket's life, the *bufio.Reader the hijack returned, and reads every
//     frame through that pointer: the hub swaps the buffer beneath it while the reader is parked
//     (readBuffer.shrink, grow) and peeks at what is buffered in it (nextMessageBuffered,
//     readBuffer.pending). Accept resets that reader onto the bytes it buffered and the
//     connection, so the hub hands it an empty one and puts those bytes in front of the
//     connection instead (leadConn).
//  2. The library reads a frame no further than its end: once a Read returns, what is buffered
//     is the client's next frames, whose headers have RFC 6455's layout (wholeDataMessage).
//  3. The library writes through the hijacked *bufio.Writer, a data frame is whole on the
//     connection once Write returns, and a control frame it writes itself (a pong, a close: 2
//     bytes of header, at most 125 of payload) reaches the connection in one write when that
//     writer's buffer holds corkedWriteBufferSize bytes. So the hub's own pings, written straight
//     to the connection between the library's writes (corkConn.writePing), never split a frame
//     of the library's.
//  4. Close reads the peer's close frame through the same reader, after the socket's reader has
//     stopped (so a closed socket's reader does not park: wsTransport.idle).
//  5. OnPongReceived is called for each pong the library reads; the parked reader takes the
//     empty ones off the socket itself (wsTransport.readAhead) and leaves the others to the library.

// websocketVersion is the version of github.com/coder/websocket the assumptions above were
// checked against.
const websocketVersion = "v1.8.15"

// corkedWriteBufferSize is the write buffer of a corked connection: the writer's frames land in
// the cork's buffer anyway, so it only needs to hold a control frame the library writes itself
// in one piece (assumption 3).
const corkedWriteBufferSize = 128

// parkedReadBufferSize is the read buffer left while the reader is parked: bufio's least.
const parkedReadBufferSize = 16

// pingFrame is an unmasked, final ping with no payload, as a server sends it.
var pingFrame = []byte{0x89, 0x00}

// emptyPong is a client's final pong with no payload (masked, and 4 bytes of mask key follow).
var emptyPong = [2]byte{0x8a, 0x80}

// emptyPongLen is the length of a client's empty pong: the header and the mask key.
const emptyPongLen = 6

// wholeDataMessage reports whether buffered bytes, of which head holds the first (at least 4
// when there are that many), begin with a whole data message in one frame (final, text or
// binary), in RFC 6455's layout: reading it waits neither for the client nor, as after a
// control frame the library answers itself, for a frame after it.
func wholeDataMessage(head []byte, buffered int) bool {
	if buffered < 2 || len(head) < 2 {
		return false
	}
	if head[0]&0x80 == 0 { // not final: the message goes on in later frames
		return false
	}
	if op := head[0] & 0x0f; op != 1 && op != 2 { // a control frame or a continuation
		return false
	}
	size := 2              // the header, then the mask key, then the payload
	if head[1]&0x80 != 0 { // masked, as a client's frames are
		size += 4
	}
	switch length := int(head[1] & 0x7f); length {
	case 126: // the length is in the next 2 bytes
		if buffered < 4 || len(head) < 4 {
			return false
		}
		size += 2 + int(binary.BigEndian.Uint16(head[2:4]))
	case 127: // 64 KiB or more: never whole in the buffer
		return false
	default:
		size += length
	}
	return size <= buffered
}
