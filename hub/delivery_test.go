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

	"github.com/prometheus/client_golang/prometheus"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/rooms"
)

// TestDelivery feeds a room sequences of events, with a store of its own, and checks the seqs
// each member gets: every message once, in order, with no gap.
func TestDelivery(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before int // messages committed before the room is active
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
		{"HiddenWhileWaiting", 0, func(h *deliveryHarness) {
			// 3 waits for 2 when it is hidden: the frame it arrived with shows it as it was, so
			// it is read from the store, one message a page, as it is now.
			h.d.opts.BackfillPage = 1
			a := h.attach("a", nil)
			h.commit(3)
			h.announce(1, 3)
			h.hide(3)
			h.want(a, 1, 2, 3)
			if f := h.messageFrame(a, 3); !f.hidden {
				h.t.Fatalf("message 3 delivered as it was announced, want it hidden as the store has it")
			}
		}},
		{"HiddenDuringFetch", 0, func(h *deliveryHarness) {
			// The fetch of 2 is under way when 3, already delivered once the fetch ends, is
			// hidden: the hidden event follows it, and no kept frame shows it as it was.
			a := h.attach("a", nil)
			h.commit(3)
			release := h.store.blockNextList()
			h.announce(1, 3)
			h.store.waitListing(h.t)
			h.hide(3)
			release()
			h.want(a, 1, 2, 3)
			h.wantEvents(a, "message 1", "message 2", "message 3", "message_hidden 3")
			b := h.attach("b", ptr(int64(2)))
			h.wantStoreRead(b) // not from the ring, which kept 3 as it was
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

// activateAfter commits n messages, then makes the room active (roomTable.acquire, room.ready).
func (h *deliveryHarness) activateAfter(n int) {
	h.t.Helper()
	h.commit(n)
	h.r = newRoom(h.d, "r")
	if err := h.r.ready(context.Background()); err != nil {
		h.t.Fatal(err)
	}
}

// commit stores n more messages, announcing none.
func (h *deliveryHarness) commit(n int) { h.store.add(n) }

// announce pushes the broker's events of the committed messages seqs.
func (h *deliveryHarness) announce(seqs ...int64) {
	for _, seq := range seqs {
		h.r.push(rooms.Event{Kind: rooms.EventMessage, Seq: seq, Frame: rooms.MessageFrame(h.store.message(seq))})
	}
}

// hide hides message seq in the store and pushes its event.
func (h *deliveryHarness) hide(seq int64) {
	h.store.hide(seq)
	h.r.push(rooms.Event{Kind: rooms.EventHidden, Seq: seq, Frame: rooms.HiddenFrame(h.r.id, messageID(seq))})
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
			msgs, err := h.store.ListMessages(context.Background(), h.r.id, cg.MessageFilter{AfterSeq: since, Limit: 100})
			if err != nil {
				h.t.Fatal(err)
			}
			for _, msg := range msgs {
				rc.enqueueWith(rooms.MessageFrame(msg), false)
			}
			since = ptr(msgs[len(msgs)-1].Seq)
		}
	}
}

// want waits until rc has the messages seqs, and fails if it has any other, or any twice.
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

// messageFrame returns what rc got of message seq.
func (h *deliveryHarness) messageFrame(rc *fakeRecipient, seq int64) decodedFrame {
	h.t.Helper()
	for _, f := range rc.frames() {
		if f.Type == "message" && f.Message.Seq == seq {
			return f
		}
	}
	h.t.Fatalf("%s has no message %d", rc.name, seq)
	return decodedFrame{}
}

// fakeStore is a room's messages, seq i at index i-1.
type fakeStore struct {
	room cg.ClassID

	mu      sync.Mutex
	msgs    []cg.Message  // guarded by mu
	fails   int           // guarded by mu: the next ListMessages calls that fail
	block   chan struct{} // guarded by mu: the next ListMessages waits for it to close
	entered chan struct{} // guarded by mu: closed when the blocked call has begun
	lists   int           // guarded by mu: ListMessages calls
}

func messageID(seq int64) cg.MessageID {
	return cg.MessageID(fmt.Sprintf("00000000-0000-4000-8000-%012d", seq))
}

func (s *fakeStore) add(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		seq := int64(len(s.msgs) + 1)
		content := fmt.Sprint("message ", seq)
		s.msgs = append(s.msgs, cg.Message{ID: messageID(seq), Room: s.room, Seq: seq, Content: &content})
	}
}

func (s *fakeStore) message(seq int64) *cg.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.msgs[seq-1]
	return &m
}

func (s *fakeStore) hide(seq int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs[seq-1].Hidden = true
	s.msgs[seq-1].Content = nil
}

// failNext makes the next n ListMessages calls fail.
func (s *fakeStore) failNext(n int) {
	s.mu.Lock()
	s.fails = n
	s.mu.Unlock()
}

// blockNextList makes the next ListMessages call wait until release is called.
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
	return map[cg.ClassID]int64{s.room: int64(len(s.msgs))}, nil
}

func (s *fakeStore) ListMessages(ctx context.Context, _ cg.ClassID, f cg.MessageFilter) ([]*cg.Message, error) {
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
	var out []*cg.Message
	for i := *f.AfterSeq; i < int64(len(s.msgs)) && len(out) < f.Limit; i++ {
		m := s.msgs[i]
		out = append(out, &m)
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
	Message   cg.Message   `json:"message"`
	MessageID cg.MessageID `json:"message_id"`
	hidden    bool
}

func (r *fakeRecipient) frames() []decodedFrame {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]decodedFrame, len(r.queued))
	for i, b := range r.queued {
		if err := json.Unmarshal(b, &out[i]); err != nil {
			panic(fmt.Sprintf("frame %s: %v", b, err))
		}
		out[i].hidden = out[i].Message.Hidden
	}
	return out
}

// seqs returns the seqs of the message frames queued.
func (r *fakeRecipient) seqs() []int64 {
	var seqs []int64
	for _, f := range r.frames() {
		if f.Type == "message" {
			seqs = append(seqs, f.Message.Seq)
		}
	}
	return seqs
}

// events returns the frames queued as "type seq", but for presence frames.
func (r *fakeRecipient) events() []string {
	var out []string
	for _, f := range r.frames() {
		if f.Type == "presence" {
			continue
		}
		seq := f.Message.Seq
		if f.MessageID != "" {
			_, _ = fmt.Sscanf(string(f.MessageID), "00000000-0000-4000-8000-%d", &seq)
		}
		out = append(out, fmt.Sprint(f.Type, " ", seq))
	}
	return out
}

func ptr[T any](v T) *T { return &v }
