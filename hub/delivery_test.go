package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/rooms"
)

// TestDelivery feeds a room sequences of events, with a store of its own, and checks the
// positions each member gets: every event (new messages and changes) once, in order, with no gap.
func TestDelivery(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before int // messages committed before the room is active; -1: the test activates it
		run    func(h *deliveryHarness)
	}{
		{"InOrder", 0, func(h *deliveryHarness) {
			a := h.attach("a", nil)
			h.commit(3)
			h.announce(1, 2, 3)
			h.want(a, 1, 2, 3)
			if n := h.store.listCalls(); n != 0 {
				h.t.Fatalf("the store was read %d times for messages announced in order", n)
			}
		}},
		{"Gap", 0, func(h *deliveryHarness) {
			// 2's announcement is lost: 3 waits GapWait for it, then 2 is read from the store.
			a := h.attach("a", nil)
			h.commit(3)
			h.announce(1, 3)
			h.want(a, 1, 2, 3)
			h.wantCount("commongrounds_room_gaps_repaired_total", 1)
		}},
		{"Duplicate", 0, func(h *deliveryHarness) {
			a := h.attach("a", nil)
			h.commit(2)
			h.announce(1, 1, 2, 1)
			h.want(a, 1, 2)
			h.wantCount("commongrounds_room_duplicates_dropped_total", 2)
		}},
		{"ChangeWhileWaiting", 0, func(h *deliveryHarness) {
			// 3 waits for 2 when it is hidden (position 4): its frame shows it as it was, and
			// the hide follows it in order.
			a := h.attach("a", nil)
			h.commit(3)
			h.announce(1, 3)
			h.announce(h.change(cg.EventHidden, 3))
			h.want(a, 1, 2, 3, 4)
			h.wantEvents(a, "message 1", "message 2", "message 3", "message_hidden 4")
			if f := h.frameAt(a, 4); !f.Message.Hidden || f.Message.Content != nil || f.Message.Seq != 3 {
				h.t.Fatalf("the hide carries %+v, want message 3 hidden, without content", f.Message)
			}
		}},
		{"ChangeDuringFetch", 0, func(h *deliveryHarness) {
			// The fetch of 2 is under way when 3 is hidden: the hide follows 3, and a resume
			// from the ring gets both, 3 as the hide left it (as the store has it).
			a := h.attach("a", nil)
			h.commit(3)
			release := h.store.blockNextList()
			h.announce(1, 3)
			h.store.waitListing(h.t)
			h.announce(h.change(cg.EventHidden, 3))
			release()
			h.want(a, 1, 2, 3, 4)
			h.wantEvents(a, "message 1", "message 2", "message 3", "message_hidden 4")
			lists := h.store.listCalls()
			b := h.attach("b", ptr(int64(2)))
			h.want(b, 3, 4)
			if n := h.store.listCalls(); n != lists {
				h.t.Fatalf("the store was read %d times for a resume the ring holds", n-lists)
			}
			if f := h.frameAt(b, 3); !f.Message.Hidden || f.Message.Content != nil {
				h.t.Fatalf("resumed message 3 from the ring as %+v, want it hidden", f.Message)
			}
		}},
		{"RingRestated", 0, func(h *deliveryHarness) {
			// Changes delivered live bring the ring's earlier frames of their message to its new
			// state: a resume from the ring never shows what was hidden or edited away, and
			// gets every change after the frame it changes.
			a := h.attach("a", nil)
			h.commit(3)
			h.announce(1, 2, 3)
			h.announce(h.change(cg.EventEdited, 3), h.change(cg.EventHidden, 3))
			h.want(a, 1, 2, 3, 4, 5)
			if f := h.frameAt(a, 3); f.Message.Content == nil || *f.Message.Content != "message 3" {
				h.t.Fatalf("a's frame of message 3 is %+v, want it as it was when it was delivered", f.Message)
			}
			b := h.attach("b", ptr(int64(2)))
			h.want(b, 3, 4, 5)
			h.wantEvents(b, "message 3", "message_edited 4", "message_hidden 5")
			for _, pos := range []int64{3, 4, 5} {
				if f := h.frameAt(b, pos); !f.Message.Hidden || f.Message.Content != nil || f.Message.Seq != 3 {
					h.t.Fatalf("resumed event %d from the ring as %+v, want message 3 hidden", pos, f.Message)
				}
			}
			if b.fromStore {
				h.t.Fatal("b resumed from the store, want the ring")
			}
		}},
		{"ChangeGap", 0, func(h *deliveryHarness) {
			// Every kind of change is an event in order; the edit's announcement is lost, and
			// it is read from the store as the message is now.
			a := h.attach("a", nil)
			h.commit(2)
			edit := h.change(cg.EventEdited, 1)
			h.commit(1)
			h.announce(1, 2, 4)
			h.want(a, 1, 2, 3, 4)
			h.wantEvents(a, "message 1", "message 2", "message_edited 3", "message 4")
			h.wantCount("commongrounds_room_gaps_repaired_total", 1)
			if f := h.frameAt(a, edit); f.Message.Content == nil || *f.Message.Content != "edited 1" {
				h.t.Fatalf("the repaired edit carries %+v, want the edited content", f.Message)
			}
			var kinds []int64
			for _, k := range []cg.EventKind{cg.EventDeleted, cg.EventRestored, cg.EventErased} {
				kinds = append(kinds, h.change(k, 2))
			}
			h.announce(kinds[2], kinds[0], kinds[1], kinds[0])
			h.want(a, 1, 2, 3, 4, 5, 6, 7)
			h.wantEvents(a, "message 1", "message 2", "message_edited 3", "message 4",
				"message_deleted 5", "message_restored 6", "message_erased 7")
			h.wantCount("commongrounds_room_duplicates_dropped_total", 1)
		}},
		{"StoreError", 0, func(h *deliveryHarness) {
			a := h.attach("a", nil)
			h.commit(3)
			h.store.failNext(1)
			h.announce(1, 3)
			h.want(a, 1, 2, 3)
		}},
		{"AttachMidFetch", 0, func(h *deliveryHarness) {
			// b attaches while the room reads 2 from the store, knowing of everything up to 3
			// already: it gets nothing twice.
			a := h.attach("a", nil)
			h.commit(4)
			release := h.store.blockNextList()
			h.announce(1, 3)
			h.store.waitListing(h.t)
			b := h.attach("b", ptr(int64(3)))
			release()
			h.announce(4)
			h.want(a, 1, 2, 3, 4)
			h.want(b, 4)
		}},
		{"ResumeFromRing", 0, func(h *deliveryHarness) {
			a := h.attach("a", nil)
			h.commit(5)
			h.announce(1, 2, 3, 4, 5)
			h.want(a, 1, 2, 3, 4, 5)
			lists := h.store.listCalls()
			b := h.attach("b", ptr(int64(2)))
			h.commit(1)
			h.announce(6)
			h.want(b, 3, 4, 5, 6)
			if n := h.store.listCalls(); n != lists {
				h.t.Fatalf("the store was read %d times for a resume the ring holds", n-lists)
			}
		}},
		{"ResumeFromStore", 10, func(h *deliveryHarness) {
			// The room became active after 10 messages: its ring holds none of them.
			b := h.attach("b", ptr(int64(2)))
			h.wantStoreRead(b)
			h.commit(1)
			h.announce(11)
			h.want(b, 3, 4, 5, 6, 7, 8, 9, 10, 11)
		}},
		{"ResumeFromStoreWithChanges", -1, func(h *deliveryHarness) {
			// Changes made before the room was active come from the store in order, after the
			// messages they change, each message as it is now.
			h.commit(3)
			h.change(cg.EventEdited, 1)
			h.change(cg.EventHidden, 2)
			h.r = newRoom(h.d, "r")
			if err := h.r.ready(context.Background()); err != nil {
				h.t.Fatal(err)
			}
			b := h.attach("b", ptr(int64(1)))
			h.wantStoreRead(b)
			h.want(b, 2, 3, 4, 5)
			h.wantEvents(b, "message 2", "message 3", "message_edited 4", "message_hidden 5")
			if f := h.frameAt(b, 2); !f.Message.Hidden {
				h.t.Fatalf("message 2 read from the store as %+v, want it as it is now (hidden)", f.Message)
			}
		}},
		{"ResumeFromStoreBeyondTheRing", 0, func(h *deliveryHarness) {
			a := h.attach("a", nil)
			const n = ringSize + 10
			h.commit(n)
			seqs := make([]int64, n)
			for i := range seqs {
				seqs[i] = int64(i + 1)
			}
			h.announce(seqs...)
			h.want(a, seqs...)
			b := h.attach("b", ptr(int64(5)))
			h.wantStoreRead(b)
			h.commit(1)
			h.announce(n + 1)
			h.want(b, append(seqs[5:], n+1)...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newDeliveryHarness(t)
			h.activateAfter(tc.before)
			tc.run(h)
		})
	}
}

