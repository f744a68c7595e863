package hub

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/rooms"
)

// conn is one client socket.
type conn struct {
	hub     *Hub
	id      string // unique among all sockets
	ws      *websocket.Conn
	tcp     *corkConn       // the connection under ws, when the server's listener made it corkable
	raw     syscall.RawConn // tcp's descriptor, when the reader can park (park.go)
	br      *readBuffer     // ws's read buffer, when known: read by the reader goroutine, and by Close after closed is set
	session *cg.Session
	user    *userSockets // the hub's record of the session's user, set by Hub.add

	mu       sync.Mutex
	queue    [][]byte      // guarded by mu
	queued   int           // guarded by mu: bytes in queue
	writing  bool          // guarded by mu: a writer goroutine runs
	held     bool          // guarded by mu: the reader holds the writer back (hold)
	closed   bool          // guarded by mu: no more frames are accepted
	slow     bool          // guarded by mu: the queue overflowed; the socket is being closed
	drained  chan struct{} // guarded by mu: closed when the queue empties, if someone waits
	pingT    *time.Timer   // guarded by mu: the keepalive's next step, or the session's end if sooner (arm)
	pingAt   time.Time     // guarded by mu: when the keepalive's next step is due
	pongDue  bool          // guarded by mu: a ping was sent and no pong has come since
	closeErr error         // guarded by mu
	endWork  func()        // guarded by mu: ends the context of the reader's work under way (work)

	pingDue atomic.Bool // the writer is to send a ping (keepalive); set under mu

	// Owned by the reader goroutine.
	rooms    []*member                // the rooms joined: a few, so a slice (a map cost an idle socket about 300 bytes)
	typingAt map[cg.ClassID]time.Time // the last typing frame sent per room
}

// enqueue queues a frame for the client without blocking. A queue past MaxQueueBytes closes
// the socket as a slow consumer.
func (c *conn) enqueue(frame []byte) {
	c.enqueueWith(frame, c.hub.busy())
}

// enqueueWith queues a frame; when gather is set and the socket's writer is not running, it
// starts after WriteDelay. A fan-out decides once for every member.
func (c *conn) enqueueWith(frame []byte, gather bool) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if c.slow {
		c.mu.Unlock()
		return
	}
	if c.queued+len(frame) > c.hub.opts.MaxQueueBytes {
		c.slow = true
		c.mu.Unlock()
		c.hub.metrics.slow.Inc()
		go c.closeWith(CloseSlowConsumer, "slow consumer: reconnect and resume with since_seq")
		return
	}
	c.queue = append(c.queue, frame)
	c.queued += len(frame)
	if !c.writing && !c.held {
		c.startWriterLocked(gather)
	}
	c.mu.Unlock()
}

// startWriterLocked starts the writer, after WriteDelay when gather is set. c.mu is held.
func (c *conn) startWriterLocked(gather bool) {
	c.writing = true
	c.hub.writers.Add(1)
	if gather {
		c.hub.startWriterLater(c)
	} else {
		go c.write()
	}
}

// hold keeps the writer from starting until release, so that the replies the reader queues
// meanwhile go out in one write. Only the reader holds; waitQueueBelow releases.
func (c *conn) hold() {
	c.mu.Lock()
	c.held = true
	c.mu.Unlock()
}

// release ends hold and starts the writer for what was queued meanwhile.
func (c *conn) release() {
	c.mu.Lock()
	c.releaseLocked()
	c.mu.Unlock()
}

func (c *conn) releaseLocked() {
	if c.held {
		c.held = false
		if !c.writing && c.pendingLocked() && !c.closed {
			c.startWriterLocked(c.hub.busy())
		}
	}
}

// nextMessageBuffered reports whether the client's next frame is already whole in the socket's
// read buffer and is a complete data message (final, text or binary): reading it waits neither
// for the client nor, as after a control frame the library answers itself, for a frame after it.
func (c *conn) nextMessageBuffered() bool {
	if c.br == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Close reads the peer's close frame through the same buffer; it runs after closed is set.
	if c.closed {
		return false
	}
	// Peek of no more than is buffered reads nothing from the connection.
	n := c.br.Buffered()
	head, _ := c.br.Peek(min(n, 4))
	return wholeDataMessage(head, n)
}

