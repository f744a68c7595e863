package persistence

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	cg "github.com/commongrounds/commongrounds"
)

// NotificationStore keeps the users' inboxes and mutes. It implements cg.NotificationStore.
type NotificationStore struct{ db *DB }

var _ cg.NotificationStore = (*NotificationStore)(nil)

// NewNotificationStore returns the notification store of db.
func NewNotificationStore(db *DB) *NotificationStore { return &NotificationStore{db: db} }

// NotificationRetention is how long a notification is kept.
const NotificationRetention = 30 * 24 * time.Hour

// notifyRepliesSQL stores, for each reply of $1, a notification for its thread's root author and
// each earlier replier (thread_participants, and the replies of $1 before it), leaving out the
// replier, the unenrolled, the muted, and anyone blocked by or blocking the replier (blocks
// work both ways, as between friends). Authors of deleted accounts (user_id NULL) are nobody to
// tell. It records the repliers as participants of their threads.
const notifyRepliesSQL = `
WITH r AS (
	SELECT m.id, m.class_id, m.parent_id, m.user_id, m.seq
	  FROM class_messages m
	 WHERE m.id = ANY($1::uuid[]) AND m.parent_id IS NOT NULL AND m.user_id IS NOT NULL),
joined AS (
	INSERT INTO thread_participants (thread_id, user_id)
	SELECT DISTINCT r.parent_id, r.user_id FROM r
	ON CONFLICT DO NOTHING),
cand AS (
	SELECT r.id, r.class_id, r.parent_id, r.user_id AS replier, p.user_id AS recipient
	  FROM r JOIN class_messages p ON p.id = r.parent_id
	 WHERE p.user_id IS NOT NULL
	UNION
	SELECT r.id, r.class_id, r.parent_id, r.user_id, tp.user_id
	  FROM r JOIN thread_participants tp ON tp.thread_id = r.parent_id
	UNION
	SELECT r.id, r.class_id, r.parent_id, r.user_id, e.user_id
	  FROM r JOIN r e ON e.parent_id = r.parent_id AND e.seq < r.seq)
INSERT INTO notifications (user_id, class_id, thread_id, message_id)
SELECT c.recipient, c.class_id, c.parent_id, c.id
  FROM cand c
 WHERE c.recipient <> c.replier
   AND EXISTS (SELECT 1 FROM user_classes uc WHERE uc.user_id = c.recipient AND uc.class_id = c.class_id)
   AND NOT EXISTS (SELECT 1 FROM room_mutes rm WHERE rm.user_id = c.recipient AND rm.class_id = c.class_id)
   AND NOT EXISTS (SELECT 1 FROM thread_mutes tm WHERE tm.user_id = c.recipient AND tm.thread_id = c.parent_id)
   AND NOT EXISTS (SELECT 1 FROM user_blocks b
                    WHERE (b.blocker_id = c.recipient AND b.blocked_id = c.replier)
                       OR (b.blocker_id = c.replier AND b.blocked_id = c.recipient))
ON CONFLICT (message_id, user_id) DO NOTHING
RETURNING id, user_id, class_id, thread_id, message_id, created_at`

// NotifyReplies stores the notifications of the replies in one statement.
func (s *NotificationStore) NotifyReplies(ctx context.Context, replies []cg.MessageID) ([]cg.NewNotification, error) {
	ids := make([]string, 0, len(replies))
	for _, id := range replies {
		if cg.ValidUUID(string(id)) {
			ids = append(ids, string(id))
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	var out []cg.NewNotification
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		// The commit does not wait for the disk: a crash of the database may lose the last
		// moment's notifications, never a message, and the publishes sharing the log do not
		// wait behind these commits.
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, notifyRepliesSQL, ids)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (cg.NewNotification, error) {
			var n cg.NewNotification
			err := row.Scan(&n.ID, &n.User, &n.Room, &n.ThreadID, &n.MessageID, &n.CreatedAt)
			n.CreatedAt = n.CreatedAt.UTC()
			return n, err
		})
		return err
	})
	return out, wrap("notify replies", err)
}

// notificationCursor is the position after the last notification of a page.
type notificationCursor struct {
	CreatedAt time.Time `json:"c"`
	ID        string    `json:"i"`
}

