package persistence_test

import (
	"context"
	"strings"
	"testing"
	"time"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/internal/testenv"
	"github.com/commongrounds/commongrounds/persistence"
)

func post(tb testing.TB, store *persistence.MessageStore, class cg.ClassID, user cg.UserID, content string, parent *cg.MessageID) *cg.Message {
	tb.Helper()
	m, _, err := store.CreateMessage(context.Background(), cg.NewMessage{Class: class, User: user, Content: content, ParentID: parent})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func unreadOf(tb testing.TB, markers *persistence.MarkerStore, user cg.UserID, class cg.ClassID) *cg.RoomUnread {
	tb.Helper()
	rooms, err := markers.ListUserRooms(context.Background(), user)
	if err != nil {
		tb.Fatal(err)
	}
	for _, r := range rooms {
		if r.ID == class {
			return r
		}
	}
	tb.Fatalf("class %s not listed", class)
	return nil
}

// TestReadMarkers: a marker is clamped to the room's last position, never goes back, needs
// enrollment; unread counts leave out the user's own, hidden and deleted messages, and stop at
// the cap.
func TestReadMarkers(t *testing.T) {
	t.Parallel()
	db := testenv.MustOpenDB(t)
	ctx := context.Background()
	store := persistence.NewMessageStore(db)
	markers := persistence.NewMarkerStore(db)
	class, users := memberFixture(t, db, 3)
	a, b, outsider := users[0], users[1], users[2]
	if _, err := db.Pool.Exec(ctx, `DELETE FROM user_classes WHERE user_id = $1`, outsider); err != nil {
		t.Fatal(err)
	}

	t.Run("Clamped", func(t *testing.T) {
		post(t, store, class, a, "one", nil)
		seq, moved, err := markers.SetReadMarker(ctx, b, class, 1000)
		if err != nil || !moved || seq != 1 {
			t.Fatalf("SetReadMarker = %d, %v, %v; want 1, true", seq, moved, err)
		}
	})
	t.Run("NeverBack", func(t *testing.T) {
		seq, moved, err := markers.SetReadMarker(ctx, b, class, 0)
		if err != nil || moved || seq != 1 {
			t.Fatalf("SetReadMarker = %d, %v, %v; want 1, false", seq, moved, err)
		}
	})
	t.Run("ErrNotEnrolled", func(t *testing.T) {
		if _, _, err := markers.SetReadMarker(ctx, outsider, class, 1); cg.ErrorCode(err) != cg.ENOTENROLLED {
			t.Fatalf("Code=%v, want %v", cg.ErrorCode(err), cg.ENOTENROLLED)
		}
	})
	t.Run("ErrClassNotFound", func(t *testing.T) {
		if _, _, err := markers.SetReadMarker(ctx, b, "11111111-1111-4111-8111-111111111111", 1); cg.ErrorCode(err) != cg.ECLASSNOTFOUND {
			t.Fatalf("Code=%v, want %v", cg.ErrorCode(err), cg.ECLASSNOTFOUND)
		}
	})
	t.Run("Unread", func(t *testing.T) {
		// b read up to seq 1. Then: a's two messages, b's own, one hidden, one of a deleted
		// account's erased, and a message whose seq leaves a gap (an event took the seq).
		post(t, store, class, a, "two", nil)
		post(t, store, class, b, "mine", nil)
		hidden := post(t, store, class, a, "hidden", nil)
		if _, err := store.SetHidden(ctx, hidden.ID, a, true); err != nil {
			t.Fatal(err)
		}
		erased := post(t, store, class, a, "erased", nil)
		if _, err := db.Pool.Exec(ctx, `UPDATE rooms SET last_seq = last_seq + 5 WHERE class_id = $1`, class); err != nil {
			t.Fatal(err)
		}
		last := post(t, store, class, a, "after a gap", nil)
		if _, err := db.Pool.Exec(ctx, `UPDATE class_messages SET user_id = NULL, content = NULL, anon_id = NULL, deleted_at = now() WHERE id = $1`, erased.ID); err != nil {
			t.Fatal(err)
		}
		r := unreadOf(t, markers, b, class)
		if r.ReadSeq != 1 || r.Unread != 2 || r.UnreadMore {
			t.Fatalf("read_seq, unread, more = %d, %d, %v; want 1, 2, false", r.ReadSeq, r.Unread, r.UnreadMore)
		}
		if _, _, err := markers.SetReadMarker(ctx, b, class, last.Seq); err != nil {
			t.Fatal(err)
		}
		if r := unreadOf(t, markers, b, class); r.ReadSeq != last.Seq || r.Unread != 0 {
			t.Fatalf("read_seq, unread = %d, %d; want %d, 0", r.ReadSeq, r.Unread, last.Seq)
		}
	})
	t.Run("Capped", func(t *testing.T) {
		if _, err := db.Pool.Exec(ctx, `
			WITH room AS (UPDATE rooms SET last_seq = last_seq + 150 WHERE class_id = $1 RETURNING last_seq)
			INSERT INTO class_messages (class_id, seq, user_id, anon_id, content)
			SELECT $1, room.last_seq - 150 + g, $2, (SELECT anon_id FROM class_pseudonyms WHERE class_id = $1 AND user_id = $2), 'x'
			  FROM room, generate_series(1, 150) g`, class, a); err != nil {
			t.Fatal(err)
		}
		if r := unreadOf(t, markers, b, class); r.Unread != cg.UnreadCap || !r.UnreadMore {
			t.Fatalf("unread, more = %d, %v; want %d, true", r.Unread, r.UnreadMore, cg.UnreadCap)
		}
	})
}

// TestNotifyReplies: the root author and earlier repliers are notified, never the replier, the
// unenrolled, the muted, or those blocked either way; the inbox pages without gaps or
// duplicates, hides the content of hidden replies, and is emptied after 30 days.
func TestNotifyReplies(t *testing.T) {
	t.Parallel()
	db := testenv.MustOpenDB(t)
	ctx := context.Background()
	store := persistence.NewMessageStore(db)
	notes := persistence.NewNotificationStore(db)
	class, users := memberFixture(t, db, 7)
	root, replier, early, muteThread, muteRoom, blocker, gone := users[0], users[1], users[2], users[3], users[4], users[5], users[6]

	thread := post(t, store, class, root, "question", nil)
	var earlier []cg.MessageID
	for _, u := range []cg.UserID{early, muteThread, muteRoom, blocker, gone} {
		earlier = append(earlier, post(t, store, class, u, "earlier reply", &thread.ID).ID)
	}
	// Notified together, as a batch: each tells the root author and the replies before it.
	if got, err := notes.NotifyReplies(ctx, earlier); err != nil || len(got) != 5+4+3+2+1 {
		t.Fatalf("earlier replies: %d notifications, %v; want 15", len(got), err)
	}
	if _, err := db.Pool.Exec(ctx, `DELETE FROM notifications`); err != nil {
		t.Fatal(err)
	}
	if _, err := notes.Mute(ctx, muteThread, "", thread.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := notes.Mute(ctx, muteRoom, class, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO user_blocks (blocker_id, blocked_id) VALUES ($1, $2)`, blocker, replier); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `DELETE FROM user_classes WHERE user_id = $1`, gone); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("é", 200)
	reply := post(t, store, class, replier, long, &thread.ID)
	got, err := notes.NotifyReplies(ctx, []cg.MessageID{reply.ID})
	if err != nil {
		t.Fatal(err)
	}
	to := map[cg.UserID]bool{}
	for _, n := range got {
		to[n.User] = true
		if n.MessageID != reply.ID || n.ThreadID != thread.ID || n.Room != class {
			t.Fatalf("notification %+v does not name the reply", n)
		}
	}
	if len(got) != 2 || !to[root] || !to[early] {
		t.Fatalf("notified %v, want the root author and the earlier replier only", to)
	}
	if again, err := notes.NotifyReplies(ctx, []cg.MessageID{reply.ID}); err != nil || len(again) != 0 {
		t.Fatalf("notified again: %d, %v", len(again), err)
	}

	t.Run("Inbox", func(t *testing.T) {
		page, _, unread, err := notes.ListNotifications(ctx, root, cg.NotificationFilter{Limit: 10})
		if err != nil || len(page) != 1 || unread != 1 {
			t.Fatalf("inbox = %d, unread %d, %v; want 1, 1", len(page), unread, err)
		}
		n := page[0]
		if n.AnonID != *reply.AnonID || n.Excerpt != strings.Repeat("é", 140)+"…" || n.Read {
			t.Fatalf("notification = %+v", n)
		}
		if _, err := store.SetHidden(ctx, reply.ID, root, true); err != nil {
			t.Fatal(err)
		}
		page, _, _, _ = notes.ListNotifications(ctx, root, cg.NotificationFilter{Limit: 10})
		if page[0].Excerpt != "" || page[0].AnonID != *reply.AnonID {
			t.Fatalf("hidden reply: excerpt %q, anon_id %q; want no excerpt", page[0].Excerpt, page[0].AnonID)
		}
		// Erased (as the erasure job does): neither the content nor the pseudonym is shown.
		if _, err := db.Pool.Exec(ctx, `UPDATE class_messages SET user_id = NULL, client_msg_id = NULL, hidden = false, hidden_by = NULL WHERE id = $1`, reply.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Pool.Exec(ctx, `UPDATE class_messages SET content = NULL, anon_id = NULL, deleted_at = now() WHERE id = $1`, reply.ID); err != nil {
			t.Fatal(err)
		}
		page, _, _, _ = notes.ListNotifications(ctx, root, cg.NotificationFilter{Limit: 10})
		if page[0].Excerpt != "" || page[0].AnonID != "" {
			t.Fatalf("erased reply: excerpt %q, anon_id %q; want neither", page[0].Excerpt, page[0].AnonID)
		}
		if err := notes.MarkNotificationRead(ctx, root, n.ID); err != nil {
			t.Fatal(err)
		}
		if err := notes.MarkNotificationRead(ctx, early, n.ID); cg.ErrorCode(err) != cg.ENOTFOUND {
			t.Fatalf("marking another's: Code=%v, want %v", cg.ErrorCode(err), cg.ENOTFOUND)
		}
		if _, _, unread, _ := notes.ListNotifications(ctx, root, cg.NotificationFilter{Limit: 10}); unread != 0 {
			t.Fatalf("unread = %d after marking read, want 0", unread)
		}
	})

	t.Run("Pages", func(t *testing.T) {
		// 25 replies by replier to early's thread, some at the same instant.
		own := post(t, store, class, early, "another question", nil)
		var ids []cg.MessageID
		for range 25 {
			ids = append(ids, post(t, store, class, replier, "r", &own.ID).ID)
		}
		if _, err := notes.NotifyReplies(ctx, ids); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Pool.Exec(ctx, `UPDATE notifications SET created_at = date_trunc('second', created_at) WHERE user_id = $1`, early); err != nil {
			t.Fatal(err)
		}
		seen := map[cg.NotificationID]bool{}
		cursor := ""
		var last time.Time
		for {
			page, next, unread, err := notes.ListNotifications(ctx, early, cg.NotificationFilter{Limit: 4, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			if unread != 26 {
				t.Fatalf("unread = %d, want 26", unread)
			}
			for _, n := range page {
				if seen[n.ID] {
					t.Fatalf("notification %s twice", n.ID)
				}
				if !last.IsZero() && n.CreatedAt.After(last) {
					t.Fatal("not newest first")
				}
				seen[n.ID], last = true, n.CreatedAt
			}
			if cursor = next; cursor == "" {
				break
			}
		}
		if len(seen) != 26 {
			t.Fatalf("paged %d notifications, want 26", len(seen))
		}
		if n, err := notes.MarkAllNotificationsRead(ctx, early); err != nil || n != 26 {
			t.Fatalf("MarkAllNotificationsRead = %d, %v; want 26", n, err)
		}
		if _, _, _, err := notes.ListNotifications(ctx, early, cg.NotificationFilter{Limit: 4, Cursor: "nope"}); cg.ErrorCode(err) != cg.EINVALIDCURSOR {
			t.Fatalf("Code=%v, want %v", cg.ErrorCode(err), cg.EINVALIDCURSOR)
		}
	})

	t.Run("Mutes", func(t *testing.T) {
		mutes, err := notes.ListMutes(ctx, muteThread)
		if err != nil || len(mutes) != 1 || mutes[0].ThreadID == nil || *mutes[0].ThreadID != thread.ID || mutes[0].Room != class {
			t.Fatalf("mutes = %+v, %v", mutes, err)
		}
		if _, err := notes.Mute(ctx, muteThread, "", thread.ID); err != nil {
			t.Fatalf("muting twice: %v", err)
		}
		if err := notes.Unmute(ctx, muteThread, "", thread.ID); err != nil {
			t.Fatal(err)
		}
		if mutes, _ := notes.ListMutes(ctx, muteThread); len(mutes) != 0 {
			t.Fatalf("mutes after unmute = %d", len(mutes))
		}
		if _, err := notes.Mute(ctx, gone, class, ""); cg.ErrorCode(err) != cg.ENOTENROLLED {
			t.Fatalf("muting a class one left: Code=%v, want %v", cg.ErrorCode(err), cg.ENOTENROLLED)
		}
		if _, err := notes.Mute(ctx, root, "", reply.ID); cg.ErrorCode(err) != cg.ENOTFOUND {
			t.Fatalf("muting a reply as a thread: Code=%v, want %v", cg.ErrorCode(err), cg.ENOTFOUND)
		}
	})

	t.Run("Purge", func(t *testing.T) {
		if _, err := db.Pool.Exec(ctx, `UPDATE notifications SET created_at = now() - interval '31 days' WHERE user_id = $1`, root); err != nil {
			t.Fatal(err)
		}
		n, ran, err := persistence.NewCleanupStore(db).PurgeNotifications(ctx, time.Now())
		if err != nil || !ran || n != 1 {
			t.Fatalf("PurgeNotifications = %d, %v, %v; want 1, true", n, ran, err)
		}
		if page, _, _, _ := notes.ListNotifications(ctx, early, cg.NotificationFilter{Limit: 100}); len(page) != 26 {
			t.Fatalf("newer notifications left: %d, want 26", len(page))
		}
	})
}
