package persistence_test

import (
	"context"
	"testing"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/internal/testenv"
	"github.com/commongrounds/commongrounds/persistence"
)

// TestAuditOutlivesModerator: a moderator who deletes their account leaves their audit rows
// whole, with the address and computing id they had when they acted; no row can be changed or
// deleted, and deleting the class keeps them.
func TestAuditOutlivesModerator(t *testing.T) {
	t.Parallel()
	db := testenv.MustOpenDB(t)
	ctx := context.Background()
	store := persistence.NewMessageStore(db)
	class, users := memberFixture(t, db, 2)
	author, mod := users[0], users[1]
	if _, err := db.Pool.Exec(ctx, `UPDATE users SET computing_id = 'mod9z', role = 'moderator' WHERE id = $1`, mod); err != nil {
		t.Fatal(err)
	}
	var modEmail string
	if err := db.Pool.QueryRow(ctx, `SELECT email FROM users WHERE id = $1`, mod).Scan(&modEmail); err != nil {
		t.Fatal(err)
	}
	msg, _, err := store.CreateMessage(ctx, cg.NewMessage{Class: class, User: author, Content: "reported"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.RevealAuthor(ctx, msg.ID, mod, "report"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.SetHidden(ctx, msg.ID, mod, true); err != nil {
		t.Fatal(err)
	}
	if err := persistence.NewUserStore(db).DeleteUser(ctx, mod, 0); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		rows, err := db.Pool.Query(ctx, `
			SELECT action FROM moderation_audit
			 WHERE message_id = $1 AND moderator_id = $2 AND moderator_email = $3 AND moderator_computing_id = 'mod9z'
			 ORDER BY action`, msg.ID, mod, modEmail)
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for rows.Next() {
			var a string
			_ = rows.Scan(&a)
			actions = append(actions, a)
		}
		if rows.Err() != nil || len(actions) != 2 || actions[0] != "hide" || actions[1] != "reveal_author" {
			t.Fatalf("%s: audit rows naming the moderator: %v (%v), want hide and reveal_author", when, actions, rows.Err())
		}
	}
	check("after the moderator's deletion")

	for _, q := range []string{
		`UPDATE moderation_audit SET moderator_id = NULL, moderator_email = NULL`,
		`UPDATE moderation_audit SET reason = 'nothing'`,
		`DELETE FROM moderation_audit`,
		`TRUNCATE moderation_audit`,
	} {
		if _, err := db.Pool.Exec(ctx, q); sqlState(err) != "42501" {
			t.Fatalf("%s: %v, want refused (42501)", q, err)
		}
	}
	if _, err := db.Pool.Exec(ctx, `DELETE FROM classes WHERE id = $1`, class); err != nil {
		t.Fatalf("delete the class: %v", err)
	}
	check("after the class's deletion")
}