// ListNotifications returns a page of the inbox, newest first. The pseudonym and excerpt come
// from the reply as it is now: none of a hidden, deleted or erased reply's content is shown.
func (s *NotificationStore) ListNotifications(ctx context.Context, user cg.UserID, f cg.NotificationFilter) ([]*cg.Notification, string, int, error) {
	cur := notificationCursor{CreatedAt: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), ID: "ffffffff-ffff-ffff-ffff-ffffffffffff"}
	if f.Cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(f.Cursor)
		if err != nil || json.Unmarshal(raw, &cur) != nil || !cg.ValidUUID(cur.ID) {
			return nil, "", 0, cg.Errorf(cg.EINVALIDCURSOR, "The cursor is not one this server gave out.")
		}
	}
	rows, err := s.db.Pool.Query(ctx, `
		SELECT n.id, n.class_id, n.thread_id, n.message_id, coalesce(m.anon_id, ''),
		       CASE WHEN m.hidden OR m.deleted_at IS NOT NULL OR m.content IS NULL THEN ''
		            ELSE m.content END,
		       n.created_at, n.read_at IS NOT NULL
		  FROM notifications n JOIN class_messages m ON m.id = n.message_id
		 WHERE n.user_id = $1 AND (n.created_at, n.id) < ($2, $3)
		 ORDER BY n.created_at DESC, n.id DESC LIMIT $4`, user, cur.CreatedAt, cur.ID, f.Limit+1)
	if err != nil {
		return nil, "", 0, wrap("list notifications", err)
	}
	page, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*cg.Notification, error) {
		var n cg.Notification
		var content string
		err := row.Scan(&n.ID, &n.Room, &n.ThreadID, &n.MessageID, &n.AnonID, &content, &n.CreatedAt, &n.Read)
		n.Excerpt = cg.Excerpt(content)
		n.CreatedAt = n.CreatedAt.UTC()
		return &n, err
	})
	if err != nil {
		return nil, "", 0, wrap("list notifications", err)
	}
	next := ""
	if len(page) > f.Limit {
		page = page[:f.Limit]
		last := page[len(page)-1]
		raw, _ := json.Marshal(notificationCursor{CreatedAt: last.CreatedAt, ID: string(last.ID)})
		next = base64.RawURLEncoding.EncodeToString(raw)
	}
	var unread int
	if err := s.db.Pool.QueryRow(ctx, `SELECT count(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL`, user).Scan(&unread); err != nil {
		return nil, "", 0, wrap("count unread notifications", err)
	}
	return page, next, unread, nil
}

// MarkNotificationRead marks one of the user's notifications read; marking twice is no error.
func (s *NotificationStore) MarkNotificationRead(ctx context.Context, user cg.UserID, id cg.NotificationID) error {
	if !cg.ValidUUID(string(id)) {
		return cg.Errorf(cg.ENOTFOUND, "No such notification.")
	}
	tag, err := s.db.Pool.Exec(ctx, `UPDATE notifications SET read_at = coalesce(read_at, now()) WHERE id = $1 AND user_id = $2`, id, user)
	if err != nil {
		return wrap("mark notification read", err)
	}
	if tag.RowsAffected() == 0 {
		return cg.Errorf(cg.ENOTFOUND, "No such notification.")
	}
	return nil
}

// MarkAllNotificationsRead marks every unread notification of the user read.
func (s *NotificationStore) MarkAllNotificationsRead(ctx context.Context, user cg.UserID) (int64, error) {
	tag, err := s.db.Pool.Exec(ctx, `UPDATE notifications SET read_at = now() WHERE user_id = $1 AND read_at IS NULL`, user)
	if err != nil {
		return 0, wrap("mark notifications read", err)
	}
	return tag.RowsAffected(), nil
}

// muteTarget finds the class of a room or thread mute and checks the user's enrollment in it.
func (s *NotificationStore) muteTarget(ctx context.Context, user cg.UserID, room cg.ClassID, thread cg.MessageID) (cg.ClassID, error) {
	id, what, code := string(room), "class", cg.ECLASSNOTFOUND
	q := `SELECT c.id, EXISTS (SELECT 1 FROM user_classes uc WHERE uc.user_id = $2 AND uc.class_id = c.id)
		FROM classes c WHERE c.id = $1`
	if thread != "" {
		id, what, code = string(thread), "thread", cg.ENOTFOUND
		q = `SELECT m.class_id, EXISTS (SELECT 1 FROM user_classes uc WHERE uc.user_id = $2 AND uc.class_id = m.class_id)
			FROM class_messages m WHERE m.id = $1 AND m.parent_id IS NULL`
	}
	missing := cg.Errorf(code, "No such %s.", what)
	if !cg.ValidUUID(id) {
		return "", missing
	}
	var class cg.ClassID
	var enrolled bool
	if err := s.db.Pool.QueryRow(ctx, q, id, user).Scan(&class, &enrolled); err != nil {
		return "", notFound("find mute target", err, code, cg.ErrorMessage(missing))
	}
	if !enrolled {
		return "", errNotEnrolled
	}
	return class, nil
}

