package hub_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/commongrounds/commongrounds/hub"
	"github.com/commongrounds/commongrounds/rooms"
)

// keepaliveEnv is an env of parked readers whose sockets are pinged every 50 ms; a pong must
// come within to.
func keepaliveEnv(t *testing.T, to time.Duration) *env {
	return newEnv(t, parking, func(_ *rooms.Service, o *hub.Options) {
		o.PingInterval = 50 * time.Millisecond
		o.PingTimeout = to
	})
}

// nextPing reads the server's frames up to its next ping, which must be empty, and returns the
// text frames before it.
func nextPing(t *testing.T, br *bufio.Reader) []rawText {
	t.Helper()
	var texts []rawText
	for {
		switch op, payload := readRawFrameOf(t, br); op {
		case 0x9:
			if payload != "" {
				t.Fatalf("ping with payload %q, want none", payload)
			}
			return texts
		case 0x1:
			texts = append(texts, parseRawText(t, payload))
		default:
			t.Fatalf("frame of opcode %#x (%q), want a ping", op, payload)
		}
	}
}

func write(t *testing.T, nc net.Conn, b []byte) {
	t.Helper()
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
}

// TestKeepalive: a client that answers the server's pings stays, whichever way its pongs come:
// alone and empty, which the parked reader takes off the socket itself; with a payload, which it
// leaves to the library; or in one write with a data frame, read by the library too. One that
// does not answer is closed.
func TestKeepalive(t *testing.T) {
	t.Parallel()
	e := keepaliveEnv(t, 250*time.Millisecond)
	u := e.newUser()

	t.Run("Answered", func(t *testing.T) {
		nc, br := rawDial(t, e, u.token, nil)
		pong, data := maskedFrameOf(0xA, ""), maskedFrame(`{"type":"ping","ref":"n"}`)
		answers := [][]byte{pong, pong, maskedFrameOf(0xA, "payload"), append(slices.Clone(pong), data...)}
		nextPing(t, br)
		var pongs int // to the data frames
		for i := range 3 * len(answers) {
			write(t, nc, answers[i%len(answers)])
			// The next ping comes 50 ms after the answer counted; without it, a close after 250 ms.
			for _, f := range nextPing(t, br) {
				if f.Type != "pong" || f.Ref != "n" {
					t.Fatalf("frame %+v, want a pong", f)
				}
				pongs++
			}
		}
		write(t, nc, append(slices.Clone(pong), maskedFrame(`{"type":"ping","ref":"end"}`)...))
		if f := nextRawText(t, br); f.Type != "pong" || f.Ref != "end" {
			t.Fatalf("frame %+v, want the pong to end", f)
		}
		if pongs != 3 {
			t.Fatalf("%d pongs to data frames sent with a pong, want 3", pongs)
		}
	})
	t.Run("Unanswered", func(t *testing.T) {
		_, br := rawDial(t, e, u.token, nil)
		nextPing(t, br)
		// Dropped without a close frame (as a dead peer would be), after PingTimeout.
		for {
			head := make([]byte, 2)
			if _, err := io.ReadFull(br, head); err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("read: %v, want the connection closed", err)
				}
				return
			}
			if head[0]&0x0f != 0x9 || head[1] != 0 {
				t.Fatalf("frame % x, want nothing but pings", head)
			}
		}
	})
	t.Run("LibraryClient", func(t *testing.T) {
		// The library's client answers pings while it reads, as the test client always does.
		c := e.dial(u)
		nc, br := rawDial(t, e, u.token, nil)
		for range 5 { // 5 rounds of the raw socket's pings: the other has had as many
			nextPing(t, br)
			write(t, nc, maskedFrameOf(0xA, ""))
		}
		c.send(`{"type":"ping","ref":"alive"}`)
		if f := c.expect("pong"); f.Ref != "alive" {
			t.Fatalf("pong %s, want alive", f.raw)
		}
	})
}