// deliveryHarness is a room on a store of its own, with members that record what they get.
type deliveryHarness struct {
	t     *testing.T
	store *fakeStore
	d     *delivery
	r     *room
	reg   *prometheus.Registry
	wg    sync.WaitGroup // the room's workers
}

func newDeliveryHarness(t *testing.T) *deliveryHarness {
	h := &deliveryHarness{t: t, store: &fakeStore{room: "r"}, reg: prometheus.NewRegistry()}
	opts := Options{GapWait: 5 * time.Millisecond, RepairRetry: 5 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	opts.setDefaults()
	h.d = &delivery{
		store:       h.store,
		broker:      nopRoomBroker{},
		opts:        &opts,
		metrics:     newMetrics(h.reg, &Hub{}), // its gauges count no sockets
		busy:        func() bool { return false },
		startWorker: func() bool { h.wg.Add(1); return true },
		workerDone:  h.wg.Done,
		anonymityK:  1,
	}
	t.Cleanup(func() {
		if h.r != nil {
			h.r.close()
		}
		h.wg.Wait()
	})
	return h
}

// activateAfter commits n messages, then makes the room active (roomTable.acquire, room.ready);
// a negative n leaves both to the test.
func (h *deliveryHarness) activateAfter(n int) {
	h.t.Helper()
	if n < 0 {
		return
	}
	h.commit(n)
	h.r = newRoom(h.d, "r")
	if err := h.r.ready(context.Background()); err != nil {
		h.t.Fatal(err)
	}
}

// commit stores n more messages, announcing none.
func (h *deliveryHarness) commit(n int) { h.store.add(n) }

// announce pushes the broker's events of the committed positions.
func (h *deliveryHarness) announce(positions ...int64) {
	for _, pos := range positions {
		ev, kind := h.store.event(pos), rooms.EventOrdered
		if ev.Kind != cg.EventMessage {
			kind = rooms.EventChange
		}
		h.r.push(rooms.Event{Kind: kind, Seq: pos, Frame: rooms.EventFrame(ev)})
	}
}

// change commits a change of the kind to the message created at position seq, announcing
// nothing, and returns the change's position.
func (h *deliveryHarness) change(kind cg.EventKind, seq int64) int64 {
	return h.store.change(kind, seq)
}

// attach makes a member of a recipient, resuming after since as session.subscribe does: what the
// room does not hold is read from the store.
func (h *deliveryHarness) attach(name string, since *int64) *fakeRecipient {
	h.t.Helper()
	rc := &fakeRecipient{name: name, got: make(chan struct{}, 1)}
	m := &member{room: h.r, user: cg.UserID(name)}
	for first := true; ; first = false {
		done, upTo := h.r.attach(rc, m, since, first, func(int64, int) {})
		if done {
			return rc
		}
		rc.mu.Lock()
		rc.fromStore = true
		rc.mu.Unlock()
		for *since < upTo {
			evs, err := h.store.ListEvents(context.Background(), h.r.id, *since, 100)
			if err != nil {
				h.t.Fatal(err)
			}
			for _, ev := range evs {
				rc.enqueueWith(rooms.EventFrame(ev), false)
			}
			since = ptr(evs[len(evs)-1].Seq)
		}
	}
}

// want waits until rc has the events at positions seqs, and fails if it has any other, or any
// twice.
func (h *deliveryHarness) want(rc *fakeRecipient, seqs ...int64) {
	h.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		got := rc.seqs()
		if len(got) >= len(seqs) {
			break
		}
		select {
		case <-rc.got:
		case <-deadline:
			h.t.Fatalf("%s got seqs %v within 10 s, want %v", rc.name, got, seqs)
		}
	}
	h.r.drain(context.Background())
	if got := rc.seqs(); !slices.Equal(got, seqs) {
		h.t.Fatalf("%s got seqs %v, want %v", rc.name, got, seqs)
	}
}

