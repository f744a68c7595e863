package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/rooms"
)

// TestSession drives a session with a transport and a rooms service of its own: each frame's
// answer, in order, without a socket or a database.
func TestSession(t *testing.T) {
	t.Run("SubscribeBatch", func(t *testing.T) {
		// Subscribes read together are looked up together and answered in their order, in one
		// write, before the frame that follows them.
		h := newSessionHarness(t)
		h.tr.setBuffered(true)
		h.receive(subscribeFrame("s1", "a", nil))
		h.receive(subscribeFrame("s2", "closed", nil))
		h.receive(subscribeFrame("s3", "b", nil))
		if got := h.tr.written(); len(got) != 0 {
			h.t.Fatalf("answered %v before the batch was read", got)
		}
		h.tr.setBuffered(false)
		h.receive(&rooms.ClientFrame{Type: rooms.TypePing, Ref: "p"})
		h.want("subscribed s1 a", "error s2 not_enrolled", "subscribed s3 b", "pong p")
		if n := h.svc.joinAllCalls(); n != 1 {
			h.t.Fatalf("JoinAll called %d times for one batch, want 1", n)
		}
		if writes := h.tr.writes(); writes != 2 {
			h.t.Fatalf("the batch and the pong went out in %d writes, want 2", writes)
		}
		if got := h.joined(); !slices.Equal(got, []cg.ClassID{"a", "b"}) {
			h.t.Fatalf("joined %v, want [a b]", got)
		}
	})
	t.Run("SubscribeBatchLimit", func(t *testing.T) {
		// A batch ends at maxSubscribeBatch even when more is buffered.
		h := newSessionHarness(t)
		h.tr.setBuffered(true)
		for i := range maxSubscribeBatch {
			h.receive(subscribeFrame(fmt.Sprint("s", i), "a", nil))
		}
		if n := len(h.tr.written()); n != maxSubscribeBatch {
			h.t.Fatalf("%d replies after %d buffered subscribes, want %d", n, maxSubscribeBatch, maxSubscribeBatch)
		}
	})
	t.Run("SubscribedBeforeBacklog", func(t *testing.T) {
		// A resume gets the subscribed reply, then every message after since_seq, then live ones.
		h := newSessionHarness(t)
		h.store.add(3)
		h.receive(subscribeFrame("s", "r", ptr(int64(1))))
		h.want("subscribed s r", "message 2", "message 3")
		h.store.add(1)
		h.announce("r", 4)
		h.waitFor("message 4")
	})
	t.Run("Ack", func(t *testing.T) {
		h := newSessionHarness(t)
		h.receive(subscribeFrame("s", "a", nil))
		h.receive(&rooms.ClientFrame{Type: rooms.TypePublish, Ref: "m", Room: "a", Content: "hi"})
		h.want("subscribed s a", "ack m")
	})
	t.Run("ErrorFrames", func(t *testing.T) {
		h := newSessionHarness(t)
		h.receive(nil, &rooms.FrameError{Ref: "bad", Code: rooms.EINVALIDFRAME, Message: "no"})
		h.svc.failPublish(cg.Errorf(cg.EINVALIDCONTENT, "Empty."))
		h.receive(&rooms.ClientFrame{Type: rooms.TypePublish, Ref: "p1", Room: "a"})
		h.svc.failPublish(cg.Errorf(cg.ECONFLICT, "A code of the HTTP side."))
		h.receive(&rooms.ClientFrame{Type: rooms.TypePublish, Ref: "p2", Room: "a"})
		h.svc.failPublish(fmt.Errorf("a bug"))
		h.receive(&rooms.ClientFrame{Type: rooms.TypePublish, Ref: "p3", Room: "a"})
		h.svc.failPublish(&cg.Error{Code: cg.EUNAVAILABLE, Message: "Later.", Err: fmt.Errorf("connection refused")})
		h.receive(&rooms.ClientFrame{Type: rooms.TypePublish, Ref: "p4", Room: "a"})
		h.want("error bad invalid_frame", "error p1 invalid_content", "error p2 invalid_frame",
			"error p3 internal", "error p4 unavailable")
	})
	t.Run("Unsubscribe", func(t *testing.T) {
		h := newSessionHarness(t)
		h.receive(subscribeFrame("s", "a", nil))
		h.receive(&rooms.ClientFrame{Type: rooms.TypeUnsubscribe, Ref: "u", Room: "a"})
		h.receive(&rooms.ClientFrame{Type: rooms.TypeUnsubscribe, Ref: "u2", Room: "never"})
		h.want("subscribed s a", "unsubscribed u a", "unsubscribed u2 never")
		if r := h.rooms.lookup("a"); r != nil {
			h.t.Fatalf("room a still active after its only member left")
		}
		if got := h.broker.unsubscribed(); !slices.Equal(got, []cg.ClassID{"a"}) {
			h.t.Fatalf("broker unsubscribed from %v, want [a]", got)
		}
	})
	t.Run("RateLimit", func(t *testing.T) {
		h := newSessionHarness(t)
		h.svc.failPublish(&cg.Error{Code: cg.ERATELIMITED, Message: "Too fast.", RetryAfterMs: 1500})
		h.receive(&rooms.ClientFrame{Type: rooms.TypePublish, Ref: "p", Room: "a"})
		h.want("error p rate_limited")
		if got := h.tr.decoded()[0].RetryAfterMs; got != 1500 {
			h.t.Fatalf("retry_after_ms = %d, want 1500", got)
		}
	})
	t.Run("TypingThrottled", func(t *testing.T) {
		h := newSessionHarness(t)
		h.receive(subscribeFrame("s", "a", nil))
		for range 3 {
			h.receive(&rooms.ClientFrame{Type: rooms.TypeTyping, Room: "a"})
		}
		h.receive(&rooms.ClientFrame{Type: rooms.TypeTyping, Room: "b"}) // not joined: looked up
		h.receive(&rooms.ClientFrame{Type: rooms.TypeTyping, Ref: "t", Room: "closed"})
		h.want("subscribed s a", "error t not_enrolled")
		if got := h.svc.typed(); !slices.Equal(got, []string{"a:anon-a", "b:anon-b"}) {
			h.t.Fatalf("typing announced %v, want [a:anon-a b:anon-b]", got)
		}
	})
	t.Run("EndReleasesRooms", func(t *testing.T) {
		h := newSessionHarness(t)
		h.receive(subscribeFrame("s1", "a", nil))
		h.receive(subscribeFrame("s2", "b", nil))
		h.s.end()
		if active := h.rooms.activeRooms(); len(active) != 0 {
			h.t.Fatalf("%d rooms still active after the session ended", len(active))
		}
		if got := h.broker.unsubscribed(); len(got) != 2 {
			h.t.Fatalf("broker unsubscribed from %v, want a and b", got)
		}
	})
	t.Run("LeftDuringLookup", func(t *testing.T) {
		// The user leaves a class while the batch's access is looked up: the rooms not yet
		// joined are looked up again, and the class left is not joined.
		h := newSessionHarness(t)
		h.svc.onJoinAll(func() {
			h.svc.drop("b")
			h.s.user.leaves.Add(1)
		})
		h.tr.setBuffered(true)
		h.receive(subscribeFrame("s1", "a", nil))
		h.tr.setBuffered(false)
		h.receive(subscribeFrame("s2", "b", nil))
		h.want("subscribed s1 a", "error s2 not_enrolled")
		if n := h.svc.joinAllCalls(); n != 2 {
			h.t.Fatalf("JoinAll called %d times, want 2 (the lookup, and again after the leave)", n)
		}
	})
}

