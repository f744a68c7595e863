package hub

import (
	"bytes"
	"context"
	"time"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/rooms"
	"sync"
)

// ringSize is the number of recent event frames a room keeps (new messages and changes), so that
// a client resuming a little behind is served without a query.
const ringSize = 256

type ringEntry struct {
	seq   int64
	frame []byte
}

// ordered is the frame of an event of the room's order waiting for its turn.
type ordered struct {
	frame  []byte
	change bool // a change to a message (rooms.EventChange)
}

// roomStore is what a room reads of the message store.
type roomStore interface {
	// LastSeqs returns the last event position of each room (0 for an empty one).
	LastSeqs(ctx context.Context, classes []cg.ClassID) (map[cg.ClassID]int64, error)
	// ListEvents returns a page of the room's events after a position, in order.
	ListEvents(ctx context.Context, class cg.ClassID, after int64, limit int) ([]*cg.RoomEvent, error)
}

// roomBroker is what a room asks of the broker: its events, from its first local member's
// arrival to its last one's departure.
type roomBroker interface {
	// Subscribe starts delivering the room's events; each call is undone by one Unsubscribe.
	Subscribe(ctx context.Context, room cg.ClassID) error
	// Unsubscribe undoes one Subscribe.
	Unsubscribe(ctx context.Context, room cg.ClassID) error
}

// recipient is a member's socket as a room sees it: a queue that never blocks.
type recipient interface {
	// enqueueWith queues a frame; gather tells whether a writer it starts waits to gather
	// more (Options.WriteDelay).
	enqueueWith(frame []byte, gather bool)
}

// delivery is what the rooms of a hub share: the store they repair from, the broker, the
// options, the metrics, and the hub's account of their workers.
type delivery struct {
	store   roomStore
	broker  roomBroker
	opts    *Options
	metrics *metrics
	// busy reports whether new writers should wait to gather frames (Hub.busy).
	busy func() bool
	// startWorker counts a room worker about to start; false once the hub no longer starts
	// any. workerDone counts its end.
	startWorker func() bool
	workerDone  func()
	// anonymityK is the room size below which presence counts go out as "fewer than K"
	// (rooms.Bucket).
	anonymityK int
}

// member is a connection's membership in a room.
type member struct {
	room *room
	user cg.UserID
	anon cg.AnonID
	next int64 // the least position this member still needs; guarded by the room lock
}

// room is a class room active on this instance: the local members and the delivery state.
type room struct {
	id cg.ClassID
	d  *delivery

	refs int // guarded by the hub's shard lock

	initOnce sync.Once
	initErr  error
	initDone chan struct{}

	mu        sync.Mutex
	closed    bool                  // guarded by mu
	members   map[recipient]*member // guarded by mu
	users     map[cg.UserID]int     // guarded by mu: local sockets per user
	lastSeq   int64                 // guarded by mu: the last event position delivered
	inbox     []rooms.Event         // guarded by mu
	pending   map[int64]ordered     // guarded by mu: frames that arrived ahead of their turn
	target    int64                 // guarded by mu: a position known to be committed
	fetchNow  bool                  // guarded by mu: read the gap from the store now
	gapTimer  *time.Timer           // guarded by mu
	running   bool                  // guarded by mu: a worker is draining
	ring      [ringSize]ringEntry   // guarded by mu
	presence  *time.Timer           // guarded by mu
	lastPres  time.Time             // guarded by mu
	sentCount int                   // guarded by mu: the online count last announced
	online    int                   // guarded by mu: the count across instances, with Options.Presence
}

func newRoom(d *delivery, id cg.ClassID) *room {
	return &room{
		id:       id,
		d:        d,
		initDone: make(chan struct{}),
		members:  make(map[recipient]*member),
		users:    make(map[cg.UserID]int),
		pending:  make(map[int64]ordered),
	}
}