// wantEvents checks the kinds and seqs of what rc got, in order.
func (h *deliveryHarness) wantEvents(rc *fakeRecipient, want ...string) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(rc.events()) < len(want) && time.Now().Before(deadline) {
		select {
		case <-rc.got:
		case <-time.After(time.Second):
		}
	}
	if got := rc.events(); !slices.Equal(got, want) {
		h.t.Fatalf("%s got %q, want %q", rc.name, got, want)
	}
}

// wantStoreRead checks that rc's resume read the store.
func (h *deliveryHarness) wantStoreRead(rc *fakeRecipient) {
	h.t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if !rc.fromStore {
		h.t.Fatalf("%s resumed from the ring", rc.name)
	}
}

func (h *deliveryHarness) wantCount(name string, want float64) {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			if got := mf.GetMetric()[0].GetCounter().GetValue(); got != want {
				h.t.Fatalf("%s = %v, want %v", name, got, want)
			}
			return
		}
	}
	h.t.Fatalf("no metric %s", name)
}

// frameAt returns what rc got of the event at position pos.
func (h *deliveryHarness) frameAt(rc *fakeRecipient, pos int64) decodedFrame {
	h.t.Helper()
	for _, f := range rc.frames() {
		if f.position() == pos {
			return f
		}
	}
	h.t.Fatalf("%s has no event %d", rc.name, pos)
	return decodedFrame{}
}