// sessionHarness is a session on a fake transport, with rooms on a store and a service of the
// harness's own.
type sessionHarness struct {
	t      *testing.T
	tr     *fakeTransport
	svc    *fakeService
	store  *fakeStore
	broker *countingBroker
	rooms  *roomTable
	s      *session
	wg     sync.WaitGroup // the rooms' workers
}

func newSessionHarness(t *testing.T) *sessionHarness {
	t.Helper()
	h := &sessionHarness{
		t:      t,
		tr:     &fakeTransport{},
		svc:    &fakeService{dropped: map[cg.ClassID]bool{"closed": true}},
		store:  &fakeStore{room: "r"},
		broker: &countingBroker{},
		rooms:  &roomTable{},
	}
	opts := Options{Logger: slog.New(slog.DiscardHandler)}
	opts.setDefaults()
	m := newMetrics(prometheus.NewRegistry(), &Hub{})
	h.rooms.init(&delivery{
		store:       h.store,
		broker:      h.broker,
		opts:        &opts,
		metrics:     m,
		busy:        func() bool { return false },
		startWorker: func() bool { h.wg.Add(1); return true },
		workerDone:  h.wg.Done,
		anonymityK:  1,
	})
	h.s = &session{
		t:    h.tr,
		deps: &sessionDeps{service: h.svc, store: h.store, rooms: h.rooms, opts: &opts, metrics: m},
		auth: &cg.Session{ID: "sess", UserID: "user", ExpiresAt: time.Now().Add(time.Hour)},
		user: &userSockets{},
	}
	t.Cleanup(func() {
		h.s.end()
		h.wg.Wait()
	})
	return h
}

