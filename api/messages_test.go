package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	cg "github.com/commongrounds/commongrounds"
)

// newRoomClass creates a class and enrolls the users (by their tokens) through the API.
func (ts *testServer) newRoomClass(tokens ...string) string {
	ts.t.Helper()
	var id string
	if err := ts.DB.Pool.QueryRow(context.Background(),
		`INSERT INTO classes (subject, catalog_number, term, sis_class_number) VALUES ('CS', '2150', '1262', gen_random_uuid()::text) RETURNING id`).Scan(&id); err != nil {
		ts.t.Fatal(err)
	}
	for _, tok := range tokens {
		if resp, body := ts.do("POST", "/api/v1/me/classes", tok, map[string]any{"class_id": id}); resp.StatusCode != 201 {
			ts.t.Fatalf("enroll: %d %v", resp.StatusCode, body)
		}
	}
	return id
}

// post publishes a message over HTTP and returns it.
func (ts *testServer) post(token, class string, body map[string]any) map[string]any {
	ts.t.Helper()
	resp, m := ts.do("POST", "/api/v1/classes/"+class+"/messages", token, body)
	if resp.StatusCode != 201 {
		ts.t.Fatalf("post: %d %v", resp.StatusCode, m)
	}
	return m
}

// messagesOf decodes a {"messages":[...]} reply.
func messagesOf(t *testing.T, raw []byte) []cg.Message {
	t.Helper()
	var r struct {
		Messages []cg.Message `json:"messages"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || r.Messages == nil {
		t.Fatalf("not a message list: %s", raw)
	}
	return r.Messages
}

func seqsOf(msgs []cg.Message) []int64 {
	out := make([]int64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Seq
	}
	return out
}

func TestMessages(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	alice, au := ts.signIn("msga1a@virginia.edu")
	bob, bu := ts.signIn("msgb2b@virginia.edu")
	outsider, _ := ts.signIn("msgc3c@virginia.edu")
	class := ts.newRoomClass(alice, bob)
	base := "/api/v1/classes/" + class + "/messages"

	var root map[string]any
	for i := range 10 {
		m := ts.post(alice, class, map[string]any{"content": fmt.Sprintf("  message %d  ", i)})
		if i == 0 {
			root = m
		}
	}
	t.Run("PostShape", func(t *testing.T) {
		want := []string{"id", "room", "seq", "anon_id", "content", "parent_id", "reply_count", "created_at", "hidden"}
		for _, k := range want {
			if _, ok := root[k]; !ok {
				t.Fatalf("message lacks %q: %v", k, root)
			}
		}
		if root["content"] != "message 0" || root["seq"] != float64(1) || root["room"] != class {
			t.Fatalf("message %v: content trimmed, seq 1, room the class expected", root)
		}
		if !strings.HasPrefix(root["anon_id"].(string), "Anon_") {
			t.Fatalf("anon_id %v", root["anon_id"])
		}
	})
	t.Run("History", func(t *testing.T) {
		cases := []struct {
			query string
			want  []int64
		}{
			{"", []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
			{"?limit=3", []int64{8, 9, 10}},
			{"?after_seq=2&limit=3", []int64{3, 4, 5}},
			{"?before_seq=4&limit=2", []int64{2, 3}},
			{"?before_seq=3&limit=50", []int64{1, 2}},
			{"?after_seq=10", []int64{}},
		}
		for _, c := range cases {
			resp, raw := ts.doRaw("GET", base+c.query, bob, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("%s: status %d %s", c.query, resp.StatusCode, raw)
			}
			if got := seqsOf(messagesOf(t, raw)); fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("%s: seqs %v, want %v", c.query, got, c.want)
			}
		}
	})
	t.Run("ErrHistoryInput", func(t *testing.T) {
		// The same bad limit gets the same code on every route (invalid_limit).
		for _, c := range []struct{ query, code string }{
			{"?limit=0", "invalid_limit"}, {"?limit=201", "invalid_limit"}, {"?limit=x", "invalid_limit"},
			{"?after_seq=-1", "invalid"}, {"?after_seq=1&before_seq=5", "invalid"},
		} {
			resp, body := ts.do("GET", base+c.query, bob, nil)
			wantProblem(t, resp, body, 400, c.code)
		}
	})
	t.Run("Threads", func(t *testing.T) {
		rootID := root["id"].(string)
		r1 := ts.post(bob, class, map[string]any{"content": "reply one", "parent_id": rootID})
		ts.post(alice, class, map[string]any{"content": "reply two", "parent_id": rootID})
		resp, raw := ts.doRaw("GET", base+"/"+rootID+"/thread", bob, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("thread: %d %s", resp.StatusCode, raw)
		}
		var th struct {
			Root    cg.Message   `json:"root"`
			Replies []cg.Message `json:"replies"`
		}
		if err := json.Unmarshal(raw, &th); err != nil {
			t.Fatal(err)
		}
		if th.Root.ReplyCount != 2 || len(th.Replies) != 2 || *th.Replies[0].Content != "reply one" {
			t.Fatalf("thread %s: want root with reply_count 2 and both replies in order", raw)
		}
		// Replies are one level deep.
		resp, body := ts.do("POST", base, bob, map[string]any{"content": "deeper", "parent_id": r1["id"]})
		wantProblem(t, resp, body, 400, "invalid_parent")
		resp, body = ts.do("GET", base+"/00000000-0000-4000-8000-000000000000/thread", bob, nil)
		wantProblem(t, resp, body, 404, "not_found")
		// The same unknown class as on every route of a class.
		resp, body = ts.do("GET", "/api/v1/classes/00000000-0000-4000-8000-000000000000/messages/00000000-0000-4000-8000-000000000000/thread", bob, nil)
		wantProblem(t, resp, body, 404, "class_not_found")
	})
	t.Run("ErrNotEnrolled", func(t *testing.T) {
		for _, req := range []struct{ method, path string }{
			{"GET", base}, {"GET", base + "/" + root["id"].(string) + "/thread"}, {"POST", base},
		} {
			resp, body := ts.do(req.method, req.path, outsider, map[string]any{"content": "sneaky"})
			if req.method == "GET" {
				resp, body = ts.do(req.method, req.path, outsider, nil)
			}
			wantProblem(t, resp, body, 403, "not_enrolled")
		}
		resp, body := ts.do("POST", "/api/v1/messages/"+root["id"].(string)+"/flag", outsider, nil)
		wantProblem(t, resp, body, 403, "not_enrolled")
	})
	t.Run("ErrPost", func(t *testing.T) {
		cases := []struct {
			body   any
			status int
			code   string
		}{
			{map[string]any{"content": ""}, 400, "invalid_content"},
			{map[string]any{"content": strings.Repeat("a", 4001)}, 400, "invalid_content"},
			{map[string]any{}, 400, "invalid_content"},
			{`{"content":`, 400, "invalid_json"},
			{map[string]any{"content": "x", "parent_id": "nope"}, 400, "invalid_parent"},
		}
		for _, c := range cases {
			resp, body := ts.do("POST", base, bob, c.body)
			wantProblem(t, resp, body, c.status, c.code)
		}
		resp, body := ts.do("POST", "/api/v1/classes/00000000-0000-4000-8000-000000000000/messages", bob, map[string]any{"content": "x"})
		wantProblem(t, resp, body, 404, "class_not_found")
	})
	t.Run("ClientMsgID", func(t *testing.T) {
		a := ts.post(bob, class, map[string]any{"content": "once", "client_msg_id": "c-1"})
		b := ts.post(bob, class, map[string]any{"content": "once", "client_msg_id": "c-1"})
		if a["id"] != b["id"] || a["seq"] != b["seq"] {
			t.Fatalf("retry created another message: %v vs %v", a, b)
		}
	})
	t.Run("NoAuthorIdentity", func(t *testing.T) {
		resp, raw := ts.doRaw("GET", base+"?limit=200", bob, nil)
		if resp.StatusCode != 200 {
			t.Fatal(resp.StatusCode)
		}
		for _, secret := range []string{string(au.ID), string(bu.ID), au.Email, bu.Email, "msga1a", "msgb2b"} {
			if strings.Contains(string(raw), secret) {
				t.Fatalf("history reveals %q", secret)
			}
		}
	})
}

func TestFlagsAndModeration(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	author, au := ts.signIn("flga1a@virginia.edu")
	var flaggers []string
	for i := range 3 {
		tok, _ := ts.signIn(fmt.Sprintf("flg%dz@virginia.edu", i))
		flaggers = append(flaggers, tok)
	}
	mod, modUser := ts.signIn("modm1m@virginia.edu")
	// A second moderator, who does nothing: the audit must name the one who asked.
	_, _ = ts.signIn("modm2m@virginia.edu")
	for _, email := range []string{"modm1m@virginia.edu", "modm2m@virginia.edu"} {
		if err := ts.Users.SetRole(context.Background(), email, cg.RoleModerator); err != nil {
			t.Fatal(err)
		}
	}
	class := ts.newRoomClass(append([]string{author}, flaggers...)...)
	msg := ts.post(author, class, map[string]any{"content": "flag me"})
	id := msg["id"].(string)
	flag := "/api/v1/messages/" + id + "/flag"

	t.Run("ErrOwnMessage", func(t *testing.T) {
		resp, body := ts.do("POST", flag, author, nil)
		wantProblem(t, resp, body, 400, "own_message")
	})
	t.Run("OncePerUser", func(t *testing.T) {
		for range 3 {
			if resp, body := ts.do("POST", flag, flaggers[0], map[string]any{"reason": "spam"}); resp.StatusCode != 204 {
				t.Fatalf("flag: %d %v", resp.StatusCode, body)
			}
		}
		var n int
		if err := ts.DB.Pool.QueryRow(context.Background(), `SELECT flag_count FROM class_messages WHERE id = $1`, id).Scan(&n); err != nil || n != 1 {
			t.Fatalf("flag_count=%d (%v), want 1", n, err)
		}
	})
	t.Run("ErrNotModerator", func(t *testing.T) {
		for _, r := range []struct{ method, path string }{
			{"GET", "/api/v1/mod/flagged"}, {"POST", "/api/v1/mod/messages/" + id + "/hide"}, {"GET", "/api/v1/mod/messages/" + id + "/author"},
		} {
			resp, body := ts.do(r.method, r.path, author, nil)
			wantProblem(t, resp, body, 403, "forbidden")
		}
	})
	t.Run("Flagged", func(t *testing.T) {
		resp, raw := ts.doRaw("GET", "/api/v1/mod/flagged", mod, nil)
		if resp.StatusCode != 200 || !strings.Contains(string(raw), `"flag_count":1`) || !strings.Contains(string(raw), id) {
			t.Fatalf("flagged: %d %s", resp.StatusCode, raw)
		}
	})
	t.Run("AutoHide", func(t *testing.T) {
		for _, tok := range flaggers[1:] {
			if resp, _ := ts.do("POST", flag, tok, nil); resp.StatusCode != 204 {
				t.Fatal(resp.StatusCode)
			}
		}
		resp, raw := ts.doRaw("GET", "/api/v1/classes/"+class+"/messages", author, nil)
		msgs := messagesOf(t, raw)
		if resp.StatusCode != 200 || len(msgs) != 1 || !msgs[0].Hidden || msgs[0].Content != nil || msgs[0].Seq != 1 {
			t.Fatalf("after 3 flags: %s, want a hidden tombstone with seq 1", raw)
		}
	})
	t.Run("HideUnhide", func(t *testing.T) {
		if resp, body := ts.do("POST", "/api/v1/mod/messages/"+id+"/unhide", mod, nil); resp.StatusCode != 204 {
			t.Fatalf("unhide: %d %v", resp.StatusCode, body)
		}
		_, raw := ts.doRaw("GET", "/api/v1/classes/"+class+"/messages", author, nil)
		if m := messagesOf(t, raw)[0]; m.Hidden || m.Content == nil {
			t.Fatalf("after unhide: %s", raw)
		}
		if resp, _ := ts.do("POST", "/api/v1/mod/messages/"+id+"/hide", mod, nil); resp.StatusCode != 204 {
			t.Fatal(resp.StatusCode)
		}
		resp, body := ts.do("POST", "/api/v1/mod/messages/00000000-0000-4000-8000-000000000000/hide", mod, nil)
		wantProblem(t, resp, body, 404, "not_found")
	})
	t.Run("RevealAuthorAudited", func(t *testing.T) {
		resp, body := ts.do("GET", "/api/v1/mod/messages/"+id+"/author?reason=harassment+report", mod, nil)
		user, _ := body["user"].(map[string]any)
		if resp.StatusCode != 200 || user["id"] != string(au.ID) || user["email"] != au.Email {
			t.Fatalf("author: %d %v", resp.StatusCode, body)
		}
		var n int
		var reason string
		if err := ts.DB.Pool.QueryRow(context.Background(),
			`SELECT count(*), coalesce(max(reason), '') FROM moderation_audit WHERE message_id = $1 AND action = 'reveal_author' AND moderator_id = $2`, id, modUser.ID).Scan(&n, &reason); err != nil || n != 1 || reason != "harassment report" {
			t.Fatalf("audit rows naming the moderator who asked=%d reason=%q (%v), want 1 with the reason", n, reason, err)
		}
		var all int
		if err := ts.DB.Pool.QueryRow(context.Background(),
			`SELECT count(*) FROM moderation_audit WHERE message_id = $1 AND action = 'reveal_author'`, id).Scan(&all); err != nil || all != 1 {
			t.Fatalf("reveal audit rows=%d (%v), want exactly 1", all, err)
		}
	})
}
