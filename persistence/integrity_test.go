package persistence_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/internal/testenv"
	"github.com/commongrounds/commongrounds/persistence"
)

// A message's author has no foreign key (migrations/002_message_keys.sql): the statements that
// write messages lock the author's row instead, and the account's deletion tombstones its
// messages after the row is gone. These tests put a deletion and a commit against each other in
// both orders, on the single path and on the batch path.

// publishPaths publishes "mine" by author, alone or in a batch with a message of other, and
// returns the error of "mine".
var publishPaths = map[string]func(ctx context.Context, s *persistence.MessageStore, class cg.ClassID, author, other cg.UserID) error{
	"single": func(ctx context.Context, s *persistence.MessageStore, class cg.ClassID, author, _ cg.UserID) error {
		_, _, err := s.CreateMessage(ctx, cg.NewMessage{Class: class, User: author, Content: "mine"})
		return err
	},
	"batch": func(ctx context.Context, s *persistence.MessageStore, class cg.ClassID, author, other cg.UserID) error {
		res := s.CreateMessages(ctx, []cg.NewMessage{
			{Class: class, User: author, Content: "mine"},
			{Class: class, User: other, Content: "theirs"},
		})
		if res[1].Err != nil {
			return res[1].Err
		}
		return res[0].Err
	},
}

// deletionCase is a room of two members, author and other, on one of the publish paths.
type deletionCase struct {
	db            *persistence.DB
	store         *persistence.MessageStore
	class         cg.ClassID
	author, other cg.UserID
	publish       func() error // "mine" by author, on the path
}

// eachPublishPath runs test on a fresh room for each publish path, in parallel.
func eachPublishPath(t *testing.T, test func(t *testing.T, c deletionCase)) {
	t.Parallel()
	for name, publish := range publishPaths {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db := testenv.MustOpenDB(t)
			store := persistence.NewMessageStore(db)
			class, users := memberFixture(t, db, 2)
			test(t, deletionCase{db: db, store: store, class: class, author: users[0], other: users[1], publish: func() error {
				return publish(context.Background(), store, class, users[0], users[1])
			}})
		})
	}
}

// TestAuthorDeletedDuringCommit: the commit has locked its author when the account is deleted;
// the deletion waits for the commit and then takes the message's author away (and schedules its
// erasure, as this deletion asks).
func TestAuthorDeletedDuringCommit(t *testing.T) {
	eachPublishPath(t, func(t *testing.T, c deletionCase) {
		db, store, class, users, ctx := c.db, c.store, c.class, []cg.UserID{c.author, c.other}, context.Background()
		if _, _, err := store.CreateMessage(ctx, cg.NewMessage{Class: class, User: users[1], Content: "first"}); err != nil {
			t.Fatal(err)
		}

		// A transaction of the test holds the room, so the commit stops at the room's lock,
		// after it has checked and locked its authors.
		room, roomPID := lockRoom(t, db, class)
		published := make(chan error, 1)
		go func() { published <- c.publish() }()
		waitBlockedBy(t, db, roomPID)

		del, delPID := conn(t, db)
		// The deletion asks for its messages to be erased (UserStore.DeleteUser's setting).
		if _, err := del.Exec(ctx, `SELECT set_config('commongrounds.erase_spread', '1 hour', false)`); err != nil {
			t.Fatal(err)
		}
		deleted := make(chan error, 1)
		go func() {
			_, err := del.Exec(ctx, `DELETE FROM users WHERE id = $1`, users[0])
			deleted <- err
		}()
		waitWaiting(t, db, delPID) // the deletion waits for the commit

		if err := room.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-published; err != nil {
			t.Fatalf("publish: %v", err)
		}
		if err := <-deleted; err != nil {
			t.Fatalf("delete: %v", err)
		}
		var content *string
		var author *string
		var tombstone, scheduled bool
		if err := db.Pool.QueryRow(ctx, `SELECT content, user_id::text, deleted_at IS NOT NULL, erase_at IS NOT NULL FROM class_messages WHERE class_id = $1 AND seq = 2`, class).
			Scan(&content, &author, &tombstone, &scheduled); err != nil {
			t.Fatal(err)
		}
		if content == nil || author != nil || tombstone || !scheduled {
			t.Fatalf("message of the deleted account: content=%v author=%v tombstone=%v erase scheduled=%v, want its content without author, to be erased", content, author, tombstone, scheduled)
		}
		checkContiguous(t, db, class)
	})
}

