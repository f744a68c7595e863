package persistence_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/internal/testenv"
	"github.com/commongrounds/commongrounds/persistence"
)

// TestEventsConcurrent: replies are published to a root (batched and one by one) while the
// root is edited, hidden and restored: every write succeeds (no deadlock between a change, which
// locks the room and then the message, and a reply, which locks the room and then its root), and
// the room's events are at positions 1..N without a gap, the changes among them.
func TestEventsConcurrent(t *testing.T) {
	t.Parallel()
	db := testenv.MustOpenDB(t)
	store := persistence.NewMessageStore(db)
	batching := persistence.NewBatchingStore(store, 2, 2, 64)
	t.Cleanup(batching.Close)
	class, users := memberFixture(t, db, 5)
	ctx := context.Background()
	root, _, err := store.CreateMessage(ctx, cg.NewMessage{Class: class, User: users[0], Content: "root"})
	if err != nil {
		t.Fatal(err)
	}
	const replies, changes = 100, 30
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for _, u := range users[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range replies / 4 {
				var s cg.MessageStore = store
				if i%2 == 0 {
					s = batching
				}
				if _, _, err := s.CreateMessage(ctx, cg.NewMessage{Class: class, User: u, Content: fmt.Sprint("reply ", i), ParentID: &root.ID}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range changes {
			var err error
			switch i % 3 {
			case 0:
				_, _, err = store.EditMessage(ctx, root.ID, users[0], fmt.Sprint("root v", i), time.Hour)
			case 1:
				_, err = store.SetHidden(ctx, root.ID, users[1], true)
			case 2:
				_, err = store.SetHidden(ctx, root.ID, users[1], false)
			}
			if err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	evs, err := store.ListEvents(ctx, class, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + replies + changes; len(evs) != want {
		t.Fatalf("%d events, want %d", len(evs), want)
	}
	kinds := map[cg.EventKind]int{}
	replied := 0
	for i, e := range evs {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d at position %d, want %d", i, e.Seq, i+1)
		}
		kinds[e.Kind]++
		switch {
		case e.Kind == cg.EventMessage && e.Message.ParentID != nil:
			replied++
		case e.Kind != cg.EventMessage && e.Message.ReplyCount != replied:
			// A change carries the count of the replies before it.
			t.Fatalf("the %s at %d carries reply_count %d, want %d", e.Kind, e.Seq, e.Message.ReplyCount, replied)
		}
	}
	if kinds[cg.EventEdited] != 10 || kinds[cg.EventHidden] != 10 || kinds[cg.EventRestored] != 10 {
		t.Fatalf("kinds %v, want 10 edits, hides and restores", kinds)
	}
	seqs, err := store.LastSeqs(ctx, []cg.ClassID{class})
	if err != nil || seqs[class] != int64(len(evs)) {
		t.Fatalf("last seq %d (%v), want %d", seqs[class], err, len(evs))
	}
	page, err := store.ListMessages(ctx, class, cg.MessageFilter{Limit: 1})
	if err != nil || page.LastSeq != int64(len(evs)) {
		t.Fatalf("history's last_seq %+v (%v), want %d", page, err, len(evs))
	}
}

// TestEraseDueEvents: the erasure job makes each erased message an event at its room's next
// position, in two rooms at once, and the tombstones have no pseudonym.
func TestEraseDueEvents(t *testing.T) {
	t.Parallel()
	db := testenv.MustOpenDB(t)
	store := persistence.NewMessageStore(db)
	ctx := context.Background()
	var classes []cg.ClassID
	var leaving cg.UserID
	for i := range 2 {
		class, users := memberFixture(t, db, 2)
		classes = append(classes, class)
		if i == 0 {
			leaving = users[0]
		} else {
			if _, err := db.Pool.Exec(ctx, `INSERT INTO user_classes (user_id, class_id) VALUES ($1, $2)`, leaving, class); err != nil {
				t.Fatal(err)
			}
		}
		for _, u := range []cg.UserID{leaving, users[1]} {
			if _, _, err := store.CreateMessage(ctx, cg.NewMessage{Class: class, User: u, Content: "hi"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := persistence.NewUserStore(db).DeleteUser(ctx, leaving, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	evs, ran, err := persistence.NewCleanupStore(db).EraseDue(ctx, time.Now().Add(time.Hour), 10)
	if err != nil || !ran || len(evs) != 2 {
		t.Fatalf("erased %d (ran %v, %v), want 2", len(evs), ran, err)
	}
	if evs[0].Message.Room == evs[1].Message.Room || !slices.Contains(classes, evs[0].Message.Room) || !slices.Contains(classes, evs[1].Message.Room) {
		t.Fatalf("erasures in rooms %s and %s, want one in each of %v", evs[0].Message.Room, evs[1].Message.Room, classes)
	}
	for _, e := range evs {
		if e.Kind != cg.EventErased || e.Seq != 3 || !e.Message.Deleted || e.Message.AnonID != nil || e.Message.Content != nil {
			t.Fatalf("erasure %+v (message %+v), want position 3, a tombstone without pseudonym", e, e.Message)
		}
		listed, err := store.ListEvents(ctx, e.Message.Room, 2, 10)
		if err != nil || len(listed) != 1 || listed[0].Kind != cg.EventErased || listed[0].Message.ID != e.Message.ID {
			t.Fatalf("events after 2: %v (%v), want the erasure", listed, err)
		}
	}
}

// TestEraseDeletedTombstone: a message its author deleted keeps its pseudonym; when the author's
// account is deleted asking for erasure, the erasure job takes the pseudonym too, as an event.
func TestEraseDeletedTombstone(t *testing.T) {
	t.Parallel()
	db := testenv.MustOpenDB(t)
	store := persistence.NewMessageStore(db)
	ctx := context.Background()
	class, users := memberFixture(t, db, 1)
	m, _, err := store.CreateMessage(ctx, cg.NewMessage{Class: class, User: users[0], Content: "regret"})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := store.DeleteMessage(ctx, m.ID, users[0]); err != nil || ev == nil || ev.Message.AnonID == nil || ev.Seq != 2 {
		t.Fatalf("delete: %+v, %v; want a tombstone keeping its pseudonym at position 2", ev, err)
	}
	if err := persistence.NewUserStore(db).DeleteUser(ctx, users[0], time.Millisecond); err != nil {
		t.Fatal(err)
	}
	evs, ran, err := persistence.NewCleanupStore(db).EraseDue(ctx, time.Now().Add(time.Hour), 10)
	if err != nil || !ran || len(evs) != 1 {
		t.Fatalf("erased %d (ran %v, %v), want 1", len(evs), ran, err)
	}
	if e := evs[0]; e.Seq != 3 || e.Kind != cg.EventErased || e.Message.AnonID != nil || !e.Message.Deleted {
		t.Fatalf("erasure %+v (message %+v), want position 3 without pseudonym", e, e.Message)
	}
}
