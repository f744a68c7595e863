package hub_test

import (
	"bufio"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFrameBehindUpgrade sends a frame in the same write as the upgrade request, before the
// 101: the server reads it from the bytes it had already buffered, and answers it.
func TestFrameBehindUpgrade(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.newUser()
	_, br := rawDial(t, e, u.token, maskedFrame(`{"type":"ping","ref":"behind"}`))
	got := readRawFrame(t, br)
	if want := `"ref":"behind"`; !strings.Contains(got, `"type":"pong"`) || !strings.Contains(got, want) {
		t.Fatalf("answer %s, want a pong with %s", got, want)
	}
}

// TestFramesBehindUpgrade: frames sent behind the upgrade request that fill more than the
// socket's read buffer are all answered: the reader does not park while some are still to be
// read, though none is in its buffer, and parks once it has answered them.
func TestFramesBehindUpgrade(t *testing.T) {
	t.Parallel()
	e := newEnv(t, parking)
	u := e.newUser()
	// Each frame is 512 bytes, the read buffer's size: the first read takes exactly the first.
	var behind []byte
	for _, ref := range []string{"1", "2", "3"} {
		payload := `{"type":"ping","ref":"` + ref + `"}`
		payload += strings.Repeat(" ", 512-8-len(payload))
		frame := []byte{0x81, 0x80 | 126, byte(len(payload) >> 8), byte(len(payload)), 0, 0, 0, 0}
		behind = append(append(behind, frame...), payload...) // a zero mask key leaves it as it is
	}
	nc, br := rawDial(t, e, u.token, behind)
	for _, ref := range []string{"1", "2", "3"} {
		if f := nextRawText(t, br); f.Type != "pong" || f.Ref != ref {
			t.Fatalf("frame %+v, want the pong %s", f, ref)
		}
	}
	waitUntil(t, "the reader parked", func() bool { return e.hub.Parked() == 1 })
	writeFrames(t, nc, `{"type":"ping","ref":"after"}`)
	if f := nextRawText(t, br); f.Type != "pong" || f.Ref != "after" {
		t.Fatalf("frame %+v, want the pong after", f)
	}
}

// rawDial opens a socket as token by hand, writing behind the upgrade request in the same write,
// and returns the connection and its reader, positioned after the 101.
func rawDial(t *testing.T, e *env, token string, behind []byte) (net.Conn, *bufio.Reader) {
	t.Helper()
	return rawDialWith(t, e, token, behind, 0)
}

// rawDialWith is rawDial with the client's receive buffer set to rcvbuf bytes (0: the system's).
func rawDialWith(t *testing.T, e *env, token string, behind []byte, rcvbuf int) (net.Conn, *bufio.Reader) {
	t.Helper()
	var d net.Dialer
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = setRcvBuf(fd, rcvbuf)
			})
			return errors.Join(err, serr)
		}
	}
	nc, err := d.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(15 * time.Second))
	req := "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef")) + "\r\n" +
		"Authorization: Bearer " + token + "\r\n\r\n"
	if _, err := nc.Write(append([]byte(req), behind...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %s", resp.Status)
	}
	return nc, br
}

// maskedFrame encodes payload as a final, masked text frame, as a client's must be (payload
// under 126 bytes).
func maskedFrame(payload string) []byte { return maskedFrameOf(0x1, payload) }

// writeFrames sends payloads as masked text frames in one write, so that the server reads them
// together.
func writeFrames(t *testing.T, nc net.Conn, payloads ...string) {
	t.Helper()
	var b []byte
	for _, p := range payloads {
		b = append(b, maskedFrame(p)...)
	}
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
}

// maskedFrameOf is maskedFrame with another opcode (0x9 ping, 0xA pong).
func maskedFrameOf(opcode byte, payload string) []byte {
	key := [4]byte{1, 2, 3, 4}
	frame := []byte{0x80 | opcode, 0x80 | byte(len(payload))}
	frame = append(frame, key[:]...)
	for i := range len(payload) {
		frame = append(frame, payload[i]^key[i%4])
	}
	return frame
}

// readRawFrame reads one unfragmented text frame from the server and returns its payload.
func readRawFrame(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	op, payload := readRawFrameOf(t, br)
	if op != 0x1 {
		t.Fatalf("frame of opcode %#x (%q), want a text frame", op, payload)
	}
	return payload
}

// readRawFrameOf reads one unfragmented frame from the server and returns its opcode and payload.
func readRawFrameOf(t *testing.T, br *bufio.Reader) (byte, string) {
	t.Helper()
	head := make([]byte, 2)
	if _, err := io.ReadFull(br, head); err != nil {
		t.Fatalf("no frame: %v", err)
	}
	if head[0]&0x80 == 0 || head[1]&0x80 != 0 || head[1]&0x7f == 127 {
		t.Fatalf("frame header % x, want a final, unmasked frame under 64 KiB", head)
	}
	n := int(head[1] & 0x7f)
	if n == 126 {
		ext := make([]byte, 2)
		if _, err := io.ReadFull(br, ext); err != nil {
			t.Fatal(err)
		}
		n = int(ext[0])<<8 | int(ext[1])
	}
	got := make([]byte, n)
	if _, err := io.ReadFull(br, got); err != nil {
		t.Fatal(err)
	}
	return head[0] & 0x0f, string(got)
}
