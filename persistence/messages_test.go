package persistence_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/internal/testenv"
	"github.com/commongrounds/commongrounds/persistence"
)

// roomFixture creates a class and n enrolled users.
func roomFixture(tb testing.TB, db *persistence.DB, n int) (cg.ClassID, []cg.UserID) {
	tb.Helper()
	ctx := context.Background()
	var class cg.ClassID
	if err := db.Pool.QueryRow(ctx, `INSERT INTO classes (subject, catalog_number, term, sis_class_number) VALUES ('CS','1','1', gen_random_uuid()::text) RETURNING id`).Scan(&class); err != nil {
		tb.Fatal(err)
	}
	users := make([]cg.UserID, n)
	for i := range users {
		if err := db.Pool.QueryRow(ctx, `INSERT INTO users (email) VALUES ($1) RETURNING id`, fmt.Sprintf("m%d%s@virginia.edu", i, testenv.RandomHex(4))).Scan(&users[i]); err != nil {
			tb.Fatal(err)
		}
		if _, err := db.Pool.Exec(ctx, `INSERT INTO user_classes (user_id, class_id) VALUES ($1, $2)`, users[i], class); err != nil {
			tb.Fatal(err)
		}
	}
	return class, users
}

// memberFixture creates a class and n enrolled users who each have their pseudonym.
func memberFixture(tb testing.TB, db *persistence.DB, n int) (cg.ClassID, []cg.UserID) {
	tb.Helper()
	class, users := roomFixture(tb, db, n)
	store := persistence.NewMessageStore(db)
	for _, u := range users {
		if _, err := store.RoomAccess(context.Background(), u, class); err != nil {
			tb.Fatal(err)
		}
	}
	return class, users
}