// queuedBytes returns the bytes queued and not yet written.
func (c *conn) queuedBytes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queued
}

// write is the connection's writer: it drains the queue, then exits.
func (c *conn) write() {
	for {
		c.mu.Lock()
		if !c.pendingLocked() || c.closeErr != nil {
			c.writing = false
			c.hub.writers.Add(-1)
			c.queue, c.queued = nil, 0
			if c.drained != nil {
				close(c.drained)
				c.drained = nil
			}
			c.mu.Unlock()
			return
		}
		// The batch stays counted in queued until it is written.
		batch, bytes := c.queue, c.queued
		c.queue = nil
		c.mu.Unlock()
		c.hub.metrics.writes.Inc()
		if err := c.writeBatch(batch); err != nil {
			c.fail(fmt.Errorf("write: %w", err))
		}
		c.mu.Lock()
		c.queued -= bytes
		if c.drained != nil { // wake the waiters; they check the size again
			close(c.drained)
			c.drained = nil
		}
		c.mu.Unlock()
	}
}

// pendingLocked reports whether the writer has anything to write. c.mu is held.
func (c *conn) pendingLocked() bool { return len(c.queue) > 0 || c.pingDue.Load() }

// writeBatch writes frames to the socket, each write bounded by WriteTimeout: in one write when
// the connection can be corked.
func (c *conn) writeBatch(frames [][]byte) error {
	if c.tcp == nil {
		c.pingDue.Store(false) // never set here: without the cork, the library pings (keepalive)
		// One deadline for the batch: a write that does not progress in WriteTimeout fails.
		ctx, cancel := context.WithTimeout(c.hub.ctx, c.hub.opts.WriteTimeout)
		defer cancel()
		for _, frame := range frames {
			if err := c.ws.Write(ctx, websocket.MessageText, frame); err != nil {
				return err
			}
		}
		return nil
	}
	// The library's writes land in memory (past maxCork, on the network); uncork sends the
	// rest. Every write of the connection, the library's own control frames included, is
	// bounded by its deadline, so no context is needed here to keep a write from hanging.
	c.tcp.cork()
	for i := 0; ; i++ {
		// A ping asked for meanwhile goes out before the next frame, not behind the whole batch,
		// which on a slow link could take longer than the client has to answer it.
		if err := c.writePingIfDue(); err != nil {
			_ = c.tcp.uncork()
			return err
		}
		if i == len(frames) {
			return c.tcp.uncork()
		}
		if err := c.ws.Write(context.Background(), websocket.MessageText, frames[i]); err != nil {
			_ = c.tcp.uncork()
			return err
		}
	}
}

// waitQueueBelow blocks until the queue holds fewer than n bytes, the connection ends or ctx
// does.
func (c *conn) waitQueueBelow(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		if c.closeErr != nil || c.closed {
			c.mu.Unlock()
			return errors.New("connection closed")
		}
		if c.queued < n {
			c.mu.Unlock()
			return nil
		}
		c.releaseLocked()          // a held writer would never drain it
		ch := c.writerWakeLocked() // a writer runs while anything is queued
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// writerWakeLocked returns a channel closed when the writer next finishes a batch or exits,
// or nil when no writer runs. c.mu is held.
func (c *conn) writerWakeLocked() chan struct{} {
	if !c.writing {
		return nil
	}
	if c.drained == nil {
		c.drained = make(chan struct{})
	}
	return c.drained
}

// writerWake is writerWakeLocked for a caller that does not hold c.mu.
func (c *conn) writerWake() chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writerWakeLocked()
}

// work returns the context for one piece of the reader's work (the lookups of a batch of
// subscribes, a publish, a join): it ends with done, with the socket (at once when the socket
// fails or is closed, after the close frame when the instance shuts down), or, if timeout is
// set, after it. The socket has no context of its own (Hub.ctx says why); this one lives only
// while the work does.
func (c *conn) work(timeout time.Duration) (ctx context.Context, done func()) {
	var cancel context.CancelFunc
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(c.hub.ctx, timeout)
	} else {
		ctx, cancel = context.WithCancel(c.hub.ctx)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		cancel()
		return ctx, cancel
	}
	c.endWork = cancel
	return ctx, func() {
		c.mu.Lock()
		c.endWork = nil
		c.mu.Unlock()
		cancel()
	}
}