func subscribeFrame(ref string, room cg.ClassID, since *int64) *rooms.ClientFrame {
	return &rooms.ClientFrame{Type: rooms.TypeSubscribe, Ref: ref, Room: room, SinceSeq: since}
}

// receive hands the session a frame as the transport's reader does.
func (h *sessionHarness) receive(f *rooms.ClientFrame, ferr ...*rooms.FrameError) {
	h.t.Helper()
	var e *rooms.FrameError
	if len(ferr) > 0 {
		e = ferr[0]
	}
	h.s.receive(f, e)
}

// announce has room id's worker deliver message seq of the store, as the broker would.
func (h *sessionHarness) announce(id cg.ClassID, seq int64) {
	h.t.Helper()
	r := h.rooms.lookup(id)
	if r == nil {
		h.t.Fatalf("room %s is not active", id)
	}
	r.push(rooms.Event{Kind: rooms.EventMessage, Seq: seq, Frame: rooms.MessageFrame(h.store.message(seq))})
}

// want checks every frame written so far, as "type ref-or-seq room-or-code", presence aside.
func (h *sessionHarness) want(want ...string) {
	h.t.Helper()
	if got := h.tr.written(); !slices.Equal(got, want) {
		h.t.Fatalf("frames %q, want %q", got, want)
	}
}

// waitFor waits until the last frame written is want (one a room's worker writes).
func (h *sessionHarness) waitFor(want string) {
	h.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		got := h.tr.written()
		if len(got) > 0 && got[len(got)-1] == want {
			return
		}
		select {
		case <-h.tr.wrote():
		case <-deadline:
			h.t.Fatalf("frames %q within 10 s, want the last %q", got, want)
		}
	}
}

// joined returns the rooms the session is a member of, in the order it joined them.
func (h *sessionHarness) joined() []cg.ClassID {
	var ids []cg.ClassID
	for _, m := range h.s.rooms {
		if m.room.has(h.tr) {
			ids = append(ids, m.room.id)
		}
	}
	return ids
}

// fakeTransport records the frames a session and its rooms queue, and in how many writes they
// would go out: every frame queued while the writer is not held is a write of its own.
type fakeTransport struct {
	mu       sync.Mutex
	frames   [][]byte      // guarded by mu
	held     bool          // guarded by mu
	heldAny  bool          // guarded by mu: frames were queued while held
	nwrites  int           // guarded by mu
	buffered bool          // guarded by mu: what nextMessageBuffered answers
	closed   int           // guarded by mu: the close code, once closed
	signal   chan struct{} // guarded by mu: closed at the next frame
}

var _ transport = (*fakeTransport)(nil)

func (f *fakeTransport) Write(frame []byte) { f.enqueueWith(frame, false) }

func (f *fakeTransport) enqueueWith(frame []byte, _ bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed != 0 {
		return
	}
	f.frames = append(f.frames, frame)
	if f.held {
		f.heldAny = true
	} else {
		f.nwrites++
	}
	if f.signal != nil {
		close(f.signal)
		f.signal = nil
	}
}

func (f *fakeTransport) Close(code websocket.StatusCode, _ string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed == 0 {
		f.closed = int(code)
	}
}

func (f *fakeTransport) holdWrites() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held = true
}

func (f *fakeTransport) releaseWrites() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.held && f.heldAny {
		f.nwrites++
	}
	f.held, f.heldAny = false, false
}

// queuedBytes is 0: the fake's client reads everything at once.
func (f *fakeTransport) queuedBytes() int { return 0 }

func (f *fakeTransport) waitQueueBelow(ctx context.Context, _ int) error {
	f.releaseWrites()
	return ctx.Err()
}

func (f *fakeTransport) work(timeout time.Duration) (context.Context, func()) {
	if timeout > 0 {
		return context.WithTimeout(context.Background(), timeout)
	}
	return context.WithCancel(context.Background())
}

func (f *fakeTransport) nextMessageBuffered() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.buffered
}

func (f *fakeTransport) setBuffered(b bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buffered = b
}

func (f *fakeTransport) writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nwrites
}

// wrote returns a channel closed when the next frame is queued.
func (f *fakeTransport) wrote() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.signal == nil {
		f.signal = make(chan struct{})
	}
	return f.signal
}