// Mute mutes a room or a thread for the user.
func (s *NotificationStore) Mute(ctx context.Context, user cg.UserID, room cg.ClassID, thread cg.MessageID) (*cg.Mute, error) {
	class, err := s.muteTarget(ctx, user, room, thread)
	if err != nil {
		return nil, err
	}
	m := &cg.Mute{Room: class}
	if thread == "" {
		err = s.db.Pool.QueryRow(ctx, `
			WITH ins AS (INSERT INTO room_mutes (user_id, class_id) VALUES ($1, $2)
			             ON CONFLICT DO NOTHING RETURNING created_at)
			SELECT created_at FROM ins
			UNION ALL SELECT created_at FROM room_mutes WHERE user_id = $1 AND class_id = $2
			LIMIT 1`, user, class).Scan(&m.CreatedAt)
	} else {
		m.ThreadID = &thread
		err = s.db.Pool.QueryRow(ctx, `
			WITH ins AS (INSERT INTO thread_mutes (user_id, thread_id, class_id) VALUES ($1, $2, $3)
			             ON CONFLICT DO NOTHING RETURNING created_at)
			SELECT created_at FROM ins
			UNION ALL SELECT created_at FROM thread_mutes WHERE user_id = $1 AND thread_id = $2
			LIMIT 1`, user, thread, class).Scan(&m.CreatedAt)
	}
	if err != nil {
		return nil, wrap("mute", err)
	}
	m.CreatedAt = m.CreatedAt.UTC()
	return m, nil
}

// Unmute lifts a mute of a room or a thread, if there is one.
func (s *NotificationStore) Unmute(ctx context.Context, user cg.UserID, room cg.ClassID, thread cg.MessageID) error {
	var err error
	switch {
	case thread != "":
		if cg.ValidUUID(string(thread)) {
			_, err = s.db.Pool.Exec(ctx, `DELETE FROM thread_mutes WHERE user_id = $1 AND thread_id = $2`, user, thread)
		}
	case cg.ValidUUID(string(room)):
		_, err = s.db.Pool.Exec(ctx, `DELETE FROM room_mutes WHERE user_id = $1 AND class_id = $2`, user, room)
	}
	return wrap("unmute", err)
}

// ListMutes returns the user's mutes, newest first.
func (s *NotificationStore) ListMutes(ctx context.Context, user cg.UserID) ([]*cg.Mute, error) {
	rows, err := s.db.Pool.Query(ctx, `
		SELECT class_id, NULL::uuid, created_at FROM room_mutes WHERE user_id = $1
		UNION ALL
		SELECT class_id, thread_id, created_at FROM thread_mutes WHERE user_id = $1
		ORDER BY 3 DESC`, user)
	if err != nil {
		return nil, wrap("list mutes", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*cg.Mute, error) {
		var m cg.Mute
		err := row.Scan(&m.Room, &m.ThreadID, &m.CreatedAt)
		m.CreatedAt = m.CreatedAt.UTC()
		return &m, err
	})
	if out == nil {
		out = []*cg.Mute{}
	}
	return out, wrap("list mutes", err)
}

// PurgeNotifications deletes the notifications older than NotificationRetention at now. It
// reports the rows deleted and whether it ran (false when another instance was running it).
func (s *CleanupStore) PurgeNotifications(ctx context.Context, now time.Time) (int64, bool, error) {
	return s.locked(ctx, "purge notifications", lockInboxJob, func(tx pgx.Tx) (int64, error) {
		tag, err := tx.Exec(ctx, `DELETE FROM notifications WHERE created_at < $1`, now.Add(-NotificationRetention))
		if err != nil {
			return 0, err
		}
		return tag.RowsAffected(), nil
	})
}
