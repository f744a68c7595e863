package hub

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestWebsocketAssumptions checks, one by one, what wsinternals.go says the hub assumes of the
// WebSocket library, on sockets the library accepted through the hub's hijack.
func TestWebsocketAssumptions(t *testing.T) {
	t.Run("Version", func(t *testing.T) {
		// The library's source path in the module cache names the version built (a test binary
		// carries no dependency list in its build information).
		file, _ := runtime.FuncForPC(reflect.ValueOf(websocket.Accept).Pointer()).FileLine(0)
		_, rest, ok := strings.Cut(file, "github.com/coder/websocket@")
		if !ok {
			t.Fatalf("the library's source %s does not name its version", file)
		}
		if v, _, _ := strings.Cut(rest, "/"); v != websocketVersion {
			t.Fatalf("github.com/coder/websocket is %s; the assumptions were checked against %s: check them again (this test), then update websocketVersion", v, websocketVersion)
		}
	})

	t.Run("ReadsThroughTheHijackedReader", func(t *testing.T) { // assumption 1
		s := acceptThroughHijack(t)
		// Nothing is sent on the wire: the library can read this frame only through the
		// *bufio.Reader the hijack handed it, swapped beneath it as readBuffer.shrink does.
		s.inject(clientFrame(0x1, "read through the swapped reader"))
		if typ, data := s.read(t); typ != websocket.MessageText || string(data) != "read through the swapped reader" {
			t.Fatalf("read %v %q, want the injected text", typ, data)
		}
	})

	t.Run("ReadsNoFurtherThanTheFrame", func(t *testing.T) { // assumption 2
		s := acceptThroughHijack(t)
		next := clientFrame(0x1, "next")
		for _, size := range []int{0, 1, 125, 126, 127, 300, 1000} {
			frame := clientFrame(0x2, strings.Repeat("x", size))
			head := frame[:min(len(frame), 4)]
			if !wholeDataMessage(head, len(frame)) || wholeDataMessage(head, len(frame)-1) {
				t.Fatalf("payload of %d bytes: wholeDataMessage does not find the frame's end at %d bytes", size, len(frame))
			}
			s.inject(append(frame, next...))
			if typ, data := s.read(t); typ != websocket.MessageBinary || len(data) != size {
				t.Fatalf("read %v of %d bytes, want binary of %d", typ, len(data), size)
			}
			if n := s.rb.Buffered(); n != len(next) {
				t.Fatalf("after a payload of %d bytes, %d bytes buffered, want the next frame's %d", size, n, len(next))
			}
			if h, _ := s.rb.Peek(4); !wholeDataMessage(h, len(next)) {
				t.Fatalf("after a payload of %d bytes, the next frame is not found whole", size)
			}
			if _, data := s.read(t); string(data) != "next" {
				t.Fatalf("read %q, want next", data)
			}
		}
	})

	t.Run("ControlFramesInOneWrite", func(t *testing.T) { // assumption 3
		s := acceptThroughHijack(t)
		payload := strings.Repeat("p", 125) // the most a control frame carries
		reading := s.readInBackground()
		s.send(t, clientFrame(0x9, payload))
		pong := append([]byte{0x8a, 125}, payload...)
		if got := s.readServerFrame(t); !bytes.Equal(got, pong) {
			t.Fatalf("answer % x, want a pong with the ping's payload", got[:min(len(got), 8)])
		}
		if !s.wire.wroteWhole(pong) {
			t.Fatalf("the pong reached the connection in pieces: %d writes", s.wire.count())
		}
		// A data frame is whole on the connection once Write returns.
		data := strings.Repeat("d", 1000)
		before := s.wire.count()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.ws.Write(ctx, websocket.MessageText, []byte(data)); err != nil {
			t.Fatal(err)
		}
		want := append([]byte{0x81, 126, 0x03, 0xe8}, data...)
		if got := s.wire.since(before); !bytes.Equal(got, want) {
			t.Fatalf("written once Write returned: %d bytes, want the frame's %d", len(got), len(want))
		}
		if got := s.readServerFrame(t); !bytes.Equal(got, want) {
			t.Fatal("the data frame read back differs")
		}
		// The close frame, with the longest reason, goes out in one write too.
		reason := strings.Repeat("r", 123)
		closing := make(chan error, 1)
		go func() { closing <- s.ws.Close(websocket.StatusNormalClosure, reason) }()
		closeFrame := append([]byte{0x88, 125, 0x03, 0xe8}, reason...)
		if got := s.readServerFrame(t); !bytes.Equal(got, closeFrame) {
			t.Fatalf("close frame % x, want code 1000 and the reason", got[:min(len(got), 8)])
		}
		if !s.wire.wroteWhole(closeFrame) {
			t.Fatalf("the close frame reached the connection in pieces: %d writes", s.wire.count())
		}
		s.send(t, clientFrame(0x8, "\x03\xe8"))
		if err := <-closing; err != nil {
			t.Fatalf("close: %v", err)
		}
		<-reading
	})

	t.Run("CloseReadsThroughTheReader", func(t *testing.T) { // assumption 4
		s := acceptThroughHijack(t)
		// The peer's answer is only in the reader the hijack handed over; Close waits 5 s for
		// it, then fails.
		s.inject(clientFrame(0x8, "\x03\xe8"))
		start := time.Now()
		if err := s.ws.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Fatalf("close: %v after %v, want the injected close frame read", err, time.Since(start))
		}
	})

	t.Run("PongCallback", func(t *testing.T) { // assumption 5
		s := acceptThroughHijack(t)
		s.readInBackground()
		s.send(t, clientFrame(0xa, "with a payload"))
		select {
		case <-s.pongs:
		case <-time.After(10 * time.Second):
			t.Fatal("OnPongReceived not called within 10 s")
		}
	})
}

