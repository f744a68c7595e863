package persistence_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/internal/testenv"
	"github.com/commongrounds/commongrounds/persistence"
)

// newUser creates a verified user with the computing id cid.
func newUser(t *testing.T, db *persistence.DB, cid string) *cg.User {
	t.Helper()
	u, err := persistence.NewUserStore(db).UpsertVerifiedUser(context.Background(), cid+"@virginia.edu", cid)
	if err != nil {
		t.Fatalf("create user %s: %v", cid, err)
	}
	return u
}

// newClasses stores n classes of term 1262 and returns their ids, in listing order.
func newClasses(t *testing.T, db *persistence.DB, n int) []cg.ClassID {
	t.Helper()
	store := persistence.NewClassStore(db)
	var classes []cg.Class
	for i := range n {
		classes = append(classes, testClass("1262", "CS", fmt.Sprint(1000+i), "001", fmt.Sprint(20000+i), fmt.Sprintf("Course %d", i)))
	}
	if _, _, _, err := store.UpsertClasses(context.Background(), classes, time.Now()); err != nil {
		t.Fatal(err)
	}
	list, _, err := store.ListClasses(context.Background(), persistence.ClassFilter{Limit: persistence.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	return ids(list)
}

func TestEnrollment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testenv.MustOpenDB(t)
	store := persistence.NewEnrollmentStore(db)
	classes := newClasses(t, db, 3)
	u := newUser(t, db, "enr1a")
	unknown := cg.ClassID("00000000-0000-0000-0000-000000000000")

	t.Run("OK", func(t *testing.T) {
		created, err := store.Enroll(ctx, u.ID, classes[1])
		if err != nil || !created {
			t.Fatalf("created=%v err=%v, want true", created, err)
		}
		created, err = store.Enroll(ctx, u.ID, classes[1])
		if err != nil || created {
			t.Fatalf("again: created=%v err=%v, want false", created, err)
		}
		if _, err := store.Enroll(ctx, u.ID, classes[0]); err != nil {
			t.Fatal(err)
		}
		list, err := store.ListUserClasses(ctx, u.ID)
		if err != nil || len(list) != 2 || list[0].ID != classes[0] || list[1].ID != classes[1] {
			t.Fatalf("list=%v err=%v, want classes 0 and 1 in order", ids(list), err)
		}
		if ok, err := store.IsEnrolled(ctx, u.ID, classes[1]); !ok || err != nil {
			t.Fatalf("IsEnrolled=%v err=%v, want true", ok, err)
		}
		if ok, err := store.IsEnrolled(ctx, u.ID, classes[2]); ok || err != nil {
			t.Fatalf("IsEnrolled(other)=%v err=%v, want false", ok, err)
		}
		if n, err := store.CountEnrolled(ctx, classes[1]); n != 1 || err != nil {
			t.Fatalf("CountEnrolled=%d err=%v, want 1", n, err)
		}
	})
	t.Run("DropKeepsPseudonym", func(t *testing.T) {
		c := classes[2]
		if _, err := store.Enroll(ctx, u.ID, c); err != nil {
			t.Fatal(err)
		}
		// The rooms create a pseudonym on first use; dropping must leave it.
		if _, err := db.Pool.Exec(ctx, `INSERT INTO class_pseudonyms (class_id, user_id, anon_id) VALUES ($1, $2, 'Anon_abc123')`, c, u.ID); err != nil {
			t.Fatal(err)
		}
		for range 2 { // idempotent
			if err := store.Drop(ctx, u.ID, c); err != nil {
				t.Fatal(err)
			}
		}
		if ok, _ := store.IsEnrolled(ctx, u.ID, c); ok {
			t.Fatal("still enrolled after dropping")
		}
		if _, err := store.Enroll(ctx, u.ID, c); err != nil {
			t.Fatal(err)
		}
		var anon string
		if err := db.Pool.QueryRow(ctx, `SELECT anon_id FROM class_pseudonyms WHERE class_id = $1 AND user_id = $2`, c, u.ID).Scan(&anon); err != nil || anon != "Anon_abc123" {
			t.Fatalf("pseudonym=%q err=%v, want the same one after re-joining", anon, err)
		}
	})
	for _, bad := range []cg.ClassID{unknown, "nope", ""} {
		t.Run("ErrClassNotFound", func(t *testing.T) {
			if _, err := store.Enroll(ctx, u.ID, bad); cg.ErrorCode(err) != cg.ECLASSNOTFOUND {
				t.Fatalf("Enroll(%q): Code=%v, want %v", bad, cg.ErrorCode(err), cg.ECLASSNOTFOUND)
			}
			if err := store.Drop(ctx, u.ID, bad); err != nil {
				t.Fatalf("Drop(%q): %v, want nil: there is no enrollment to end", bad, err)
			}
			if ok, err := store.IsEnrolled(ctx, u.ID, bad); ok || err != nil {
				t.Fatalf("IsEnrolled(%q)=%v err=%v, want false", bad, ok, err)
			}
		})
	}
	t.Run("ErrUserNotFound", func(t *testing.T) {
		if _, err := store.Enroll(ctx, "00000000-0000-0000-0000-000000000001", classes[0]); cg.ErrorCode(err) != cg.EUSERNOTFOUND {
			t.Fatalf("Code=%v, want %v", cg.ErrorCode(err), cg.EUSERNOTFOUND)
		}
	})
}
