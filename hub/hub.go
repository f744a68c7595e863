package hub

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/rooms"
)

// Authenticator returns the session of an upgrade request (bearer token or ticket), or an
// unauthorized error.
type Authenticator func(r *http.Request) (*cg.Session, error)

// Options configure a Hub. Zero values give the documented defaults.
type Options struct {
	// AllowedOrigins are the browser origins that may open sockets, such as https://app.example.
	// Requests without an Origin header (non-browser clients) are allowed.
	AllowedOrigins []string
	// MaxSocketsPerUser bounds the sockets one user holds on this instance. Default: 10.
	MaxSocketsPerUser int
	// MaxQueueBytes bounds the frames queued for one socket. Default: 1 MiB.
	MaxQueueBytes int
	// ReadLimit bounds one client frame; a larger one closes the socket with 1009. Default: 16 KiB.
	ReadLimit int64
	// WriteTimeout bounds one write. Default: 10 s.
	WriteTimeout time.Duration
	// WriteDelay is how long, while the instance is busy (BusyWriters sockets still writing),
	// a socket's first queued frame waits for others to be written with it in one system
	// call. An instance that keeps up writes every frame at once. Negative: never wait.
	// Default: 5 ms.
	WriteDelay time.Duration
	// BusyWriters is the number of sockets with frames not yet written (writers at work or
	// waiting out WriteDelay) from which the instance counts as busy. Writers stuck on clients
	// that do not read count too, until WriteTimeout ends them: many such clients cost everyone
	// WriteDelay, no more. Default: 64. Negative: always busy (tests).
	BusyWriters int
	// PublishTimeout bounds storing a published message. Default: 5 s.
	PublishTimeout time.Duration
	// PingInterval is the keepalive period; a peer that does not answer a ping within
	// PingTimeout is disconnected. Defaults: 25 s and 10 s.
	PingInterval time.Duration
	PingTimeout  time.Duration
	// GapWait is how long an out-of-order message waits for its predecessors before they are
	// read from the store. Default: 100 ms.
	GapWait time.Duration
	// ReconcileInterval is how often the hub compares the seq it delivered in each active room
	// with the store's, to repair announcements the broker lost. Default: 2 s.
	ReconcileInterval time.Duration
	// RoomReadyTimeout bounds activating a room on this instance (its first member's
	// subscribe): subscribing the broker to it and reading its newest seq. Default: 5 s.
	RoomReadyTimeout time.Duration
	// RepairTimeout bounds each read of the store that repairs rooms: a gap's missing messages,
	// the reconcile's newest seqs. Default: 5 s.
	RepairTimeout time.Duration
	// RepairRetry is how long a room whose repair failed (the store did not answer) waits
	// before it tries again. Default: 1 s.
	RepairRetry time.Duration
	// UnsubscribeTimeout bounds unsubscribing the broker from a room its last local member
	// left. Default: 5 s.
	UnsubscribeTimeout time.Duration
	// TypingInterval is the least time between two typing frames of one socket in one room;
	// faster ones are dropped. Default: 1 s.
	TypingInterval time.Duration
	// PresenceInterval is the least time between two presence frames of a room. Default: 1 s.
	PresenceInterval time.Duration
	// RestartJitter is the range of the random reconnect delay suggested on shutdown.
	// Default: 5 s.
	RestartJitter time.Duration
	// Presence counts users across instances. Optional: without it a room counts its local
	// users (a single instance).
	Presence PresenceStore
	// Sockets counts each user's sockets across instances, for MaxSocketsPerUser. Optional:
	// without it the count is this instance's.
	Sockets SocketCounter
	// BackfillPage is the number of messages read from the store at once on resume. Default: 500.
	BackfillPage int
	// DisableParking turns off what relies on the WebSocket library's internals
	// (wsinternals.go): idle readers then wait inside the library's read loop instead of
	// parking, the library sends the keepalive pings, each frame is its own write (no cork),
	// and subscribes are answered one at a time. Idle sockets then cost more memory and busy
	// ones more system calls; it is the way back should an upgrade of the library break an
	// assumption. Default: false (parked readers and corked writes, on a server started with
	// Listener and ConnContext on a Unix system).
	DisableParking bool
	Logger         *slog.Logger
	Registerer     prometheus.Registerer
}

