package api_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/commongrounds/commongrounds/api"
	"github.com/commongrounds/commongrounds/notify"
	"github.com/commongrounds/commongrounds/persistence"
)

// TestReadMarkersHTTP: PUT .../read moves the marker forward only, clamped to the room's last
// position; GET /me/classes counts what others wrote after it.
func TestReadMarkersHTTP(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	reader, _ := ts.signIn("reader@virginia.edu")
	writer, _ := ts.signIn("writer@virginia.edu")
	outsider, _ := ts.signIn("outsider@virginia.edu")
	class := ts.newRoomClass(reader, writer)
	for i := range 3 {
		ts.post(writer, class, map[string]any{"content": fmt.Sprint("m", i)})
	}
	ts.post(reader, class, map[string]any{"content": "mine"})
	path := "/api/v1/classes/" + class + "/read"
	mark := func(seq any, want float64) {
		t.Helper()
		resp, body := ts.do("PUT", path, reader, map[string]any{"seq": seq})
		if resp.StatusCode != 200 || body["seq"] != want || body["room"] != class {
			t.Fatalf("PUT read %v: %d %v, want seq %v", seq, resp.StatusCode, body, want)
		}
	}
	unread := func(wantSeq, want float64) {
		t.Helper()
		_, body := ts.do("GET", "/api/v1/me/classes", reader, nil)
		c := body["classes"].([]any)[0].(map[string]any)
		if c["read_seq"] != wantSeq || c["unread"] != want || c["unread_more"] != false {
			t.Fatalf("class %v: want read_seq %v, unread %v", c, wantSeq, want)
		}
	}
	unread(0, 3)
	mark(1, 1)
	unread(1, 2)
	mark(0, 1)
	mark(1000, 4)
	unread(4, 0)

	t.Run("ErrInvalid", func(t *testing.T) {
		for _, body := range []any{map[string]any{}, map[string]any{"seq": -1}, map[string]any{"seq": "1"}, `{"seq":1,"x":2}`} {
			resp, b := ts.do("PUT", path, reader, body)
			if resp.StatusCode != 400 {
				t.Fatalf("%v: %d %v, want 400", body, resp.StatusCode, b)
			}
		}
	})
	t.Run("ErrNotEnrolled", func(t *testing.T) {
		resp, body := ts.do("PUT", path, outsider, map[string]any{"seq": 1})
		wantProblem(t, resp, body, 403, "not_enrolled")
	})
	t.Run("ErrClassNotFound", func(t *testing.T) {
		for _, id := range []string{"11111111-1111-4111-8111-111111111111", "nope"} {
			resp, body := ts.do("PUT", "/api/v1/classes/"+id+"/read", reader, map[string]any{"seq": 1})
			wantProblem(t, resp, body, 404, "class_not_found")
		}
	})
}

