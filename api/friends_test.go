package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cg "github.com/commongrounds/commongrounds"
)

// friendUser is a signed-in user of the friends tests.
type friendUser struct {
	token string
	*cg.User
}

func (ts *testServer) friendUser(cid string) friendUser {
	token, u := ts.signIn(cid + "@virginia.edu")
	return friendUser{token, u}
}

// listOf returns the array under key of a JSON reply, failing unless it is an array.
func listOf(t *testing.T, raw []byte, key string) []map[string]any {
	t.Helper()
	var body map[string][]map[string]any
	if err := json.Unmarshal(raw, &body); err != nil || body[key] == nil {
		t.Fatalf("reply %s: want {%q: [...]}", raw, key)
	}
	return body[key]
}

// emailsIn returns the email of each item (or of each item's user).
func emailsIn(items []map[string]any) []string {
	out := []string{}
	for _, it := range items {
		if u, ok := it["user"].(map[string]any); ok {
			it = u
		}
		out = append(out, it["email"].(string))
	}
	return out
}

func (ts *testServer) friendsOf(t *testing.T, u friendUser) []string {
	t.Helper()
	resp, raw := ts.doRaw("GET", "/api/v1/friends", u.token, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /friends: status %d", resp.StatusCode)
	}
	return emailsIn(listOf(t, raw, "friends"))
}

func (ts *testServer) requestsOf(t *testing.T, u friendUser, direction string) []map[string]any {
	t.Helper()
	path := "/api/v1/friends/requests"
	if direction != "" {
		path += "?direction=" + direction
	}
	resp, raw := ts.doRaw("GET", path, u.token, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: status %d", path, resp.StatusCode)
	}
	return listOf(t, raw, "requests")
}

// befriend makes a and b friends through the API.
func (ts *testServer) befriend(t *testing.T, a, b friendUser) {
	t.Helper()
	if resp, body := ts.do("POST", "/api/v1/friends/requests", a.token, map[string]string{"user_id": string(b.ID)}); resp.StatusCode != 201 {
		t.Fatalf("request: status %d %v", resp.StatusCode, body)
	}
	if resp, body := ts.do("POST", "/api/v1/friends/requests", b.token, map[string]string{"user_id": string(a.ID)}); resp.StatusCode != 200 || body["status"] != "ACCEPTED" {
		t.Fatalf("answering request: status %d %v", resp.StatusCode, body)
	}
}

