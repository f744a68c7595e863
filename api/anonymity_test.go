package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/api"
	"github.com/commongrounds/commongrounds/auth"
	"github.com/commongrounds/commongrounds/hub"
	"github.com/commongrounds/commongrounds/internal/testenv"
	"github.com/commongrounds/commongrounds/persistence"
	"github.com/commongrounds/commongrounds/rooms"
)

// withHub serves /ws from a hub on the test server's room service, with the anonymity
// threshold k.
func withHub(t *testing.T, k int) func(*api.Deps) {
	return func(d *api.Deps) {
		d.Rooms.AnonymityK = k
		authn := func(r *http.Request) (*cg.Session, error) {
			token, _ := api.BearerToken(r)
			return d.Sessions.Authenticate(r.Context(), token)
		}
		h := hub.New(d.Rooms.Store, d.Rooms.Broker, d.Rooms, authn, hub.Options{Registerer: d.Registerer})
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := h.Shutdown(ctx); err != nil {
				t.Errorf("hub shutdown: %v", err)
			}
		})
		d.WebSocket = h
	}
}

// socket is a WebSocket client of the test server whose frames arrive on a channel.
type socket struct {
	ws     *websocket.Conn
	frames chan map[string]any
}

func (ts *testServer) dial(t *testing.T, token string) *socket {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	s := &socket{ws: ws, frames: make(chan map[string]any, 256)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(s.frames)
		for {
			_, data, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			var f map[string]any
			if json.Unmarshal(data, &f) == nil {
				s.frames <- f
			}
		}
	}()
	t.Cleanup(func() { _ = ws.CloseNow(); <-done })
	return s
}

func (s *socket) send(t *testing.T, v any) {
	t.Helper()
	data, _ := json.Marshal(v)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.ws.Write(ctx, websocket.MessageText, data); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// expect returns the next frame of type typ, skipping presence and typing frames.
func (s *socket) expect(t *testing.T, typ string) map[string]any {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				t.Fatalf("socket ended waiting for %s", typ)
			}
			if f["type"] == typ {
				return f
			}
			if f["type"] != "presence" && f["type"] != "typing" {
				t.Fatalf("frame %v, want %s", f, typ)
			}
		case <-timeout:
			t.Fatalf("no %s frame within 15 s", typ)
		}
	}
}

// suggestedEmails returns the e-mail addresses of u's friend suggestions.
func (ts *testServer) suggestedEmails(t *testing.T, u friendUser) []string {
	t.Helper()
	resp, raw := ts.doRaw("GET", "/api/v1/friends/suggestions", u.token, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("suggestions: status %d", resp.StatusCode)
	}
	return emailsIn(listOf(t, raw, "suggestions"))
}