func (o *Options) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if o.MaxSocketsPerUser == 0 {
		o.MaxSocketsPerUser = 10
	}
	if o.MaxQueueBytes == 0 {
		o.MaxQueueBytes = 1 << 20
	}
	if o.ReadLimit == 0 {
		o.ReadLimit = 16 << 10
	}
	if o.BackfillPage == 0 {
		o.BackfillPage = 500
	}
	if o.BusyWriters == 0 {
		o.BusyWriters = 64
	}
	def(&o.WriteTimeout, 10*time.Second)
	def(&o.WriteDelay, 5*time.Millisecond)
	def(&o.PublishTimeout, 5*time.Second)
	def(&o.PingInterval, 25*time.Second)
	def(&o.PingTimeout, 10*time.Second)
	def(&o.GapWait, 100*time.Millisecond)
	def(&o.ReconcileInterval, 2*time.Second)
	def(&o.RoomReadyTimeout, 5*time.Second)
	def(&o.RepairTimeout, 5*time.Second)
	def(&o.RepairRetry, time.Second)
	def(&o.UnsubscribeTimeout, 5*time.Second)
	def(&o.TypingInterval, time.Second)
	def(&o.PresenceInterval, time.Second)
	def(&o.RestartJitter, 5*time.Second)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.DefaultRegisterer
	}
}

// PresenceStore counts the distinct users online in rooms across instances.
type PresenceStore interface {
	// Sync records the local users of each room and returns the distinct users online in each
	// of those rooms across every instance.
	Sync(ctx context.Context, local map[cg.ClassID][]cg.UserID) (map[cg.ClassID]int, error)
}

// SocketCounter counts users' sockets across instances.
type SocketCounter interface {
	// Acquire records a socket of user unless the user holds max sockets already.
	Acquire(ctx context.Context, user cg.UserID, id string, max int) (bool, error)
	// Release forgets a socket.
	Release(ctx context.Context, user cg.UserID, id string) error
	// Flush waits until the releases made so far have gone out.
	Flush(ctx context.Context) error
	// Refresh keeps the entries of the sockets open here from lapsing.
	Refresh(ctx context.Context, sockets map[cg.UserID][]string) error
	// RefreshInterval is how often Refresh must be called.
	RefreshInterval() time.Duration
}

// userSockets is what the hub keeps of a user with sockets on this instance.
type userSockets struct {
	count   int       // guarded by Hub.mu: sockets and reservations
	sockets []*socket // guarded by Hub.mu: the sockets
	// leaves counts the user's leaveRoom calls: a subscribe of the user's that sees it change
	// checks the user's access again.
	leaves atomic.Uint64
}