// hijackedSocket is a socket the library accepted through the hub's hijack (withSmallBuffers,
// corked), with a raw client at the other end.
type hijackedSocket struct {
	ws    *websocket.Conn
	rb    *readBuffer    // the read buffer handed to the library
	wire  *recordingConn // the server's connection
	nc    net.Conn       // the client's
	br    *bufio.Reader  // the client's reads
	pongs chan struct{}  // a value for each OnPongReceived
}

type recordingConnKey struct{}

func acceptThroughHijack(t *testing.T) *hijackedSocket {
	t.Helper()
	accepted := make(chan *hijackedSocket, 1)
	pongs := make(chan struct{}, 16)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw, sb := withSmallBuffers(w, true)
		ws, err := websocket.Accept(rw, r, &websocket.AcceptOptions{
			OnPongReceived: func(context.Context, []byte) { pongs <- struct{}{} },
		})
		if err != nil {
			t.Errorf("accept: %v", err)
			accepted <- nil
			return
		}
		wire := r.Context().Value(recordingConnKey{}).(*recordingConn)
		accepted <- &hijackedSocket{ws: ws, rb: sb.Reader(), wire: wire, pongs: pongs}
	}))
	srv.Listener = recordingListener{srv.Listener}
	srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, recordingConnKey{}, c)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	nc, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	req := "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef")) + "\r\n\r\n"
	if _, err := nc.Write([]byte(req)); err != nil {
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
	s := <-accepted
	if s == nil {
		t.FailNow()
	}
	s.nc, s.br = nc, br
	t.Cleanup(func() { _ = s.ws.CloseNow(); _ = nc.Close() })
	return s
}

// inject puts b in the library's read buffer, in front of the connection, by swapping the
// bufio.Reader the hijack handed over beneath the library, as readBuffer.shrink does.
func (s *hijackedSocket) inject(b []byte) {
	rest := s.rb.Buffered()
	buffered, _ := s.rb.Peek(rest)
	src := io.MultiReader(bytes.NewReader(append(bytes.Clone(buffered), b...)), s.rb.lead)
	*s.rb.Reader = *bufio.NewReaderSize(src, 4096)
}

// read reads a message through the library.
func (s *hijackedSocket) read(t *testing.T) (websocket.MessageType, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, data, err := s.ws.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return typ, data
}

// readInBackground keeps the library reading (it answers control frames as it reads) until the
// socket ends; the channel is closed then.
func (s *hijackedSocket) readInBackground() <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, _, err := s.ws.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	return done
}

// send writes b on the client's connection.
func (s *hijackedSocket) send(t *testing.T, b []byte) {
	t.Helper()
	if _, err := s.nc.Write(b); err != nil {
		t.Fatal(err)
	}
}

// readServerFrame reads one frame (under 64 KiB, unmasked) from the server, header included.
func (s *hijackedSocket) readServerFrame(t *testing.T) []byte {
	t.Helper()
	head := make([]byte, 2)
	if _, err := io.ReadFull(s.br, head); err != nil {
		t.Fatalf("no frame: %v", err)
	}
	n := int(head[1] & 0x7f)
	if n == 126 {
		ext := make([]byte, 2)
		if _, err := io.ReadFull(s.br, ext); err != nil {
			t.Fatal(err)
		}
		head = append(head, ext...)
		n = int(binary.BigEndian.Uint16(ext))
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(s.br, payload); err != nil {
		t.Fatal(err)
	}
	return append(head, payload...)
}

// clientFrame encodes a final frame of opcode op, masked as a client's frames are (with a
// zero key, which leaves the payload as it is), up to 64 KiB of payload.
func clientFrame(op byte, payload string) []byte {
	f := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	default:
		f = append(f, 0x80|126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	}
	f = append(f, 0, 0, 0, 0)
	return append(f, payload...)
}

// recordingListener makes each connection record what is written to it.
type recordingListener struct{ net.Listener }

func (l recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: c}, nil
}

// recordingConn records each write.
type recordingConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte // guarded by mu
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, bytes.Clone(p))
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// wroteWhole reports whether one write held all of b (and no write held a part of it alone).
func (c *recordingConn) wroteWhole(b []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.writes {
		if bytes.Contains(w, b) {
			return true
		}
	}
	return false
}

// count returns the number of writes so far.
func (c *recordingConn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.writes)
}

// since returns what the writes after the first n wrote.
func (c *recordingConn) since(n int) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Join(c.writes[n:], nil)
}
