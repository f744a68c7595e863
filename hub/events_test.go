package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/persistence"
	"github.com/commongrounds/commongrounds/rooms"
)

// roomState is a room as a client following the protocol's rules keeps it: each message with
// the position its state came from (docs/protocol.md, "Ordering and resuming").
type roomState struct {
	t    testing.TB
	last int64 // the highest position seen
	msgs map[cg.MessageID]*heldMessage
}

type heldMessage struct {
	msg cg.Message
	pos int64
}

// newRoomState starts from a history page, as a client that shows it does.
func newRoomState(t testing.TB, page *cg.MessagePage) *roomState {
	s := &roomState{t: t, last: page.LastSeq, msgs: make(map[cg.MessageID]*heldMessage)}
	for _, m := range page.Messages {
		s.msgs[m.ID] = &heldMessage{*m, page.LastSeq}
	}
	return s
}

// position returns a frame's place in the room's order, 0 for frames outside it.
func position(f frame) int64 {
	switch {
	case f.Type == "message":
		return f.Message.Seq
	case strings.HasPrefix(f.Type, "message_"):
		return f.Seq
	}
	return 0
}

// apply takes one event frame, which must be the one after the last seen.
func (s *roomState) apply(f frame) {
	s.t.Helper()
	pos := position(f)
	if pos != s.last+1 {
		s.t.Fatalf("event at position %d after %d (a gap or duplicate): %s", pos, s.last, f.raw)
	}
	s.last = pos
	m := *f.Message
	if f.Type != "message" && (f.MessageID != string(m.ID) || f.Room != m.Room) {
		s.t.Fatalf("change frame %s names another message than it carries", f.raw)
	}
	if held := s.msgs[m.ID]; held != nil && pos <= held.pos {
		return
	}
	if f.Type == "message" && m.ParentID != nil {
		if root := s.msgs[*m.ParentID]; root != nil && pos > root.pos {
			root.msg.ReplyCount++
		}
	}
	s.msgs[m.ID] = &heldMessage{m, pos}
}

// follow applies the frames of cl up to position upTo.
func (s *roomState) follow(cl *client, upTo int64) {
	s.t.Helper()
	for s.last < upTo {
		f := cl.expect("message", "message_edited", "message_deleted", "message_hidden", "message_restored", "message_erased", "ack")
		if f.Type != "ack" {
			s.apply(f)
		}
	}
}

// equal fails unless the state is the history's, message for message.
func (s *roomState) equal(page *cg.MessagePage) {
	s.t.Helper()
	if s.last != page.LastSeq {
		s.t.Fatalf("client at position %d, history at %d", s.last, page.LastSeq)
	}
	if len(s.msgs) != len(page.Messages) {
		s.t.Fatalf("client holds %d messages, history has %d", len(s.msgs), len(page.Messages))
	}
	for _, m := range page.Messages {
		held := s.msgs[m.ID]
		if held == nil {
			s.t.Fatalf("client lacks message %s", m.ID)
		}
		got, _ := json.Marshal(held.msg)
		want, _ := json.Marshal(m)
		if string(got) != string(want) {
			s.t.Fatalf("client holds\n%s\nhistory has\n%s", got, want)
		}
	}
}