// Hub holds the sockets and active rooms of this instance.
type Hub struct {
	opts    Options
	store   cg.MessageStore
	broker  cg.Broker
	service *rooms.Service
	auth    Authenticator
	metrics *metrics

	roomTable              // the rooms active here (delivery: room.go)
	sessions  *sessionDeps // what the sockets' sessions share (session.go)

	mu      sync.Mutex
	closing bool                 // guarded by mu
	conns   map[*socket]struct{} // guarded by mu
	// bySession: the sockets of each session, mostly one; a slice, not a set, costs an idle
	// socket 8 bytes here instead of a map of its own (about 300).
	bySession map[cg.SessionID][]*socket // guarded by mu
	byUser    map[cg.UserID]*userSockets // guarded by mu: the users with sockets or reservations

	wg      sync.WaitGroup // readers
	closers sync.WaitGroup // goroutines closing revoked sockets

	workerMu  sync.RWMutex
	noWorkers bool           // guarded by workerMu: shutdown is waiting for the workers
	workers   sync.WaitGroup // room workers
	stop      chan struct{}
	stopped   chan struct{}

	// ctx is the parent of the sockets' work (joins, backfills, publishes: wsTransport.work): it ends
	// when Shutdown has closed every socket. A socket has no context of its own: whatever ends
	// it closes its connection, which ends its reads and writes, and ends the context of the
	// work its reader has under way. A context per socket cost an idle socket about 300 bytes
	// (the context and the channel its first waiter made), and one that publishes a map of its
	// children too.
	ctx    context.Context
	cancel context.CancelFunc

	writers   atomic.Int64 // sockets with frames not yet written: writers at work or waiting out WriteDelay
	parked    atomic.Int64 // sockets whose reader is parked (park.go)
	busyUntil atomic.Int64 // unix ns until which new writers gather
	delayMu   sync.Mutex
	delayed   []*wsTransport // guarded by delayMu: sockets whose writer starts when WriteDelay is up
}

// busyHold is how long the instance gathers after it last found itself busy, so that it
// does not flip with every fan-out.
const busyHold = 100 * time.Millisecond

// busy reports whether new writers should wait to gather frames.
func (h *Hub) busy() bool {
	if h.opts.WriteDelay <= 0 {
		return false
	}
	now := time.Now().UnixNano()
	if h.opts.BusyWriters < 0 || h.writers.Load() >= int64(h.opts.BusyWriters) {
		h.busyUntil.Store(now + int64(busyHold))
		return true
	}
	return now < h.busyUntil.Load()
}