// endWorkLocked ends the reader's work under way, if any: the socket is closed. c.mu is held.
func (c *conn) endWorkLocked() {
	if c.endWork != nil {
		c.endWork()
		c.endWork = nil
	}
}

// fail records a broken connection and ends it without a close handshake.
func (c *conn) fail(err error) {
	c.mu.Lock()
	if c.closeErr == nil {
		c.closeErr = err
	}
	c.closed = true
	c.endWorkLocked()
	c.mu.Unlock()
	_ = c.ws.CloseNow()
}

// closeWith stops accepting frames and closes the socket with code, dropping what is queued.
func (c *conn) closeWith(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.endWorkLocked()
	c.mu.Unlock()
	c.endPings()
	_ = c.ws.Close(code, reason)
}

// shutdown flushes the queue (until ctx ends), then closes with 1012 and a suggested random
// reconnect delay, so that a deploy does not turn into a reconnect storm.
func (c *conn) shutdown(ctx context.Context) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true // nothing new is queued; what is queued is still written
	if c.held && !c.writing && c.pendingLocked() {
		c.startWriterLocked(false) // what the reader queued while holding the writer back, too
	}
	c.mu.Unlock()
	// The writer wakes the waiters after every batch; wait until it has written everything,
	// or until ctx ends (then close anyway).
	for ch := c.writerWake(); ch != nil && ctx.Err() == nil; ch = c.writerWake() {
		select {
		case <-ch:
		case <-ctx.Done():
		}
	}
	delay := rand.N(c.hub.opts.RestartJitter) + 500*time.Millisecond
	c.endPings()
	_ = c.ws.Close(CloseServiceRestart, fmt.Sprintf("server restart; reconnect_after_ms=%d", delay.Milliseconds()))
	// Only now: a commit under way may still finish (its ack is not sent, the socket being
	// closed; the client's resend with the same client_msg_id finds the message).
	c.mu.Lock()
	c.endWorkLocked()
	c.mu.Unlock()
}

// armLocked sets the socket's one timer to the keepalive's next step, due in d, or to the
// session's end if that comes sooner. One timer rather than two saves an idle socket about
// 200 bytes. c.mu is held.
func (c *conn) armLocked(d time.Duration) {
	c.pingAt = time.Now().Add(d)
	d = max(min(d, time.Until(c.session.ExpiresAt)), 0)
	if c.pingT == nil {
		c.pingT = time.AfterFunc(d, c.keepalive)
	} else {
		c.pingT.Reset(d)
	}
}

// keepalive is the socket's timer. At the session's end it closes the socket with 4001.
// Otherwise it drops a peer that has not answered the last ping, or sends the next: the writer
// writes it when the reader parks (then the parked reader or the library hears the pong), and
// the library's Ping otherwise.
func (c *conn) keepalive() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	now := time.Now()
	if !now.Before(c.session.ExpiresAt) {
		c.mu.Unlock()
		c.closeWith(CloseSessionEnded, "session expired")
		return
	}
	if now.Before(c.pingAt) {
		// Woken for the session's end, which the wall clock has not reached after all (it was
		// set back): wait again.
		c.armLocked(c.pingAt.Sub(now))
		c.mu.Unlock()
		return
	}
	if !c.canPark() {
		// The library's Ping waits for the pong; the session's end, should it come meanwhile,
		// stays armed (and a fire for it meanwhile finds pingAt not yet reached).
		c.armLocked(c.hub.opts.PingTimeout + c.hub.opts.PingInterval)
		c.mu.Unlock()
		ctx, cancel := context.WithTimeout(c.hub.ctx, c.hub.opts.PingTimeout)
		defer cancel()
		if err := c.ws.Ping(ctx); err != nil {
			c.fail(fmt.Errorf("ping: %w", err))
			return
		}
		c.mu.Lock()
		if !c.closed {
			c.armLocked(c.hub.opts.PingInterval)
		}
		c.mu.Unlock()
		return
	}
	if c.pongDue {
		c.mu.Unlock()
		c.fail(errors.New("ping: no pong in time"))
		return
	}
	c.pingDue.Store(true)
	c.pongDue = true
	if !c.writing && !c.held {
		c.startWriterLocked(false)
	}
	c.armLocked(c.hub.opts.PingTimeout)
	c.mu.Unlock()
}