func TestFriendRequests(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	a, b, c, d := ts.friendUser("fra1a"), ts.friendUser("frb1b"), ts.friendUser("frc1c"), ts.friendUser("frd1d")

	t.Run("OK", func(t *testing.T) {
		// By e-mail address: 202 without the request, as for an address without an account.
		resp, body := ts.do("POST", "/api/v1/friends/requests", a.token, map[string]string{"email": " FRB1B@Virginia.edu "})
		if resp.StatusCode != 202 || body["status"] != "requested" || len(body) != 1 {
			t.Fatalf("status %d body %v, want 202 requested", resp.StatusCode, body)
		}
		in := ts.requestsOf(t, b, "")
		if !slices.Equal(emailsIn(in), []string{a.Email}) || in[0]["id"] == nil || in[0]["status"] != "PENDING" {
			t.Fatalf("b's incoming=%v, want a's request", in)
		}
		reqID := in[0]["id"].(string)
		// By user id: 201 with the request.
		e := ts.friendUser("frg1g")
		resp, body = ts.do("POST", "/api/v1/friends/requests", e.token, map[string]string{"user_id": string(b.ID)})
		if resp.StatusCode != 201 || body["status"] != "PENDING" || body["id"] == nil || body["created_at"] == nil {
			t.Fatalf("status %d body %v, want 201 PENDING", resp.StatusCode, body)
		}
		user, _ := body["user"].(map[string]any)
		if user["id"] != string(b.ID) || user["email"] != b.Email || user["computing_id"] != "frb1b" || len(user) != 3 {
			t.Fatalf("user=%v, want b as others see it", user)
		}
		if resp, _ := ts.doRaw("DELETE", "/api/v1/friends/"+string(b.ID), e.token, nil); resp.StatusCode != 204 {
			t.Fatalf("withdraw: status %d", resp.StatusCode)
		}
		if !slices.Equal(emailsIn(ts.requestsOf(t, b, "incoming")), []string{a.Email}) {
			t.Fatal("direction=incoming differs from the default")
		}
		if out := ts.requestsOf(t, a, "outgoing"); !slices.Equal(emailsIn(out), []string{b.Email}) {
			t.Fatalf("a's outgoing=%v, want b", emailsIn(out))
		}
		if out := ts.requestsOf(t, b, "outgoing"); len(out) != 0 {
			t.Fatalf("b's outgoing=%v, want none", out)
		}

		// Only the recipient answers.
		for _, who := range []friendUser{a, c} {
			resp, body := ts.do("POST", "/api/v1/friends/requests/"+reqID+"/accept", who.token, nil)
			wantProblem(t, resp, body, 404, "not_found")
		}
		resp, body = ts.do("POST", "/api/v1/friends/requests/"+reqID+"/accept", b.token, nil)
		if resp.StatusCode != 200 || body["status"] != "ACCEPTED" {
			t.Fatalf("accept: status %d body %v", resp.StatusCode, body)
		}
		if got := ts.friendsOf(t, a); !slices.Equal(got, []string{b.Email}) {
			t.Fatalf("a's friends=%v", got)
		}
		resp, raw := ts.doRaw("GET", "/api/v1/friends", b.token, nil)
		friends := listOf(t, raw, "friends")
		if resp.StatusCode != 200 || len(friends) != 1 || friends[0]["id"] != string(a.ID) || len(friends[0]) != 4 {
			t.Fatalf("b's friends=%v, want a with id, email, computing_id, since", friends)
		}
		if since, err := time.Parse(time.RFC3339, fmt.Sprint(friends[0]["since"])); err != nil || since.Location() != time.UTC {
			t.Fatalf("since=%v, want an RFC 3339 UTC time", friends[0]["since"])
		}

		// By computing id; the other side asking back makes friends at once.
		resp, body = ts.do("POST", "/api/v1/friends/requests", c.token, map[string]string{"computing_id": "FRD1D"})
		if resp.StatusCode != 202 {
			t.Fatalf("by computing id: status %d %v", resp.StatusCode, body)
		}
		resp, body = ts.do("POST", "/api/v1/friends/requests", d.token, map[string]string{"email": c.Email})
		if resp.StatusCode != 200 || body["status"] != "ACCEPTED" {
			t.Fatalf("asking back: status %d %v, want 200 ACCEPTED", resp.StatusCode, body)
		}

		// Unfriend, twice.
		for range 2 {
			if resp, _ := ts.doRaw("DELETE", "/api/v1/friends/"+string(c.ID), d.token, nil); resp.StatusCode != 204 {
				t.Fatalf("unfriend: status %d", resp.StatusCode)
			}
		}
		if got := ts.friendsOf(t, c); len(got) != 0 {
			t.Fatalf("c's friends after unfriending=%v", got)
		}
	})

	t.Run("Reject", func(t *testing.T) {
		_, body := ts.do("POST", "/api/v1/friends/requests", c.token, map[string]string{"user_id": string(a.ID)})
		reqID := body["id"].(string)
		resp, body := ts.do("POST", "/api/v1/friends/requests/"+reqID+"/reject", c.token, nil)
		wantProblem(t, resp, body, 404, "not_found")
		resp, body = ts.do("POST", "/api/v1/friends/requests/"+reqID+"/reject", a.token, nil)
		if resp.StatusCode != 200 || body["status"] != "REJECTED" {
			t.Fatalf("reject: status %d %v", resp.StatusCode, body)
		}
		if in := ts.requestsOf(t, a, "incoming"); len(in) != 0 {
			t.Fatalf("a's incoming after rejecting=%v", in)
		}
		out := ts.requestsOf(t, c, "outgoing")
		if len(out) != 1 || out[0]["status"] != "REJECTED" {
			t.Fatalf("c's outgoing=%v, want the rejected request", out)
		}
		resp, body = ts.do("POST", "/api/v1/friends/requests", c.token, map[string]string{"user_id": string(a.ID)})
		wantProblem(t, resp, body, 409, "already_exists")
		// a may ask c after all.
		resp, body = ts.do("POST", "/api/v1/friends/requests", a.token, map[string]string{"user_id": string(c.ID)})
		if resp.StatusCode != 201 || body["status"] != "PENDING" {
			t.Fatalf("the rejecting side asking: status %d %v", resp.StatusCode, body)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		tests := []struct {
			name   string
			body   any
			status int
			code   string
		}{
			{"ErrNoTarget", map[string]string{}, 400, "invalid"},
			{"ErrEmptyTarget", map[string]string{"email": " "}, 400, "invalid"},
			{"ErrTwoTargets", map[string]string{"email": b.Email, "computing_id": "frb1b"}, 400, "invalid"},
			{"ErrBadJSON", `{"email":`, 400, "invalid_json"},
			{"ErrUnknownField", `{"friend":"x"}`, 400, "invalid_json"},
			{"ErrSelfByEmail", map[string]string{"email": a.Email}, 400, "self_request"},
			{"ErrSelfByID", map[string]string{"user_id": strings.ToUpper(string(a.ID))}, 400, "self_request"},
			{"ErrUnknownUserID", map[string]string{"user_id": "00000000-0000-0000-0000-000000000000"}, 404, "user_not_found"},
			{"ErrUserIDNotUUID", map[string]string{"user_id": "b"}, 404, "user_not_found"},
			{"ErrAlreadyFriends", map[string]string{"user_id": string(b.ID)}, 409, "already_exists"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, body := ts.do("POST", "/api/v1/friends/requests", a.token, tt.body)
				wantProblem(t, resp, body, tt.status, tt.code)
			})
		}
		t.Run("ErrPendingAlready", func(t *testing.T) {
			e := ts.friendUser("fre1e")
			ts.do("POST", "/api/v1/friends/requests", e.token, map[string]string{"user_id": string(d.ID)})
			resp, body := ts.do("POST", "/api/v1/friends/requests", e.token, map[string]string{"user_id": string(d.ID)})
			wantProblem(t, resp, body, 409, "already_exists")
		})
		t.Run("ErrDirection", func(t *testing.T) {
			resp, body := ts.do("GET", "/api/v1/friends/requests?direction=sideways", a.token, nil)
			wantProblem(t, resp, body, 400, "invalid")
		})
		t.Run("ErrAnswerUnknown", func(t *testing.T) {
			for _, id := range []string{"00000000-0000-0000-0000-000000000000", "nope"} {
				for _, verb := range []string{"accept", "reject"} {
					resp, body := ts.do("POST", "/api/v1/friends/requests/"+id+"/"+verb, a.token, nil)
					wantProblem(t, resp, body, 404, "not_found")
				}
			}
		})
		t.Run("ErrUnfriendNotUUID", func(t *testing.T) {
			resp, body := ts.do("DELETE", "/api/v1/friends/nope", a.token, nil)
			wantProblem(t, resp, body, 404, "user_not_found")
		})
	})
}