// TestAuthorDeletedBeforeCommit: the account's deletion is under way when the commit looks for
// the author; the commit waits for it and refuses the message.
func TestAuthorDeletedBeforeCommit(t *testing.T) {
	eachPublishPath(t, func(t *testing.T, c deletionCase) {
		db, class, users, ctx := c.db, c.class, []cg.UserID{c.author, c.other}, context.Background()

		del, delPID := conn(t, db)
		tx, err := del.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, users[0]); err != nil {
			t.Fatal(err)
		}
		published := make(chan error, 1)
		go func() { published <- c.publish() }()
		waitBlockedBy(t, db, delPID) // the commit waits for the deletion
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-published; cg.ErrorCode(err) != cg.ENOTENROLLED {
			t.Fatalf("publish by a deleted account: %v, want %s", err, cg.ENOTENROLLED)
		}
		var left int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM class_messages WHERE content = 'mine' OR user_id = $1`, users[0]).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left != 0 {
			t.Fatalf("%d messages of the deleted account stored, want 0", left)
		}
		checkContiguous(t, db, class)
	})
}

// lockRoom holds class's room row in a transaction of its own and returns it with the backend's
// pid. The test ends it; cleanup rolls it back if it did not.
func lockRoom(t *testing.T, db *persistence.DB, class cg.ClassID) (pgx.Tx, int) {
	t.Helper()
	return holdLocks(t, db, `SELECT FROM rooms WHERE class_id = $1 FOR UPDATE`, class)
}

// holdLocks runs the locking query in a transaction of its own and returns the transaction with
// its backend's pid. The test ends it; cleanup rolls it back if it did not.
func holdLocks(t *testing.T, db *persistence.DB, query string, args ...any) (pgx.Tx, int) {
	t.Helper()
	c, pid := conn(t, db)
	tx, err := c.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	if tag, err := tx.Exec(context.Background(), query, args...); err != nil || tag.RowsAffected() == 0 {
		t.Fatalf("lock: %d rows, %v", tag.RowsAffected(), err)
	}
	return tx, pid
}

// waitsHoldingNothing holds what hold locks in a transaction of the test and runs run beside it.
// Once run waits for that lock, the transaction takes what free locks, with NOWAIT: it fails
// the test if run already holds it, for then run takes its locks out of order. Then the
// transaction commits, run goes on, and its error is returned.
func waitsHoldingNothing(t *testing.T, db *persistence.DB, hold string, holdArg any, free string, freeArg any, run func() error) error {
	t.Helper()
	tx, pid := holdLocks(t, db, hold, holdArg)
	done := make(chan error, 1)
	go func() { done <- run() }()
	waitBlockedBy(t, db, pid)
	if _, err := tx.Exec(context.Background(), free, freeArg); err != nil {
		t.Fatalf("while it waited for %q, it held what %q takes: %v", hold, free, err)
	}
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	return <-done
}

// inIDOrder returns a and b, the lower id first.
func inIDOrder(a, b cg.UserID) (cg.UserID, cg.UserID) {
	if b < a {
		return b, a
	}
	return a, b
}

// conn takes a connection of its own from db's pool for the test and returns it with its
// backend's pid.
func conn(t *testing.T, db *persistence.DB) (*pgxpool.Conn, int) {
	t.Helper()
	c, err := db.Pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Release)
	var pid int
	if err := c.QueryRow(context.Background(), `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	return c, pid
}

// waitBlockedBy waits until some backend waits for a lock that backend pid holds.
func waitBlockedBy(t *testing.T, db *persistence.DB, pid int) {
	t.Helper()
	waitFor(t, "a backend blocked by the holder", `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)))`, db, pid)
}

// waitWaiting waits until backend pid waits for a lock.
func waitWaiting(t *testing.T, db *persistence.DB, pid int) {
	t.Helper()
	waitFor(t, "the backend to wait for a lock", `SELECT cardinality(pg_blocking_pids($1)) > 0`, db, pid)
}

func waitFor(t *testing.T, what, query string, db *persistence.DB, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var ok bool
		if err := db.Pool.QueryRow(context.Background(), query, pid).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// checkContiguous fails the test unless class's messages are seq 1..last_seq without a gap.
func checkContiguous(t *testing.T, db *persistence.DB, class cg.ClassID) {
	t.Helper()
	var n, maxSeq, last int64
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*), coalesce(max(seq), 0), coalesce((SELECT last_seq FROM rooms WHERE class_id = $1), 0) FROM class_messages WHERE class_id = $1`, class).
		Scan(&n, &maxSeq, &last); err != nil {
		t.Fatal(err)
	}
	if n != maxSeq || maxSeq != last {
		t.Fatalf("room has %d messages, max seq %d, last_seq %d: want all equal", n, maxSeq, last)
	}
}

// TestDeleteUserOnlyAtReadCommitted: at a higher isolation level the tombstone trigger would
// miss a message committed while the deletion waited for its author's row, so it refuses; at
// READ COMMITTED (UserStore's) the account goes and its messages lose their author (keeping
// their content), in every class it wrote in, the ones it has left included (the trigger finds
// them through the account's pseudonyms).
func TestDeleteUserOnlyAtReadCommitted(t *testing.T) {
	t.Parallel()
	db := testenv.MustOpenDB(t)
	store := persistence.NewMessageStore(db)
	ctx := context.Background()
	class, users := memberFixture(t, db, 2)
	left, _ := memberFixture(t, db, 0)
	author, other := users[0], users[1]
	if _, err := db.Pool.Exec(ctx, `INSERT INTO user_classes (user_id, class_id) VALUES ($1, $2)`, author, left); err != nil {
		t.Fatal(err)
	}
	for _, nm := range []cg.NewMessage{
		{Class: class, User: author, Content: "mine"},
		{Class: class, User: other, Content: "theirs"},
		{Class: left, User: author, Content: "mine, in the class I left"},
	} {
		if _, _, err := store.CreateMessage(ctx, nm); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Pool.Exec(ctx, `DELETE FROM user_classes WHERE user_id = $1 AND class_id = $2`, author, left); err != nil {
		t.Fatal(err)
	}
	for _, level := range []pgx.TxIsoLevel{pgx.RepeatableRead, pgx.Serializable} {
		tx, err := db.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: level})
		if err != nil {
			t.Fatal(err)
		}
		if _, err = tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, author); sqlState(err) != "55000" {
			t.Errorf("delete at %s: %v, want SQLSTATE 55000", level, err)
		}
		_ = tx.Rollback(ctx)
	}
	if err := persistence.NewUserStore(db).DeleteUser(ctx, author, 0); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Pool.Query(ctx, `SELECT coalesce(content, ''), user_id IS NULL, deleted_at IS NOT NULL FROM class_messages WHERE class_id IN ($1, $2) ORDER BY class_id = $2, seq`, class, left)
	if err != nil {
		t.Fatal(err)
	}
	type state struct {
		Content           string
		NoAuthor, Deleted bool
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[state])
	if err != nil {
		t.Fatal(err)
	}
	want := []state{{"mine", true, false}, {"theirs", false, false}, {"mine, in the class I left", true, false}}
	if !slices.Equal(got, want) {
		t.Fatalf("messages after the deletion: %+v, want %+v", got, want)
	}
}

// TestVerifyPhoneLocksInIDOrder: a phone verification that takes the number from another
// account changes two users rows, which publishing locks FOR KEY SHARE in id order. A
// transaction of the test stands for a batch that has locked the lower id and goes on to the
// higher; the verification must wait for the lower before it touches the higher, or the two
// would deadlock.
func TestVerifyPhoneLocksInIDOrder(t *testing.T) {
	t.Parallel()
	db := testenv.MustOpenDB(t)
	phones := persistence.NewPhoneStore(db)
	ctx := context.Background()
	a, b := mustUser(t, db, "order-a@virginia.edu"), mustUser(t, db, "order-b@virginia.edu")
	lower, higher := inIDOrder(a.ID, b.ID)
	number, now := hash("+14345550199"), time.Now()
	// higher holds the number; lower is about to prove it has it now.
	for _, u := range []cg.UserID{higher, lower} {
		if err := phones.SavePhoneVerification(ctx, u, number, 1, hash("code"), now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := phones.VerifyPhoneCode(ctx, higher, hash("code"), now, 5); err != nil {
		t.Fatal(err)
	}

	err := waitsHoldingNothing(t, db,
		`SELECT FROM users WHERE id = $1 FOR KEY SHARE`, lower,
		`SELECT FROM users WHERE id = $1 FOR KEY SHARE NOWAIT`, higher,
		func() error { return phones.VerifyPhoneCode(ctx, lower, hash("code"), now, 5) })
	if err != nil {
		t.Fatal(err)
	}
	var holder cg.UserID
	if err := db.Pool.QueryRow(ctx, `SELECT id FROM users WHERE phone_hash = $1`, number).Scan(&holder); err != nil {
		t.Fatal(err)
	}
	if holder != lower {
		t.Fatalf("the number is %s's, want %s's", holder, lower)
	}
}

// TestBatchLocksAuthorsInIDOrder: whatever the order of its messages, a batch locks its authors'
// rows in id order — while it waits for the lower, it holds nothing of the higher.
func TestBatchLocksAuthorsInIDOrder(t *testing.T) {
	t.Parallel()
	db := testenv.MustOpenDB(t)
	store := persistence.NewMessageStore(db)
	ctx := context.Background()
	class, users := memberFixture(t, db, 2)
	lower, higher := inIDOrder(users[0], users[1])
	err := waitsHoldingNothing(t, db,
		`SELECT FROM users WHERE id = $1 FOR UPDATE`, lower,
		`SELECT FROM users WHERE id = $1 FOR UPDATE NOWAIT`, higher,
		func() error {
			res, err := store.InsertBatch(ctx, []cg.NewMessage{
				{Class: class, User: higher, Content: "higher first"},
				{Class: class, User: lower, Content: "lower second"},
			})
			if err == nil && (res[0].Msg == nil || res[1].Msg == nil) {
				err = errors.New("the batch left a message out")
			}
			return err
		})
	if err != nil {
		t.Fatal(err)
	}
	checkContiguous(t, db, class)
}

// TestVerifyPhoneTakesTurnsPerNumber: verifications of one number wait for each other before
// they lock any account, so the number's holder cannot change between a verification's lock of
// the two rows it changes and its change of them (which would lock a third row out of id order).
func TestVerifyPhoneTakesTurnsPerNumber(t *testing.T) {
	t.Parallel()
	db := testenv.MustOpenDB(t)
	phones := persistence.NewPhoneStore(db)
	ctx := context.Background()
	u := mustUser(t, db, "turns@virginia.edu")
	number, now := hash("+14345550198"), time.Now()
	if err := phones.SavePhoneVerification(ctx, u.ID, number, 1, hash("code"), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	err := waitsHoldingNothing(t, db,
		persistence.PhoneLockSQL, number,
		`SELECT FROM users WHERE id = $1 FOR UPDATE NOWAIT`, u.ID,
		func() error { return phones.VerifyPhoneCode(ctx, u.ID, hash("code"), now, 5) })
	if err != nil {
		t.Fatal(err)
	}
}

// TestPreviousReleaseInsertLocksAuthor: during a rolling deploy, servers of the release before
// migration 002 insert messages without locking the author. The trigger does it for their rows
// (version 4 ids, the column default) — a deletion waits for such an insert and tombstones the
// message, and an insert for a deleted author is refused as the foreign key refused it — and
// leaves this release's rows (version 7 ids, author locked by the statement) alone. A changed
// author is checked whoever changes it.
func TestPreviousReleaseInsertLocksAuthor(t *testing.T) {
	t.Parallel()
	db := testenv.MustOpenDB(t)
	ctx := context.Background()
	class, users := memberFixture(t, db, 2)
	author, other := users[0], users[1]
	// The previous release's statement, as it was.
	previous := func(q interface {
		Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	}, user cg.UserID) error {
		_, err := q.Exec(ctx, `
			WITH room AS (
				INSERT INTO rooms (class_id, last_seq) VALUES ($1, 1)
				ON CONFLICT (class_id) DO UPDATE SET last_seq = rooms.last_seq + 1
				RETURNING last_seq)
			INSERT INTO class_messages (class_id, seq, user_id, anon_id, content)
			SELECT $1, room.last_seq, $2, p.anon_id, 'from the previous release'
			  FROM room, class_pseudonyms p WHERE p.class_id = $1 AND p.user_id = $2`, class, user)
		return err
	}
	c, pid := conn(t, db)
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if err := previous(tx, author); err != nil {
		t.Fatal(err)
	}
	deleted := make(chan error, 1)
	go func() { deleted <- persistence.NewUserStore(db).DeleteUser(ctx, author, 0) }()
	waitBlockedBy(t, db, pid) // the deletion waits for the insert
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-deleted; err != nil {
		t.Fatal(err)
	}
	var link *string
	if err := db.Pool.QueryRow(ctx, `SELECT user_id::text FROM class_messages WHERE class_id = $1 AND seq = 1`, class).Scan(&link); err != nil {
		t.Fatal(err)
	}
	if link != nil {
		t.Fatalf("the deleted author's message kept its author %q", *link)
	}

	insert := `INSERT INTO class_messages (id, class_id, seq, user_id, anon_id, content) VALUES ($1, $2, $3, $4, 'Anon_0000aa', 'x')`
	// The author is gone: a row of the previous release naming it is refused...
	if got := sqlState(execRolledBack(t, db, insert, uuid.NewString(), class, 100, author)); got != "23503" {
		t.Errorf("previous release's row for a deleted author: %s, want SQLSTATE 23503", got)
	}
	// ...a row of this release is not looked at (its statement checked the author)...
	if err := execRolledBack(t, db, insert, uuid.Must(uuid.NewV7()).String(), class, 101, author); err != nil {
		t.Errorf("this release's row: %v, want the trigger to leave it alone", err)
	}
	// ...and a live message cannot be given an author that does not exist.
	if err := previous(db.Pool, other); err != nil {
		t.Fatal(err)
	}
	if got := sqlState(execRolledBack(t, db, `UPDATE class_messages SET user_id = gen_random_uuid() WHERE class_id = $1 AND user_id = $2`, class, other)); got != "23503" {
		t.Errorf("author changed to a missing user: %s, want SQLSTATE 23503", got)
	}
}

// execRolledBack runs a statement in a transaction that is rolled back, and returns its error.
func execRolledBack(t *testing.T, db *persistence.DB, sql string, args ...any) error {
	t.Helper()
	tx, err := db.Pool.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	_, err = tx.Exec(context.Background(), sql, args...)
	return err
}

// TestDeleteUserWaitsForPhoneVerification: a phone verification locks its pending row before
// the users rows; deleting the account takes the pending row first too, so while it waits for
// the verification it holds nothing the verification will want.
func TestDeleteUserWaitsForPhoneVerification(t *testing.T) {
	t.Parallel()
	db := testenv.MustOpenDB(t)
	ctx := context.Background()
	u := mustUser(t, db, "leaving@virginia.edu")
	if err := persistence.NewPhoneStore(db).SavePhoneVerification(ctx, u.ID, hash("+14345550197"), 1, hash("code"), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	err := waitsHoldingNothing(t, db,
		`SELECT FROM phone_verifications WHERE user_id = $1 FOR UPDATE`, u.ID,
		`SELECT FROM users WHERE id = $1 FOR UPDATE NOWAIT`, u.ID,
		func() error { return persistence.NewUserStore(db).DeleteUser(ctx, u.ID, 0) })
	if err != nil {
		t.Fatal(err)
	}
	var left bool
	if err := db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`, u.ID).Scan(&left); err != nil || left {
		t.Fatalf("account still there (%v)", err)
	}
}