// ready subscribes the broker to the room and reads its newest seq, once; later callers wait
// for the first. The subscription comes first, so no announcement after the read is missed.
func (r *room) ready(ctx context.Context) error {
	r.initOnce.Do(func() {
		defer close(r.initDone)
		// Not the caller's context: other callers wait for this, whether or not its caller
		// stays.
		ctx, cancel := context.WithTimeout(context.Background(), r.d.opts.RoomReadyTimeout)
		defer cancel()
		if err := r.d.broker.Subscribe(ctx, r.id); err != nil {
			// The reconciler still repairs the room from the store; announcements resume
			// when the broker does.
			r.d.opts.Logger.Warn("subscribe room", "room", r.id, "err", err)
		}
		seqs, err := r.d.store.LastSeqs(ctx, []cg.ClassID{r.id})
		if err != nil {
			r.initErr = err
			return
		}
		r.mu.Lock()
		if seqs[r.id] > r.lastSeq {
			r.lastSeq = seqs[r.id]
		}
		// Announcements that arrived before the read may now be in turn.
		r.drainPendingLocked()
		r.mu.Unlock()
	})
	select {
	case <-r.initDone:
		return r.initErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drain waits until the room's inbox is delivered, or ctx ends.
func (r *room) drain(ctx context.Context) {
	for {
		r.mu.Lock()
		idle := !r.running && len(r.inbox) == 0
		r.mu.Unlock()
		if idle {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// close stops the room after its last member left.
func (r *room) close() {
	r.mu.Lock()
	r.closed = true
	if r.gapTimer != nil {
		r.gapTimer.Stop()
	}
	if r.presence != nil {
		r.presence.Stop()
	}
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), r.d.opts.UnsubscribeTimeout)
	defer cancel()
	// Broker subscriptions are counted, so a new room object for the same id that subscribed
	// meanwhile keeps its subscription.
	if err := r.d.broker.Unsubscribe(ctx, r.id); err != nil {
		r.d.opts.Logger.Warn("unsubscribe room", "room", r.id, "err", err)
	}
}

// push queues an event for delivery; it never blocks.
func (r *room) push(e rooms.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.inbox = append(r.inbox, e)
	r.wakeLocked()
}

// catchUp tells the room that seq is committed: if it has not delivered it, it reads what it
// lacks from the store now.
func (r *room) catchUp(seq int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || seq <= r.lastSeq {
		return
	}
	r.target = max(r.target, seq)
	r.fetchNow = true
	r.wakeLocked()
}

// wakeLocked starts a worker unless one runs.
func (r *room) wakeLocked() {
	if r.running || !r.d.startWorker() {
		return
	}
	r.running = true
	go r.work()
}

// work drains the inbox and repairs gaps, then exits.
func (r *room) work() {
	defer r.d.workerDone()
	r.mu.Lock()
	for {
		for len(r.inbox) > 0 {
			e := r.inbox[0]
			r.inbox[0] = rooms.Event{}
			r.inbox = r.inbox[1:]
			r.handleLocked(e)
		}
		r.inbox = nil
		if r.fetchNow && r.target > r.lastSeq && !r.closed {
			r.fetchNow = false
			r.fetchLocked()
			continue
		}
		r.running = false
		r.mu.Unlock()
		return
	}
}

// handleLocked takes an event from the broker. Events of the room's order (new messages and
// changes alike) are delivered by position: once each, in order, a gap waiting GapWait for the
// announcements that fill it before the store is read.
func (r *room) handleLocked(e rooms.Event) {
	switch e.Kind {
	case rooms.EventOrdered, rooms.EventChange:
		change := e.Kind == rooms.EventChange
		switch {
		case e.Seq <= r.lastSeq:
			r.d.metrics.duplicates.Inc()
		case e.Seq == r.lastSeq+1:
			r.deliverLocked(e.Seq, e.Frame, change)
			r.drainPendingLocked()
		default:
			r.pending[e.Seq] = ordered{e.Frame, change}
			r.target = max(r.target, e.Seq-1)
			if r.gapTimer == nil {
				r.gapTimer = time.AfterFunc(r.d.opts.GapWait, r.gapExpired)
			}
		}
	case rooms.EventTyping:
		r.sendLocked(e.Frame, e.Anon)
	}
}

// gapExpired runs when a gap did not close by itself in time.
func (r *room) gapExpired() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gapTimer = nil
	if r.closed || r.target <= r.lastSeq {
		return
	}
	r.d.metrics.gaps.Inc()
	r.fetchNow = true
	r.wakeLocked()
}

// fetchLocked reads the events after lastSeq up to target from the store, with the lock
// released during the query, and delivers them. Only the worker advances lastSeq, so nothing
// else delivers meanwhile; members attached meanwhile get what they need by their next position.
// A page of the store is a prefix of the room's committed events, so it is delivered as it
// comes.
func (r *room) fetchLocked() {
	for r.target > r.lastSeq && !r.closed {
		after := r.lastSeq
		r.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), r.d.opts.RepairTimeout)
		evs, err := r.d.store.ListEvents(ctx, r.id, after, r.d.opts.BackfillPage)
		cancel()
		r.mu.Lock()
		if err != nil {
			r.d.opts.Logger.Warn("repair room from store", "room", r.id, "err", err)
			if r.gapTimer == nil && !r.closed {
				r.gapTimer = time.AfterFunc(r.d.opts.RepairRetry, r.gapExpired)
			}
			return
		}
		if len(evs) == 0 {
			return
		}
		for _, e := range evs {
			if e.Seq > r.lastSeq {
				r.deliverLocked(e.Seq, rooms.EventFrame(e), e.Kind != cg.EventMessage)
			}
		}
		r.drainPendingLocked()
	}
}