// TestFriendRequestRace has two users send each other a request at the same moment, twenty
// times over: each time exactly one call creates the request (201) and the other accepts it
// (200 ACCEPTED), and the pair has one relationship, accepted.
func TestFriendRequestRace(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for round := range 20 {
		a, b := ts.friendUser(fmt.Sprintf("rca%da", round)), ts.friendUser(fmt.Sprintf("rcb%db", round))
		start := make(chan struct{})
		var wg sync.WaitGroup
		var statuses [2]int
		var replies [2]string
		for i, pair := range [][2]friendUser{{a, b}, {b, a}} {
			wg.Go(func() {
				<-start
				body, _ := json.Marshal(map[string]string{"user_id": string(pair[1].ID)})
				resp, raw := ts.doRaw("POST", "/api/v1/friends/requests", pair[0].token, string(body))
				statuses[i], replies[i] = resp.StatusCode, string(raw)
			})
		}
		close(start)
		wg.Wait()
		got := slices.Sorted(slices.Values(statuses[:]))
		if !slices.Equal(got, []int{200, 201}) {
			t.Fatalf("round %d: statuses=%v (%v), want one 201 and one 200", round, statuses, replies)
		}
		if !strings.Contains(replies[slices.Index(statuses[:], 200)], `"ACCEPTED"`) {
			t.Fatalf("round %d: the 200 reply is %s, want status ACCEPTED", round, replies[slices.Index(statuses[:], 200)])
		}
		var rows, accepted int
		if err := ts.DB.Pool.QueryRow(context.Background(), `
			SELECT count(*), count(*) FILTER (WHERE status = 'ACCEPTED') FROM friendships
			 WHERE user_id_1 IN ($1, $2) AND user_id_2 IN ($1, $2)`, a.ID, b.ID).Scan(&rows, &accepted); err != nil {
			t.Fatal(err)
		}
		if rows != 1 || accepted != 1 {
			t.Fatalf("round %d: %d relationships, %d accepted; want exactly one, accepted", round, rows, accepted)
		}
		if !slices.Equal(ts.friendsOf(t, a), []string{b.Email}) || !slices.Equal(ts.friendsOf(t, b), []string{a.Email}) {
			t.Fatalf("round %d: not friends both ways", round)
		}
	}
}

