package hub

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// countingConn records the writes that reach the network.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes int
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// TestCorkConn: what is written while corked goes out in one write, in order with the writes
// of other goroutines; more than maxCork goes out early; and a peer that reads nothing makes a
// write fail after the timeout instead of hanging.
func TestCorkConn(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	counted := &countingConn{Conn: server}
	c := &corkConn{Conn: counted}
	c.setTimeout(5 * time.Second)

	var got bytes.Buffer
	readDone := make(chan error, 1)
	want := 0
	read := func(n int) {
		go func() {
			_, err := io.CopyN(&got, client, int64(n))
			readDone <- err
		}()
	}

	t.Run("OneWrite", func(t *testing.T) {
		var sent bytes.Buffer
		c.cork()
		for i := range 100 {
			frame := fmt.Appendf(nil, "frame %03d;", i)
			sent.Write(frame)
			if _, err := c.Write(frame); err != nil {
				t.Fatal(err)
			}
		}
		if counted.writes != 0 {
			t.Fatalf("%d writes reached the network while corked, want 0", counted.writes)
		}
		read(sent.Len())
		want += sent.Len()
		if err := c.uncork(); err != nil {
			t.Fatal(err)
		}
		if err := <-readDone; err != nil {
			t.Fatal(err)
		}
		if counted.writes != 1 || !bytes.Equal(got.Bytes(), sent.Bytes()) {
			t.Fatalf("writes=%d, read %q; want 1 write of %q", counted.writes, got.Bytes(), sent.Bytes())
		}
	})

	t.Run("OrderWithOtherWriters", func(t *testing.T) {
		// Writes from another goroutine, corked or not, keep their place in the stream.
		got.Reset()
		read(3 * 4)
		c.cork()
		_, _ = c.Write([]byte("aaaa"))
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = c.Write([]byte("bbbb"))
		}()
		<-done
		if err := c.uncork(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("cccc")); err != nil {
			t.Fatal(err)
		}
		if err := <-readDone; err != nil {
			t.Fatal(err)
		}
		if got.String() != "aaaabbbbcccc" {
			t.Fatalf("read %q, want aaaabbbbcccc", got.String())
		}
	})

	t.Run("FlushPastMaxCork", func(t *testing.T) {
		got.Reset()
		counted.writes = 0
		big := bytes.Repeat([]byte("x"), maxCork/2+1)
		read(3 * len(big))
		c.cork()
		for range 3 {
			if _, err := c.Write(big); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.uncork(); err != nil {
			t.Fatal(err)
		}
		if err := <-readDone; err != nil {
			t.Fatal(err)
		}
		if got.Len() != 3*len(big) || counted.writes < 2 {
			t.Fatalf("read %d bytes in %d writes, want %d in more than one", got.Len(), counted.writes, 3*len(big))
		}
	})

	t.Run("ErrTimeout", func(t *testing.T) {
		c.setTimeout(50 * time.Millisecond)
		c.cork()
		_, _ = c.Write([]byte("nobody reads this"))
		if err := c.uncork(); err == nil {
			t.Fatal("uncork to a peer that reads nothing: err=nil, want a timeout")
		}
	})
}

// TestCorkConnCloseSendsHeld: closing a corked connection first sends what it holds (the
// library closes right after answering a client's close frame, which may be held).
func TestCorkConnCloseSendsHeld(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	c := &corkConn{Conn: server}
	c.setTimeout(5 * time.Second)
	c.cork()
	for _, p := range []string{"last frame;", "close frame"} {
		if _, err := c.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(client)
		got <- string(b)
	}()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "last frame;close frame" {
		t.Fatalf("peer read %q, want both held writes before the end", s)
	}
	if err := c.uncork(); err != nil {
		t.Fatalf("uncork after close with nothing held: %v", err)
	}
}

// TestCorkConnEndPings: the hub's pings go out in order with the other writes until endPings,
// and not after it, whatever else is written.
func TestCorkConnEndPings(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	c := &corkConn{Conn: server}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(client)
		got <- b
	}()
	c.cork()
	for _, step := range []func() error{
		c.writePing,
		func() error { _, err := c.Write([]byte("frame")); return err },
		func() error { c.endPings(); return nil },
		c.writePing,
		func() error { _, err := c.Write([]byte("close")); return err },
		c.writePing,
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.uncork(); err != nil {
		t.Fatal(err)
	}
	if err := c.writePing(); err != nil { // not corked now
		t.Fatal(err)
	}
	server.Close()
	if b, want := <-got, append(slices.Clone(pingFrame), "frameclose"...); !bytes.Equal(b, want) {
		t.Fatalf("wrote %q, want %q", b, want)
	}
}