// drainPendingLocked delivers buffered frames that are now in turn.
func (r *room) drainPendingLocked() {
	for {
		f, ok := r.pending[r.lastSeq+1]
		if !ok {
			break
		}
		delete(r.pending, r.lastSeq+1)
		r.deliverLocked(r.lastSeq+1, f.frame, f.change)
	}
	for seq := range r.pending {
		if seq <= r.lastSeq {
			delete(r.pending, seq)
		}
	}
	if len(r.pending) == 0 && r.target <= r.lastSeq && r.gapTimer != nil {
		r.gapTimer.Stop()
		r.gapTimer = nil
	}
}

// sendLocked queues frame for every member but those under the pseudonym skip, deciding once
// for all of them whether their writers gather.
func (r *room) sendLocked(frame []byte, skip cg.AnonID) {
	gather := r.d.busy()
	for c, m := range r.members {
		if skip == "" || m.anon != skip {
			c.enqueueWith(frame, gather)
		}
	}
}

// deliverLocked hands the frame of the event at position seq to every member that needs it, and
// keeps it. A change also brings the kept frames of its message to the message's new state.
func (r *room) deliverLocked(seq int64, frame []byte, change bool) {
	if change {
		r.restateLocked(frame)
	}
	r.lastSeq = seq
	r.ring[seq%ringSize] = ringEntry{seq: seq, frame: frame}
	n := 0
	gather := r.d.busy()
	for c, m := range r.members {
		if seq >= m.next {
			m.next = seq + 1
			c.enqueueWith(frame, gather)
			n++
		}
	}
	r.d.metrics.deliveries.Add(float64(n))
}