// enrollIn enrolls u in the classes with the given ids.
func (ts *testServer) enrollIn(t *testing.T, u friendUser, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if resp, body := ts.do("POST", "/api/v1/me/classes", u.token, map[string]string{"class_id": id}); resp.StatusCode != 201 {
			t.Fatalf("enroll %s in %s: status %d %v", u.Email, id, resp.StatusCode, body)
		}
	}
}

// fixtureClassIDs returns the ids of the first n classes of the recorded term.
func (ts *testServer) fixtureClassIDs(t *testing.T, token string, n int) []string {
	t.Helper()
	p := ts.getClasses(t, token, url.Values{"limit": {fmt.Sprint(n)}})
	var ids []string
	for _, c := range p.Classes {
		ids = append(ids, c["id"].(string))
	}
	return ids
}

func TestClassFriendsAndCommonClasses(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	syncFixtureTerm(t, ts)
	a, b, c := ts.friendUser("cfa1a"), ts.friendUser("cfb1b"), ts.friendUser("cfc1c")
	cl := ts.fixtureClassIDs(t, a.token, 3)
	ts.enrollIn(t, a, cl[0], cl[1])
	ts.enrollIn(t, b, cl[1], cl[2])
	ts.enrollIn(t, c, cl[0], cl[1])
	ts.befriend(t, a, b)

	t.Run("ClassFriends", func(t *testing.T) {
		for i, want := range [][]string{{}, {b.Email}, {b.Email}} {
			resp, raw := ts.doRaw("GET", "/api/v1/classes/"+cl[i]+"/friends", a.token, nil)
			friends := listOf(t, raw, "friends")
			if resp.StatusCode != 200 || !slices.Equal(emailsIn(friends), want) {
				t.Fatalf("class %d: status %d friends %v, want %v", i, resp.StatusCode, emailsIn(friends), want)
			}
			for _, f := range friends {
				if len(f) != 3 || f["id"] != string(b.ID) || f["computing_id"] != "cfb1b" {
					t.Fatalf("friend=%v, want the user as others see it", f)
				}
			}
		}
		resp, body := ts.do("GET", "/api/v1/classes/00000000-0000-0000-0000-000000000000/friends", a.token, nil)
		wantProblem(t, resp, body, 404, "class_not_found")
	})
	t.Run("CommonClasses", func(t *testing.T) {
		resp, raw := ts.doRaw("GET", "/api/v1/friends/"+string(b.ID)+"/common-classes", a.token, nil)
		classes := listOf(t, raw, "classes")
		if resp.StatusCode != 200 || len(classes) != 1 || classes[0]["id"] != cl[1] || len(classes[0]) != len(classFields) {
			t.Fatalf("status %d common=%v, want class 1 alone", resp.StatusCode, classes)
		}
		// c shares two classes with a but is no friend: 404, as for nobody at all.
		for _, other := range []string{string(c.ID), "00000000-0000-0000-0000-000000000000", "nope"} {
			resp, body := ts.do("GET", "/api/v1/friends/"+other+"/common-classes", a.token, nil)
			wantProblem(t, resp, body, 404, "not_found")
		}
	})
}

