package auth_test

import (
	"context"
	"testing"
	"time"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/auth"
	"github.com/commongrounds/commongrounds/internal/testenv"
	"github.com/commongrounds/commongrounds/persistence"
)

// newUser creates a verified user with email on db.
func newUser(t *testing.T, db *persistence.DB, email string) *cg.User {
	t.Helper()
	u, err := persistence.NewUserStore(db).UpsertVerifiedUser(context.Background(), email, auth.ComputingID(email))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestSessions(t *testing.T) {
	t.Parallel()
	db := testenv.MustOpenDB(t)
	ctx := context.Background()
	sessions := &auth.Sessions{Store: persistence.NewSessionStore(db), Signer: mustSigner(t, nil, keyA)}
	u := newUser(t, db, "sess1a@virginia.edu")

	t.Run("OK", func(t *testing.T) {
		tok, sid, exp, err := sessions.Create(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Until(exp); d < 29*24*time.Hour || d > 31*24*time.Hour {
			t.Fatalf("expiry in %v, want the default 30 days", d)
		}
		sess, err := sessions.Authenticate(ctx, tok)
		if err != nil || sess.ID != sid || sess.UserID != u.ID || sess.Role != cg.RoleStudent {
			t.Fatalf("Authenticate=%+v,%v, want session %s of %s", sess, err, sid, u.ID)
		}
	})
	t.Run("OKOnlyHashStored", func(t *testing.T) {
		tok, sid, _, err := sessions.Create(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM sessions WHERE id = $1 AND token_hash = $2 AND position($3::bytea in token_hash) = 0`,
			sid, auth.HashToken(tok), []byte(tok)).Scan(&n); err != nil || n != 1 {
			t.Fatalf("rows with the token's hash=%d (%v), want 1", n, err)
		}
	})
	t.Run("ErrRevoked", func(t *testing.T) {
		tok, sid, _, err := sessions.Create(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := sessions.Revoke(ctx, sid); err != nil {
			t.Fatal(err)
		}
		if _, err := sessions.Authenticate(ctx, tok); cg.ErrorCode(err) != cg.EUNAUTHORIZED {
			t.Fatalf("Authenticate after Revoke: code=%q, want unauthorized", cg.ErrorCode(err))
		}
	})
	t.Run("ErrOtherSessionsToken", func(t *testing.T) {
		// A validly signed token naming a session whose stored hash is another token's.
		_, sid, exp, err := sessions.Create(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		forged, err := sessions.Signer.Sign(string(sid), string(u.ID), exp.Add(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sessions.Authenticate(ctx, forged); cg.ErrorCode(err) != cg.EUNAUTHORIZED {
			t.Fatalf("code=%q, want unauthorized", cg.ErrorCode(err))
		}
	})
	t.Run("ErrExpiredRow", func(t *testing.T) {
		tok, sid, _, err := sessions.Create(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Pool.Exec(ctx, `UPDATE sessions SET expires_at = now() - interval '1 second' WHERE id = $1`, sid); err != nil {
			t.Fatal(err)
		}
		if _, err := sessions.Authenticate(ctx, tok); cg.ErrorCode(err) != cg.EUNAUTHORIZED {
			t.Fatalf("code=%q, want unauthorized", cg.ErrorCode(err))
		}
	})
	t.Run("OKTouchAtMostOnceAMinute", func(t *testing.T) {
		tok, sid, _, err := sessions.Create(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		lastUsed := func() time.Time {
			var ts time.Time
			if err := db.Pool.QueryRow(ctx, `SELECT last_used_at FROM sessions WHERE id = $1`, sid).Scan(&ts); err != nil {
				t.Fatal(err)
			}
			return ts
		}
		if _, err := db.Pool.Exec(ctx, `UPDATE sessions SET last_used_at = now() - interval '2 minutes' WHERE id = $1`, sid); err != nil {
			t.Fatal(err)
		}
		stale := lastUsed()
		if _, err := sessions.Authenticate(ctx, tok); err != nil {
			t.Fatal(err)
		}
		touched := lastUsed()
		if !touched.After(stale.Add(time.Minute)) {
			t.Fatalf("last_used_at=%v after use, want it moved on from %v", touched, stale)
		}
		if _, err := sessions.Authenticate(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if again := lastUsed(); !again.Equal(touched) {
			t.Fatalf("last_used_at rewritten within a minute: %v, then %v", touched, again)
		}
	})
}