// history reads the room's whole history as u.
func history(t testing.TB, svc *rooms.Service, u *user, class cg.ClassID) *cg.MessagePage {
	t.Helper()
	page, err := svc.History(context.Background(), u.id, class, cg.MessageFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return page
}

// changeKind is a kind of change made to a message while a reader is offline.
type changeKind struct {
	name string
	// before runs before the reader goes offline (restore needs a hidden message).
	before func(t *testing.T, w *world, m *cg.Message)
	// change makes the change on the instance w.on and returns the type of frame it makes.
	change func(t *testing.T, w *world, m *cg.Message) string
}

// world is a room with its people and the instance changes are made on.
type world struct {
	on              *env // the instance that makes the change
	class           cg.ClassID
	author, replier *user
	reader, keeper  *user
	flaggers        []*user
	mod             *user
	erasable        *user // an author whose account is deleted, asking for erasure
}

var changeKinds = []changeKind{
	{name: "Edit", change: func(t *testing.T, w *world, m *cg.Message) string {
		if _, err := w.on.svc.Edit(context.Background(), w.author.id, m.ID, "hello, edited"); err != nil {
			t.Fatal(err)
		}
		return "message_edited"
	}},
	{name: "Delete", change: func(t *testing.T, w *world, m *cg.Message) string {
		if err := w.on.svc.Delete(context.Background(), w.author.id, m.ID); err != nil {
			t.Fatal(err)
		}
		return "message_deleted"
	}},
	{name: "HideByFlags", change: func(t *testing.T, w *world, m *cg.Message) string {
		for _, u := range w.flaggers {
			if err := w.on.svc.Flag(context.Background(), u.id, m.ID, ""); err != nil {
				t.Fatal(err)
			}
		}
		return "message_hidden"
	}},
	{name: "HideByModerator", change: func(t *testing.T, w *world, m *cg.Message) string {
		if err := w.on.svc.SetHidden(context.Background(), w.mod.id, m.ID, true); err != nil {
			t.Fatal(err)
		}
		return "message_hidden"
	}},
	{name: "Restore", before: func(t *testing.T, w *world, m *cg.Message) {
		if err := w.on.svc.SetHidden(context.Background(), w.mod.id, m.ID, true); err != nil {
			t.Fatal(err)
		}
	}, change: func(t *testing.T, w *world, m *cg.Message) string {
		if err := w.on.svc.SetHidden(context.Background(), w.mod.id, m.ID, false); err != nil {
			t.Fatal(err)
		}
		return "message_restored"
	}},
	{name: "Erase", change: func(t *testing.T, w *world, m *cg.Message) string {
		ctx := context.Background()
		if err := persistence.NewUserStore(w.on.db).DeleteUser(ctx, w.erasable.id, time.Millisecond); err != nil {
			t.Fatal(err)
		}
		eraser := &rooms.Eraser{Store: persistence.NewCleanupStore(w.on.db), Service: w.on.svc,
			Now: func() time.Time { return time.Now().Add(time.Hour) }}
		n, err := eraser.RunOnce(ctx)
		if err != nil || n != 1 {
			t.Fatalf("erased %d (%v), want 1", n, err)
		}
		return "message_erased"
	}},
}

// newWorld makes a class and its people on the instance a, where changes are made (instances
// share the database).
func newWorld(t *testing.T, a *env) *world {
	t.Helper()
	w := &world{on: a, class: a.newClass()}
	w.author, w.replier, w.reader, w.keeper, w.mod, w.erasable = a.newUser(), a.newUser(), a.newUser(), a.newUser(), a.newUser(), a.newUser()
	for range 3 {
		w.flaggers = append(w.flaggers, a.newUser())
	}
	a.enroll(w.class, append([]*user{w.author, w.replier, w.reader, w.keeper, w.erasable}, w.flaggers...)...)
	return w
}

// resumeSetup says where the reader was and where it resumes, and what keeps the room active.
type resumeSetup struct {
	name string
	// first and again are the instances the reader is on before and after it is offline;
	// keeper, when not nil, holds a socket in the room throughout (the room stays active, its
	// ring with it).
	first, again, keeper *env
	// beyondRing publishes more than the ring holds after the change, so that the resume
	// reads Postgres although the room is active.
	beyondRing bool
}

// runResume: a reader follows a room live, goes offline while a message changes and a reply to
// it is published, and resumes with since_seq: it ends with exactly the state the history route
// shows. The keeper, live throughout, gets every event once, in order.
func runResume(t *testing.T, setup resumeSetup, kind changeKind) {
	ctx := context.Background()
	w := newWorld(t, setup.first)
	svc := setup.first.svc
	var keep *client
	var kept *roomState
	if setup.keeper != nil {
		keep = setup.keeper.dialFor(t, w.keeper)
		kept = newRoomState(t, history(t, svc, w.keeper, w.class))
		keep.subscribe(w.class, &kept.last)
	}
	// late was offline from before the first message: its resume replays every message from its
	// creation, as the changes left it.
	late := newRoomState(t, history(t, svc, w.reader, w.class))
	state := newRoomState(t, history(t, svc, w.reader, w.class))
	rd := setup.first.dialFor(t, w.reader)
	rd.subscribe(w.class, &state.last)

	root, err := svc.Publish(ctx, w.author.id, w.class, "hello", nil, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	target := root
	if kind.name == "Erase" {
		if target, err = svc.Publish(ctx, w.erasable.id, w.class, "to be erased", nil, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.Publish(ctx, w.replier.id, w.class, "first reply", &root.ID, "", nil); err != nil {
		t.Fatal(err)
	}
	if kind.before != nil {
		kind.before(t, w, target)
	}
	state.follow(rd, history(t, svc, w.reader, w.class).LastSeq)
	_ = rd.ws.CloseNow()
	<-rd.done

	want := kind.change(t, w, target)
	if _, err := svc.Publish(ctx, w.replier.id, w.class, "second reply", &root.ID, "", nil); err != nil {
		t.Fatal(err)
	}
	if setup.beyondRing {
		for i := range 260 {
			if _, err := svc.Publish(ctx, w.replier.id, w.class, fmt.Sprint("more ", i), nil, "", nil); err != nil {
				t.Fatal(err)
			}
		}
	}

	again := setup.again.dialFor(t, w.reader)
	sub := again.subscribe(w.class, &state.last)
	sawChange := false
	for state.last < sub.LastSeq {
		f := again.expect("message", "message_edited", "message_deleted", "message_hidden", "message_restored", "message_erased")
		if f.Type == want && f.Message.ID == target.ID {
			sawChange = true
			if strings.Contains(f.raw, "hello\"") && want != "message_restored" && want != "message_erased" {
				t.Fatalf("the %s frame carries the old content: %s", want, f.raw)
			}
		}
		state.apply(f)
	}
	if !sawChange {
		t.Fatalf("the resume did not carry the %s event of the message", want)
	}
	final := history(t, svc, w.reader, w.class)
	state.equal(final)

	lateCl := setup.again.dialFor(t, w.reader)
	lateCl.subscribe(w.class, &late.last)
	gone := kind.name != "Restore" && kind.name != "Erase" // the change took "hello" away
	for late.last < final.LastSeq {
		f := lateCl.expect("message", "message_edited", "message_deleted", "message_hidden", "message_restored", "message_erased")
		if gone && strings.Contains(f.raw, `"content":"hello"`) {
			t.Fatalf("a resume from before the %s sent the content it took away: %s", want, f.raw)
		}
		late.apply(f)
	}
	late.equal(final)
	if keep != nil {
		kept.follow(keep, final.LastSeq)
		kept.equal(final)
	}
}

// TestResumeAfterChanges: for each kind of change (edit, author's deletion, hide by flags, hide
// by a moderator, restore, erasure), a socket offline while it happens resumes with since_seq
// and ends with exactly the history route's state: from the ring, from Postgres when the room
// was inactive, and from Postgres when the change is older than the ring.
func TestResumeAfterChanges(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, setup := range []resumeSetup{
		{name: "Ring", first: e, again: e, keeper: e},
		{name: "Store", first: e, again: e},
		{name: "BeyondRing", first: e, again: e, keeper: e, beyondRing: true},
	} {
		for _, kind := range changeKinds {
			t.Run(setup.name+"/"+kind.name, func(t *testing.T) { runResume(t, setup, kind) })
		}
	}
}

// TestClusterResumeAfterChanges is TestResumeAfterChanges across two instances on Redis: the
// reader was on one instance and resumes on the other, where the change was not made.
func TestClusterResumeAfterChanges(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "", 2)
	a, b := c.nodes[0], c.nodes[1]
	for _, setup := range []resumeSetup{
		// The reader was on a, where the change is made; it resumes on b, whose keeper got the
		// change live through Redis (from b's ring), or where the room is inactive (Postgres).
		{name: "Ring", first: a, again: b, keeper: b},
		{name: "Store", first: a, again: b},
	} {
		for _, kind := range changeKinds {
			t.Run(setup.name+"/"+kind.name, func(t *testing.T) { runResume(t, setup, kind) })
		}
	}
}

// TestChangeAnnouncementLost: a change whose broker announcement is lost is read from the store
// before the next event is delivered, in order.
func TestChangeAnnouncementLost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	class := e.newClass()
	a, reader, mod := e.newUser(), e.newUser(), e.newUser()
	e.enroll(class, a, reader)
	ctx := context.Background()
	state := newRoomState(t, history(t, e.svc, reader, class))
	cl := e.dial(reader)
	cl.subscribe(class, &state.last)
	m, err := e.svc.Publish(ctx, a.id, class, "rude", nil, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	state.follow(cl, 1)
	// The store hides it, and nobody announces it.
	if ev, err := e.store.SetHidden(ctx, m.ID, mod.id, true); err != nil || ev == nil || ev.Seq != 2 {
		t.Fatalf("hide: %+v, %v; want the event at position 2", ev, err)
	}
	if _, err := e.svc.Publish(ctx, a.id, class, "next", nil, "", nil); err != nil {
		t.Fatal(err)
	}
	f := cl.expect("message_hidden")
	if f.Seq != 2 || !f.Message.Hidden || f.Message.Content != nil {
		t.Fatalf("got %s, want the hide at position 2", f.raw)
	}
	state.apply(f)
	state.follow(cl, 3)
	state.equal(history(t, e.svc, reader, class))
}