func TestBlock(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	syncFixtureTerm(t, ts)
	a, b, c := ts.friendUser("bka1a"), ts.friendUser("bkb1b"), ts.friendUser("bkc1c")
	cl := ts.fixtureClassIDs(t, a.token, 2)
	for _, u := range []friendUser{a, b, c} {
		ts.enrollIn(t, u, cl...)
	}
	ts.befriend(t, a, b)
	ts.do("POST", "/api/v1/friends/requests", c.token, map[string]string{"user_id": string(a.ID)})

	for _, target := range []friendUser{b, c} {
		if resp, raw := ts.doRaw("POST", "/api/v1/users/"+string(target.ID)+"/block", a.token, nil); resp.StatusCode != 204 {
			t.Fatalf("block: status %d %s", resp.StatusCode, raw)
		}
	}
	if resp, _ := ts.doRaw("POST", "/api/v1/users/"+string(b.ID)+"/block", a.token, nil); resp.StatusCode != 204 {
		t.Fatalf("block twice: status %d", resp.StatusCode)
	}
	blockedBy := func(t *testing.T, u friendUser) []string {
		t.Helper()
		resp, raw := ts.doRaw("GET", "/api/v1/me/blocks", u.token, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("blocks of %s: status %d %s", u.Email, resp.StatusCode, raw)
		}
		var ids []string
		for _, f := range listOf(t, raw, "blocked") {
			if f["since"] == nil || f["email"] == nil {
				t.Fatalf("blocked entry %v lacks since or email", f)
			}
			ids = append(ids, f["id"].(string))
		}
		return ids
	}
	t.Run("Listed", func(t *testing.T) {
		// Ordered by e-mail: bkb1b before bkc1c. Whom others blocked is never shown.
		if got := blockedBy(t, a); len(got) != 2 || got[0] != string(b.ID) || got[1] != string(c.ID) {
			t.Fatalf("a's blocks=%v, want [%s %s]", got, b.ID, c.ID)
		}
		for _, u := range []friendUser{b, c} {
			if got := blockedBy(t, u); len(got) != 0 {
				t.Fatalf("%s's blocks=%v, want none", u.Email, got)
			}
		}
	})
	t.Run("EndsEverything", func(t *testing.T) {
		if got := ts.friendsOf(t, a); len(got) != 0 {
			t.Fatalf("a's friends=%v", got)
		}
		if got := ts.friendsOf(t, b); len(got) != 0 {
			t.Fatalf("b's friends=%v", got)
		}
		if in := ts.requestsOf(t, a, "incoming"); len(in) != 0 {
			t.Fatalf("a's incoming=%v", in)
		}
		if out := ts.requestsOf(t, c, "outgoing"); len(out) != 0 {
			t.Fatalf("c's outgoing=%v", out)
		}
		for _, u := range []friendUser{a, b} {
			resp, raw := ts.doRaw("GET", "/api/v1/classes/"+cl[0]+"/friends", u.token, nil)
			if f := listOf(t, raw, "friends"); resp.StatusCode != 200 || len(f) != 0 {
				t.Fatalf("class friends=%v", f)
			}
			resp, raw = ts.doRaw("GET", "/api/v1/friends/suggestions", u.token, nil)
			for _, sg := range listOf(t, raw, "suggestions") {
				if other := sg["user"].(map[string]any)["id"]; resp.StatusCode != 200 || other == string(a.ID) || other == string(b.ID) {
					t.Fatalf("suggestions of %s include %v across a block", u.Email, other)
				}
			}
		}
		resp, body := ts.do("GET", "/api/v1/friends/"+string(b.ID)+"/common-classes", a.token, nil)
		wantProblem(t, resp, body, 404, "not_found")
	})
	t.Run("ErrRequestEitherWay", func(t *testing.T) {
		for _, pair := range [][2]friendUser{{a, b}, {b, a}, {c, a}} {
			resp, body := ts.do("POST", "/api/v1/friends/requests", pair[0].token, map[string]string{"user_id": string(pair[1].ID)})
			wantProblem(t, resp, body, 403, "blocked")
			// By address the answer is the one an address without an account gets, and
			// nothing is created.
			resp, body = ts.do("POST", "/api/v1/friends/requests", pair[0].token, map[string]string{"email": pair[1].Email})
			if resp.StatusCode != 202 || body["status"] != "requested" {
				t.Fatalf("blocked, by address: status %d %v, want 202 requested", resp.StatusCode, body)
			}
			if out := ts.requestsOf(t, pair[0], "outgoing"); len(out) != 0 {
				t.Fatalf("outgoing after a blocked request: %v, want none", out)
			}
		}
	})
	t.Run("Errors", func(t *testing.T) {
		tests := []struct {
			name, method, path string
			status             int
			code               string
		}{
			{"ErrSelf", "POST", "/api/v1/users/" + string(a.ID) + "/block", 400, "self_request"},
			{"ErrUnknown", "POST", "/api/v1/users/00000000-0000-0000-0000-000000000000/block", 404, "user_not_found"},
			{"ErrNotUUID", "POST", "/api/v1/users/nope/block", 404, "user_not_found"},
			{"ErrUnblockNotUUID", "DELETE", "/api/v1/users/nope/block", 404, "user_not_found"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, body := ts.do(tt.method, tt.path, a.token, nil)
				wantProblem(t, resp, body, tt.status, tt.code)
			})
		}
	})
	t.Run("Unblock", func(t *testing.T) {
		// Only a's block of b is lifted: b may ask now, c still may not.
		for range 2 {
			if resp, _ := ts.doRaw("DELETE", "/api/v1/users/"+string(b.ID)+"/block", a.token, nil); resp.StatusCode != 204 {
				t.Fatalf("unblock: status %d", resp.StatusCode)
			}
		}
		if got := ts.friendsOf(t, a); len(got) != 0 {
			t.Fatalf("unblocking restored friends %v", got)
		}
		if resp, body := ts.do("POST", "/api/v1/friends/requests", b.token, map[string]string{"user_id": string(a.ID)}); resp.StatusCode != 201 {
			t.Fatalf("request after unblock: status %d %v", resp.StatusCode, body)
		}
		resp, body := ts.do("POST", "/api/v1/friends/requests", c.token, map[string]string{"user_id": string(a.ID)})
		wantProblem(t, resp, body, 403, "blocked")
		if got := blockedBy(t, a); len(got) != 1 || got[0] != string(c.ID) {
			t.Fatalf("a's blocks after unblocking b=%v, want [%s]", got, c.ID)
		}
	})
}