// TestNotificationsHTTP: replies reach the inbox (pages, unread count, mark read), and mutes
// are set, listed and lifted, with clear codes for bad input.
func TestNotificationsHTTP(t *testing.T) {
	t.Parallel()
	var notifier *notify.Notifier
	ts := newTestServer(t, func(d *api.Deps) {
		notifier = &notify.Notifier{Store: persistence.NewNotificationStore(d.DB), Service: d.Rooms}
		d.Rooms.Replies = notifier
		notifier.Start()
	})
	t.Cleanup(func() { _ = notifier.Close(context.Background()) })
	asker, _ := ts.signIn("asker@virginia.edu")
	helper, _ := ts.signIn("helper@virginia.edu")
	class := ts.newRoomClass(asker, helper)
	root := ts.post(asker, class, map[string]any{"content": "how?"})
	for i := range 5 {
		ts.post(helper, class, map[string]any{"content": fmt.Sprint("like this ", i), "parent_id": root["id"]})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := notifier.Close(ctx); err != nil { // every reply queued is notified
		t.Fatal(err)
	}

	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		q := "?limit=2"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		resp, body := ts.do("GET", "/api/v1/me/notifications"+q, asker, nil)
		if resp.StatusCode != 200 || body["unread"] != float64(5) {
			t.Fatalf("inbox: %d %v", resp.StatusCode, body)
		}
		for _, n := range body["notifications"].([]any) {
			n := n.(map[string]any)
			if seen[n["id"].(string)] || n["thread_id"] != root["id"] || n["room"] != class {
				t.Fatalf("notification %v repeated or wrong", n)
			}
			seen[n["id"].(string)] = true
		}
		if body["next_cursor"] == nil {
			break
		}
		cursor = body["next_cursor"].(string)
	}
	if len(seen) != 5 {
		t.Fatalf("paged %d notifications, want 5", len(seen))
	}
	if resp, body := ts.do("GET", "/api/v1/me/notifications", helper, nil); resp.StatusCode != 200 || len(body["notifications"].([]any)) != 0 {
		t.Fatalf("the replier's inbox: %v", body)
	}
	var one string
	for id := range seen {
		one = id
		break
	}
	if resp, _ := ts.do("POST", "/api/v1/me/notifications/"+one+"/read", asker, nil); resp.StatusCode != 204 {
		t.Fatalf("mark read: %d", resp.StatusCode)
	}
	if resp, body := ts.do("POST", "/api/v1/me/notifications/"+one+"/read", helper, nil); resp.StatusCode != 404 {
		t.Fatalf("mark another's read: %d %v", resp.StatusCode, body)
	}
	if resp, body := ts.do("POST", "/api/v1/me/notifications/read", asker, nil); resp.StatusCode != 200 || body["marked"] != float64(4) {
		t.Fatalf("mark all read: %d %v", resp.StatusCode, body)
	}
	if _, body := ts.do("GET", "/api/v1/me/notifications", asker, nil); body["unread"] != float64(0) {
		t.Fatalf("unread after marking all: %v", body["unread"])
	}
	resp, body := ts.do("GET", "/api/v1/me/notifications?cursor=nope", asker, nil)
	wantProblem(t, resp, body, 400, "invalid_cursor")

	t.Run("Mutes", func(t *testing.T) {
		if resp, body := ts.do("POST", "/api/v1/me/mutes", helper, map[string]any{"thread_id": root["id"]}); resp.StatusCode != 200 || body["room"] != class {
			t.Fatalf("mute thread: %d %v", resp.StatusCode, body)
		}
		if resp, body := ts.do("POST", "/api/v1/me/mutes", helper, map[string]any{"room": class}); resp.StatusCode != 200 || body["thread_id"] != nil {
			t.Fatalf("mute room: %d %v", resp.StatusCode, body)
		}
		if _, body := ts.do("GET", "/api/v1/me/mutes", helper, nil); len(body["mutes"].([]any)) != 2 {
			t.Fatalf("mutes: %v", body)
		}
		if resp, _ := ts.do("DELETE", "/api/v1/me/mutes?room="+class, helper, nil); resp.StatusCode != 204 {
			t.Fatalf("unmute room: %d", resp.StatusCode)
		}
		if resp, _ := ts.do("DELETE", "/api/v1/me/mutes", helper, map[string]any{"thread_id": root["id"]}); resp.StatusCode != 204 {
			t.Fatalf("unmute thread: %d", resp.StatusCode)
		}
		if _, body := ts.do("GET", "/api/v1/me/mutes", helper, nil); len(body["mutes"].([]any)) != 0 {
			t.Fatalf("mutes after unmuting: %v", body)
		}
	})
	t.Run("ErrMutes", func(t *testing.T) {
		outsider, _ := ts.signIn("outsider2@virginia.edu")
		for _, c := range []struct {
			token  string
			body   any
			status int
			code   string
		}{
			{helper, map[string]any{}, 400, "invalid_mute"},
			{helper, map[string]any{"room": class, "thread_id": root["id"]}, 400, "invalid_mute"},
			{helper, map[string]any{"room": "nope"}, 404, "class_not_found"},
			{helper, map[string]any{"thread_id": "11111111-1111-4111-8111-111111111111"}, 404, "not_found"},
			{helper, map[string]any{"room": 5}, 400, "invalid_json"},
			{outsider, map[string]any{"room": class}, 403, "not_enrolled"},
			{outsider, map[string]any{"thread_id": root["id"]}, 403, "not_enrolled"},
		} {
			resp, body := ts.do("POST", "/api/v1/me/mutes", c.token, c.body)
			wantProblem(t, resp, body, c.status, c.code)
		}
		resp, body := ts.do("DELETE", "/api/v1/me/mutes", helper, map[string]any{})
		wantProblem(t, resp, body, 400, "invalid_mute")
	})
}