// attach makes c a member once it has every event after position since. On the first call it
// also enqueues the subscribed reply (through subscribed, with the room's last position and
// presence), before any event of the room. If events after since are neither delivered live nor
// in the ring, it returns done=false and the position up to which the caller must read the
// store, enqueue, and call attach again with that position.
func (r *room) attach(c recipient, m *member, since *int64, first bool, subscribed func(lastSeq int64, online int)) (done bool, upTo int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	last := r.lastSeq
	if first {
		online := len(r.users)
		if r.users[m.user] == 0 {
			online++
		}
		if r.d.opts.Presence != nil {
			online = max(online, r.online)
		}
		subscribed(last, online)
	}
	from := last
	if since != nil {
		from = *since
	}
	if from < last {
		// Serve from the ring when it holds every event after from, and they fit in half
		// the socket's queue; otherwise the caller reads the store at the pace the client reads.
		if last-from > ringSize {
			return false, last
		}
		size := 0
		for seq := from + 1; seq <= last; seq++ {
			e := r.ring[seq%ringSize]
			if e.seq != seq {
				return false, last
			}
			size += len(e.frame)
		}
		if size > r.d.opts.MaxQueueBytes/2 {
			return false, last
		}
		gather := r.d.busy()
		for seq := from + 1; seq <= last; seq++ {
			c.enqueueWith(r.ring[seq%ringSize].frame, gather)
		}
		from = last
	}
	m.next = from + 1
	r.members[c] = m
	r.users[m.user]++
	if r.users[m.user] == 1 {
		r.presenceChangedLocked()
	}
	return true, 0
}

// has reports whether c is a member of the room.
func (r *room) has(c recipient) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.members[c]
	return ok
}

// detach removes c from the room and reports whether it was a member.
func (r *room) detach(c recipient) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.members[c]
	if !ok {
		return false
	}
	delete(r.members, c)
	if r.users[m.user]--; r.users[m.user] <= 0 {
		delete(r.users, m.user)
		r.presenceChangedLocked()
	}
	return true
}

// presenceChangedLocked announces the room's online count, at most once per PresenceInterval.
func (r *room) presenceChangedLocked() {
	if r.presence != nil || r.closed || r.d.opts.Presence != nil {
		return
	}
	wait := time.Until(r.lastPres.Add(r.d.opts.PresenceInterval))
	r.presence = time.AfterFunc(max(wait, 0), r.sendPresence)
}

func (r *room) sendPresence() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.presence = nil
	if r.closed {
		return
	}
	r.lastPres = time.Now()
	k := r.d.anonymityK
	online := rooms.Bucket(len(r.users), k)
	if online == r.sentCount {
		return
	}
	r.sentCount = online
	r.sendLocked(rooms.PresenceFrame(r.id, online, k), "")
}

// localUsers returns the users with a socket in the room on this instance.
func (r *room) localUsers() []cg.UserID {
	r.mu.Lock()
	defer r.mu.Unlock()
	users := make([]cg.UserID, 0, len(r.users))
	for u := range r.users {
		users = append(users, u)
	}
	return users
}

// setOnline records the room's count across instances and announces it when it changed.
func (r *room) setOnline(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.online = n
	k := r.d.anonymityK
	if n = rooms.Bucket(n, k); r.closed || n == r.sentCount {
		return
	}
	r.sentCount = n
	r.sendLocked(rooms.PresenceFrame(r.id, n, k), "")
}

// restateLocked rewrites the kept frames of the message a change is about with the message as
// the change left it, each keeping its kind, position and reply count (the one at its position).
// So a resume from the ring gets what a resume from the store gets (ListEvents), and never the
// text that a hide, a deletion or an edit took away: the change frame still follows.
func (r *room) restateLocked(frame []byte) {
	ev, err := rooms.DecodeEventFrame(frame)
	if err != nil {
		r.d.opts.Logger.Warn("restate kept frames", "room", r.id, "err", err)
		return
	}
	// A message's JSON object begins with its id; another message's parent_id names it
	// otherwise, and content cannot hold the sequence unescaped.
	key := []byte(`{"id":"` + string(ev.Message.ID) + `"`)
	for i := range r.ring {
		e := &r.ring[i]
		if e.seq == 0 || !bytes.Contains(e.frame, key) {
			continue
		}
		old, err := rooms.DecodeEventFrame(e.frame)
		if err != nil || old.Message.ID != ev.Message.ID {
			continue
		}
		m := *ev.Message
		m.ReplyCount = old.Message.ReplyCount
		e.frame = rooms.EventFrame(&cg.RoomEvent{Seq: e.seq, Kind: old.Kind, Message: &m})
	}
}