func TestFriendSuggestions(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	syncFixtureTerm(t, ts)
	ctx := context.Background()
	me := ts.friendUser("sgm1a")
	cl := ts.fixtureClassIDs(t, me.token, 4)
	ts.enrollIn(t, me, cl...)
	three, two, one := ts.friendUser("sgt1a"), ts.friendUser("sgt2b"), ts.friendUser("sgo1c")
	contact, friend, pending := ts.friendUser("sgc1d"), ts.friendUser("sgf1e"), ts.friendUser("sgp1f")
	ts.enrollIn(t, three, cl[:3]...)
	ts.enrollIn(t, two, cl[1:3]...)
	ts.enrollIn(t, one, cl[3])
	ts.enrollIn(t, friend, cl...)
	ts.enrollIn(t, pending, cl...)
	ts.befriend(t, me, friend)
	ts.do("POST", "/api/v1/friends/requests", me.token, map[string]string{"user_id": string(pending.ID)})
	// contact's verified number is among my imported contacts.
	if _, err := ts.DB.Pool.Exec(ctx, `UPDATE users SET phone_hash = 'hash-of-contact', phone_pepper_version = 1, phone_verified = true WHERE id = $1`, contact.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.DB.Pool.Exec(ctx, `INSERT INTO user_contacts (user_id, phone_hash) VALUES ($1, 'hash-of-contact')`, me.ID); err != nil {
		t.Fatal(err)
	}
	// one talks a lot, anonymously, in the one class it shares: that counts for nothing.
	if _, err := ts.DB.Pool.Exec(ctx, `INSERT INTO class_pseudonyms (class_id, user_id, anon_id) VALUES ($1, $2, 'Anon_0f0f0f')`, cl[3], one.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.DB.Pool.Exec(ctx, `INSERT INTO rooms (class_id, last_seq) VALUES ($1, 3)`, cl[3]); err != nil {
		t.Fatal(err)
	}
	for seq := 1; seq <= 3; seq++ {
		if _, err := ts.DB.Pool.Exec(ctx, `INSERT INTO class_messages (class_id, seq, user_id, anon_id, content) VALUES ($1, $2, $3, 'Anon_0f0f0f', 'hi')`, cl[3], seq, one.ID); err != nil {
			t.Fatal(err)
		}
	}

	resp, raw := ts.doRaw("GET", "/api/v1/friends/suggestions", me.token, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d %s", resp.StatusCode, raw)
	}
	sugs := listOf(t, raw, "suggestions")
	var got []string
	for _, s := range sugs {
		if len(s) != 3 || len(s["user"].(map[string]any)) != 3 {
			t.Fatalf("suggestion=%v, want exactly user, shared_classes, in_contacts", s)
		}
		got = append(got, fmt.Sprintf("%s %v %v", s["user"].(map[string]any)["email"], s["shared_classes"], s["in_contacts"]))
	}
	want := []string{three.Email + " 3 false", two.Email + " 2 false", contact.Email + " 0 true"}
	if !slices.Equal(got, want) {
		t.Fatalf("suggestions=%v\nwant %v", got, want)
	}
	if strings.Contains(strings.ToLower(string(raw)), "anon") {
		t.Fatalf("suggestions mention pseudonyms: %s", raw)
	}
	t.Run("Limit", func(t *testing.T) {
		resp, raw := ts.doRaw("GET", "/api/v1/friends/suggestions?limit=1", me.token, nil)
		if s := listOf(t, raw, "suggestions"); resp.StatusCode != 200 || len(s) != 1 {
			t.Fatalf("limit 1: status %d %d suggestions", resp.StatusCode, len(s))
		}
	})
	t.Run("ErrLimit", func(t *testing.T) {
		resp, body := ts.do("GET", "/api/v1/friends/suggestions?limit=0", me.token, nil)
		wantProblem(t, resp, body, 400, "invalid_limit")
	})
	t.Run("Empty", func(t *testing.T) {
		resp, raw := ts.doRaw("GET", "/api/v1/friends/suggestions", one.token, nil)
		if s := listOf(t, raw, "suggestions"); resp.StatusCode != 200 || len(s) != 0 {
			t.Fatalf("status %d suggestions %v, want none", resp.StatusCode, s)
		}
	})
}
