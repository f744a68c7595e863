package persistence_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/internal/testenv"
	"github.com/commongrounds/commongrounds/persistence"
)

// newPushSession signs the user in: a session of their own for their subscriptions.
func newPushSession(t *testing.T, db *persistence.DB, user cg.UserID) cg.SessionID {
	t.Helper()
	sid := cg.SessionID(uuid.NewString())
	if err := persistence.NewSessionStore(db).CreateSession(context.Background(), sid, user, []byte(sid), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	return sid
}

func testSub(endpoint string, b byte) *cg.PushSubscription {
	return &cg.PushSubscription{Endpoint: endpoint, P256dh: bytes.Repeat([]byte{b}, 65), Auth: bytes.Repeat([]byte{b}, 16)}
}

func TestPushSubscriptionStore(t *testing.T) {
	t.Parallel()
	db := testenv.MustOpenDB(t)
	s := persistence.NewPushSubscriptionStore(db)
	ctx := context.Background()
	u := newUser(t, db, "pushst1")
	sid := newPushSession(t, db, u.ID)

	t.Run("SaveListRemove", func(t *testing.T) {
		exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		sub := testSub("https://push.example/a", 1)
		sub.ExpiresAt = &exp
		if err := s.SavePushSubscription(ctx, u.ID, sid, sub, 10); err != nil {
			t.Fatal(err)
		}
		if sub.CreatedAt.IsZero() {
			t.Fatal("CreatedAt not set")
		}
		list, err := s.ListPushSubscriptions(ctx, u.ID)
		if err != nil || len(list) != 1 || !list[0].ExpiresAt.Equal(exp) || !bytes.Equal(list[0].P256dh, sub.P256dh) {
			t.Fatalf("list %v (%v), want the one saved", list, err)
		}
		// A push service's "gone" for keys registered before does not remove newer ones.
		if err := s.SavePushSubscription(ctx, u.ID, sid, testSub("https://push.example/a", 2), 10); err != nil {
			t.Fatal(err)
		}
		if err := s.RemovePushSubscription(ctx, "https://push.example/a", sub.P256dh); err != nil {
			t.Fatal(err)
		}
		if list, _ := s.ListPushSubscriptions(ctx, u.ID); len(list) != 1 {
			t.Fatalf("%d left, want the re-registered subscription kept", len(list))
		}
		if err := s.RemovePushSubscription(ctx, "https://push.example/a", testSub("", 2).P256dh); err != nil {
			t.Fatal(err)
		}
		if list, _ := s.ListPushSubscriptions(ctx, u.ID); len(list) != 0 {
			t.Fatalf("%d left, want none", len(list))
		}
	})

	t.Run("ErrSessionEnded", func(t *testing.T) {
		other := newUser(t, db, "pushst2")
		gone := newPushSession(t, db, other.ID)
		if err := persistence.NewSessionStore(db).DeleteSession(ctx, gone); err != nil {
			t.Fatal(err)
		}
		err := s.SavePushSubscription(ctx, other.ID, gone, testSub("https://push.example/b", 3), 10)
		if cg.ErrorCode(err) != cg.EUNAUTHORIZED {
			t.Fatalf("Code=%v, want unauthorized", cg.ErrorCode(err))
		}
	})

	// Saves at once cannot pass the limit together.
	t.Run("LimitUnderConcurrency", func(t *testing.T) {
		racer := newUser(t, db, "pushst3")
		rsid := newPushSession(t, db, racer.ID)
		var wg sync.WaitGroup
		errs := make(chan error, 30)
		for i := range 30 {
			wg.Go(func() {
				errs <- s.SavePushSubscription(ctx, racer.ID, rsid, testSub(fmt.Sprintf("https://push.example/race/%d", i), byte(i)), cg.MaxPushSubscriptions)
			})
		}
		wg.Wait()
		close(errs)
		var ok, tooMany int
		for err := range errs {
			switch cg.ErrorCode(err) {
			case "":
				ok++
			case cg.ETOOMANYSUBSCRIPTIONS:
				tooMany++
			default:
				t.Fatal(err)
			}
		}
		list, _ := s.ListPushSubscriptions(ctx, racer.ID)
		if ok != cg.MaxPushSubscriptions || tooMany != 30-cg.MaxPushSubscriptions || len(list) != cg.MaxPushSubscriptions {
			t.Fatalf("%d saved, %d refused, %d stored; want %d, %d, %d", ok, tooMany, len(list), cg.MaxPushSubscriptions, 30-cg.MaxPushSubscriptions, cg.MaxPushSubscriptions)
		}
	})
}