// New returns a hub delivering the rooms of store through broker, and starts its reconciler.
// Call Shutdown to stop it.
func New(store cg.MessageStore, broker cg.Broker, service *rooms.Service, auth Authenticator, opts Options) *Hub {
	opts.setDefaults()
	h := &Hub{
		opts:      opts,
		store:     store,
		broker:    broker,
		service:   service,
		auth:      auth,
		conns:     make(map[*socket]struct{}),
		bySession: make(map[cg.SessionID][]*socket),
		byUser:    make(map[cg.UserID]*userSockets),
		stop:      make(chan struct{}),
		stopped:   make(chan struct{}),
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.metrics = newMetrics(opts.Registerer, h)
	h.roomTable.init(&delivery{
		store:       store,
		broker:      broker,
		opts:        &h.opts,
		metrics:     h.metrics,
		busy:        h.busy,
		startWorker: h.startWorker,
		workerDone:  h.workers.Done,
		anonymityK:  service.Anonymity(),
	})
	h.sessions = &sessionDeps{
		service: service,
		store:   store,
		rooms:   &h.roomTable,
		opts:    &h.opts,
		metrics: h.metrics,
	}
	broker.SetHandler(h)
	go h.reconcileLoop()
	return h
}

// startWriterLater starts t's writer when WriteDelay is up, with those of every socket that
// queued a frame meanwhile: one timer for all of them.
func (h *Hub) startWriterLater(t *wsTransport) {
	h.delayMu.Lock()
	h.delayed = append(h.delayed, t)
	first := len(h.delayed) == 1
	h.delayMu.Unlock()
	if first {
		time.AfterFunc(h.opts.WriteDelay, h.startDelayed)
	}
}

func (h *Hub) startDelayed() {
	h.delayMu.Lock()
	cs := h.delayed
	h.delayed = nil
	h.delayMu.Unlock()
	h.metrics.gathered.Add(float64(len(cs)))
	for _, t := range cs {
		go t.write()
	}
}

// HandleRoomEvent implements cg.BrokerHandler: it queues the event for the room's worker.
func (h *Hub) HandleRoomEvent(id cg.ClassID, payload []byte) {
	e, err := rooms.DecodeEvent(payload)
	if err != nil {
		h.opts.Logger.Warn("drop malformed room event", "room", id, "err", err)
		return
	}
	if r := h.lookup(id); r != nil {
		r.push(e)
	}
}

// HandleControl implements cg.BrokerHandler: it closes the sockets of a revoked session or user.
func (h *Hub) HandleControl(payload []byte) {
	kind, id, err := rooms.DecodeControl(payload)
	if err != nil {
		h.opts.Logger.Warn("drop malformed control event", "err", err)
		return
	}
	if kind == rooms.ControlLeaveRoom {
		user, class, _ := strings.Cut(id, "|")
		h.leaveRoom(cg.UserID(user), cg.ClassID(class))
		return
	}
	var victims []*socket
	h.mu.Lock()
	switch kind {
	case rooms.ControlRevokeSession:
		victims = append(victims, h.bySession[cg.SessionID(id)]...)
	case rooms.ControlRevokeUser:
		if u := h.byUser[cg.UserID(id)]; u != nil {
			victims = append(victims, u.sockets...)
		}
	}
	h.mu.Unlock()
	if kind == rooms.ControlRevokeUser {
		for _, r := range h.activeRooms() {
			r.forgetAll()
		}
	}
	// Closing waits for the peer's close frame: never here, on the broker's goroutine.
	for _, c := range victims {
		h.closers.Add(1)
		go func() {
			defer h.closers.Done()
			c.t.Close(CloseSessionEnded, "session ended")
		}()
	}
}

// leaveRoom ends the subscriptions of the user's local sockets to the room: a user who left a
// class receives nothing more of its room. Each socket is told with an unsubscribed frame.
func (h *Hub) leaveRoom(user cg.UserID, class cg.ClassID) {
	// Counted before anything is detached: a subscribe of the user's whose access was checked
	// before the user left, and which attaches after this looked, sees the count change
	// (session.subscribe). A user without a socket here has no subscribe under way here.
	h.mu.Lock()
	var mine []*socket
	if u := h.byUser[user]; u != nil {
		u.leaves.Add(1)
		mine = slices.Clone(u.sockets)
	}
	h.mu.Unlock()
	r := h.lookup(class)
	if r == nil {
		return
	}
	frame := rooms.UnsubscribedFrame("", class)
	gather := h.busy()
	for _, c := range mine {
		if r.detach(&c.t) {
			c.t.enqueueWith(frame, gather)
		}
	}
}

// LeaveRoom ends the user's subscriptions to the class's room on every instance; call it when
// the user drops the class.
func (h *Hub) LeaveRoom(ctx context.Context, user cg.UserID, class cg.ClassID) error {
	return h.control(ctx, rooms.ControlLeaveRoom, string(user)+"|"+string(class))
}

// HandleResync implements cg.BrokerHandler: every active room catches up from the store.
func (h *Hub) HandleResync() { h.reconcile() }

// RevokeSession closes the session's sockets on every instance.
func (h *Hub) RevokeSession(ctx context.Context, sid cg.SessionID) error {
	return h.control(ctx, rooms.ControlRevokeSession, string(sid))
}

// RevokeUser closes every socket of the user on every instance.
func (h *Hub) RevokeUser(ctx context.Context, user cg.UserID) error {
	return h.control(ctx, rooms.ControlRevokeUser, string(user))
}

func (h *Hub) control(ctx context.Context, kind rooms.ControlKind, id string) error {
	payload := rooms.EncodeControl(kind, id)
	if err := h.broker.PublishControl(ctx, payload); err != nil {
		// Other instances will not hear of it now; this one still acts.
		h.HandleControl(payload)
		return err
	}
	return nil
}

// startWorker counts a room worker about to start; false once Shutdown waits for them.
func (h *Hub) startWorker() bool {
	h.workerMu.RLock()
	defer h.workerMu.RUnlock()
	if h.noWorkers {
		return false
	}
	h.workers.Add(1)
	return true
}

// reconcileLoop periodically repairs rooms whose announcements the broker lost.
func (h *Hub) reconcileLoop() {
	defer close(h.stopped)
	t := time.NewTicker(h.opts.ReconcileInterval)
	defer t.Stop()
	var presence, sockets <-chan time.Time
	if h.opts.Presence != nil {
		pt := time.NewTicker(h.opts.PresenceInterval)
		defer pt.Stop()
		presence = pt.C
	}
	if h.opts.Sockets != nil {
		every := h.opts.Sockets.RefreshInterval()
		if every <= 0 {
			every = time.Second
		}
		st := time.NewTicker(every)
		defer st.Stop()
		sockets = st.C
	}
	for {
		select {
		case <-h.stop:
			if h.opts.Presence != nil {
				h.syncPresence(true)
			}
			return
		case <-t.C:
			h.reconcile()
		case <-presence:
			h.syncPresence(false)
		case <-sockets:
			h.refreshSockets()
		}
	}
}

// refreshSockets keeps this instance's sockets counted across instances.
func (h *Hub) refreshSockets() {
	h.mu.Lock()
	sockets := make(map[cg.UserID][]string)
	for c := range h.conns {
		sockets[c.s.auth.UserID] = append(sockets[c.s.auth.UserID], c.id)
	}
	h.mu.Unlock()
	// Bounded as the other periodic work, which waits on this: a missed refresh is made up by
	// the next, two before an entry lapses.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := h.opts.Sockets.Refresh(ctx, sockets); err != nil {
		h.opts.Logger.Warn("refresh socket counts", "err", err)
	}
}

