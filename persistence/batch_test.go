package persistence_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/internal/testenv"
	"github.com/commongrounds/commongrounds/persistence"
)

// TestBatchStatement runs the batch statement on its own (CreateMessages would hide a failing
// statement by storing every message one by one): three rooms, given out of id order and
// interleaved, one with no room row yet; messages it must leave out for the single path. It
// stores exactly the others, numbered per room in arrival order after what the room had.
func TestBatchStatement(t *testing.T) {
	t.Parallel()
	db := testenv.MustOpenDB(t)
	store := persistence.NewMessageStore(db)
	ctx := context.Background()
	type room struct {
		id      cg.ClassID
		members []cg.UserID
	}
	rooms := make([]room, 3)
	for i := range rooms {
		rooms[i].id, rooms[i].members = memberFixture(t, db, 2)
	}
	// Highest id first, so that the batch's order is not the rooms' order.
	slices.SortFunc(rooms, func(a, b room) int { return strings.Compare(string(b.id), string(a.id)) })
	hi, mid, lo := rooms[0], rooms[1], rooms[2]
	publish := func(r room, nm cg.NewMessage) *cg.Message {
		t.Helper()
		nm.Class = r.id
		m, _, err := store.CreateMessage(ctx, nm)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	root := publish(hi, cg.NewMessage{User: hi.members[0], Content: "root", ClientMsgID: "old"})
	reply := publish(hi, cg.NewMessage{User: hi.members[1], Content: "reply", ParentID: &root.ID})
	loRoot := publish(lo, cg.NewMessage{User: lo.members[0], Content: "lo root"})
	// mid has no messages, so no room row: the statement creates it.
	_, noPseudonym := roomFixture(t, db, 1)
	if _, err := db.Pool.Exec(ctx, `INSERT INTO user_classes (user_id, class_id) VALUES ($1, $2)`, noPseudonym[0], mid.id); err != nil {
		t.Fatal(err)
	}
	missing := cg.MessageID("00000000-0000-4000-8000-000000000000")

	type entry struct {
		nm   cg.NewMessage
		room cg.ClassID // "" when the statement must leave it out
		seq  int64
	}
	batch := []entry{
		{cg.NewMessage{Class: hi.id, User: hi.members[0], Content: "hi 3"}, hi.id, 3},
		{cg.NewMessage{Class: lo.id, User: lo.members[1], Content: "lo 2"}, lo.id, 2},
		{cg.NewMessage{Class: mid.id, User: mid.members[0], Content: "mid 1"}, mid.id, 1},
		{cg.NewMessage{Class: hi.id, User: lo.members[0], Content: "not enrolled"}, "", 0},
		{cg.NewMessage{Class: hi.id, User: hi.members[1], Content: "hi 4, a reply", ParentID: &root.ID}, hi.id, 4},
		{cg.NewMessage{Class: hi.id, User: hi.members[0], Content: "repeat", ClientMsgID: "old"}, "", 0},
		{cg.NewMessage{Class: hi.id, User: hi.members[0], Content: "reply to a reply", ParentID: &reply.ID}, "", 0},
		{cg.NewMessage{Class: hi.id, User: hi.members[0], Content: "parent in another room", ParentID: &loRoot.ID}, "", 0},
		{cg.NewMessage{Class: lo.id, User: lo.members[0], Content: "missing parent", ParentID: &missing}, "", 0},
		{cg.NewMessage{Class: mid.id, User: noPseudonym[0], Content: "no pseudonym yet"}, "", 0},
		{cg.NewMessage{Class: "not-a-uuid", User: lo.members[0], Content: "bad room"}, "", 0},
		{cg.NewMessage{Class: mid.id, User: mid.members[1], Content: "mid 2", ClientMsgID: "new"}, mid.id, 2},
		{cg.NewMessage{Class: lo.id, User: lo.members[0], Content: "lo 3, a reply", ParentID: &loRoot.ID}, lo.id, 3},
		{cg.NewMessage{Class: hi.id, User: hi.members[1], Content: "hi 5"}, hi.id, 5},
	}
	nms := make([]cg.NewMessage, len(batch))
	for i, e := range batch {
		nms[i] = e.nm
	}
	res, err := store.InsertBatch(ctx, nms)
	if err != nil {
		t.Fatalf("the batch statement failed: %v", err)
	}
	for i, e := range batch {
		got := res[i].Msg
		switch {
		case e.room == "" && got != nil:
			t.Errorf("%q: stored as seq %d, want it left out", e.nm.Content, got.Seq)
		case e.room != "" && got == nil:
			t.Errorf("%q: left out, want seq %d", e.nm.Content, e.seq)
		case e.room != "" && (got.Room != e.room || got.Seq != e.seq || *got.Content != e.nm.Content || !res[i].Created):
			t.Errorf("%q: room %s seq %d content %q, want room %s seq %d", e.nm.Content, got.Room, got.Seq, *got.Content, e.room, e.seq)
		}
	}
	for _, r := range rooms {
		checkContiguous(t, db, r.id)
	}
	for parent, want := range map[cg.MessageID]int{root.ID: 2, loRoot.ID: 1} {
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT reply_count FROM class_messages WHERE id = $1`, parent).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("reply_count of %s = %d, want %d", parent, n, want)
		}
	}
}
