package persistence_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/commongrounds/commongrounds/internal/testenv"
)

// sqlState returns the SQLSTATE of err, or "".
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// TestSchema checks the constraints of the schema directly, both those of the original design
// and the fixes the migration explains.
func TestSchema(t *testing.T) {
	t.Parallel()
	db := testenv.MustOpenDB(t)
	ctx := context.Background()
	exec := func(sql string, args ...any) error {
		_, err := db.Pool.Exec(ctx, sql, args...)
		return err
	}
	newUser := func(email string) string {
		t.Helper()
		var id string
		if err := db.Pool.QueryRow(ctx, `INSERT INTO users (email) VALUES ($1) RETURNING id`, email).Scan(&id); err != nil {
			t.Fatalf("insert user %s: %v", email, err)
		}
		return id
	}
	a, b, c := newUser("aa1a@virginia.edu"), newUser("bb2b@virginia.edu"), newUser("cc3c@virginia.edu")
	var class1, class2 string
	if err := db.Pool.QueryRow(ctx, `INSERT INTO classes (subject, catalog_number, term, sis_class_number) VALUES ('CS','3120','1262','1') RETURNING id`).Scan(&class1); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool.QueryRow(ctx, `INSERT INTO classes (subject, catalog_number, term, sis_class_number) VALUES ('CS','2150','1262','2') RETURNING id`).Scan(&class2); err != nil {
		t.Fatal(err)
	}

	t.Run("ErrEmailDomain", func(t *testing.T) {
		for _, email := range []string{"x@gmail.com", "x@virginia.edu.evil.com", "virginia.edu@evil.com"} {
			if got := sqlState(exec(`INSERT INTO users (email) VALUES ($1)`, email)); got != "23503" {
				t.Fatalf("%s: SQLSTATE=%q, want 23503 (foreign key to email_domains)", email, got)
			}
		}
	})
	t.Run("ErrEmailNotLowerCase", func(t *testing.T) {
		if got := sqlState(exec(`INSERT INTO users (email) VALUES ('Upper@virginia.edu')`)); got != "23514" {
			t.Fatalf("SQLSTATE=%q, want 23514", got)
		}
	})
	t.Run("ErrEmailDuplicate", func(t *testing.T) {
		if got := sqlState(exec(`INSERT INTO users (email) VALUES ('aa1a@virginia.edu')`)); got != "23505" {
			t.Fatalf("SQLSTATE=%q, want 23505", got)
		}
	})
	t.Run("ErrSelfFriendship", func(t *testing.T) {
		if got := sqlState(exec(`INSERT INTO friendships (user_id_1, user_id_2) VALUES ($1, $1)`, a)); got != "23514" {
			t.Fatalf("SQLSTATE=%q, want 23514", got)
		}
	})
	t.Run("ErrFriendshipBothDirections", func(t *testing.T) {
		if err := exec(`INSERT INTO friendships (user_id_1, user_id_2, status, accepted_at) VALUES ($1, $2, 'ACCEPTED', now())`, a, b); err != nil {
			t.Fatal(err)
		}
		if got := sqlState(exec(`INSERT INTO friendships (user_id_1, user_id_2) VALUES ($1, $2)`, b, a)); got != "23505" {
			t.Fatalf("B→A beside A→B: SQLSTATE=%q, want 23505", got)
		}
		if got := sqlState(exec(`INSERT INTO friendships (user_id_1, user_id_2) VALUES ($1, $2)`, a, b)); got != "23505" {
			t.Fatalf("A→B twice: SQLSTATE=%q, want 23505", got)
		}
	})
	t.Run("ErrClassDuplicate", func(t *testing.T) {
		if got := sqlState(exec(`INSERT INTO classes (subject, catalog_number, term, sis_class_number) VALUES ('CS','3120','1262','1')`)); got != "23505" {
			t.Fatalf("SQLSTATE=%q, want 23505", got)
		}
	})
	t.Run("ErrPseudonymDuplicate", func(t *testing.T) {
		if err := exec(`INSERT INTO class_pseudonyms (class_id, user_id, anon_id) VALUES ($1, $2, 'Anon_000001')`, class1, a); err != nil {
			t.Fatal(err)
		}
		if got := sqlState(exec(`INSERT INTO class_pseudonyms (class_id, user_id, anon_id) VALUES ($1, $2, 'Anon_000001')`, class1, b)); got != "23505" {
			t.Fatalf("SQLSTATE=%q, want 23505", got)
		}
		// The same pseudonym in another class is another person's, and allowed.
		if err := exec(`INSERT INTO class_pseudonyms (class_id, user_id, anon_id) VALUES ($1, $2, 'Anon_000001')`, class2, b); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ErrMessageWithoutRoom", func(t *testing.T) {
		// A message belongs to a room (the row whose lock orders its seq), not just to a class.
		if got := sqlState(exec(`INSERT INTO class_messages (class_id, seq, user_id, anon_id, content) VALUES ($1, 1, $2, 'Anon_000001', 'hi')`, class2, b)); got != "23503" {
			t.Fatalf("SQLSTATE=%q, want 23503", got)
		}
	})
	t.Run("ErrSeqDuplicate", func(t *testing.T) {
		if err := exec(`INSERT INTO rooms (class_id, last_seq) VALUES ($1, 3)`, class2); err != nil {
			t.Fatal(err)
		}
		if err := exec(`INSERT INTO class_messages (class_id, seq, user_id, anon_id, content) VALUES ($1, 1, $2, 'Anon_000001', 'hi')`, class2, b); err != nil {
			t.Fatal(err)
		}
		if got := sqlState(exec(`INSERT INTO class_messages (class_id, seq, user_id, anon_id, content) VALUES ($1, 1, $2, 'Anon_000001', 'again')`, class2, b)); got != "23505" {
			t.Fatalf("SQLSTATE=%q, want 23505", got)
		}
	})
	t.Run("ErrClientMsgIDDuplicate", func(t *testing.T) {
		if err := exec(`INSERT INTO class_messages (class_id, seq, user_id, anon_id, content, client_msg_id) VALUES ($1, 2, $2, 'Anon_000001', 'x', 'm1')`, class2, b); err != nil {
			t.Fatal(err)
		}
		if got := sqlState(exec(`INSERT INTO class_messages (class_id, seq, user_id, anon_id, content, client_msg_id) VALUES ($1, 3, $2, 'Anon_000001', 'x', 'm1')`, class2, b)); got != "23505" {
			t.Fatalf("SQLSTATE=%q, want 23505", got)
		}
	})
	t.Run("ErrFlagTwice", func(t *testing.T) {
		var msg string
		if err := db.Pool.QueryRow(ctx, `SELECT id FROM class_messages WHERE class_id = $1 AND seq = 1`, class2).Scan(&msg); err != nil {
			t.Fatal(err)
		}
		if err := exec(`INSERT INTO message_flags (message_id, user_id) VALUES ($1, $2)`, msg, a); err != nil {
			t.Fatal(err)
		}
		if got := sqlState(exec(`INSERT INTO message_flags (message_id, user_id) VALUES ($1, $2)`, msg, a)); got != "23505" {
			t.Fatalf("SQLSTATE=%q, want 23505", got)
		}
	})
	t.Run("SeedFunctions", func(t *testing.T) {
		for _, e := range [][2]string{{a, class1}, {b, class1}, {b, class2}, {c, class1}} {
			if err := exec(`INSERT INTO user_classes (user_id, class_id) VALUES ($1, $2)`, e[0], e[1]); err != nil {
				t.Fatal(err)
			}
		}
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM get_common_classes($1, $2)`, a, b).Scan(&n); err != nil || n != 1 {
			t.Fatalf("common classes of a and b = %d (%v), want 1", n, err)
		}
		var friend string
		if err := db.Pool.QueryRow(ctx, `SELECT friend_id FROM get_user_friends($1)`, b).Scan(&friend); err != nil || friend != a {
			t.Fatalf("friend of b = %s (%v), want %s", friend, err, a)
		}
		// c is in class1 but not a friend; only b appears for a.
		rows, err := db.Pool.Query(ctx, `SELECT friend_id FROM get_friends_in_class($1, $2)`, a, class1)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var id string
			_ = rows.Scan(&id)
			got = append(got, id)
		}
		if rows.Err() != nil || len(got) != 1 || got[0] != b {
			t.Fatalf("friends of a in class1 = %v (%v), want [%s]", got, rows.Err(), b)
		}
	})
	t.Run("DeleteUserDetachesMessages", func(t *testing.T) {
		if err := exec(`INSERT INTO sessions (user_id, token_hash, expires_at) VALUES ($1, '\x01', now() + interval '1 day')`, b); err != nil {
			t.Fatal(err)
		}
		if err := exec(`DELETE FROM users WHERE id = $1`, b); err != nil {
			t.Fatalf("delete user: %v", err)
		}
		var n, detached int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE content IS NOT NULL AND user_id IS NULL AND anon_id IS NOT NULL AND deleted_at IS NULL AND erase_at IS NULL) FROM class_messages WHERE class_id = $1`, class2).Scan(&n, &detached); err != nil {
			t.Fatal(err)
		}
		if n != 2 || detached != 2 {
			t.Fatalf("messages=%d kept without author=%d, want 2 and 2", n, detached)
		}
		for _, table := range []string{"sessions", "user_classes", "class_pseudonyms", "message_flags"} {
			var left int
			if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM `+table+` WHERE user_id = $1`, b).Scan(&left); err != nil || left != 0 {
				t.Fatalf("%s rows left for deleted user = %d (%v), want 0", table, left, err)
			}
		}
		var friendships int
		_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM friendships WHERE $1 IN (user_id_1, user_id_2)`, b).Scan(&friendships)
		if friendships != 0 {
			t.Fatalf("friendships left = %d, want 0", friendships)
		}
	})
	t.Run("DeleteClassTakesItsRoom", func(t *testing.T) {
		if err := exec(`DELETE FROM classes WHERE id = $1`, class2); err != nil {
			t.Fatalf("delete class: %v", err)
		}
		var rooms, messages int
		if err := db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM rooms WHERE class_id = $1), (SELECT count(*) FROM class_messages WHERE class_id = $1)`, class2).Scan(&rooms, &messages); err != nil {
			t.Fatal(err)
		}
		if rooms != 0 || messages != 0 {
			t.Fatalf("after deleting the class: %d rooms and %d messages left, want none", rooms, messages)
		}
	})
}