// sessionFrame is a frame a session wrote, decoded.
type sessionFrame struct {
	Type         string          `json:"type"`
	Ref          string          `json:"ref"`
	Room         cg.ClassID      `json:"room"`
	Code         string          `json:"code"`
	RetryAfterMs int64           `json:"retry_after_ms"`
	Raw          json.RawMessage `json:"message"` // an error's text, or a message
	Message      cg.Message      `json:"-"`
}

// decoded returns the frames written, presence frames aside.
func (f *fakeTransport) decoded() []sessionFrame {
	f.mu.Lock()
	frames := slices.Clone(f.frames)
	f.mu.Unlock()
	var out []sessionFrame
	for _, b := range frames {
		var sf sessionFrame
		err := json.Unmarshal(b, &sf)
		if err == nil && sf.Type != "error" && len(sf.Raw) > 0 {
			err = json.Unmarshal(sf.Raw, &sf.Message)
		}
		if err != nil {
			panic(fmt.Sprintf("frame %s: %v", b, err))
		}
		if sf.Type != "presence" {
			out = append(out, sf)
		}
	}
	return out
}

// written returns the frames written as "type ref room", "error ref code" or "message seq".
func (f *fakeTransport) written() []string {
	var out []string
	for _, sf := range f.decoded() {
		switch sf.Type {
		case "error":
			out = append(out, fmt.Sprint("error ", sf.Ref, " ", sf.Code))
		case "message":
			out = append(out, fmt.Sprint("message ", sf.Message.Seq))
		case "ack", "pong":
			out = append(out, fmt.Sprint(sf.Type, " ", sf.Ref))
		default:
			out = append(out, fmt.Sprint(sf.Type, " ", sf.Ref, " ", sf.Room))
		}
	}
	return out
}

// fakeService admits the user to every class but those dropped, and stores every publish.
type fakeService struct {
	mu         sync.Mutex
	dropped    map[cg.ClassID]bool // guarded by mu: classes the user is not enrolled in
	joinAlls   int                 // guarded by mu
	hook       func()              // guarded by mu: runs once, inside the next JoinAll
	publishErr error               // guarded by mu: the next publish's error
	seq        int64               // guarded by mu
	typing     []string            // guarded by mu: "room:anon"
}

var _ roomService = (*fakeService)(nil)

func (s *fakeService) access(room cg.ClassID) (cg.AnonID, error) {
	if s.dropped[room] {
		return "", cg.Errorf(cg.ENOTENROLLED, "You are not enrolled in this class.")
	}
	return cg.AnonID("anon-" + room), nil
}

func (s *fakeService) Join(_ context.Context, _ cg.UserID, room cg.ClassID) (cg.AnonID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.access(room)
}

func (s *fakeService) JoinAll(_ context.Context, _ cg.UserID, ids []cg.ClassID) []cg.AccessResult {
	s.mu.Lock()
	s.joinAlls++
	hook := s.hook
	s.hook = nil
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]cg.AccessResult, len(ids))
	for i, id := range ids {
		anon, err := s.access(id)
		out[i] = cg.AccessResult{Anon: anon, Members: 10, Err: err}
	}
	return out
}

func (s *fakeService) Publish(_ context.Context, user cg.UserID, room cg.ClassID, content string, _ *cg.MessageID, _ string, committed func(*cg.Message)) (*cg.Message, error) {
	s.mu.Lock()
	err := s.publishErr
	s.publishErr = nil
	s.seq++
	seq := s.seq
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	m := &cg.Message{ID: messageID(seq), Room: room, Seq: seq, Content: &content}
	committed(m)
	return m, nil
}

func (s *fakeService) Typing(room cg.ClassID, anon cg.AnonID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.typing = append(s.typing, string(room)+":"+string(anon))
}

func (s *fakeService) Anonymity() int { return 1 }

func (s *fakeService) failPublish(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.publishErr = err
}

func (s *fakeService) drop(room cg.ClassID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropped[room] = true
}

func (s *fakeService) onJoinAll(hook func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = hook
}

func (s *fakeService) joinAllCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.joinAlls
}

func (s *fakeService) typed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.typing)
}

// countingBroker records the rooms unsubscribed.
type countingBroker struct {
	mu    sync.Mutex
	unsub []cg.ClassID // guarded by mu
}

func (*countingBroker) Subscribe(context.Context, cg.ClassID) error { return nil }

func (b *countingBroker) Unsubscribe(_ context.Context, id cg.ClassID) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.unsub = append(b.unsub, id)
	return nil
}

func (b *countingBroker) unsubscribed() []cg.ClassID {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.unsub)
}
