package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	cg "github.com/commongrounds/commongrounds"
)

// historyPage reads a room's history as token: the messages and last_seq.
func (ts *testServer) historyPage(token, class string) ([]cg.Message, int64) {
	ts.t.Helper()
	resp, raw := ts.doRaw("GET", "/api/v1/classes/"+class+"/messages?limit=200", token, nil)
	var page struct {
		Messages []cg.Message `json:"messages"`
		LastSeq  *int64       `json:"last_seq"`
	}
	if err := json.Unmarshal(raw, &page); resp.StatusCode != 200 || err != nil || page.LastSeq == nil {
		ts.t.Fatalf("history: %d %s", resp.StatusCode, raw)
	}
	return page.Messages, *page.LastSeq
}

// TestEditAndDelete: authors edit (within the window) and delete their own messages, each an
// event of the room; nobody else can, and nobody but moderators sees what was replaced or, for a
// flagged message, deleted.
func TestEditAndDelete(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	author, _ := ts.signIn("eda1a@virginia.edu")
	other, _ := ts.signIn("edb2b@virginia.edu")
	mod, _ := ts.signIn("edm3m@virginia.edu")
	if err := ts.Users.SetRole(context.Background(), "edm3m@virginia.edu", cg.RoleModerator); err != nil {
		t.Fatal(err)
	}
	class := ts.newRoomClass(author, other)
	msg := func(content string) string {
		t.Helper()
		return ts.post(author, class, map[string]any{"content": content})["id"].(string)
	}
	find := func(t *testing.T, id string) cg.Message {
		t.Helper()
		msgs, _ := ts.historyPage(other, class)
		for _, m := range msgs {
			if string(m.ID) == id {
				return m
			}
		}
		t.Fatalf("message %s not in the history", id)
		return cg.Message{}
	}
	events := func(t *testing.T) int {
		t.Helper()
		var n int
		if err := ts.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM room_events WHERE class_id = $1`, class).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Run("Edit", func(t *testing.T) {
		id := msg("first draft")
		_, before := ts.historyPage(other, class)
		resp, body := ts.do("PATCH", "/api/v1/messages/"+id, author, map[string]any{"content": "  second draft \r\n"})
		if resp.StatusCode != 200 || body["content"] != "second draft" || body["edited_at"] == nil || body["id"] != id {
			t.Fatalf("edit: %d %v", resp.StatusCode, body)
		}
		if m := find(t, id); m.Content == nil || *m.Content != "second draft" || m.EditedAt == nil {
			t.Fatalf("history has %+v, want the edit", m)
		}
		if _, after := ts.historyPage(other, class); after != before+1 {
			t.Fatalf("last_seq %d after the edit, want %d: the edit takes a position", after, before+1)
		}
		n := events(t)
		if resp, body := ts.do("PATCH", "/api/v1/messages/"+id, author, map[string]any{"content": "second draft"}); resp.StatusCode != 200 || body["content"] != "second draft" {
			t.Fatalf("same content: %d %v", resp.StatusCode, body)
		}
		if events(t) != n {
			t.Fatal("editing to the same content made an event")
		}
		// Earlier versions: moderators only.
		resp, raw := ts.doRaw("GET", "/api/v1/mod/messages/"+id+"/versions", mod, nil)
		if resp.StatusCode != 200 || !strings.Contains(string(raw), `"content":"first draft"`) || !strings.Contains(string(raw), `"reason":"edited"`) {
			t.Fatalf("versions: %d %s", resp.StatusCode, raw)
		}
		for _, tok := range []string{author, other} {
			resp, body := ts.do("GET", "/api/v1/mod/messages/"+id+"/versions", tok, nil)
			wantProblem(t, resp, body, 403, "forbidden")
		}
		_, raw = ts.doRaw("GET", "/api/v1/classes/"+class+"/messages?limit=200", other, nil)
		if strings.Contains(string(raw), "first draft") {
			t.Fatalf("the history shows an earlier version: %s", raw)
		}
	})
	t.Run("ErrEdit", func(t *testing.T) {
		id := msg("mine")
		for _, tc := range []struct {
			name, token, id string
			body            any
			status          int
			code            string
		}{
			{"Forbidden", other, id, map[string]any{"content": "theirs"}, 403, "forbidden"},
			{"NotFound", author, "00000000-0000-4000-8000-000000000000", map[string]any{"content": "x"}, 404, "not_found"},
			{"NotAnID", author, "nope", map[string]any{"content": "x"}, 404, "not_found"},
			{"Empty", author, id, map[string]any{"content": "   "}, 400, "invalid_content"},
			{"Missing", author, id, map[string]any{}, 400, "invalid_content"},
			{"Control", author, id, map[string]any{"content": "a\u0007b"}, 400, "invalid_content"},
			{"TooLong", author, id, map[string]any{"content": strings.Repeat("x", 4001)}, 400, "invalid_content"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := ts.do("PATCH", "/api/v1/messages/"+tc.id, tc.token, tc.body)
				wantProblem(t, resp, body, tc.status, tc.code)
				if detail, _ := body["detail"].(string); strings.Contains(detail, "Anon_") || strings.Contains(detail, "eda1a") {
					t.Fatalf("the refusal names the author: %v", body)
				}
			})
		}
		if m := find(t, id); *m.Content != "mine" || m.EditedAt != nil {
			t.Fatalf("a refused edit changed the message: %+v", m)
		}
	})
	t.Run("ErrEditWindowPassed", func(t *testing.T) {
		id := msg("old news")
		if _, err := ts.DB.Pool.Exec(context.Background(), `UPDATE class_messages SET created_at = now() - interval '16 minutes' WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
		resp, body := ts.do("PATCH", "/api/v1/messages/"+id, author, map[string]any{"content": "new news"})
		wantProblem(t, resp, body, 409, "edit_window_passed")
	})
	t.Run("ErrEditHidden", func(t *testing.T) {
		id := msg("to hide")
		if resp, _ := ts.do("POST", "/api/v1/mod/messages/"+id+"/hide", mod, nil); resp.StatusCode != 204 {
			t.Fatal(resp.StatusCode)
		}
		resp, body := ts.do("PATCH", "/api/v1/messages/"+id, author, map[string]any{"content": "unhide me"})
		wantProblem(t, resp, body, 409, "message_hidden")
	})
	t.Run("Delete", func(t *testing.T) {
		root := msg("a root")
		reply := ts.post(other, class, map[string]any{"content": "a reply", "parent_id": root})["id"].(string)
		anon := find(t, root).AnonID
		n := events(t)
		for range 2 {
			if resp, body := ts.do("DELETE", "/api/v1/messages/"+root, author, nil); resp.StatusCode != 204 {
				t.Fatalf("delete: %d %v", resp.StatusCode, body)
			}
		}
		if got := events(t); got != n+1 {
			t.Fatalf("%d events for two deletions, want 1", got-n)
		}
		m := find(t, root)
		if !m.Deleted || m.Content != nil || m.AnonID == nil || *m.AnonID != *anon || m.ReplyCount != 1 {
			t.Fatalf("deleted root %+v, want a tombstone keeping its pseudonym and its reply", m)
		}
		resp, raw := ts.doRaw("GET", "/api/v1/classes/"+class+"/messages/"+reply+"/thread", other, nil)
		if resp.StatusCode != 200 || strings.Contains(string(raw), "a root") || !strings.Contains(string(raw), "a reply") {
			t.Fatalf("thread: %d %s", resp.StatusCode, raw)
		}
		// The reply's deletion changes no count either.
		if resp, _ := ts.do("DELETE", "/api/v1/messages/"+reply, other, nil); resp.StatusCode != 204 {
			t.Fatal(resp.StatusCode)
		}
		if m := find(t, root); m.ReplyCount != 1 {
			t.Fatalf("reply_count %d after the reply's deletion, want 1", m.ReplyCount)
		}
		resp, body := ts.do("PATCH", "/api/v1/messages/"+root, author, map[string]any{"content": "back"})
		wantProblem(t, resp, body, 409, "message_deleted")
		// Never flagged: its content is gone for moderators too.
		resp, raw = ts.doRaw("GET", "/api/v1/mod/messages/"+root+"/versions", mod, nil)
		if resp.StatusCode != 200 || strings.Contains(string(raw), "a root") {
			t.Fatalf("versions of a deleted unflagged message: %d %s", resp.StatusCode, raw)
		}
	})
	t.Run("ErrDelete", func(t *testing.T) {
		id := msg("keep me")
		resp, body := ts.do("DELETE", "/api/v1/messages/"+id, other, nil)
		wantProblem(t, resp, body, 403, "forbidden")
		resp, body = ts.do("DELETE", "/api/v1/messages/00000000-0000-4000-8000-000000000000", author, nil)
		wantProblem(t, resp, body, 404, "not_found")
		resp, body = ts.do("DELETE", "/api/v1/messages/"+id, "", nil)
		wantProblem(t, resp, body, 401, "unauthorized")
		if m := find(t, id); m.Deleted || *m.Content != "keep me" {
			t.Fatalf("a refused deletion changed the message: %+v", m)
		}
	})
	t.Run("DeleteFlagged", func(t *testing.T) {
		id := msg("abusive words")
		if resp, _ := ts.do("POST", "/api/v1/messages/"+id+"/flag", other, map[string]any{"reason": "abuse"}); resp.StatusCode != 204 {
			t.Fatal(resp.StatusCode)
		}
		if resp, _ := ts.do("DELETE", "/api/v1/messages/"+id, author, nil); resp.StatusCode != 204 {
			t.Fatal(resp.StatusCode)
		}
		resp, raw := ts.doRaw("GET", "/api/v1/mod/flagged", mod, nil)
		var flagged struct {
			Messages []struct {
				ID        string              `json:"id"`
				Content   *string             `json:"content"`
				Deleted   bool                `json:"deleted"`
				FlagCount int                 `json:"flag_count"`
				Versions  []cg.MessageVersion `json:"versions"`
			} `json:"messages"`
		}
		if err := json.Unmarshal(raw, &flagged); resp.StatusCode != 200 || err != nil {
			t.Fatalf("flagged: %d %s", resp.StatusCode, raw)
		}
		found := false
		for _, m := range flagged.Messages {
			if m.ID == id {
				found = true
				if !m.Deleted || m.Content != nil || m.FlagCount != 1 || len(m.Versions) != 1 ||
					m.Versions[0].Content != "abusive words" || m.Versions[0].Reason != "deleted" {
					t.Fatalf("the queue shows %+v, want the deleted content among its versions", m)
				}
			}
		}
		if !found {
			t.Fatalf("the deleted flagged message is not in the queue: %s", raw)
		}
		for _, path := range []string{"/api/v1/classes/" + class + "/messages?limit=200", "/api/v1/classes/" + class + "/messages/" + id + "/thread"} {
			for _, tok := range []string{author, other} {
				if _, raw := ts.doRaw("GET", path, tok, nil); strings.Contains(string(raw), "abusive words") {
					t.Fatalf("%s shows the deleted content to a student: %s", path, raw)
				}
			}
		}
		resp, body := ts.do("GET", "/api/v1/mod/flagged", other, nil)
		wantProblem(t, resp, body, 403, "forbidden")
	})
}