// pong counts a pong as the answer to the last ping.
func (c *conn) pong() {
	c.mu.Lock()
	c.pongLocked()
	c.mu.Unlock()
}

func (c *conn) pongLocked() {
	if c.pongDue && !c.closed {
		c.pongDue = false
		c.armLocked(c.hub.opts.PingInterval)
	}
}

// writePingIfDue sends the ping keepalive asked for, if it did. Only the writer writes it, and
// only between the library's frames: every one of them is whole once its Write returns, and the
// library's own control frames (at most 127 bytes, in a write buffer of 128) reach the
// connection in one write each.
func (c *conn) writePingIfDue() error {
	if !c.pingDue.Load() || !c.pingDue.CompareAndSwap(true, false) {
		return nil
	}
	return c.tcp.writePing()
}

// endPings keeps the writer's pings from following the close frame the caller is about to
// have the library send.
func (c *conn) endPings() {
	if c.tcp != nil {
		c.tcp.endPings()
	}
}

// run is the body of the socket's reader goroutines: the first (start) sets the socket up;
// one that follows a parked reader waits for the client first. Each reads until the socket
// ends or goes idle; idle, it hands over to a new goroutine, whose stack is small, and ends.
func (c *conn) run(start bool) {
	parked := false
	defer func() {
		// A bug in handling one frame ends that socket (serve's cleanup has run), not the
		// process, as the HTTP server's own recovery did when this ran on its goroutine.
		if v := recover(); v != nil {
			c.hub.opts.Logger.Error("socket panic", "panic", v, "stack", string(debug.Stack()))
		}
		if parked {
			go c.run(false)
		} else {
			c.hub.wg.Done() // added by Hub.add
		}
	}()
	parked = c.serve(start)
}

// serve runs one reader goroutine's part; it returns true when the reader should park, and
// otherwise, the socket having ended, leaves every room.
func (c *conn) serve(start bool) (park bool) {
	defer func() {
		if !park {
			c.cleanup()
		}
	}()
	if start {
		c.start()
		c.subscribeUser()
	} else {
		c.park()
		c.wake()
	}
	return c.read(!start)
}

// start arms the socket's timer (keepalive).
func (c *conn) start() {
	c.ws.SetReadLimit(c.hub.opts.ReadLimit)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.armLocked(c.hub.opts.PingInterval)
	}
}

// read reads and answers the client's frames until the socket ends, or until the reader should
// park (idle), when it returns true. woken is set after parking: what woke it is in the socket,
// not yet in its buffer.
func (c *conn) read(woken bool) (park bool) {
	var subs []*rooms.ClientFrame // subscribe frames read and not yet answered
	for {
		if len(subs) == 0 && !woken && c.idle() {
			return true
		}
		woken = false
		// No context: whatever ends the socket closes the connection, which ends the read, and a
		// read with a context registers on it (a context per socket kept a map for that).
		typ, data, err := c.ws.Read(context.Background())
		if err != nil {
			return
		}
		var f *rooms.ClientFrame
		var ferr *rooms.FrameError
		switch {
		case typ != websocket.MessageText:
			ferr = &rooms.FrameError{Code: rooms.EINVALIDFRAME, Message: "Frames must be JSON text."}
		case !utf8.Valid(data):
			c.closeWith(websocket.StatusInvalidFramePayloadData, "text frame is not valid UTF-8")
			return
		default:
			f, ferr = rooms.DecodeFrame(data)
		}
		// Subscribes that arrive together, as when a client opens its rooms, are answered
		// together: one access lookup, one write. Any other frame is answered after them.
		if ferr == nil && f.Type == rooms.TypeSubscribe {
			subs = append(subs, f)
			if len(subs) < maxSubscribeBatch && c.nextMessageBuffered() {
				continue
			}
		}
		c.subscribeAll(subs)
		clear(subs)
		subs = subs[:0]
		switch {
		case ferr != nil:
			c.enqueue(rooms.ErrorFrame(ferr.Ref, ferr.Code, ferr.Message, 0))
		case f.Type != rooms.TypeSubscribe:
			c.handle(f)
		}
	}
}