// TestCreateMessageConcurrent has 8 publishers write at once: seqs are 1..N without a gap, and
// no message was stored twice.
func TestCreateMessageConcurrent(t *testing.T) {
	t.Parallel()
	db := testenv.MustOpenDB(t)
	store := persistence.NewMessageStore(db)
	class, users := roomFixture(t, db, 8)
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				if _, _, err := store.CreateMessage(context.Background(), cg.NewMessage{Class: class, User: u, Content: "x", ClientMsgID: fmt.Sprint(i)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var n, maxSeq, distinct int64
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*), max(seq), count(DISTINCT seq) FROM class_messages WHERE class_id = $1`, class).Scan(&n, &maxSeq, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != 200 || maxSeq != 200 || distinct != 200 {
		t.Fatalf("count=%d max=%d distinct=%d, want 200 contiguous", n, maxSeq, distinct)
	}
	last, err := store.LastSeqs(context.Background(), []cg.ClassID{class})
	if err != nil || last[class] != 200 {
		t.Fatalf("LastSeqs=%v (%v), want 200", last, err)
	}
}

// TestCreateMessageRetry repeats a client_msg_id on the single path: the retry gets the first
// message back (also after its author left the room) and takes no seq.
func TestCreateMessageRetry(t *testing.T) {
	t.Parallel()
	db := testenv.MustOpenDB(t)
	store := persistence.NewMessageStore(db)
	ctx := context.Background()
	class, users := roomFixture(t, db, 1)
	nm := cg.NewMessage{Class: class, User: users[0], Content: "once", ClientMsgID: "retry-1"}
	first, created, err := store.CreateMessage(ctx, nm)
	if err != nil || !created {
		t.Fatalf("first publish: created=%v err=%v", created, err)
	}
	again := func(when string) {
		t.Helper()
		m, created, err := store.CreateMessage(ctx, nm)
		if err != nil || created || m.ID != first.ID || m.Seq != first.Seq {
			t.Fatalf("retry %s: %+v created=%v err=%v, want message %s again", when, m, created, err, first.ID)
		}
	}
	again("in the room")
	if _, _, err := store.CreateMessage(ctx, cg.NewMessage{Class: class, User: users[0], Content: "next"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `DELETE FROM user_classes WHERE user_id = $1`, users[0]); err != nil {
		t.Fatal(err)
	}
	again("after leaving the room")
	if _, _, err := store.CreateMessage(ctx, cg.NewMessage{Class: class, User: users[0], Content: "new", ClientMsgID: "retry-2"}); cg.ErrorCode(err) != cg.ENOTENROLLED {
		t.Fatalf("new message after leaving: %v, want %s", err, cg.ENOTENROLLED)
	}
	checkContiguous(t, db, class)
	if last, err := store.LastSeqs(ctx, []cg.ClassID{class}); err != nil || last[class] != 2 {
		t.Fatalf("LastSeqs=%v (%v), want 2", last, err)
	}
}

// BenchmarkCreateMessage stores messages in one room, from one publisher.
func BenchmarkCreateMessage(b *testing.B) {
	db := testenv.MustOpenDB(b)
	store := persistence.NewMessageStore(db)
	class, users := memberFixture(b, db, 1)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if _, _, err := store.CreateMessage(ctx, cg.NewMessage{Class: class, User: users[0], Content: "benchmark message of a typical length, about sixty characters"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateMessage8 stores messages in one room from 8 concurrent publishers.
func BenchmarkCreateMessage8(b *testing.B) {
	db := testenv.MustOpenDB(b)
	store := persistence.NewMessageStore(db)
	class, users := memberFixture(b, db, 8)
	ctx := context.Background()
	var next sync.Mutex
	i := 0
	b.SetParallelism(4) // GOMAXPROCS=2 here: 8 publishing goroutines
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		next.Lock()
		u := users[i%len(users)]
		i++
		next.Unlock()
		for pb.Next() {
			if _, _, err := store.CreateMessage(ctx, cg.NewMessage{Class: class, User: u, Content: "benchmark message of a typical length, about sixty characters"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestCreateMessages stores a batch mixing rooms, replies, repeated client_msg_ids, and
// messages that must be refused: the accepted ones get contiguous seqs in arrival order per
// room, the others the error the single path gives.
func TestCreateMessages(t *testing.T) {
	t.Parallel()
	db := testenv.MustOpenDB(t)
	store := persistence.NewMessageStore(db)
	ctx := context.Background()
	c1, users := roomFixture(t, db, 2)
	c2, others := roomFixture(t, db, 1)
	a, b, c := users[0], users[1], others[0]
	for _, p := range [][2]string{{string(a), string(c1)}, {string(b), string(c1)}, {string(c), string(c2)}} {
		if _, err := store.RoomAccess(ctx, cg.UserID(p[0]), cg.ClassID(p[1])); err != nil {
			t.Fatal(err)
		}
	}
	root, _, err := store.CreateMessage(ctx, cg.NewMessage{Class: c1, User: a, Content: "root", ClientMsgID: "old"})
	if err != nil {
		t.Fatal(err)
	}
	bad := cg.MessageID("00000000-0000-4000-8000-000000000000")
	batch := []cg.NewMessage{
		{Class: c1, User: a, Content: "one"},
		{Class: c2, User: c, Content: "other room"},
		{Class: c1, User: b, Content: "reply", ParentID: &root.ID},
		{Class: c1, User: c, Content: "not enrolled"},
		{Class: c1, User: a, Content: "again", ClientMsgID: "old"},
		{Class: c1, User: b, Content: "bad parent", ParentID: &bad},
		{Class: c1, User: a, Content: "two"},
	}
	res := store.CreateMessages(ctx, batch)
	type want struct {
		class cg.ClassID
		seq   int64
		code  string
	}
	wants := []want{{c1, 2, ""}, {c2, 1, ""}, {c1, 3, ""}, {"", 0, cg.ENOTENROLLED}, {c1, 1, ""}, {"", 0, cg.EINVALIDPARENT}, {c1, 4, ""}}
	for i, w := range wants {
		r := res[i]
		if code := cg.ErrorCode(r.Err); code != w.code {
			t.Fatalf("message %d (%s): error %v, want code %q", i, batch[i].Content, r.Err, w.code)
		}
		if w.code == "" && (r.Msg.Room != w.class || r.Msg.Seq != w.seq) {
			t.Fatalf("message %d (%s): room %s seq %d, want %s seq %d", i, batch[i].Content, r.Msg.Room, r.Msg.Seq, w.class, w.seq)
		}
	}
	if res[4].Created || res[4].Msg.ID != root.ID {
		t.Fatalf("repeated client_msg_id: created=%v id=%s, want the root %s", res[4].Created, res[4].Msg.ID, root.ID)
	}
	_, replies, err := store.Thread(ctx, c1, root.ID)
	if err != nil || len(replies) != 1 {
		t.Fatalf("thread: %d replies (%v), want 1", len(replies), err)
	}
	if r, _, _ := store.Thread(ctx, c1, root.ID); r.ReplyCount != 1 {
		t.Fatalf("reply_count=%d, want 1", r.ReplyCount)
	}

	t.Run("RepeatWithinBatch", func(t *testing.T) {
		res := store.CreateMessages(ctx, []cg.NewMessage{
			{Class: c2, User: c, Content: "x", ClientMsgID: "dup"},
			{Class: c2, User: c, Content: "x", ClientMsgID: "dup"},
		})
		if res[0].Err != nil || res[1].Err != nil || res[0].Msg.ID != res[1].Msg.ID || res[0].Msg.Seq != 2 {
			t.Fatalf("got %+v / %+v, want one message with seq 2 for both", res[0], res[1])
		}
	})
}

// batchingFixture opens a test database with a message store and a batching store over it.
func batchingFixture(t *testing.T) (*persistence.DB, *persistence.MessageStore, *persistence.BatchingStore) {
	t.Helper()
	db := testenv.MustOpenDB(t)
	base := persistence.NewMessageStore(db)
	store := persistence.NewBatchingStore(base, 2, 2, 64)
	t.Cleanup(store.Close)
	return db, base, store
}

// TestBatchingStore publishes concurrently into several rooms through the batching store: every
// room's seqs are contiguous and every publish got its own message.
func TestBatchingStore(t *testing.T) {
	t.Parallel()
	db, base, store := batchingFixture(t)
	ctx := context.Background()
	const rooms, perRoom = 4, 48
	var wg sync.WaitGroup
	classes := make([]cg.ClassID, rooms)
	seen := make([]sync.Map, rooms)
	for r := range rooms {
		class, users := roomFixture(t, db, 4)
		classes[r] = class
		for _, u := range users {
			if _, err := base.RoomAccess(ctx, u, class); err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perRoom / 4 {
					m, created, err := store.CreateMessage(ctx, cg.NewMessage{Class: class, User: u, Content: "x", ClientMsgID: fmt.Sprint(i)})
					if err != nil || !created {
						t.Errorf("publish: created=%v err=%v", created, err)
						return
					}
					if _, dup := seen[r].LoadOrStore(m.Seq, true); dup {
						t.Errorf("seq %d given twice", m.Seq)
					}
				}
			}()
		}
	}
	wg.Wait()
	for _, class := range classes {
		var n, maxSeq int64
		if err := db.Pool.QueryRow(ctx, `SELECT count(*), max(seq) FROM class_messages WHERE class_id = $1`, class).Scan(&n, &maxSeq); err != nil {
			t.Fatal(err)
		}
		if n != perRoom || maxSeq != perRoom {
			t.Fatalf("room has %d messages up to seq %d, want %d contiguous", n, maxSeq, perRoom)
		}
	}
}

// BenchmarkBatchingStore100Rooms publishes from 128 goroutines into 100 rooms through the
// batching store, with several numbers of committers. It reports messages per second.
func BenchmarkBatchingStore100Rooms(b *testing.B) {
	for _, workers := range []int{1, 2, 4} {
		for _, maxBatch := range []int{256, 1024} {
			b.Run(fmt.Sprintf("committers=%d/batch=%d", workers, maxBatch), func(b *testing.B) {
				benchmarkBatching(b, workers, maxBatch)
			})
		}
	}
}

func benchmarkBatching(b *testing.B, workers, maxBatch int) {
	db := testenv.MustOpenDB(b)
	base := persistence.NewMessageStore(db)
	store := persistence.NewBatchingStore(base, workers, workers, maxBatch)
	defer store.Close()
	ctx := context.Background()
	type pub struct {
		class cg.ClassID
		user  cg.UserID
	}
	var pubs []pub
	for range 100 {
		class, users := memberFixture(b, db, 2)
		for _, u := range users {
			pubs = append(pubs, pub{class, u})
		}
	}
	var mu sync.Mutex
	next := 0
	b.SetParallelism(64)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		mu.Lock()
		p := pubs[next%len(pubs)]
		next++
		mu.Unlock()
		for pb.Next() {
			if _, _, err := store.CreateMessage(ctx, cg.NewMessage{Class: p.class, User: p.user, Content: "benchmark message of a typical length, about sixty characters"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// TestRoomAccesses answers many room accesses at once, through RoomAccesses and through the
// batching store's concurrent RoomAccess and RoomAccesses: every answer is what RoomAccess alone gives —
// the pseudonym of an enrolled member (drawn on first use, once), not_enrolled, or
// class_not_found — and a pseudonym drawn in a batch is the one kept.
func TestRoomAccesses(t *testing.T) {
	t.Parallel()
	db, base, store := batchingFixture(t)
	ctx := context.Background()
	class, members := roomFixture(t, db, 12)
	other, outsiders := roomFixture(t, db, 3) // members of another class only
	for _, u := range members[:6] {           // half the members have a pseudonym already
		if _, err := base.RoomAccess(ctx, u, class); err != nil {
			t.Fatal(err)
		}
	}
	var reqs []cg.AccessRequest
	for _, u := range members {
		reqs = append(reqs, cg.AccessRequest{User: u, Class: class})
	}
	for _, u := range outsiders {
		reqs = append(reqs, cg.AccessRequest{User: u, Class: class})
	}
	reqs = append(reqs,
		cg.AccessRequest{User: members[0], Class: other},
		cg.AccessRequest{User: members[0], Class: "00000000-0000-4000-8000-000000000000"},
		cg.AccessRequest{User: members[0], Class: "not-a-uuid"},
	)
	want := func(r cg.AccessRequest) (cg.AnonID, string) {
		t.Helper()
		anon, err := base.RoomAccess(ctx, r.User, r.Class)
		return anon, cg.ErrorCode(err)
	}

	// An unknown class, and an id that is not a UUID, are class_not_found, as for the class store.
	for _, r := range reqs[len(reqs)-2:] {
		if _, code := want(r); code != cg.ECLASSNOTFOUND {
			t.Fatalf("RoomAccess(%s): Code=%v, want %v", r.Class, code, cg.ECLASSNOTFOUND)
		}
	}
	// Half the members draw their pseudonym inside the batch; the single call afterwards must
	// find the same one.
	got := base.RoomAccesses(ctx, reqs)
	for i, r := range reqs {
		anon, code := want(r)
		if got[i].Anon != anon || cg.ErrorCode(got[i].Err) != code {
			t.Errorf("request %d: batch gave (%q, %v), alone (%q, %s)", i, got[i].Anon, got[i].Err, anon, code)
		}
		if i < len(members) && anon == "" {
			t.Errorf("member %d has no pseudonym", i)
		}
	}

	// The same requests from concurrent callers through the batching store.
	var wg sync.WaitGroup
	for i, r := range reqs {
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				anon, err := store.RoomAccess(ctx, r.User, r.Class)
				if anon != got[i].Anon || cg.ErrorCode(err) != cg.ErrorCode(got[i].Err) {
					t.Errorf("request %d through the batching store: (%q, %v), want (%q, %v)", i, anon, err, got[i].Anon, got[i].Err)
				}
			}()
		}
		// Beside them, callers of several pairs at once (as a socket's subscribes): each gets
		// its own answers, in its order, out of batches it shares with the others.
		for _, n := range []int{1, 3, 7} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var mine []cg.AccessRequest
				var idx []int
				for k := range n {
					j := (i + k*5) % len(reqs)
					mine, idx = append(mine, reqs[j]), append(idx, j)
				}
				for k, res := range store.RoomAccesses(ctx, mine) {
					j := idx[k]
					if res.Anon != got[j].Anon || cg.ErrorCode(res.Err) != cg.ErrorCode(got[j].Err) {
						t.Errorf("request %d among %d through the batching store: (%q, %v), want (%q, %v)", j, n, res.Anon, res.Err, got[j].Anon, got[j].Err)
					}
				}
			}()
		}
	}
	wg.Wait()
}

// BenchmarkRoomAccess looks up room access from 64 goroutines at once, as a reconnecting crowd
// of sockets does, one statement per call and through the batching store.
func BenchmarkRoomAccess(b *testing.B) {
	db := testenv.MustOpenDB(b)
	base := persistence.NewMessageStore(db)
	class, users := memberFixture(b, db, 256)
	ctx := context.Background()
	batching := persistence.NewBatchingStore(base, 4, 4, 256)
	defer batching.Close()
	for _, tc := range []struct {
		name  string
		store cg.MessageStore
	}{{"single", base}, {"batched", batching}} {
		b.Run(tc.name, func(b *testing.B) {
			benchmarkLookups(b, func(n int64) error {
				_, err := tc.store.RoomAccess(ctx, users[n%int64(len(users))], class)
				return err
			})
		})
	}
}

// benchmarkLookups calls lookup from 64 goroutines with a counter, and reports lookups per second.
func benchmarkLookups(b *testing.B, lookup func(n int64) error) {
	var next atomic.Int64
	b.SetParallelism(64 / max(1, runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := lookup(next.Add(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
}

// TestFirstAccessConcurrently: a member's first access from several callers at once (two
// devices opening the room together) gives every caller the one pseudonym kept, never an
// error.
func TestFirstAccessConcurrently(t *testing.T) {
	t.Parallel()
	db, base, _ := batchingFixture(t)
	ctx := context.Background()
	class, members := roomFixture(t, db, 60)
	var wg sync.WaitGroup
	got := make([][4]cg.AnonID, len(members))
	for i, u := range members {
		for k := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				anon, err := base.RoomAccess(ctx, u, class)
				if err != nil {
					t.Errorf("member %d, caller %d: %v", i, k, err)
				}
				got[i][k] = anon
			}()
		}
	}
	wg.Wait()
	for i, u := range members {
		kept, err := base.RoomAccess(ctx, u, class)
		if err != nil {
			t.Fatal(err)
		}
		for k, anon := range got[i] {
			if anon != kept {
				t.Errorf("member %d, caller %d: %q, kept %q", i, k, anon, kept)
			}
		}
	}
}
