package persistence_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

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

// BenchmarkCreateMessage stores messages in one room, from one publisher.
func BenchmarkCreateMessage(b *testing.B) {
	db := testenv.MustOpenDB(b)
	store := persistence.NewMessageStore(db)
	class, users := roomFixture(b, db, 1)
	ctx := context.Background()
	if _, err := store.RoomAccess(ctx, users[0], class); err != nil {
		b.Fatal(err)
	}
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
	class, users := roomFixture(b, db, 8)
	ctx := context.Background()
	for _, u := range users {
		if _, err := store.RoomAccess(ctx, u, class); err != nil {
			b.Fatal(err)
		}
	}
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