// TestSmallRoom is the review's reproduction: Alice is in C1 and C2 with one other student and
// posts in C1; Mallory enrolls herself in both. Nothing Mallory can ask for narrows the author
// below the threshold: no exact count, no suggestion, no friend listed in the class, no exact
// presence, and the room tells its members that it is small. Once the class has k members, the
// counts and suggestions come back.
func TestSmallRoom(t *testing.T) {
	t.Parallel()
	const k = 5
	ts := newTestServer(t, withHub(t, k))
	alice, bob, mallory := ts.friendUser("sma1a"), ts.friendUser("smb1b"), ts.friendUser("smm1m")
	c1 := ts.newRoomClass(alice.token, bob.token)
	c2 := ts.newRoomClass(alice.token, bob.token)
	ts.post(alice.token, c1, map[string]any{"content": "I think the TA is unfair"})
	ts.enrollIn(t, mallory, c1, c2)
	ts.befriend(t, mallory, bob) // even a friend's membership of a small class stays hidden

	t.Run("NoExactCount", func(t *testing.T) {
		resp, body := ts.do("GET", "/api/v1/classes/"+c1, mallory.token, nil)
		if resp.StatusCode != 200 || body["enrolled_count"] != nil || body["enrolled_fewer_than"] != float64(k) {
			t.Fatalf("status %d enrolled_count=%v enrolled_fewer_than=%v, want null and %d", resp.StatusCode, body["enrolled_count"], body["enrolled_fewer_than"], k)
		}
		if _, ok := body["enrolled_count"]; !ok {
			t.Fatal("enrolled_count is missing; want it null")
		}
	})
	t.Run("NoSuggestion", func(t *testing.T) {
		if got := ts.suggestedEmails(t, mallory); len(got) != 0 {
			t.Fatalf("Mallory's suggestions=%v, want none from classes below %d", got, k)
		}
	})
	t.Run("NoFriendInClass", func(t *testing.T) {
		resp, raw := ts.doRaw("GET", "/api/v1/classes/"+c1+"/friends", mallory.token, nil)
		if got := listOf(t, raw, "friends"); resp.StatusCode != 200 || len(got) != 0 {
			t.Fatalf("status %d friends in C1=%v, want none", resp.StatusCode, got)
		}
		resp, raw = ts.doRaw("GET", "/api/v1/friends/"+string(bob.ID)+"/common-classes", mallory.token, nil)
		if got := listOf(t, raw, "classes"); resp.StatusCode != 200 || len(got) != 0 {
			t.Fatalf("status %d common classes=%v, want none below %d", resp.StatusCode, got, k)
		}
	})
	t.Run("RoomSaysSmall", func(t *testing.T) {
		s := ts.dial(t, mallory.token)
		s.send(t, map[string]any{"type": "subscribe", "room": c1})
		f := s.expect(t, "subscribed")
		online, has := f["online"]
		if !has || online != nil || f["online_fewer_than"] != float64(k) || f["small_room"] != true || f["anonymity_k"] != float64(k) {
			t.Fatalf("subscribed=%v, want online null, online_fewer_than %d, small_room true", f, k)
		}
	})

	// Two more students: the class reaches k.
	for _, cid := range []string{"smd1d", "sme1e"} {
		ts.enrollIn(t, ts.friendUser(cid), c1, c2)
	}
	t.Run("AtThreshold", func(t *testing.T) {
		resp, body := ts.do("GET", "/api/v1/classes/"+c1, mallory.token, nil)
		if resp.StatusCode != 200 || body["enrolled_count"] != float64(k) || body["enrolled_fewer_than"] != nil {
			t.Fatalf("enrolled_count=%v enrolled_fewer_than=%v, want %d", body["enrolled_count"], body["enrolled_fewer_than"], k)
		}
		if got := ts.suggestedEmails(t, mallory); !slices.Contains(got, alice.Email) {
			t.Fatalf("suggestions=%v, want Alice (two shared classes of %d)", got, k)
		}
		s := ts.dial(t, mallory.token)
		s.send(t, map[string]any{"type": "subscribe", "room": c1})
		// Mallory alone is online: still fewer than k.
		if f := s.expect(t, "subscribed"); f["small_room"] != false || f["online"] != nil || f["online_fewer_than"] != float64(k) {
			t.Fatalf("subscribed=%v, want small_room false and online fewer than %d", f, k)
		}
	})
}

// TestEnrollmentQuota: enrollment changes are limited per e-mail address, and deleting and
// re-creating the account does not reset the count.
func TestEnrollmentQuota(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(d *api.Deps) { d.EnrollRate.Limit, d.EnrollRate.Window = 3, 24*time.Hour })
	u := ts.friendUser("enq1a")
	c := ts.newRoomClass()
	ts.enrollIn(t, u, c)
	if resp, _ := ts.doRaw("DELETE", "/api/v1/me/classes/"+c, u.token, nil); resp.StatusCode != 204 {
		t.Fatalf("drop: status %d", resp.StatusCode)
	}
	if resp, _ := ts.doRaw("DELETE", "/api/v1/me", u.token, nil); resp.StatusCode != 204 {
		t.Fatalf("delete account: status %d", resp.StatusCode)
	}
	again := ts.friendUser("enq1a")
	if again.ID == u.ID {
		t.Fatal("signing in again gave the deleted account")
	}
	ts.enrollIn(t, again, c) // the third change
	resp, body := ts.do("POST", "/api/v1/me/classes", again.token, map[string]string{"class_id": c})
	wantProblem(t, resp, body, 429, "rate_limited")
	resp, body = ts.do("DELETE", "/api/v1/me/classes/"+c, again.token, nil)
	wantProblem(t, resp, body, 429, "rate_limited")
}

