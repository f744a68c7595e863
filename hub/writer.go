package hub

import (
	"context"
	"errors"
	"fmt"

	"github.com/coder/websocket"
)

// A socket's send queue and its writer. Enqueueing never blocks: a frame goes into the queue,
// and a writer goroutine, which exists only while the queue has something in it (or a keepalive
// ping is due), writes everything queued at once (cork.go). While the instance is busy a new
// writer starts Options.WriteDelay later, to find more to send (Hub.startWriterLater).

// Write queues a frame for the client without blocking. A queue past MaxQueueBytes closes the
// socket as a slow consumer.
func (t *wsTransport) Write(frame []byte) {
	t.enqueueWith(frame, t.hub.busy())
}

// enqueueWith queues a frame; when gather is set and the socket's writer is not running, it
// starts after WriteDelay. A fan-out decides once for every member.
func (t *wsTransport) enqueueWith(frame []byte, gather bool) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	if t.slow {
		t.mu.Unlock()
		return
	}
	if t.queued+len(frame) > t.hub.opts.MaxQueueBytes {
		t.slow = true
		t.mu.Unlock()
		t.hub.metrics.slow.Inc()
		go t.Close(CloseSlowConsumer, "slow consumer: reconnect and resume with since_seq")
		return
	}
	t.queue = append(t.queue, frame)
	t.queued += len(frame)
	if !t.writing && !t.held {
		t.startWriterLocked(gather)
	}
	t.mu.Unlock()
}

// startWriterLocked starts the writer, after WriteDelay when gather is set. t.mu is held.
func (t *wsTransport) startWriterLocked(gather bool) {
	t.writing = true
	t.hub.writers.Add(1)
	if gather {
		t.hub.startWriterLater(t)
	} else {
		go t.write()
	}
}

// holdWrites keeps the writer from starting until releaseWrites, so that the replies the
// session queues meanwhile go out in one write. Only the session holds; waitQueueBelow
// releases.
func (t *wsTransport) holdWrites() {
	t.mu.Lock()
	t.held = true
	t.mu.Unlock()
}

// releaseWrites ends holdWrites and starts the writer for what was queued meanwhile.
func (t *wsTransport) releaseWrites() {
	t.mu.Lock()
	t.releaseWritesLocked()
	t.mu.Unlock()
}

func (t *wsTransport) releaseWritesLocked() {
	if t.held {
		t.held = false
		if !t.writing && t.pendingLocked() && !t.closed {
			t.startWriterLocked(t.hub.busy())
		}
	}
}

// queuedBytes returns the bytes queued and not yet written.
func (t *wsTransport) queuedBytes() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.queued
}

// write is the socket's writer: it drains the queue, then exits.
func (t *wsTransport) write() {
	for {
		t.mu.Lock()
		if !t.pendingLocked() || t.closeErr != nil {
			t.writing = false
			t.hub.writers.Add(-1)
			t.queue, t.queued = nil, 0
			if t.drained != nil {
				close(t.drained)
				t.drained = nil
			}
			t.mu.Unlock()
			return
		}
		// The batch stays counted in queued until it is written.
		batch, bytes := t.queue, t.queued
		t.queue = nil
		t.mu.Unlock()
		t.hub.metrics.writes.Inc()
		if err := t.writeBatch(batch); err != nil {
			t.fail(fmt.Errorf("write: %w", err))
		}
		t.mu.Lock()
		t.queued -= bytes
		if t.drained != nil { // wake the waiters; they check the size again
			close(t.drained)
			t.drained = nil
		}
		t.mu.Unlock()
	}
}

// pendingLocked reports whether the writer has anything to write. t.mu is held.
func (t *wsTransport) pendingLocked() bool { return len(t.queue) > 0 || t.pingDue.Load() }

// writeBatch writes frames to the socket, each write bounded by WriteTimeout: in one write when
// the connection can be corked.
func (t *wsTransport) writeBatch(frames [][]byte) error {
	if t.tcp == nil {
		t.pingDue.Store(false) // never set here: without the cork, the library pings (keepalive)
		// One deadline for the batch: a write that does not progress in WriteTimeout fails.
		ctx, cancel := context.WithTimeout(t.hub.ctx, t.hub.opts.WriteTimeout)
		defer cancel()
		for _, frame := range frames {
			if err := t.ws.Write(ctx, websocket.MessageText, frame); err != nil {
				return err
			}
		}
		return nil
	}
	// The library's writes land in memory (past maxCork, on the network); uncork sends the
	// rest. Every write of the connection, the library's own control frames included, is
	// bounded by its deadline, so no context is needed here to keep a write from hanging.
	t.tcp.cork()
	for i := 0; ; i++ {
		// A ping asked for meanwhile goes out before the next frame, not behind the whole batch,
		// which on a slow link could take longer than the client has to answer it.
		if err := t.writePingIfDue(); err != nil {
			_ = t.tcp.uncork()
			return err
		}
		if i == len(frames) {
			return t.tcp.uncork()
		}
		if err := t.ws.Write(context.Background(), websocket.MessageText, frames[i]); err != nil {
			_ = t.tcp.uncork()
			return err
		}
	}
}

// waitQueueBelow blocks until the queue holds fewer than n bytes, the socket ends or ctx does.
func (t *wsTransport) waitQueueBelow(ctx context.Context, n int) error {
	for {
		t.mu.Lock()
		if t.closeErr != nil || t.closed {
			t.mu.Unlock()
			return errors.New("connection closed")
		}
		if t.queued < n {
			t.mu.Unlock()
			return nil
		}
		t.releaseWritesLocked()    // a held writer would never drain it
		ch := t.writerWakeLocked() // a writer runs while anything is queued
		t.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// writerWakeLocked returns a channel closed when the writer next finishes a batch or exits,
// or nil when no writer runs. t.mu is held.
func (t *wsTransport) writerWakeLocked() chan struct{} {
	if !t.writing {
		return nil
	}
	if t.drained == nil {
		t.drained = make(chan struct{})
	}
	return t.drained
}

// writerWake is writerWakeLocked for a caller that does not hold t.mu.
func (t *wsTransport) writerWake() chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.writerWakeLocked()
}