// maxSubscribeBatch is the most subscribe frames answered together.
const maxSubscribeBatch = 64

func (c *conn) cleanup() {
	c.mu.Lock()
	c.closed = true
	c.endWorkLocked()
	if c.pingT != nil {
		c.pingT.Stop()
	}
	c.mu.Unlock()
	for _, m := range c.rooms {
		m.room.detach(c)
		c.hub.release(m.room)
	}
	c.rooms = nil
	c.unsubscribeUser()
	c.hub.remove(c)
	_ = c.ws.CloseNow()
}

// handle answers one client frame other than subscribe (subscribeAll).
func (c *conn) handle(f *rooms.ClientFrame) {
	var err error
	switch f.Type {
	case rooms.TypePing:
		c.enqueue(rooms.PongFrame(f.Ref))
	case rooms.TypeUnsubscribe:
		c.unsubscribe(f.Room)
		c.enqueue(rooms.UnsubscribedFrame(f.Ref, f.Room))
	case rooms.TypePublish:
		err = c.publish(f)
	case rooms.TypeTyping:
		err = c.typing(f)
	case rooms.TypeRead:
		err = c.markRead(f)
	}
	if err != nil {
		c.replyError(f.Ref, err)
	}
}

func (c *conn) replyError(ref string, err error) {
	code := cg.ErrorCode(err)
	var appErr *cg.Error
	var retry int64
	if errors.As(err, &appErr) {
		retry = appErr.RetryAfterMs
	}
	switch {
	case code == cg.EINTERNAL:
		if !errors.Is(err, context.Canceled) {
			c.hub.opts.Logger.Error("socket frame", "err", err)
		}
	case code == cg.EUNAVAILABLE:
		c.hub.opts.Logger.Warn("socket frame", "err", err)
	case !cg.SocketCode(code):
		code = rooms.EINVALIDFRAME
	}
	c.enqueue(rooms.ErrorFrame(ref, code, cg.ErrorMessage(err), retry))
}

// subscribeAll answers subscribe frames in order. Their access checks are looked up together,
// and their replies are held back until all are queued, to go out in one write.
func (c *conn) subscribeAll(fs []*rooms.ClientFrame) {
	if len(fs) == 0 {
		return
	}
	ids := make([]cg.ClassID, len(fs))
	for i, f := range fs {
		ids[i] = f.Room
	}
	ctx, done := c.work(0)
	defer done()
	leaves := c.user.leaves.Load()
	access := c.hub.service.JoinAll(ctx, c.session.UserID, ids)
	c.hold()
	defer c.release()
	for i, f := range fs {
		if ctx.Err() != nil {
			return // the socket has ended: what is left of the batch would only load the database
		}
		// A user who left a class since the lookup must not join its room: the LeaveRoom event
		// that ends such subscriptions may have come and gone before this one existed. The rooms
		// not yet joined are looked up again, together.
		if n := c.user.leaves.Load(); n != leaves {
			leaves = n
			copy(access[i:], c.hub.service.JoinAll(ctx, c.session.UserID, ids[i:]))
		}
		// A room's backlog may take up to half the queue (room.attach); what the rooms before it
		// queued drains first, so that rooms answered together cannot overflow it.
		if i > 0 && c.queuedBytes() >= c.hub.opts.MaxQueueBytes/4 {
			if err := c.waitQueueBelow(ctx, c.hub.opts.MaxQueueBytes/4); err != nil {
				return // the connection is ending
			}
			c.hold()
		}
		err := access[i].Err
		if err == nil {
			err = c.subscribe(ctx, f, access[i], leaves)
		}
		if err != nil {
			c.replyError(f.Ref, err)
		}
	}
}