// TestFriendRequestQuota: friend requests are limited per e-mail address, across a deletion of
// the account, and an address or computing id without an account is answered as one with an
// account, with nothing created.
func TestFriendRequestQuota(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(d *api.Deps) { d.FriendRequestRate.Limit, d.FriendRequestRate.Window = 5, time.Hour })
	a, b := ts.friendUser("frq1a"), ts.friendUser("frq1b")
	ask := func(u friendUser, body map[string]string) (*http.Response, []byte) {
		t.Helper()
		return ts.doRaw("POST", "/api/v1/friends/requests", u.token, body)
	}
	known, knownRaw := ask(a, map[string]string{"email": b.Email})
	for _, body := range []map[string]string{
		{"email": b.Email}, // again: answered as the first time
		{"email": "nobody7q@virginia.edu"},
		{"computing_id": "nobody7q"},
		{"email": "ab\u0000@virginia.edu"},
	} {
		resp, raw := ask(a, body)
		if resp.StatusCode != known.StatusCode || string(raw) != string(knownRaw) || resp.Header.Get("Content-Type") != known.Header.Get("Content-Type") {
			t.Fatalf("unknown %v: %d %s, want what a known address gets: %d %s", body, resp.StatusCode, raw, known.StatusCode, knownRaw)
		}
	}
	var rows int
	if err := ts.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM friendships WHERE user_id_1 = $1`, a.ID).Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("a's requests stored: %d (%v), want only the one to b", rows, err)
	}
	// Five requests so far; the account goes and comes back, and the quota stays spent.
	if resp, _ := ts.doRaw("DELETE", "/api/v1/me", a.token, nil); resp.StatusCode != 204 {
		t.Fatalf("delete account: status %d", resp.StatusCode)
	}
	again := ts.friendUser("frq1a")
	resp, raw := ask(again, map[string]string{"user_id": string(b.ID)})
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	wantProblem(t, resp, body, 429, "rate_limited")
}

// TestPhoneQuotasSurviveDeletion: codes and contact lookups are counted per e-mail address.
func TestPhoneQuotasSurviveDeletion(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(d *api.Deps) {
		d.Quotas = &auth.Quotas{Limiter: auth.NewMemoryLimiter(nil), Users: d.Users, Key: testPepper.Secret}
		d.Phones.Quotas = d.Quotas
		d.Phones.CodesPerUser.Limit = 1
		d.Phones.ContactsPerDay.Limit = 2
	})
	u := ts.friendUser("phq1a")
	if resp, body := ts.do("POST", "/api/v1/me/phone", u.token, map[string]string{"phone": "+1 434 555 0100"}); resp.StatusCode != 202 {
		t.Fatalf("phone: %d %v", resp.StatusCode, body)
	}
	if resp, body := ts.do("POST", "/api/v1/me/contacts", u.token, map[string][]string{"phones": {"+1 434 555 0101", "+1 434 555 0102"}}); resp.StatusCode != 200 {
		t.Fatalf("contacts: %d %v", resp.StatusCode, body)
	}
	if resp, _ := ts.doRaw("DELETE", "/api/v1/me", u.token, nil); resp.StatusCode != 204 {
		t.Fatalf("delete account: status %d", resp.StatusCode)
	}
	again := ts.friendUser("phq1a")
	resp, body := ts.do("POST", "/api/v1/me/phone", again.token, map[string]string{"phone": "+1 434 555 0100"})
	wantProblem(t, resp, body, 429, "rate_limited")
	resp, body = ts.do("POST", "/api/v1/me/contacts", again.token, map[string][]string{"phones": {"+1 434 555 0103"}})
	wantProblem(t, resp, body, 429, "rate_limited")
}

// snapshot is what a friend sees: their friends and a room's history, as sent.
func (ts *testServer) snapshot(t *testing.T, u friendUser, class string) (friends []string, history string) {
	t.Helper()
	resp, raw := ts.doRaw("GET", "/api/v1/classes/"+class+"/messages?limit=100", u.token, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("history: status %d", resp.StatusCode)
	}
	return ts.friendsOf(t, u), string(raw)
}

// TestDeletionWithoutTell: a friend who compares their friends and a room's history before and
// after an account's deletion sees the friend gone and no message changed; with erasure asked
// for, the messages become tombstones one by one at spread-out times, each with a
// message_erased frame.
func TestDeletionWithoutTell(t *testing.T) {
	t.Parallel()
	const spread = time.Hour
	var svc *rooms.Service
	ts := newTestServer(t, withHub(t, 2), func(d *api.Deps) { d.EraseSpread, svc = spread, d.Rooms })
	alice, bob, carol := ts.friendUser("dwa1a"), ts.friendUser("dwb1b"), ts.friendUser("dwc1c")
	ts.befriend(t, alice, bob)
	ts.befriend(t, carol, bob)
	class := ts.newRoomClass(alice.token, bob.token, carol.token)
	ts.post(carol.token, class, map[string]any{"content": "first"})
	for range 2 {
		ts.post(alice.token, class, map[string]any{"content": "kept"})
	}
	// deleteSeenBy deletes u's account (with the query) and checks what friend saw change.
	deleteSeenBy := func(t *testing.T, u, friend friendUser, query string) {
		t.Helper()
		friends, history := ts.snapshot(t, friend, class)
		if resp, _ := ts.doRaw("DELETE", "/api/v1/me"+query, u.token, nil); resp.StatusCode != 204 {
			t.Fatalf("delete: status %d", resp.StatusCode)
		}
		friendsAfter, historyAfter := ts.snapshot(t, friend, class)
		if historyAfter != history {
			t.Fatalf("history changed at the deletion:\nbefore %s\nafter  %s", history, historyAfter)
		}
		if !slices.Equal(friendsAfter, slices.DeleteFunc(friends, func(e string) bool { return e == u.Email })) {
			t.Fatalf("friends after=%v, want %v without %s", friendsAfter, friends, u.Email)
		}
	}
	deleteSeenBy(t, alice, bob, "")

	t.Run("WithErasure", func(t *testing.T) {
		const n = 20
		for range n {
			ts.post(carol.token, class, map[string]any{"content": "to erase"})
		}
		sock := ts.dial(t, bob.token)
		sock.send(t, map[string]any{"type": "subscribe", "room": class})
		sock.expect(t, "subscribed")
		start := time.Now()
		deleteSeenBy(t, carol, bob, "?erase_messages=true")

		// The erasure job runs every tenth of the spread, on a clock of the test's, from the
		// deletion to a little past the spread.
		clock := testenv.NewClock(start)
		eraser := &rooms.Eraser{Store: persistence.NewCleanupStore(ts.DB), Service: svc, Now: clock.Now}
		var perRun []int
		total := 0
		for range 12 {
			got, err := eraser.RunOnce(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for range got {
				if f := sock.expect(t, "message_erased"); f["room"] != class || f["message_id"] == nil {
					t.Fatalf("frame %v, want a message_erased of the room", f)
				}
			}
			perRun = append(perRun, got)
			total += got
			clock.Advance(spread / 10)
		}
		// 21 messages: Carol's first and her 20; every one erased within the spread.
		if total != n+1 {
			t.Fatalf("erased %d in all (%v), want %d", total, perRun, n+1)
		}
		busy := 0
		for _, got := range perRun {
			if got == total {
				t.Fatalf("erased all at once: %v", perRun)
			}
			if got > 0 {
				busy++
			}
		}
		// 21 uniform times in ten slices leave fewer than four slices busy with a chance
		// of about one in a million.
		if busy < 4 {
			t.Fatalf("erasures per run %v: want them spread over the runs", perRun)
		}
		var left int
		if err := ts.DB.Pool.QueryRow(context.Background(), `
			SELECT count(*) FROM class_messages WHERE class_id = $1 AND (content = 'to erase' OR content = 'first' OR erase_at IS NOT NULL)`, class).Scan(&left); err != nil || left != 0 {
			t.Fatalf("%d messages left to erase (%v)", left, err)
		}
		if _, historyErased := ts.snapshot(t, bob, class); !strings.Contains(historyErased, `"kept"`) {
			t.Fatalf("Alice's messages, kept at her deletion, are gone: %s", historyErased)
		}
	})
	t.Run("ErrEraseMessages", func(t *testing.T) {
		d := ts.friendUser("dwd1d")
		resp, body := ts.do("DELETE", "/api/v1/me?erase_messages=yes", d.token, nil)
		wantProblem(t, resp, body, 400, "invalid")
	})
}