// syncPresence publishes this instance's users of each active room and announces the counts
// that changed. With final, it withdraws them all (shutdown).
func (h *Hub) syncPresence(final bool) {
	local := make(map[cg.ClassID][]cg.UserID)
	var active []*room
	if !final {
		active = h.activeRooms()
		for _, r := range active {
			local[r.id] = r.localUsers()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.PresenceInterval)
	defer cancel()
	counts, err := h.opts.Presence.Sync(ctx, local)
	if err != nil {
		h.opts.Logger.Warn("sync presence", "err", err)
		return
	}
	for _, r := range active {
		r.setOnline(counts[r.id])
	}
}

// reconcile reads the newest seq of every active room in one query and has every room that is
// behind catch up.
func (h *Hub) reconcile() {
	active := h.activeRooms()
	if len(active) == 0 {
		return
	}
	ids := make([]cg.ClassID, len(active))
	for i, r := range active {
		ids[i] = r.id
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.RepairTimeout)
	defer cancel()
	seqs, err := h.store.LastSeqs(ctx, ids)
	if err != nil {
		h.opts.Logger.Warn("reconcile rooms", "err", err)
		return
	}
	for _, r := range active {
		r.catchUp(seqs[r.id])
	}
}

// reserve admits a socket id of the session, or refuses it when the user holds too many (on this
// instance or, with Options.Sockets, on all) or the hub is shutting down. When the cluster-wide
// count cannot be reached, the instance's own count decides.
func (h *Hub) reserve(ctx context.Context, sess *cg.Session, id string) error {
	tooMany := &cg.Error{Code: cg.ERATELIMITED, Message: "Too many open sockets for this user.", RetryAfterMs: 1000}
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		return &cg.Error{Code: cg.EUNAVAILABLE, Message: "The server is restarting; reconnect shortly.", RetryAfterMs: 1000}
	}
	u := h.byUser[sess.UserID]
	if u == nil {
		u = &userSockets{}
		h.byUser[sess.UserID] = u
	}
	if u.count >= h.opts.MaxSocketsPerUser {
		h.mu.Unlock()
		return tooMany
	}
	u.count++
	h.mu.Unlock()
	if h.opts.Sockets != nil {
		ok, err := h.opts.Sockets.Acquire(ctx, sess.UserID, id, h.opts.MaxSocketsPerUser)
		if err != nil {
			h.opts.Logger.Warn("count sockets across instances", "err", err)
		} else if !ok {
			h.unreserve(sess.UserID, "")
			return tooMany
		}
	}
	return nil
}

