package hub

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// A socket's keepalive and the session's end share one timer (armLocked). On a socket whose
// reader can park, the writer sends the pings among its frames and the parked reader takes the
// pongs off the socket itself (park.go); otherwise the library's Ping sends them and its reader
// hears the pongs.

// armLocked sets the socket's one timer to the keepalive's next step, due in d, or to the
// session's end if that comes sooner. One timer rather than two saves an idle socket about
// 200 bytes. t.mu is held.
func (t *wsTransport) armLocked(d time.Duration) {
	t.pingAt = time.Now().Add(d)
	d = max(min(d, time.Until(t.expires)), 0)
	if t.pingT == nil {
		t.pingT = time.AfterFunc(d, t.keepalive)
	} else {
		t.pingT.Reset(d)
	}
}

// keepalive is the socket's timer. At the session's end it closes the socket with 4001.
// Otherwise it drops a peer that has not answered the last ping, or sends the next: the writer
// writes it when the reader parks (then the parked reader or the library hears the pong), and
// the library's Ping otherwise.
func (t *wsTransport) keepalive() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	now := time.Now()
	if !now.Before(t.expires) {
		t.mu.Unlock()
		t.Close(CloseSessionEnded, "session expired")
		return
	}
	if now.Before(t.pingAt) {
		// Woken for the session's end, which the wall clock has not reached after all (it was
		// set back): wait again.
		t.armLocked(t.pingAt.Sub(now))
		t.mu.Unlock()
		return
	}
	if !t.canPark() {
		// The library's Ping waits for the pong; the session's end, should it come meanwhile,
		// stays armed (and a fire for it meanwhile finds pingAt not yet reached).
		t.armLocked(t.hub.opts.PingTimeout + t.hub.opts.PingInterval)
		t.mu.Unlock()
		ctx, cancel := context.WithTimeout(t.hub.ctx, t.hub.opts.PingTimeout)
		defer cancel()
		if err := t.ws.Ping(ctx); err != nil {
			t.fail(fmt.Errorf("ping: %w", err))
			return
		}
		t.mu.Lock()
		if !t.closed {
			t.armLocked(t.hub.opts.PingInterval)
		}
		t.mu.Unlock()
		return
	}
	if t.pongDue {
		t.mu.Unlock()
		t.fail(errors.New("ping: no pong in time"))
		return
	}
	t.pingDue.Store(true)
	t.pongDue = true
	if !t.writing && !t.held {
		t.startWriterLocked(false)
	}
	t.armLocked(t.hub.opts.PingTimeout)
	t.mu.Unlock()
}

// pong counts a pong as the answer to the last ping.
func (t *wsTransport) pong() {
	t.mu.Lock()
	t.pongLocked()
	t.mu.Unlock()
}

func (t *wsTransport) pongLocked() {
	if t.pongDue && !t.closed {
		t.pongDue = false
		t.armLocked(t.hub.opts.PingInterval)
	}
}

// writePingIfDue sends the ping keepalive asked for, if it did. Only the writer writes it, and
// only between the library's frames: every one of them is whole once its Write returns, and the
// library's own control frames (at most 127 bytes, in a write buffer of 128) reach the
// connection in one write each.
func (t *wsTransport) writePingIfDue() error {
	if !t.pingDue.Load() || !t.pingDue.CompareAndSwap(true, false) {
		return nil
	}
	return t.tcp.writePing()
}

// endPings keeps the writer's pings from following the close frame the caller is about to
// have the library send.
func (t *wsTransport) endPings() {
	if t.tcp != nil {
		t.tcp.endPings()
	}
}