// subscribe joins a room under the user's pseudonym (access.Anon), checked when the user's leaves
// count was leaves: the subscribed reply, then every message after since_seq, then live ones, with
// no gap and no duplicate.
func (c *conn) subscribe(ctx context.Context, f *rooms.ClientFrame, access cg.AccessResult, leaves uint64) error {
	anon, k := access.Anon, c.hub.service.Anonymity()
	c.unsubscribe(f.Room) // a repeated subscribe starts over
	r := c.hub.acquire(f.Room)
	if err := r.ready(ctx); err != nil {
		c.hub.release(r)
		return err
	}
	m := &member{room: r, user: c.session.UserID, anon: anon}
	since := f.SinceSeq
	for first := true; ; first = false {
		done, upTo := r.attach(c, m, since, first, func(lastSeq int64, online int) {
			c.enqueue(rooms.SubscribedFrame(f.Ref, f.Room, anon, lastSeq, online, access.Members, k))
		})
		if done {
			break
		}
		// Read the missed messages from the store, a page at a time, never letting the
		// queue grow past half its bound: the client is served at the pace it reads.
		for *since < upTo {
			msgs, err := c.hub.store.ListMessages(ctx, f.Room, cg.MessageFilter{AfterSeq: since, Limit: c.hub.opts.BackfillPage})
			if err != nil {
				c.hub.release(r)
				return err
			}
			if len(msgs) == 0 {
				break
			}
			c.release() // the queue drains while the store is read
			for _, msg := range msgs {
				if err := c.waitQueueBelow(ctx, c.hub.opts.MaxQueueBytes/2); err != nil {
					c.hub.release(r)
					return err
				}
				c.enqueue(rooms.MessageFrame(msg))
			}
			s := msgs[len(msgs)-1].Seq
			since = &s
		}
	}
	c.rooms = append(c.rooms, m)
	if c.user.leaves.Load() != leaves {
		// Left while joining (the room's backfill, its readiness): leave as the event would have
		// had it come a moment later, unless the event did.
		if _, err := c.hub.service.Join(ctx, c.session.UserID, f.Room); err != nil {
			if c.unsubscribe(f.Room) {
				c.enqueue(rooms.UnsubscribedFrame("", f.Room))
			}
			if cg.ErrorCode(err) != cg.ENOTENROLLED {
				return err
			}
		}
	}
	return nil
}

// unsubscribe leaves a room, if joined.
// It reports whether the socket was still a member (a LeaveRoom event may have detached it).
func (c *conn) unsubscribe(id cg.ClassID) bool {
	i := c.joined(id)
	if i < 0 {
		return false
	}
	m := c.rooms[i]
	c.rooms = slices.Delete(c.rooms, i, i+1)
	member := m.room.detach(c)
	c.hub.release(m.room)
	return member
}

// joined returns the index in c.rooms of the room id, or -1.
func (c *conn) joined(id cg.ClassID) int {
	return slices.IndexFunc(c.rooms, func(m *member) bool { return m.room.id == id })
}

// publish stores a message; the ack is queued before the message fans out.
func (c *conn) publish(f *rooms.ClientFrame) error {
	// Bounded, so that a Postgres that does not answer fails the publish with unavailable in
	// seconds (pgx cancels the query when the context ends).
	ctx, done := c.work(c.hub.opts.PublishTimeout)
	defer done()
	start := time.Now()
	_, err := c.hub.service.Publish(ctx, c.session.UserID, f.Room, f.Content, f.ParentID, f.ClientMsgID, func(m *cg.Message) {
		c.hub.metrics.commit.Observe(time.Since(start).Seconds())
		c.enqueue(rooms.AckFrame(f.Ref, m))
	})
	return err
}

// typing tells the others in the room, at most once per TypingInterval per socket and room.
func (c *conn) typing(f *rooms.ClientFrame) error {
	now := time.Now()
	if now.Sub(c.typingAt[f.Room]) < c.hub.opts.TypingInterval {
		return nil
	}
	if c.typingAt == nil {
		c.typingAt = make(map[cg.ClassID]time.Time)
	}
	c.typingAt[f.Room] = now // refused frames count too: each costs a query
	var anon cg.AnonID
	if i := c.joined(f.Room); i >= 0 && c.rooms[i].room.has(c) {
		anon = c.rooms[i].anon
	} else {
		// Not joined on this socket, or no longer (a LeaveRoom event detaches the socket without
		// the reader knowing; it forgets the room now): check enrollment, find the pseudonym.
		c.unsubscribe(f.Room)
		ctx, done := c.work(0)
		a, err := c.hub.service.Join(ctx, c.session.UserID, f.Room)
		done()
		if err != nil {
			return err
		}
		anon = a
	}
	c.hub.service.Typing(f.Room, anon)
	return nil
}