// fakeEvent is an event of a fakeStore: its kind and the seq of the message it is about.
type fakeEvent struct {
	kind cg.EventKind
	msg  int64
}

// fakeStore is a room's events, position i at index i-1, and its messages as they are now.
type fakeStore struct {
	room cg.ClassID

	mu      sync.Mutex
	log     []fakeEvent           // guarded by mu
	msgs    map[int64]*cg.Message // guarded by mu: by seq
	fails   int                   // guarded by mu: the next ListEvents calls that fail
	block   chan struct{}         // guarded by mu: the next ListEvents waits for it to close
	entered chan struct{}         // guarded by mu: closed when the blocked call has begun
	lists   int                   // guarded by mu: ListEvents calls
}

func messageID(seq int64) cg.MessageID {
	return cg.MessageID(fmt.Sprintf("00000000-0000-4000-8000-%012d", seq))
}

func (s *fakeStore) add(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.msgs == nil {
		s.msgs = make(map[int64]*cg.Message)
	}
	for range n {
		seq := int64(len(s.log) + 1)
		content := fmt.Sprint("message ", seq)
		s.msgs[seq] = &cg.Message{ID: messageID(seq), Room: s.room, Seq: seq, Content: &content}
		s.log = append(s.log, fakeEvent{cg.EventMessage, seq})
	}
}

// change makes a change of the kind to message seq and returns its position.
func (s *fakeStore) change(kind cg.EventKind, seq int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.msgs[seq]
	switch kind {
	case cg.EventEdited:
		content := fmt.Sprint("edited ", seq)
		m.Content = &content
	case cg.EventHidden:
		m.Hidden, m.Content = true, nil
	case cg.EventRestored:
		m.Hidden = false
	case cg.EventDeleted, cg.EventErased:
		m.Deleted, m.Content = true, nil
	}
	s.log = append(s.log, fakeEvent{kind, seq})
	return int64(len(s.log))
}

// event returns the event at position pos, its message as it is now.
func (s *fakeStore) event(pos int64) *cg.RoomEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.eventLocked(pos)
}

