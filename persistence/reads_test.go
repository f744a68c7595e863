package persistence_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/internal/testenv"
	"github.com/commongrounds/commongrounds/persistence"
)

// TestReadReplica reads history, class search and class details through a real streaming
// replica of the test server: from the replica while it keeps up (and, through a router that
// allows an hour's lag, while its replay is paused: the reads miss what the primary has since);
// from the primary while the replica falls behind by more than the allowed lag, and while it is
// down.
func TestReadReplica(t *testing.T) {
	t.Parallel()
	replica := testenv.NewPostgresReplica(t)
	primaryURL := testenv.NewDatabase(t)
	ctx := context.Background()
	primary, err := persistence.Open(ctx, primaryURL, persistence.Options{MaxConns: 4}, false, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(primary.Close)
	u, err := url.Parse(primaryURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	// The database, created after the backup, reaches the replica through the WAL.
	var standby *persistence.DB
	waitUntil(t, "the test database on the replica", func() bool {
		db, err := persistence.Open(ctx, replica.URL(name), persistence.Options{MaxConns: 4, ConnectTimeout: time.Second}, false, false)
		if err != nil {
			return false
		}
		standby = db
		return true
	})
	t.Cleanup(standby.Close)
	const maxLag = 2 * time.Second // the default; a busy test server keeps the replica a second or two behind
	router := persistence.NewReadRouter(primary, standby, maxLag, 20*time.Millisecond)
	t.Cleanup(router.Close)
	reads := persistence.NewReadMessages(router)
	classReads := persistence.NewReadClasses(router)
	// A router that tolerates an hour's lag keeps reading the replica while its replay is paused.
	lenient := persistence.NewReadRouter(primary, standby, time.Hour, 20*time.Millisecond)
	t.Cleanup(lenient.Close)
	lenientReads := persistence.NewReadMessages(lenient)
	lenientClasses := persistence.NewReadClasses(lenient)
	store := persistence.NewMessageStore(primary)
	class, users := roomFixture(t, primary, 1)
	publish := func(content string) *cg.Message {
		t.Helper()
		m, _, err := store.CreateMessage(ctx, cg.NewMessage{Class: class, User: users[0], Content: content})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	historyOf := func(reads *persistence.ReadMessages) []*cg.Message {
		t.Helper()
		msgs, err := reads.ListMessages(ctx, class, cg.MessageFilter{AfterSeq: new(int64), Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return msgs
	}
	history := func() []*cg.Message { t.Helper(); return historyOf(reads) }
	// classesOf returns the number of classes a search finds and the room's enrollment count.
	classesOf := func(reads *persistence.ReadClasses) (found, enrolled int) {
		t.Helper()
		classes, _, err := reads.ListClasses(ctx, persistence.ClassFilter{Query: "CS"})
		if err != nil {
			t.Fatal(err)
		}
		_, n, err := reads.FindClassWithCount(ctx, class)
		if err != nil {
			t.Fatal(err)
		}
		return len(classes), n
	}

	// Within the lag: reads go to the replica, which has the message once it replayed it.
	first := publish("first")
	start := time.Now()
	waitUntil(t, "the replica replayed the first message", func() bool {
		var n int
		err := standby.Pool.QueryRow(ctx, `SELECT count(*) FROM class_messages WHERE class_id = $1`, class).Scan(&n)
		return err == nil && n == 1
	})
	t.Logf("replica replayed a commit %v after it", time.Since(start))
	waitUntil(t, "reads on the replica", func() bool { return router.UsesReplica() })
	if msgs := history(); len(msgs) != 1 || msgs[0].ID != first.ID {
		t.Fatalf("history from the replica: %d messages, want the first", len(msgs))
	}
	if found, enrolled := classesOf(classReads); found != 1 || enrolled != 1 {
		t.Fatalf("classes from the replica: %d found, %d enrolled; want 1 and 1", found, enrolled)
	}

	// Replay paused: the replica falls behind; past maxLag reads go to the primary.
	if _, err := standby.Pool.Exec(ctx, `SELECT pg_wal_replay_pause()`); err != nil {
		t.Fatal(err)
	}
	second := publish("second")
	// A second class, and a second member in the room, on the primary only.
	if _, err := primary.Pool.Exec(ctx, `INSERT INTO classes (subject, catalog_number, term, sis_class_number) VALUES ('CS','2','1', gen_random_uuid()::text)`); err != nil {
		t.Fatal(err)
	}
	roomFixtureJoin(t, primary, class)
	// Read on the replica, which has not replayed them: the reads went there.
	waitUntil(t, "the lenient router on the replica", func() bool { return lenient.UsesReplica() })
	if msgs := historyOf(lenientReads); len(msgs) != 1 {
		t.Fatalf("history on the paused replica: %d messages, want the first only", len(msgs))
	}
	if found, enrolled := classesOf(lenientClasses); found != 1 || enrolled != 1 {
		t.Fatalf("classes on the paused replica: %d found, %d enrolled; want 1 and 1", found, enrolled)
	}
	// (A check that times out on a busy machine also sends reads to the primary: wait for one
	// that measured the lag.)
	waitUntil(t, "reads back on the primary with the replica behind", func() bool {
		lag, ok := router.Lag()
		return !router.UsesReplica() && ok && lag > maxLag
	})
	if msgs := history(); len(msgs) != 2 || msgs[1].ID != second.ID {
		t.Fatalf("history with the replica behind: %d messages, want both", len(msgs))
	}
	if found, enrolled := classesOf(classReads); found != 2 || enrolled != 2 {
		t.Fatalf("classes with the replica behind: %d found, %d enrolled; want 2 and 2", found, enrolled)
	}
	if _, err := standby.Pool.Exec(ctx, `SELECT pg_wal_replay_resume()`); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the replica caught up again", func() bool { return router.UsesReplica() })

	// Down: reads go to the primary, also before a check has noticed. This router checks only
	// when told to: only a failed read takes it off the replica.
	unchecked := persistence.NewReadRouter(primary, standby, time.Hour, time.Hour)
	t.Cleanup(unchecked.Close)
	waitUntil(t, "the unchecked router on the replica", func() bool {
		unchecked.Check(ctx)
		return unchecked.UsesReplica()
	})
	uncheckedReads := persistence.NewReadMessages(unchecked)
	uncheckedClasses := persistence.NewReadClasses(unchecked)
	replica.Stop()
	third := publish("third")
	if msgs := history(); len(msgs) != 3 || msgs[2].ID != third.ID {
		t.Fatalf("history with the replica down: %d messages, want all three", len(msgs))
	}
	// The unchecked router still says replica: its reads fail there and go to the primary.
	if !unchecked.UsesReplica() {
		t.Fatal("the unchecked router left the replica before a read failed")
	}
	if msgs := historyOf(uncheckedReads); len(msgs) != 3 {
		t.Fatalf("history with the replica down, unchecked router: %d messages, want all three", len(msgs))
	}
	if unchecked.UsesReplica() {
		t.Fatal("the unchecked router still on the replica after a read failed there")
	}
	if found, enrolled := classesOf(uncheckedClasses); found != 2 || enrolled != 2 {
		t.Fatalf("classes with the replica down: %d found, %d enrolled; want 2 and 2", found, enrolled)
	}
	waitUntil(t, "the router to see the replica down", func() bool {
		_, ok := router.Lag()
		return !ok && !router.UsesReplica()
	})
}

// waitUntil polls cond until it holds, failing the test if it does not within 90 s (a replica
// of a busy test server may replay many databases created by other tests first).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 90 s: %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}

// roomFixtureJoin enrolls a new user in class.
func roomFixtureJoin(tb testing.TB, db *persistence.DB, class cg.ClassID) {
	tb.Helper()
	ctx := context.Background()
	var user cg.UserID
	if err := db.Pool.QueryRow(ctx, `INSERT INTO users (email) VALUES ($1) RETURNING id`, "j"+testenv.RandomHex(4)+"@virginia.edu").Scan(&user); err != nil {
		tb.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO user_classes (user_id, class_id) VALUES ($1, $2)`, user, class); err != nil {
		tb.Fatal(err)
	}
}
