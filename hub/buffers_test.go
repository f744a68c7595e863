package hub_test

import (
	"bufio"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestFrameBehindUpgrade sends a frame in the same write as the upgrade request, before the
// 101: the server reads it from the bytes it had already buffered, and answers it.
func TestFrameBehindUpgrade(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.newUser()
	nc, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))

	req := "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef")) + "\r\n" +
		"Authorization: Bearer " + u.token + "\r\n\r\n"
	payload := []byte(`{"type":"ping","ref":"behind"}`)
	key := [4]byte{1, 2, 3, 4}
	frame := []byte{0x81, 0x80 | byte(len(payload))} // final text frame, masked, as a client's must be
	frame = append(frame, key[:]...)
	for i, b := range payload {
		frame = append(frame, b^key[i%4])
	}
	if _, err := nc.Write(append([]byte(req), frame...)); err != nil {
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
	head := make([]byte, 2)
	if _, err := io.ReadFull(br, head); err != nil {
		t.Fatalf("no frame after the upgrade: %v", err)
	}
	if head[0] != 0x81 || head[1] >= 126 {
		t.Fatalf("frame header % x, want a short final text frame", head)
	}
	got := make([]byte, head[1])
	if _, err := io.ReadFull(br, got); err != nil {
		t.Fatal(err)
	}
	if want := `"ref":"behind"`; !strings.Contains(string(got), `"type":"pong"`) || !strings.Contains(string(got), want) {
		t.Fatalf("answer %s, want a pong with %s", got, want)
	}
}