func (s *fakeStore) eventLocked(pos int64) *cg.RoomEvent {
	e := s.log[pos-1]
	m := *s.msgs[e.msg]
	return &cg.RoomEvent{Seq: pos, Kind: e.kind, Message: &m}
}

// failNext makes the next n ListEvents calls fail.
func (s *fakeStore) failNext(n int) {
	s.mu.Lock()
	s.fails = n
	s.mu.Unlock()
}

// blockNextList makes the next ListEvents call wait until release is called.
func (s *fakeStore) blockNextList() (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	block := make(chan struct{})
	s.block, s.entered = block, make(chan struct{})
	return sync.OnceFunc(func() { close(block) })
}

// waitListing waits until the blocked call has begun.
func (s *fakeStore) waitListing(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	entered := s.entered
	s.mu.Unlock()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the room did not read the store within 10 s")
	}
}

func (s *fakeStore) listCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists
}

func (s *fakeStore) LastSeqs(_ context.Context, ids []cg.ClassID) (map[cg.ClassID]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return map[cg.ClassID]int64{s.room: int64(len(s.log))}, nil
}

func (s *fakeStore) ListEvents(ctx context.Context, _ cg.ClassID, after int64, limit int) ([]*cg.RoomEvent, error) {
	s.mu.Lock()
	s.lists++
	block, entered := s.block, s.entered
	s.block, s.entered = nil, nil
	fail := s.fails > 0
	if fail {
		s.fails--
	}
	s.mu.Unlock()
	if block != nil {
		close(entered)
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if fail {
		return nil, cg.Errorf(cg.EUNAVAILABLE, "The database is unavailable.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*cg.RoomEvent
	for pos := after + 1; pos <= int64(len(s.log)) && len(out) < limit; pos++ {
		out = append(out, s.eventLocked(pos))
	}
	return out, nil
}

type nopRoomBroker struct{}

func (nopRoomBroker) Subscribe(context.Context, cg.ClassID) error   { return nil }
func (nopRoomBroker) Unsubscribe(context.Context, cg.ClassID) error { return nil }

// fakeRecipient records the frames queued for a member.
type fakeRecipient struct {
	name string
	got  chan struct{} // signalled (capacity 1) after a frame is queued

	mu        sync.Mutex
	queued    [][]byte // guarded by mu
	fromStore bool     // guarded by mu: its resume read the store
}

func (r *fakeRecipient) enqueueWith(frame []byte, _ bool) {
	r.mu.Lock()
	r.queued = append(r.queued, frame)
	r.mu.Unlock()
	select {
	case r.got <- struct{}{}:
	default:
	}
}

// decodedFrame is a queued frame, decoded.
type decodedFrame struct {
	Type      string       `json:"type"`
	Seq       int64        `json:"seq"`
	Message   cg.Message   `json:"message"`
	MessageID cg.MessageID `json:"message_id"`
}

// position is the frame's place in the room's order: a new message's seq, a change's own seq;
// 0 for frames outside the order.
func (f decodedFrame) position() int64 {
	switch {
	case f.Type == "message":
		return f.Message.Seq
	case strings.HasPrefix(f.Type, "message_"):
		return f.Seq
	}
	return 0
}

func (r *fakeRecipient) frames() []decodedFrame {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]decodedFrame, len(r.queued))
	for i, b := range r.queued {
		if err := json.Unmarshal(b, &out[i]); err != nil {
			panic(fmt.Sprintf("frame %s: %v", b, err))
		}
	}
	return out
}

// seqs returns the positions of the event frames queued.
func (r *fakeRecipient) seqs() []int64 {
	var seqs []int64
	for _, f := range r.frames() {
		if pos := f.position(); pos > 0 {
			seqs = append(seqs, pos)
		}
	}
	return seqs
}

// events returns the frames queued as "type position", but for presence frames.
func (r *fakeRecipient) events() []string {
	var out []string
	for _, f := range r.frames() {
		if f.Type != "presence" {
			out = append(out, fmt.Sprint(f.Type, " ", f.position()))
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }
