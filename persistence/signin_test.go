package persistence_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/internal/testenv"
	"github.com/commongrounds/commongrounds/persistence"
)

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func mustUser(t *testing.T, db *persistence.DB, email string) *cg.User {
	t.Helper()
	u, err := persistence.NewUserStore(db).UpsertVerifiedUser(context.Background(), email, email[:len(email)-len("@virginia.edu")])
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestMagicLinkStore(t *testing.T) {
	t.Parallel()
	db := testenv.MustOpenDB(t)
	s := persistence.NewMagicLinkStore(db)
	ctx := context.Background()
	now := time.Now()

	t.Run("OKOnce", func(t *testing.T) {
		if err := s.CreateMagicLink(ctx, "ml1a@virginia.edu", hash("t1"), now.Add(15*time.Minute)); err != nil {
			t.Fatal(err)
		}
		email, err := s.RedeemMagicLink(ctx, hash("t1"), now)
		if err != nil || email != "ml1a@virginia.edu" {
			t.Fatalf("Redeem=%q,%v", email, err)
		}
		if _, err := s.RedeemMagicLink(ctx, hash("t1"), now); cg.ErrorCode(err) != cg.EINVALIDTOKEN {
			t.Fatalf("second Redeem: code=%q, want invalid_token", cg.ErrorCode(err))
		}
	})
	t.Run("ErrUnknown", func(t *testing.T) {
		if _, err := s.RedeemMagicLink(ctx, hash("nope"), now); cg.ErrorCode(err) != cg.EINVALIDTOKEN {
			t.Fatalf("code=%q, want invalid_token", cg.ErrorCode(err))
		}
	})
	t.Run("ErrExpired", func(t *testing.T) {
		if err := s.CreateMagicLink(ctx, "ml2b@virginia.edu", hash("t2"), now.Add(15*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RedeemMagicLink(ctx, hash("t2"), now.Add(15*time.Minute)); cg.ErrorCode(err) != cg.EINVALIDTOKEN {
			t.Fatalf("at expiry: code=%q, want invalid_token", cg.ErrorCode(err))
		}
		if _, err := s.RedeemMagicLink(ctx, hash("t2"), now.Add(15*time.Minute-time.Second)); err != nil {
			t.Fatalf("just before expiry: %v", err)
		}
	})
	t.Run("OKConcurrentRedemptionsOnlyOne", func(t *testing.T) {
		if err := s.CreateMagicLink(ctx, "ml3c@virginia.edu", hash("t3"), now.Add(15*time.Minute)); err != nil {
			t.Fatal(err)
		}
		var ok, invalid atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := s.RedeemMagicLink(ctx, hash("t3"), now)
				switch cg.ErrorCode(err) {
				case "":
					ok.Add(1)
				case cg.EINVALIDTOKEN:
					invalid.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		if ok.Load() != 1 || invalid.Load() != 49 {
			t.Fatalf("%d succeeded and %d got invalid_token, want 1 and 49", ok.Load(), invalid.Load())
		}
	})
}

func TestTicketStore(t *testing.T) {
	t.Parallel()
	db := testenv.MustOpenDB(t)
	ctx := context.Background()
	tickets := persistence.NewTicketStore(db)
	sessions := persistence.NewSessionStore(db)
	u := mustUser(t, db, "tk1a@virginia.edu")
	newSession := func(id string, exp time.Time) cg.SessionID {
		t.Helper()
		sid := cg.SessionID(id)
		if err := sessions.CreateSession(ctx, sid, u.ID, hash(id), exp); err != nil {
			t.Fatal(err)
		}
		return sid
	}
	now := time.Now()
	live := newSession("11111111-1111-4111-8111-111111111111", now.Add(time.Hour))

	t.Run("OKOnce", func(t *testing.T) {
		if err := tickets.CreateTicket(ctx, hash("k1"), live, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		sess, err := tickets.RedeemTicket(ctx, hash("k1"), now)
		if err != nil || sess.ID != live || sess.UserID != u.ID {
			t.Fatalf("Redeem=%+v,%v", sess, err)
		}
		if _, err := tickets.RedeemTicket(ctx, hash("k1"), now); cg.ErrorCode(err) != cg.EUNAUTHORIZED {
			t.Fatalf("second Redeem: code=%q, want unauthorized", cg.ErrorCode(err))
		}
	})
	t.Run("ErrExpired", func(t *testing.T) {
		if err := tickets.CreateTicket(ctx, hash("k2"), live, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := tickets.RedeemTicket(ctx, hash("k2"), now.Add(time.Minute)); cg.ErrorCode(err) != cg.EUNAUTHORIZED {
			t.Fatalf("code=%q, want unauthorized", cg.ErrorCode(err))
		}
	})
	t.Run("ErrSessionRevoked", func(t *testing.T) {
		sid := newSession("22222222-2222-4222-8222-222222222222", now.Add(time.Hour))
		if err := tickets.CreateTicket(ctx, hash("k3"), sid, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := sessions.DeleteSession(ctx, sid); err != nil {
			t.Fatal(err)
		}
		if _, err := tickets.RedeemTicket(ctx, hash("k3"), now); cg.ErrorCode(err) != cg.EUNAUTHORIZED {
			t.Fatalf("code=%q, want unauthorized", cg.ErrorCode(err))
		}
	})
	t.Run("ErrSessionExpired", func(t *testing.T) {
		sid := newSession("33333333-3333-4333-8333-333333333333", now.Add(30*time.Second))
		if err := tickets.CreateTicket(ctx, hash("k4"), sid, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := tickets.RedeemTicket(ctx, hash("k4"), now.Add(45*time.Second)); cg.ErrorCode(err) != cg.EUNAUTHORIZED {
			t.Fatalf("code=%q, want unauthorized", cg.ErrorCode(err))
		}
	})
}

func TestPhoneStore(t *testing.T) {
	t.Parallel()
	db := testenv.MustOpenDB(t)
	ctx := context.Background()
	s := persistence.NewPhoneStore(db)
	now := time.Now()
	phoneOf := func(id cg.UserID) (h []byte, version *int, verified bool) {
		t.Helper()
		if err := db.Pool.QueryRow(ctx, `SELECT phone_hash, phone_pepper_version, phone_verified FROM users WHERE id = $1`, id).
			Scan(&h, &version, &verified); err != nil {
			t.Fatal(err)
		}
		return h, version, verified
	}
	pending := func(id cg.UserID) int {
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM phone_verifications WHERE user_id = $1`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Run("OK", func(t *testing.T) {
		u := mustUser(t, db, "ph1a@virginia.edu")
		if err := s.SavePhoneVerification(ctx, u.ID, hash("+14345550101"), 3, hash("code-1"), now.Add(10*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.VerifyPhoneCode(ctx, u.ID, hash("code-1"), now, 5); err != nil {
			t.Fatal(err)
		}
		h, v, verified := phoneOf(u.ID)
		if !bytes.Equal(h, hash("+14345550101")) || v == nil || *v != 3 || !verified {
			t.Fatalf("user phone=%x v=%v verified=%v", h, v, verified)
		}
		if pending(u.ID) != 0 {
			t.Fatal("the verification is still pending")
		}
		if err := s.VerifyPhoneCode(ctx, u.ID, hash("code-1"), now, 5); cg.ErrorCode(err) != cg.EINVALIDCODE {
			t.Fatalf("reuse: code=%q, want invalid_code", cg.ErrorCode(err))
		}
	})
	t.Run("ErrVoidAfterMaxAttempts", func(t *testing.T) {
		u := mustUser(t, db, "ph2b@virginia.edu")
		if err := s.SavePhoneVerification(ctx, u.ID, hash("+14345550102"), 1, hash("right"), now.Add(10*time.Minute)); err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			if err := s.VerifyPhoneCode(ctx, u.ID, hash("wrong"), now, 5); cg.ErrorCode(err) != cg.EINVALIDCODE {
				t.Fatalf("wrong try %d: code=%q, want invalid_code", i+1, cg.ErrorCode(err))
			}
		}
		if err := s.VerifyPhoneCode(ctx, u.ID, hash("right"), now, 5); cg.ErrorCode(err) != cg.EINVALIDCODE {
			t.Fatalf("right code after 5 wrong: code=%q, want invalid_code", cg.ErrorCode(err))
		}
		if _, _, verified := phoneOf(u.ID); verified {
			t.Fatal("phone verified by a voided code")
		}
	})
	t.Run("OKFourWrongThenRight", func(t *testing.T) {
		u := mustUser(t, db, "ph3c@virginia.edu")
		if err := s.SavePhoneVerification(ctx, u.ID, hash("+14345550103"), 1, hash("right"), now.Add(10*time.Minute)); err != nil {
			t.Fatal(err)
		}
		for range 4 {
			_ = s.VerifyPhoneCode(ctx, u.ID, hash("wrong"), now, 5)
		}
		if err := s.VerifyPhoneCode(ctx, u.ID, hash("right"), now, 5); err != nil {
			t.Fatalf("right code at the 5th try: %v", err)
		}
	})
	t.Run("ErrConcurrentGuessesCounted", func(t *testing.T) {
		u := mustUser(t, db, "ph4d@virginia.edu")
		if err := s.SavePhoneVerification(ctx, u.ID, hash("+14345550104"), 1, hash("right"), now.Add(10*time.Minute)); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = s.VerifyPhoneCode(ctx, u.ID, hash(string(rune('a'+i))), now, 5)
			}()
		}
		wg.Wait()
		if err := s.VerifyPhoneCode(ctx, u.ID, hash("right"), now, 5); cg.ErrorCode(err) != cg.EINVALIDCODE {
			t.Fatalf("right code after 20 concurrent wrong: code=%q, want invalid_code", cg.ErrorCode(err))
		}
	})
	t.Run("ErrExpired", func(t *testing.T) {
		u := mustUser(t, db, "ph5e@virginia.edu")
		if err := s.SavePhoneVerification(ctx, u.ID, hash("+14345550105"), 1, hash("right"), now.Add(10*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.VerifyPhoneCode(ctx, u.ID, hash("right"), now.Add(10*time.Minute), 5); cg.ErrorCode(err) != cg.EINVALIDCODE {
			t.Fatalf("code=%q, want invalid_code", cg.ErrorCode(err))
		}
	})
	t.Run("OKNumberMovesToNewVerifier", func(t *testing.T) {
		a, b := mustUser(t, db, "ph6f@virginia.edu"), mustUser(t, db, "ph7g@virginia.edu")
		for _, u := range []*cg.User{a, b} {
			if err := s.SavePhoneVerification(ctx, u.ID, hash("+14345550106"), 1, hash("c"), now.Add(10*time.Minute)); err != nil {
				t.Fatal(err)
			}
			if err := s.VerifyPhoneCode(ctx, u.ID, hash("c"), now, 5); err != nil {
				t.Fatal(err)
			}
		}
		if h, v, verified := phoneOf(a.ID); h != nil || v != nil || verified {
			t.Fatalf("the previous holder kept the number: %x %v %v", h, v, verified)
		}
		if _, _, verified := phoneOf(b.ID); !verified {
			t.Fatal("the new holder is not verified")
		}
	})
	t.Run("OKImportContacts", func(t *testing.T) {
		me := mustUser(t, db, "ct0a@virginia.edu")
		users := map[string]*cg.User{}
		for _, name := range []string{"friend", "pending", "stranger", "blocked", "blocker", "unverified"} {
			u := mustUser(t, db, "ct"+name+"@virginia.edu")
			users[name] = u
			if name == "unverified" {
				if err := s.SavePhoneVerification(ctx, u.ID, hash(name), 1, hash("c"), now.Add(time.Minute)); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if _, err := db.Pool.Exec(ctx, `UPDATE users SET phone_hash = $2, phone_pepper_version = 1, phone_verified = true WHERE id = $1`, u.ID, hash(name)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.Pool.Exec(ctx, `UPDATE users SET phone_hash = $2, phone_pepper_version = 1, phone_verified = true WHERE id = $1`, me.ID, hash("me")); err != nil {
			t.Fatal(err)
		}
		exec := func(sql string, args ...any) {
			t.Helper()
			if _, err := db.Pool.Exec(ctx, sql, args...); err != nil {
				t.Fatal(err)
			}
		}
		exec(`INSERT INTO friendships (user_id_1, user_id_2, status, accepted_at) VALUES ($1, $2, 'ACCEPTED', now())`, users["friend"].ID, me.ID)
		exec(`INSERT INTO friendships (user_id_1, user_id_2) VALUES ($1, $2)`, me.ID, users["pending"].ID)
		exec(`INSERT INTO user_blocks (blocker_id, blocked_id) VALUES ($1, $2)`, me.ID, users["blocked"].ID)
		exec(`INSERT INTO user_blocks (blocker_id, blocked_id) VALUES ($1, $2)`, users["blocker"].ID, me.ID)

		var hashes [][]byte
		for _, name := range []string{"friend", "pending", "stranger", "blocked", "blocker", "unverified", "me", "nobody"} {
			hashes = append(hashes, hash(name))
		}
		matches, err := s.ImportContacts(ctx, me.ID, hashes)
		if err != nil {
			t.Fatal(err)
		}
		got := map[cg.UserID]string{}
		for _, m := range matches {
			status := "null"
			if m.FriendshipStatus != nil {
				status = *m.FriendshipStatus
			}
			got[m.UserID] = status
		}
		want := map[cg.UserID]string{users["friend"].ID: "ACCEPTED", users["pending"].ID: "PENDING", users["stranger"].ID: "null"}
		if len(got) != len(want) {
			t.Fatalf("matches %v, want %v", got, want)
		}
		for id, st := range want {
			if got[id] != st {
				t.Fatalf("matches %v, want %v", got, want)
			}
		}
		var stored int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM user_contacts WHERE user_id = $1`, me.ID).Scan(&stored); err != nil || stored != len(hashes) {
			t.Fatalf("stored %d contact hashes (%v), want %d", stored, err, len(hashes))
		}
		if _, err := s.ImportContacts(ctx, me.ID, hashes); err != nil {
			t.Fatalf("importing the same contacts again: %v", err)
		}
	})
	t.Run("OKImportNothing", func(t *testing.T) {
		me := mustUser(t, db, "ct9z@virginia.edu")
		matches, err := s.ImportContacts(ctx, me.ID, nil)
		if err != nil || matches == nil || len(matches) != 0 {
			t.Fatalf("ImportContacts(nil)=%v,%v, want an empty list", matches, err)
		}
	})
}

func TestCleanupStore(t *testing.T) {
	t.Parallel()
	db := testenv.MustOpenDB(t)
	ctx := context.Background()
	c := persistence.NewCleanupStore(db)
	links := persistence.NewMagicLinkStore(db)
	sessions := persistence.NewSessionStore(db)
	now := time.Now()
	u := mustUser(t, db, "cl1a@virginia.edu")

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(links.CreateMagicLink(ctx, "x@virginia.edu", hash("expired"), now.Add(-time.Minute)))
	must(links.CreateMagicLink(ctx, "x@virginia.edu", hash("live"), now.Add(time.Minute)))
	must(sessions.CreateSession(ctx, "44444444-4444-4444-8444-444444444444", u.ID, hash("s-old"), now.Add(-time.Minute)))
	must(sessions.CreateSession(ctx, "55555555-5555-4555-8555-555555555555", u.ID, hash("s-live"), now.Add(time.Hour)))
	must(persistence.NewTicketStore(db).CreateTicket(ctx, hash("tk-old"), "55555555-5555-4555-8555-555555555555", now.Add(-time.Second)))
	must(persistence.NewPhoneStore(db).SavePhoneVerification(ctx, u.ID, hash("p"), 1, hash("c"), now.Add(-time.Second)))

	count := func(table string) int {
		t.Helper()
		var n int
		must(db.Pool.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n))
		return n
	}

	t.Run("OKSkippedWhileLocked", func(t *testing.T) {
		conn, err := db.Pool.Acquire(ctx)
		must(err)
		defer conn.Release()
		must(conn.QueryRow(ctx, `SELECT pg_advisory_lock($1, $2)`, int32(0x43470001), int32(1)).Scan(new(any)))
		n, ran, err := c.PurgeSignIns(ctx, now)
		_, err2 := conn.Exec(ctx, `SELECT pg_advisory_unlock($1, $2)`, int32(0x43470001), int32(1))
		must(err2)
		if err != nil || ran || n != 0 {
			t.Fatalf("PurgeSignIns while another holds the lock=%d,%v,%v, want 0,false,nil", n, ran, err)
		}
		if count("magic_links") != 2 {
			t.Fatal("a skipped job deleted links")
		}
	})
	t.Run("OKSignIns", func(t *testing.T) {
		n, ran, err := c.PurgeSignIns(ctx, now)
		if err != nil || !ran || n != 3 {
			t.Fatalf("PurgeSignIns=%d,%v,%v, want 3,true,nil", n, ran, err)
		}
		if count("magic_links") != 1 || count("ws_tickets") != 0 || count("phone_verifications") != 0 {
			t.Fatal("wrong rows left")
		}
		if _, err := links.RedeemMagicLink(ctx, hash("live"), now); err != nil {
			t.Fatalf("the live link was deleted: %v", err)
		}
	})
	t.Run("OKSessions", func(t *testing.T) {
		n, ran, err := c.PurgeSessions(ctx, now)
		if err != nil || !ran || n != 1 {
			t.Fatalf("PurgeSessions=%d,%v,%v, want 1,true,nil", n, ran, err)
		}
		if count("sessions") != 1 {
			t.Fatal("the live session was deleted")
		}
	})
	t.Run("OKUsedLinksKeptAWeek", func(t *testing.T) {
		must(links.CreateMagicLink(ctx, "x@virginia.edu", hash("used"), now.Add(30*24*time.Hour)))
		if _, err := links.RedeemMagicLink(ctx, hash("used"), now); err != nil {
			t.Fatal(err)
		}
		usedLeft := func() int {
			var n int
			must(db.Pool.QueryRow(ctx, `SELECT count(*) FROM magic_links WHERE token_hash = $1`, hash("used")).Scan(&n))
			return n
		}
		if _, _, err := c.PurgeSignIns(ctx, now.Add(6*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if usedLeft() != 1 {
			t.Fatal("a link used 6 days ago was deleted")
		}
		if _, _, err := c.PurgeSignIns(ctx, now.Add(8*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if usedLeft() != 0 {
			t.Fatal("a link used 8 days ago was kept")
		}
	})
}
