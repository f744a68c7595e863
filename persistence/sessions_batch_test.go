package persistence_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/internal/testenv"
	"github.com/commongrounds/commongrounds/persistence"
)

// sessionFixture runs the test in parallel on a database of its own with a user, and returns
// a session store and a batching one over it.
func sessionFixture(t *testing.T) (*persistence.DB, *persistence.SessionStore, *persistence.BatchingSessionStore, *cg.User) {
	t.Helper()
	t.Parallel()
	db := testenv.MustOpenDB(t)
	store := persistence.NewSessionStore(db)
	batching := persistence.NewBatchingSessionStore(store, 2, 64)
	t.Cleanup(batching.Close)
	return db, store, batching, mustUser(t, db, "sessions@virginia.edu")
}

// TestFindSessions answers many session lookups at once, through FindSessions and through the
// batching store's concurrent FindSession: every answer is the one FindSession alone gives.
func TestFindSessions(t *testing.T) {
	_, store, batching, u := sessionFixture(t)
	ctx := context.Background()
	const live, expired, missing = "66666666-6666-4666-8666-666666666666", "77777777-7777-4777-8777-777777777777", "88888888-8888-4888-8888-888888888888"
	if err := store.CreateSession(ctx, live, u.ID, hash("live"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := store.CreateSession(ctx, expired, u.ID, hash("expired"), time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	reqs := []persistence.SessionRequest{
		{ID: live, TokenHash: hash("live")},
		{ID: live, TokenHash: hash("another token")},
		{ID: expired, TokenHash: hash("expired")},
		{ID: missing, TokenHash: hash("live")},
		{ID: "not-a-uuid", TokenHash: hash("live")},
		{ID: live, TokenHash: hash("live")},
	}
	check := func(t *testing.T, how string, i int, got *cg.Session, err error) {
		t.Helper()
		r := reqs[i]
		want, wantErr := store.FindSession(ctx, r.ID, r.TokenHash)
		if cg.ErrorCode(err) != cg.ErrorCode(wantErr) {
			t.Errorf("%s, request %d: error %v, want %v", how, i, err, wantErr)
			return
		}
		if (got == nil) != (want == nil) || got != nil && (got.ID != want.ID || got.UserID != want.UserID || got.Role != want.Role || !got.ExpiresAt.Equal(want.ExpiresAt)) {
			t.Errorf("%s, request %d: %+v, want %+v", how, i, got, want)
		}
	}
	found := 0
	for i, res := range store.FindSessions(ctx, reqs) {
		check(t, "FindSessions", i, res.Session, res.Err)
		if res.Session != nil {
			found++
		}
	}
	if found != 2 {
		t.Fatalf("FindSessions found %d sessions, want 2", found)
	}
	var wg sync.WaitGroup
	for range 20 {
		for i, r := range reqs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := batching.FindSession(ctx, r.ID, r.TokenHash)
				check(t, "batched", i, s, err)
			}()
		}
	}
	wg.Wait()
}

// TestTouchSessions: a session last used over a minute ago is touched, a recent one is not, and
// one that another transaction holds is left to it without waiting.
func TestTouchSessions(t *testing.T) {
	db, store, batching, u := sessionFixture(t)
	ctx := context.Background()
	ids := []cg.SessionID{"99999999-9999-4999-8999-999999999991", "99999999-9999-4999-8999-999999999992", "99999999-9999-4999-8999-999999999993"}
	old, recent, held := ids[0], ids[1], ids[2]
	for _, id := range ids {
		if err := store.CreateSession(ctx, id, u.ID, hash(string(id)), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE sessions SET last_used_at = now() - interval '2 minutes' WHERE id = ANY($1::text[]::uuid[])`, []string{string(old), string(held)}); err != nil {
		t.Fatal(err)
	}
	lastUsed := func(id cg.SessionID) time.Time {
		var at time.Time
		if err := db.Pool.QueryRow(ctx, `SELECT last_used_at FROM sessions WHERE id = $1`, id).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	before := map[cg.SessionID]time.Time{}
	for _, id := range ids {
		before[id] = lastUsed(id)
	}
	tx, _ := holdLocks(t, db, `SELECT FROM sessions WHERE id = $1 FOR UPDATE`, held)
	// A touch that waited for the held row would fail, at its batch's own deadline (5 s),
	// instead of hanging.
	var wg sync.WaitGroup
	for _, id := range append(ids, "not-a-uuid") {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := batching.TouchSession(ctx, id); err != nil {
				t.Errorf("touch %s: %v", id, err)
			}
		}()
	}
	wg.Wait()
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if !lastUsed(old).After(before[old]) {
		t.Errorf("the session last used 2 minutes ago was not touched")
	}
	if !lastUsed(recent).Equal(before[recent]) || !lastUsed(held).Equal(before[held]) {
		t.Errorf("a recent or held session was touched")
	}
}

// BenchmarkFindSession looks up 256 sessions from 64 goroutines, one by one and batched. It
// reports lookups per second.
func BenchmarkFindSession(b *testing.B) {
	db := testenv.MustOpenDB(b)
	base := persistence.NewSessionStore(db)
	batching := persistence.NewBatchingSessionStore(base, 2, 256)
	defer batching.Close()
	ctx := context.Background()
	_, users := roomFixture(b, db, 256)
	reqs := make([]persistence.SessionRequest, len(users))
	for i, u := range users {
		reqs[i] = persistence.SessionRequest{ID: cg.SessionID(uuid.NewString()), TokenHash: hash(string(u))}
		if err := base.CreateSession(ctx, reqs[i].ID, u, reqs[i].TokenHash, time.Now().Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		store interface {
			FindSession(context.Context, cg.SessionID, []byte) (*cg.Session, error)
		}
	}{{"single", base}, {"batched", batching}} {
		b.Run(tc.name, func(b *testing.B) {
			benchmarkLookups(b, func(n int64) error {
				r := reqs[n%int64(len(reqs))]
				_, err := tc.store.FindSession(ctx, r.ID, r.TokenHash)
				return err
			})
		})
	}
}
