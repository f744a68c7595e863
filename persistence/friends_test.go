package persistence_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/internal/testenv"
	"github.com/commongrounds/commongrounds/persistence"
)

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if cg.ErrorCode(err) != code {
		t.Fatalf("Code=%v (err %v), want %v", cg.ErrorCode(err), err, code)
	}
}

// requestIDs returns "email:status" of each request.
func requestSummary(reqs []*persistence.FriendRequest) []string {
	out := []string{}
	for _, r := range reqs {
		out = append(out, r.User.Email+":"+r.Status)
	}
	return out
}

func friendEmails(friends []*persistence.Friend) []string {
	out := []string{}
	for _, f := range friends {
		out = append(out, f.Email)
	}
	return out
}

func TestFriendRequests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		db := testenv.MustOpenDB(t)
		fs := persistence.NewFriendStore(db)
		a, b := newUser(t, db, "fra1a"), newUser(t, db, "frb1b")
		req, accepted, err := fs.RequestFriend(ctx, a.ID, b.ID)
		if err != nil || accepted || req.Status != persistence.StatusPending || req.User.ID != b.ID {
			t.Fatalf("request=%+v accepted=%v err=%v, want a pending request to b", req, accepted, err)
		}
		_, _, err = fs.RequestFriend(ctx, a.ID, b.ID)
		wantCode(t, err, cg.ECONFLICT)
		in, _ := fs.ListFriendRequests(ctx, b.ID, true)
		out, _ := fs.ListFriendRequests(ctx, a.ID, false)
		if !slices.Equal(requestSummary(in), []string{a.Email + ":PENDING"}) || !slices.Equal(requestSummary(out), []string{b.Email + ":PENDING"}) {
			t.Fatalf("incoming of b=%v outgoing of a=%v", requestSummary(in), requestSummary(out))
		}
		if in[0].ID != req.ID {
			t.Fatalf("incoming id=%s, want %s", in[0].ID, req.ID)
		}
		// b asking a answers a's request.
		req2, accepted, err := fs.RequestFriend(ctx, b.ID, a.ID)
		if err != nil || !accepted || req2.Status != persistence.StatusAccepted || req2.ID != req.ID || req2.User.ID != a.ID {
			t.Fatalf("reverse request=%+v accepted=%v err=%v, want the same request accepted", req2, accepted, err)
		}
		for _, pair := range [][2]cg.UserID{{a.ID, b.ID}, {b.ID, a.ID}} {
			_, _, err = fs.RequestFriend(ctx, pair[0], pair[1])
			wantCode(t, err, cg.ECONFLICT)
		}
		fa, _ := fs.ListFriends(ctx, a.ID)
		fb, _ := fs.ListFriends(ctx, b.ID)
		if !slices.Equal(friendEmails(fa), []string{b.Email}) || !slices.Equal(friendEmails(fb), []string{a.Email}) || fa[0].Since.IsZero() {
			t.Fatalf("friends of a=%v of b=%v", friendEmails(fa), friendEmails(fb))
		}
		if in, _ := fs.ListFriendRequests(ctx, b.ID, true); len(in) != 0 {
			t.Fatalf("incoming after accepting=%v, want none", requestSummary(in))
		}
	})

	t.Run("Errors", func(t *testing.T) {
		t.Parallel()
		db := testenv.MustOpenDB(t)
		fs := persistence.NewFriendStore(db)
		a := newUser(t, db, "fra2a")
		_, _, err := fs.RequestFriend(ctx, a.ID, a.ID)
		wantCode(t, err, cg.ESELFREQUEST)
		_, _, err = fs.RequestFriend(ctx, a.ID, "00000000-0000-0000-0000-000000000000")
		wantCode(t, err, cg.EUSERNOTFOUND)
		_, _, err = fs.RequestFriend(ctx, a.ID, "x")
		wantCode(t, err, cg.EUSERNOTFOUND)
	})

	t.Run("Answer", func(t *testing.T) {
		t.Parallel()
		db := testenv.MustOpenDB(t)
		fs := persistence.NewFriendStore(db)
		a, b, c := newUser(t, db, "fra3a"), newUser(t, db, "frb3b"), newUser(t, db, "frc3c")
		req, _, err := fs.RequestFriend(ctx, a.ID, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		// Only the recipient answers; anyone else finds nothing.
		for _, who := range []cg.UserID{a.ID, c.ID} {
			for _, accept := range []bool{true, false} {
				_, err := fs.AnswerFriendRequest(ctx, who, req.ID, accept)
				wantCode(t, err, cg.ENOTFOUND)
			}
		}
		for _, id := range []string{"nope", "00000000-0000-0000-0000-000000000000"} {
			_, err := fs.AnswerFriendRequest(ctx, b.ID, id, true)
			wantCode(t, err, cg.ENOTFOUND)
		}
		// Reject, reject again, change of mind.
		for range 2 {
			r, err := fs.AnswerFriendRequest(ctx, b.ID, req.ID, false)
			if err != nil || r.Status != persistence.StatusRejected || r.User.ID != a.ID {
				t.Fatalf("reject: %+v err=%v", r, err)
			}
		}
		r, err := fs.AnswerFriendRequest(ctx, b.ID, req.ID, true)
		if err != nil || r.Status != persistence.StatusAccepted {
			t.Fatalf("accept after rejecting: %+v err=%v", r, err)
		}
		r, err = fs.AnswerFriendRequest(ctx, b.ID, req.ID, true)
		if err != nil || r.Status != persistence.StatusAccepted {
			t.Fatalf("accept again: %+v err=%v", r, err)
		}
		_, err = fs.AnswerFriendRequest(ctx, b.ID, req.ID, false)
		wantCode(t, err, cg.ECONFLICT)
	})

	t.Run("Rejected", func(t *testing.T) {
		t.Parallel()
		db := testenv.MustOpenDB(t)
		fs := persistence.NewFriendStore(db)
		a, b := newUser(t, db, "fra4a"), newUser(t, db, "frb4b")
		req, _, _ := fs.RequestFriend(ctx, a.ID, b.ID)
		if _, err := fs.AnswerFriendRequest(ctx, b.ID, req.ID, false); err != nil {
			t.Fatal(err)
		}
		// The requester sees the rejection, cannot ask again, and cannot clear it to ask again.
		out, _ := fs.ListFriendRequests(ctx, a.ID, false)
		if !slices.Equal(requestSummary(out), []string{b.Email + ":REJECTED"}) {
			t.Fatalf("outgoing of a=%v, want the rejected request", requestSummary(out))
		}
		if in, _ := fs.ListFriendRequests(ctx, b.ID, true); len(in) != 0 {
			t.Fatalf("incoming of b=%v, want none", requestSummary(in))
		}
		_, _, err := fs.RequestFriend(ctx, a.ID, b.ID)
		wantCode(t, err, cg.ECONFLICT)
		if err := fs.Unfriend(ctx, a.ID, b.ID); err != nil {
			t.Fatal(err)
		}
		_, _, err = fs.RequestFriend(ctx, a.ID, b.ID)
		wantCode(t, err, cg.ECONFLICT)
		// The one who rejected may ask in turn: the new request replaces the old one.
		req2, accepted, err := fs.RequestFriend(ctx, b.ID, a.ID)
		if err != nil || accepted || req2.Status != persistence.StatusPending {
			t.Fatalf("request=%+v accepted=%v err=%v, want a new pending request", req2, accepted, err)
		}
		in, _ := fs.ListFriendRequests(ctx, a.ID, true)
		if !slices.Equal(requestSummary(in), []string{b.Email + ":PENDING"}) {
			t.Fatalf("incoming of a=%v, want b's request", requestSummary(in))
		}
		if out, _ := fs.ListFriendRequests(ctx, a.ID, false); len(out) != 0 {
			t.Fatalf("outgoing of a=%v, want the rejected request gone", requestSummary(out))
		}
		if _, err := fs.AnswerFriendRequest(ctx, a.ID, req2.ID, true); err != nil {
			t.Fatal(err)
		}
		if ok, _ := fs.AreFriends(ctx, a.ID, b.ID); !ok {
			t.Fatal("not friends after accepting")
		}
	})

	t.Run("Unfriend", func(t *testing.T) {
		t.Parallel()
		db := testenv.MustOpenDB(t)
		fs := persistence.NewFriendStore(db)
		a, b, c := newUser(t, db, "fra5a"), newUser(t, db, "frb5b"), newUser(t, db, "frc5c")
		// A pending request of one's own is withdrawn; one received stays.
		if _, _, err := fs.RequestFriend(ctx, a.ID, b.ID); err != nil {
			t.Fatal(err)
		}
		if err := fs.Unfriend(ctx, b.ID, a.ID); err != nil {
			t.Fatal(err)
		}
		if in, _ := fs.ListFriendRequests(ctx, b.ID, true); len(in) != 1 {
			t.Fatal("the recipient's unfriend removed a request it should answer")
		}
		if err := fs.Unfriend(ctx, a.ID, b.ID); err != nil {
			t.Fatal(err)
		}
		if in, _ := fs.ListFriendRequests(ctx, b.ID, true); len(in) != 0 {
			t.Fatal("the withdrawn request is still there")
		}
		// A friendship ends from either side.
		if _, _, err := fs.RequestFriend(ctx, a.ID, c.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := fs.RequestFriend(ctx, c.ID, a.ID); err != nil {
			t.Fatal(err)
		}
		if err := fs.Unfriend(ctx, c.ID, a.ID); err != nil {
			t.Fatal(err)
		}
		if ok, _ := fs.AreFriends(ctx, a.ID, c.ID); ok {
			t.Fatal("still friends")
		}
		if err := fs.Unfriend(ctx, c.ID, a.ID); err != nil {
			t.Fatalf("unfriend twice: %v", err)
		}
		wantCode(t, fs.Unfriend(ctx, a.ID, "nope"), cg.EUSERNOTFOUND)
	})
}

func TestBlock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testenv.MustOpenDB(t)
	fs := persistence.NewFriendStore(db)
	es := persistence.NewEnrollmentStore(db)
	a, b, c := newUser(t, db, "bla1a"), newUser(t, db, "blb1b"), newUser(t, db, "blc1c")
	classes := newClasses(t, db, 2)
	for _, u := range []*cg.User{a, b, c} {
		for _, cl := range classes {
			if _, err := es.Enroll(ctx, u.ID, cl); err != nil {
				t.Fatal(err)
			}
		}
	}
	befriend := func(x, y cg.UserID) {
		t.Helper()
		if _, _, err := fs.RequestFriend(ctx, x, y); err != nil {
			t.Fatal(err)
		}
		if _, _, err := fs.RequestFriend(ctx, y, x); err != nil {
			t.Fatal(err)
		}
	}
	befriend(a.ID, b.ID)
	befriend(a.ID, c.ID)
	if _, _, err := fs.RequestFriend(ctx, b.ID, c.ID); err != nil {
		t.Fatal(err)
	}

	// b blocks a (twice: no error), and c's pending request from b goes when c blocks b.
	for range 2 {
		if err := fs.Block(ctx, b.ID, a.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := fs.Block(ctx, c.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	if ok, _ := fs.AreFriends(ctx, a.ID, b.ID); ok {
		t.Fatal("a block did not end the friendship")
	}
	if in, _ := fs.ListFriendRequests(ctx, c.ID, true); len(in) != 0 {
		t.Fatalf("a block left a pending request: %v", requestSummary(in))
	}
	for _, pair := range [][2]cg.UserID{{a.ID, b.ID}, {b.ID, a.ID}} {
		_, _, err := fs.RequestFriend(ctx, pair[0], pair[1])
		wantCode(t, err, cg.EBLOCKED)
	}
	fa, _ := fs.ListFriends(ctx, a.ID)
	if !slices.Equal(friendEmails(fa), []string{c.Email}) {
		t.Fatalf("friends of a=%v, want only c", friendEmails(fa))
	}
	inClass, _ := fs.FriendsInClass(ctx, a.ID, classes[0], 1)
	if len(inClass) != 1 || inClass[0].ID != c.ID {
		t.Fatalf("friends of a in class=%v, want only c", inClass)
	}
	sg, _ := fs.Suggestions(ctx, a.ID, 50, 1)
	sgb, _ := fs.Suggestions(ctx, b.ID, 50, 1)
	if len(sg) != 0 || len(sgb) != 0 {
		t.Fatalf("suggestions of a=%v of b=%v, want none (friends or blocked)", sg, sgb)
	}

	wantCode(t, fs.Block(ctx, a.ID, a.ID), cg.ESELFREQUEST)
	wantCode(t, fs.Block(ctx, a.ID, "00000000-0000-0000-0000-000000000000"), cg.EUSERNOTFOUND)
	wantCode(t, fs.Block(ctx, a.ID, "x"), cg.EUSERNOTFOUND)

	// Lifting the block allows requests again, but brings nothing back.
	if err := fs.Unblock(ctx, b.ID, a.ID); err != nil {
		t.Fatal(err)
	}
	if ok, _ := fs.AreFriends(ctx, a.ID, b.ID); ok {
		t.Fatal("unblocking restored the friendship")
	}
	if _, _, err := fs.RequestFriend(ctx, a.ID, b.ID); err != nil {
		t.Fatalf("request after unblock: %v", err)
	}
	// Only the blocker lifts a block.
	if err := fs.Unblock(ctx, b.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	_, _, err := fs.RequestFriend(ctx, b.ID, c.ID)
	wantCode(t, err, cg.EBLOCKED)
}

// TestFriendRequestRace has two users ask each other at the same moment, many times over: each
// time they end with exactly one relationship, accepted, and exactly one of the two calls saw
// the acceptance.
func TestFriendRequestRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testenv.MustOpenDB(t)
	fs := persistence.NewFriendStore(db)
	for round := range 20 {
		a, b := newUser(t, db, fmt.Sprintf("raa%da", round)), newUser(t, db, fmt.Sprintf("rab%db", round))
		start := make(chan struct{})
		var wg sync.WaitGroup
		var accepted [2]bool
		var errs [2]error
		for i, pair := range [][2]cg.UserID{{a.ID, b.ID}, {b.ID, a.ID}} {
			wg.Go(func() {
				<-start
				_, accepted[i], errs[i] = fs.RequestFriend(ctx, pair[0], pair[1])
			})
		}
		close(start)
		wg.Wait()
		if errs[0] != nil || errs[1] != nil || accepted[0] == accepted[1] {
			t.Fatalf("round %d: accepted=%v errs=%v, want one pending and one accepting call", round, accepted, errs)
		}
		var rows, acc int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE status = 'ACCEPTED') FROM friendships
			WHERE user_id_1 IN ($1, $2) AND user_id_2 IN ($1, $2)`, a.ID, b.ID).Scan(&rows, &acc); err != nil {
			t.Fatal(err)
		}
		if rows != 1 || acc != 1 {
			t.Fatalf("round %d: %d relationships, %d accepted; want exactly one, accepted", round, rows, acc)
		}
	}
}

// TestFriendFunctions checks the schema's query functions and the store methods built on them.
func TestFriendFunctions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testenv.MustOpenDB(t)
	fs := persistence.NewFriendStore(db)
	es := persistence.NewEnrollmentStore(db)
	a, b, c := newUser(t, db, "fna1a"), newUser(t, db, "fnb1b"), newUser(t, db, "fnc1c")
	classes := newClasses(t, db, 4)
	enroll := func(u *cg.User, idx ...int) {
		for _, i := range idx {
			if _, err := es.Enroll(ctx, u.ID, classes[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	enroll(a, 0, 1, 2)
	enroll(b, 1, 2, 3)
	enroll(c, 0, 1)
	// a asked b (b accepts); c asked a (a accepts): a is user_id_1 in one and user_id_2 in the other.
	req, _, _ := fs.RequestFriend(ctx, a.ID, b.ID)
	if _, err := fs.AnswerFriendRequest(ctx, b.ID, req.ID, true); err != nil {
		t.Fatal(err)
	}
	req, _, _ = fs.RequestFriend(ctx, c.ID, a.ID)
	if _, err := fs.AnswerFriendRequest(ctx, a.ID, req.ID, true); err != nil {
		t.Fatal(err)
	}

	t.Run("GetUserFriends", func(t *testing.T) {
		rows, err := db.Pool.Query(ctx, `SELECT friend_id::text FROM get_user_friends($1) ORDER BY friend_email`, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var id string
			_ = rows.Scan(&id)
			got = append(got, id)
		}
		if !slices.Equal(got, []string{string(b.ID), string(c.ID)}) {
			t.Fatalf("get_user_friends(a)=%v, want b and c (never a itself)", got)
		}
	})
	t.Run("CommonClasses", func(t *testing.T) {
		common, err := fs.CommonClasses(ctx, a.ID, b.ID, 1)
		if err != nil || !slices.Equal(ids(common), []cg.ClassID{classes[1], classes[2]}) {
			t.Fatalf("common(a,b)=%v err=%v, want classes 1 and 2", ids(common), err)
		}
		_, err = fs.CommonClasses(ctx, b.ID, c.ID, 1) // not friends
		wantCode(t, err, cg.ENOTFOUND)
		_, err = fs.CommonClasses(ctx, b.ID, "x", 1)
		wantCode(t, err, cg.ENOTFOUND)
	})
	t.Run("FriendsInClass", func(t *testing.T) {
		for i, want := range [][]cg.UserID{{c.ID}, {b.ID, c.ID}, {b.ID}, {b.ID}} {
			got, err := fs.FriendsInClass(ctx, a.ID, classes[i], 1)
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs []cg.UserID
			for _, u := range got {
				gotIDs = append(gotIDs, u.ID)
			}
			if !slices.Equal(gotIDs, want) {
				t.Fatalf("friends of a in class %d=%v, want %v", i, gotIDs, want)
			}
		}
		_, err := fs.FriendsInClass(ctx, a.ID, "00000000-0000-0000-0000-000000000000", 1)
		wantCode(t, err, cg.ECLASSNOTFOUND)
	})
}

func TestSuggestions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testenv.MustOpenDB(t)
	fs := persistence.NewFriendStore(db)
	es := persistence.NewEnrollmentStore(db)
	classes := newClasses(t, db, 4)
	me := newUser(t, db, "sgme1a")
	users := map[string]*cg.User{}
	for _, name := range []string{"three", "two", "one", "contact", "unverified", "twocontact", "friend", "pending", "blocked", "blocker", "rejected"} {
		users[name] = newUser(t, db, "sg"+name)
	}
	enroll := func(u *cg.User, n int) {
		for i := range n {
			if _, err := es.Enroll(ctx, u.ID, classes[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	enroll(me, 4)
	enroll(users["three"], 3)
	enroll(users["two"], 2)
	enroll(users["one"], 1)
	enroll(users["twocontact"], 2)
	for _, n := range []string{"friend", "pending", "blocked", "blocker", "rejected"} {
		enroll(users[n], 4)
	}
	phone := func(u *cg.User, hash string, verified bool) {
		if _, err := db.Pool.Exec(ctx, `UPDATE users SET phone_hash = $2, phone_pepper_version = 1, phone_verified = $3 WHERE id = $1`,
			u.ID, []byte(hash), verified); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Pool.Exec(ctx, `INSERT INTO user_contacts (user_id, phone_hash) VALUES ($1, $2)`, me.ID, []byte(hash)); err != nil {
			t.Fatal(err)
		}
	}
	phone(users["contact"], "h-contact", true)
	phone(users["unverified"], "h-unverified", false)
	phone(users["twocontact"], "h-twocontact", true)
	if _, _, err := fs.RequestFriend(ctx, me.ID, users["friend"].ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := fs.RequestFriend(ctx, users["friend"].ID, me.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := fs.RequestFriend(ctx, users["pending"].ID, me.ID); err != nil {
		t.Fatal(err)
	}
	req, _, _ := fs.RequestFriend(ctx, me.ID, users["rejected"].ID)
	if _, err := fs.AnswerFriendRequest(ctx, users["rejected"].ID, req.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := fs.Block(ctx, me.ID, users["blocked"].ID); err != nil {
		t.Fatal(err)
	}
	if err := fs.Block(ctx, users["blocker"].ID, me.ID); err != nil {
		t.Fatal(err)
	}
	// Anonymous messages are no signal: "one" posts in the one class it shares.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO class_pseudonyms (class_id, user_id, anon_id) VALUES ($1, $2, 'Anon_000111')`, classes[0], users["one"].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO rooms (class_id, last_seq) VALUES ($1, 1)`, classes[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO class_messages (class_id, seq, user_id, anon_id, content) VALUES ($1, 1, $2, 'Anon_000111', 'hello')`, classes[0], users["one"].ID); err != nil {
		t.Fatal(err)
	}

	got, err := fs.Suggestions(ctx, me.ID, 50, 1)
	if err != nil {
		t.Fatal(err)
	}
	var summary []string
	for _, s := range got {
		summary = append(summary, fmt.Sprintf("%s:%d:%v", s.User.Email, s.SharedClasses, s.InContacts))
	}
	want := []string{
		"sgthree@virginia.edu:3:false",
		"sgtwocontact@virginia.edu:2:true",
		"sgtwo@virginia.edu:2:false",
		"sgcontact@virginia.edu:0:true",
	}
	if !slices.Equal(summary, want) {
		t.Fatalf("suggestions=%v\nwant %v", summary, want)
	}
	if got, _ := fs.Suggestions(ctx, me.ID, 2, 1); len(got) != 2 {
		t.Fatalf("limit 2 gave %d", len(got))
	}
	_, err = fs.Suggestions(ctx, me.ID, 0, 1)
	wantCode(t, err, cg.EINVALIDLIMIT)
}