// TestIdleReadersPark: an idle socket's reader parks, and stays parked while it answers the
// server's pings; a frame from the client wakes it, and it parks again once it has answered.
func TestIdleReadersPark(t *testing.T) {
	t.Parallel()
	// Long enough for the setup on a busy machine: the pings are answered only after it.
	e := keepaliveEnv(t, 20*time.Second)
	class := e.newClass()
	type socket struct {
		nc     net.Conn
		br     *bufio.Reader
		pinged bool // the first ping came before the subscribed reply (a slow subscribe)
	}
	var socks []*socket
	for range 3 {
		u := e.newUser()
		e.enroll(class, u)
		nc, br := rawDial(t, e, u.token, nil)
		write(t, nc, maskedFrame(`{"type":"subscribe","ref":"s","room":"`+string(class)+`"}`))
		s := &socket{nc: nc, br: br}
		for subscribed := false; !subscribed; {
			switch op, payload := readRawFrameOf(t, br); op {
			case 0x9:
				if payload != "" {
					t.Fatalf("ping with payload %q, want none", payload)
				}
				s.pinged = true
			case 0x1:
				f := parseRawText(t, payload)
				subscribed = f.Type == "subscribed"
			default:
				t.Fatalf("frame of opcode %#x (%q) before the subscribed reply", op, payload)
			}
		}
		socks = append(socks, s)
	}
	waitUntil(t, "every reader parked", func() bool { return e.hub.Parked() == len(socks) })
	for _, s := range socks { // rawDial's deadline counts from the dial, before the setup
		_ = s.nc.SetDeadline(time.Now().Add(30 * time.Second))
	}
	// Two pings answered with empty pongs, each pong counted: the third ping comes.
	for range 2 {
		for _, s := range socks {
			if !s.pinged {
				nextPing(t, s.br)
			}
			s.pinged = false
			write(t, s.nc, maskedFrameOf(0xA, ""))
		}
	}
	for _, s := range socks {
		nextPing(t, s.br)
	}
	if n := e.hub.Parked(); n != len(socks) {
		t.Fatalf("%d readers parked after pongs, want %d: the pongs woke them", n, len(socks))
	}
	s := socks[0]
	write(t, s.nc, maskedFrame(`{"type":"ping","ref":"wake"}`))
	readRawUntil(t, s.br, "pong", "wake")
	waitUntil(t, "the woken reader parked again", func() bool { return e.hub.Parked() == len(socks) })
}

// TestKeepaliveBehindBacklog: a client that reads slowly, so that its writer is stuck inside a
// large batch for longer than the client has to answer a ping, still gets every ping in time and
// stays: a ping goes out between two frames of the batch, not behind all of it. (Ahead of it
// there can still be what the cork holds, 64 KiB, and the kernel's buffers: about 0.5 s here.)
func TestKeepaliveBehindBacklog(t *testing.T) {
	t.Parallel()
	const pingTimeout = 1200 * time.Millisecond
	e := newEnv(t, parking, func(_ *rooms.Service, o *hub.Options) {
		o.PingInterval = 200 * time.Millisecond
		o.PingTimeout = pingTimeout
		o.MaxQueueBytes = 4 << 20
	})
	e.lis.setSendBuffer(8 << 10)
	class := e.newClass()
	reader, author := e.newUser(), e.newUser()
	e.enroll(class, reader, author)
	nc, br := rawDialWith(t, e, reader.token, nil, 4096)
	_ = nc.SetDeadline(time.Now().Add(60 * time.Second))
	write(t, nc, maskedFrame(`{"type":"subscribe","ref":"s","room":"`+string(class)+`"}`))
	readRawUntil(t, br, "subscribed", "s")
	// 300 messages of 4 KB, published by 4 goroutines while the client reads one every 20 ms:
	// most of them go in a few large batches.
	const n, publishers = 300, 4
	content := strings.Repeat("x", 4000)
	var publishing sync.WaitGroup
	t.Cleanup(publishing.Wait)
	for range publishers {
		publishing.Go(func() {
			for range n / publishers {
				if _, err := e.svc.Publish(context.Background(), author.id, class, content, nil, "", nil); err != nil {
					t.Error(err)
					// The reader waits for all n messages: closing its socket ends its wait now.
					_ = nc.Close()
					return
				}
			}
		})
	}
	published := make(chan time.Time, 1)
	go func() { publishing.Wait(); published <- time.Now() }()
	var got, pings int
	for got < n {
		switch op, payload := readRawFrameOf(t, br); op { // fails at the close of a dropped client
		case 0x9:
			pings++
			write(t, nc, maskedFrameOf(0xA, payload))
		case 0x1:
			if strings.Contains(payload, `"type":"message"`) {
				got++
				time.Sleep(20 * time.Millisecond) // a slow client
			}
		default:
			t.Fatalf("frame of opcode %#x (%q) after %d messages", op, payload, got)
		}
	}
	// The test tests something only if the backlog outlasted the time to answer a ping well
	// after the last publish: then some batch took longer than that.
	if backlog := time.Since(<-published); backlog < 2*pingTimeout {
		t.Fatalf("the client read its backlog %v after the last publish, want %v or more: the publishes were too slow for the test", backlog, 2*pingTimeout)
	}
	if pings < 2 {
		t.Fatalf("%d pings while reading, want 2 or more", pings)
	}
}