// unreserve gives back a reservation (and, given its id, the cluster-wide entry).
func (h *Hub) unreserve(user cg.UserID, id string) {
	h.mu.Lock()
	h.decUserLocked(user)
	closing := h.closing
	h.mu.Unlock()
	if h.opts.Sockets == nil || id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if closing {
		// Every socket is closing at once: this one does not wait for its release, which goes
		// with the others (one wait each, on a saturated core, timed out by the thousand);
		// Shutdown waits for them all (flushReleases).
		cancel()
	}
	if err := h.opts.Sockets.Release(ctx, user, id); err != nil && !closing {
		h.opts.Logger.Warn("release socket count", "err", err)
	}
}

// flushReleases waits, for a second at most, until the cluster-wide entries of the sockets
// closed so far have been removed.
func (h *Hub) flushReleases() {
	if h.opts.Sockets == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := h.opts.Sockets.Flush(ctx); err != nil {
		h.opts.Logger.Warn("release socket counts", "err", err)
	}
}

func (h *Hub) decUserLocked(user cg.UserID) {
	if u := h.byUser[user]; u != nil {
		if u.count--; u.count <= 0 {
			delete(h.byUser, user)
		}
	}
}

// add registers an upgraded connection; false when the hub began shutting down meanwhile.
func (h *Hub) add(c *socket) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.conns[c] = struct{}{}
	h.wg.Add(1) // under mu, so that Shutdown, which takes mu first, waits for this reader
	h.bySession[c.s.auth.ID] = append(h.bySession[c.s.auth.ID], c)
	u := h.byUser[c.s.auth.UserID] // there since reserve
	u.sockets = append(u.sockets, c)
	c.s.user = u
	return true
}

func (h *Hub) remove(c *socket) {
	h.mu.Lock()
	if _, ok := h.conns[c]; !ok {
		h.mu.Unlock()
		return
	}
	delete(h.conns, c)
	if cs := slices.DeleteFunc(h.bySession[c.s.auth.ID], func(o *socket) bool { return o == c }); len(cs) == 0 {
		delete(h.bySession, c.s.auth.ID)
	} else {
		h.bySession[c.s.auth.ID] = cs
	}
	c.s.user.sockets = slices.DeleteFunc(c.s.user.sockets, func(o *socket) bool { return o == c })
	h.mu.Unlock()
	h.unreserve(c.s.auth.UserID, c.id)
}

// Conns returns the number of open sockets.
func (h *Hub) Conns() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// Parked returns the number of sockets whose reader is parked: idle, waiting for the client on
// a small stack (park.go).
func (h *Hub) Parked() int { return int(h.parked.Load()) }

// Shutdown refuses new sockets, closes every socket with 1012 after flushing its queue (or when
// ctx ends), stops the reconciler and waits for every goroutine of the hub to end.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	already := h.closing
	h.closing = true
	conns := make([]*socket, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	if !already {
		close(h.stop)
	}
	<-h.stopped
	// Let the rooms hand what they hold to the sockets' queues; then flush the queues.
	for _, r := range h.activeRooms() {
		r.drain(ctx)
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.t.shutdown(ctx)
		}()
	}
	wg.Wait()
	h.cancel() // every socket is closed: what their readers still wait on ends
	done := make(chan struct{})
	go func() {
		h.closers.Wait()
		h.wg.Wait()
		h.flushReleases()
		h.workerMu.Lock()
		h.noWorkers = true
		h.workerMu.Unlock()
		h.workers.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		h.flushReleases() // the process may exit now
		return ctx.Err()
	}
}
