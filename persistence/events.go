package persistence

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	cg "github.com/commongrounds/commongrounds"
)

// The events of a room's order are its messages (each at its seq) and the rows of room_events,
// each change at a position of its own taken from rooms.last_seq (migrations/004_room_events.sql).

// listEventsSQL reads a page of a room's events after a position: the position, the kind, then
// the message (as messageColumns has it).
const listEventsSQL = `
(SELECT m.seq, 'message', m.id, m.class_id, m.seq, m.anon_id, m.content, m.parent_id, 0,
        m.created_at, m.hidden, m.deleted_at IS NOT NULL, m.edited_at, m.hidden_by
   FROM class_messages m
  WHERE m.class_id = $1 AND m.seq > $2
  ORDER BY m.seq LIMIT $3)
UNION ALL
(SELECT e.seq, 'message_' || e.kind, m.id, m.class_id, m.seq, m.anon_id, m.content, m.parent_id,
        CASE WHEN m.parent_id IS NULL THEN
            (SELECT count(*) FROM class_messages r WHERE r.parent_id = m.id AND r.seq <= e.seq)::int
        ELSE 0 END,
        m.created_at, m.hidden, m.deleted_at IS NOT NULL, m.edited_at, m.hidden_by
   FROM room_events e JOIN class_messages m ON m.id = e.message_id
  WHERE e.class_id = $1 AND e.seq > $2
  ORDER BY e.seq LIMIT $3)
ORDER BY 1 LIMIT $3`

// ListEvents returns up to limit events of the room after the position after, in order. Each
// carries its message as it is now, with the reply count it had at the event's position (a new
// message has none yet; a change, the replies published before it): the replies after the event
// follow it as events of their own, and a client that counts them ends with the count the
// history shows. The page is read in one statement, so it is a prefix of the committed events:
// positions are taken under the room's row lock and commit in their order.
func (s *MessageStore) ListEvents(ctx context.Context, class cg.ClassID, after int64, limit int) ([]*cg.RoomEvent, error) {
	rows, err := s.db.Pool.Query(ctx, listEventsSQL, class, after, limit)
	if err != nil {
		return nil, wrap("list events", err)
	}
	defer rows.Close()
	var out []*cg.RoomEvent
	for rows.Next() {
		var e cg.RoomEvent
		var m cg.Message
		if err := rows.Scan(&e.Seq, &e.Kind, &m.ID, &m.Room, &m.Seq, &m.AnonID, &m.Content, &m.ParentID, &m.ReplyCount,
			&m.CreatedAt, &m.Hidden, &m.Deleted, &m.EditedAt, &m.HiddenBy); err != nil {
			return nil, wrap("list events", err)
		}
		e.Message = visible(&m)
		out = append(out, &e)
	}
	return out, wrap("list events", rows.Err())
}

// visible clears what no client may see of a message: the content of a hidden or deleted one.
// It normalises the times to UTC.
func visible(m *cg.Message) *cg.Message {
	if m.Hidden || m.Deleted {
		m.Content = nil
	}
	m.CreatedAt = m.CreatedAt.UTC()
	if m.EditedAt != nil {
		t := m.EditedAt.UTC()
		m.EditedAt = &t
	}
	return m
}

// targetColumns are the columns of a target but its class.
const targetColumns = `user_id, content, flag_count, hidden, deleted_at IS NOT NULL, created_at, edited_at`

// target is a message as a change finds it, locked for update.
type target struct {
	class     cg.ClassID
	author    *cg.UserID
	content   *string
	flags     int
	hidden    bool
	deleted   bool
	createdAt time.Time
	editedAt  *time.Time
}

// change makes one change to a message as an event of its room's order. In one transaction it
// takes the room's next position, which locks the room's row (as a publish does, and in the same
// order: room, then message, so that a change and a reply to the same message cannot deadlock),
// then locks the message; apply decides and writes the change and returns its kind, or "" when
// nothing changed (the position is given back; what apply wrote, such as a flag, is still
// committed). The change is recorded in room_events, and the message returned as it is now.
// check, when not nil, refuses a change before the room is locked, on the message as it was
// read without a lock (errUnchanged: nothing to change, no event); apply checks again.
// Errors: not_found, and check's and apply's.
func (s *MessageStore) change(ctx context.Context, op string, id cg.MessageID, check func(t *target) error, apply func(tx pgx.Tx, t *target) (cg.EventKind, error)) (*cg.RoomEvent, error) {
	if !cg.ValidUUID(string(id)) {
		return nil, errMsgNotFound
	}
	var t target
	err := s.db.Pool.QueryRow(ctx, `SELECT class_id, `+targetColumns+` FROM class_messages WHERE id = $1`, id).
		Scan(&t.class, &t.author, &t.content, &t.flags, &t.hidden, &t.deleted, &t.createdAt, &t.editedAt)
	if err != nil {
		return nil, notFound(op, err, cg.ENOTFOUND, "No such message.")
	}
	if check != nil {
		if err := check(&t); errors.Is(err, errUnchanged) {
			return nil, nil
		} else if err != nil {
			return nil, err
		}
	}
	class := t.class
	var ev *cg.RoomEvent
	err = pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		// The room's next position, taken at once with the room's lock; given back (under the
		// lock still) when nothing changes.
		var seq int64
		if err := tx.QueryRow(ctx, `UPDATE rooms SET last_seq = last_seq + 1 WHERE class_id = $1 RETURNING last_seq`, class).Scan(&seq); err != nil {
			return err
		}
		t := target{class: class}
		err := tx.QueryRow(ctx, `SELECT `+targetColumns+` FROM class_messages WHERE id = $1 FOR UPDATE`, id).
			Scan(&t.author, &t.content, &t.flags, &t.hidden, &t.deleted, &t.createdAt, &t.editedAt)
		if err != nil {
			return notFound(op, err, cg.ENOTFOUND, "No such message.")
		}
		kind, err := apply(tx, &t)
		if err != nil {
			return err
		}
		if kind == "" {
			_, err := tx.Exec(ctx, `UPDATE rooms SET last_seq = last_seq - 1 WHERE class_id = $1`, class)
			return err
		}
		// The room is locked: the reply count read is the one at the event's position.
		ev = &cg.RoomEvent{Seq: seq, Kind: kind}
		ev.Message, err = scanMessage(tx.QueryRow(ctx, `
			WITH ev AS (INSERT INTO room_events (class_id, seq, kind, message_id) VALUES ($1, $2, $3, $4))
			SELECT `+messageColumns+` FROM class_messages WHERE id = $4`,
			class, seq, strings.TrimPrefix(string(kind), "message_"), id))
		return err
	})
	if err != nil {
		return nil, wrap(op, err)
	}
	return ev, nil
}

var (
	errNotAuthor = cg.Errorf(cg.EFORBIDDEN, "Only the author of a message may change it.")
	// errUnchanged: the message already is as the change would leave it.
	errUnchanged = errors.New("unchanged")
)

// EditMessage replaces the content of user's message, keeping the content it replaces as a
// version for moderators. Editing to the same content changes nothing and makes no event.
func (s *MessageStore) EditMessage(ctx context.Context, id cg.MessageID, user cg.UserID, content string, window time.Duration) (*cg.Message, *cg.RoomEvent, error) {
	check := func(t *target) error {
		switch {
		case t.author == nil || *t.author != user:
			return errNotAuthor
		case t.deleted:
			return cg.Errorf(cg.EMESSAGEDELETED, "A deleted message cannot be edited.")
		case t.hidden:
			return cg.Errorf(cg.EMESSAGEHIDDEN, "A hidden message cannot be edited.")
		case time.Since(t.createdAt) > window:
			return cg.Errorf(cg.EEDITWINDOW, "A message can be edited only within %s of its publication.", window)
		}
		return nil
	}
	ev, err := s.change(ctx, "edit message", id, check, func(tx pgx.Tx, t *target) (cg.EventKind, error) {
		if err := check(t); err != nil {
			return "", err
		}
		var enrolled bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM user_classes WHERE user_id = $1 AND class_id = $2)`, user, t.class).Scan(&enrolled); err != nil {
			return "", err
		}
		if !enrolled {
			return "", errNotEnrolled
		}
		if t.content != nil && *t.content == content {
			return "", nil
		}
		if err := keepVersion(ctx, tx, id, t, "edited"); err != nil {
			return "", err
		}
		_, err := tx.Exec(ctx, `UPDATE class_messages SET content = $2, edited_at = now() WHERE id = $1`, id, content)
		return cg.EventEdited, err
	})
	if err != nil {
		return nil, nil, err
	}
	if ev == nil {
		m, err := s.message(ctx, id)
		return m, nil, err
	}
	return ev.Message, ev, nil
}

// DeleteMessage turns user's message into a tombstone: no content, its pseudonym kept. The
// content stays, as a version, for moderators only if someone flagged the message; otherwise it
// goes, with the versions of earlier edits. Deleting a tombstone again changes nothing.
func (s *MessageStore) DeleteMessage(ctx context.Context, id cg.MessageID, user cg.UserID) (*cg.RoomEvent, error) {
	check := func(t *target) error {
		if t.author == nil || *t.author != user {
			return errNotAuthor
		}
		if t.deleted {
			return errUnchanged
		}
		return nil
	}
	return s.change(ctx, "delete message", id, check, func(tx pgx.Tx, t *target) (cg.EventKind, error) {
		if err := check(t); errors.Is(err, errUnchanged) {
			return "", nil
		} else if err != nil {
			return "", err
		}
		var err error
		if t.flags > 0 {
			err = keepVersion(ctx, tx, id, t, "deleted")
		} else {
			_, err = tx.Exec(ctx, `DELETE FROM message_versions WHERE message_id = $1`, id)
		}
		if err != nil {
			return "", err
		}
		_, err = tx.Exec(ctx, `UPDATE class_messages SET content = NULL, deleted_at = now() WHERE id = $1`, id)
		return cg.EventDeleted, err
	})
}

// keepVersion keeps the content of t, which an edit replaces or a deletion removes (reason), as
// the message's next version.
func keepVersion(ctx context.Context, tx pgx.Tx, id cg.MessageID, t *target, reason string) error {
	written := t.createdAt
	if t.editedAt != nil {
		written = *t.editedAt
	}
	_, err := tx.Exec(ctx, `INSERT INTO message_versions (message_id, version, content, written_at, reason)
		SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4 FROM message_versions WHERE message_id = $1`, id, t.content, written, reason)
	return err
}

// message returns one message as every client may see it.
func (s *MessageStore) message(ctx context.Context, id cg.MessageID) (*cg.Message, error) {
	m, err := scanMessage(s.db.Pool.QueryRow(ctx, `SELECT `+messageColumns+` FROM class_messages WHERE id = $1`, id))
	if err != nil {
		return nil, notFound("read message", err, cg.ENOTFOUND, "No such message.")
	}
	return m, nil
}

// MessageVersions returns the earlier contents of a message, oldest first.
func (s *MessageStore) MessageVersions(ctx context.Context, id cg.MessageID) ([]cg.MessageVersion, error) {
	if !cg.ValidUUID(string(id)) {
		return nil, errMsgNotFound
	}
	if _, err := s.message(ctx, id); err != nil {
		return nil, err
	}
	vs, err := s.versions(ctx, []cg.MessageID{id})
	return vs[id], err
}

// versions returns the earlier contents of each of the messages ids, oldest first.
func (s *MessageStore) versions(ctx context.Context, ids []cg.MessageID) (map[cg.MessageID][]cg.MessageVersion, error) {
	out := make(map[cg.MessageID][]cg.MessageVersion, len(ids))
	for _, id := range ids {
		out[id] = []cg.MessageVersion{}
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT message_id, version, content, written_at, replaced_at, reason
		FROM message_versions WHERE message_id = ANY($1) ORDER BY message_id, version`, ids)
	if err != nil {
		return nil, wrap("message versions", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id cg.MessageID
		var v cg.MessageVersion
		if err := rows.Scan(&id, &v.Version, &v.Content, &v.WrittenAt, &v.ReplacedAt, &v.Reason); err != nil {
			return nil, wrap("message versions", err)
		}
		v.WrittenAt, v.ReplacedAt = v.WrittenAt.UTC(), v.ReplacedAt.UTC()
		out[id] = append(out[id], v)
	}
	return out, wrap("message versions", rows.Err())
}

// FlagMessage records a flag once per user and hides the message at the threshold; the hide is
// an event of the room. A flag that does not hide the message is no event: it locks the message
// alone, not its room, so that flags do not hold up the room's publishes. The flag that reaches
// the threshold is rolled back and made again as a change, which locks the room first.
func (s *MessageStore) FlagMessage(ctx context.Context, id cg.MessageID, user cg.UserID, reason string, threshold int) (*cg.RoomEvent, error) {
	if !cg.ValidUUID(string(id)) {
		return nil, errMsgNotFound
	}
	errHides := errors.New("this flag hides the message")
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		var t target
		err := tx.QueryRow(ctx, `SELECT class_id, user_id, flag_count, hidden FROM class_messages WHERE id = $1 FOR UPDATE`, id).
			Scan(&t.class, &t.author, &t.flags, &t.hidden)
		if err != nil {
			return notFound("flag message", err, cg.ENOTFOUND, "No such message.")
		}
		kind, err := flag(ctx, tx, id, &t, user, reason, threshold)
		if err == nil && kind != "" {
			return errHides
		}
		return err
	})
	if !errors.Is(err, errHides) {
		return nil, wrap("flag message", err)
	}
	return s.change(ctx, "flag message", id, nil, func(tx pgx.Tx, t *target) (cg.EventKind, error) {
		return flag(ctx, tx, id, t, user, reason, threshold)
	})
}

// flag records user's flag of the message t, locked, and hides it at the threshold: it returns
// EventHidden when it did.
func flag(ctx context.Context, tx pgx.Tx, id cg.MessageID, t *target, user cg.UserID, reason string, threshold int) (cg.EventKind, error) {
	var enrolled bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM user_classes WHERE user_id = $1 AND class_id = $2)`, user, t.class).Scan(&enrolled); err != nil {
		return "", err
	}
	if !enrolled {
		return "", errNotEnrolled
	}
	if t.author != nil && *t.author == user {
		return "", cg.Errorf(cg.EOWNMESSAGE, "You cannot flag your own message.")
	}
	var r *string
	if reason != "" {
		r = &reason
	}
	tag, err := tx.Exec(ctx, `INSERT INTO message_flags (message_id, user_id, reason) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, id, user, r)
	if err != nil || tag.RowsAffected() == 0 {
		return "", err
	}
	flags := t.flags + 1
	autoHidden := !t.hidden && flags >= threshold
	if _, err := tx.Exec(ctx, `UPDATE class_messages SET flag_count = flag_count + 1,
		hidden = hidden OR $2, hidden_at = CASE WHEN $2 AND NOT hidden THEN now() ELSE hidden_at END,
		hidden_by = CASE WHEN $2 AND NOT hidden THEN 'flags' ELSE hidden_by END WHERE id = $1`, id, autoHidden); err != nil {
		return "", err
	}
	if !autoHidden {
		return "", nil
	}
	_, err = tx.Exec(ctx, `INSERT INTO moderation_audit (message_id, action, reason) VALUES ($1, 'auto_hide', $2)`,
		id, fmt.Sprintf("%d distinct users flagged it", flags))
	return cg.EventHidden, err
}

// SetHidden hides or restores a message and writes the action to the audit log; each is an
// event of the room.
func (s *MessageStore) SetHidden(ctx context.Context, id cg.MessageID, moderator cg.UserID, hidden bool) (*cg.RoomEvent, error) {
	return s.change(ctx, "set hidden", id, func(t *target) error {
		if t.hidden == hidden {
			return errUnchanged
		}
		return nil
	}, func(tx pgx.Tx, t *target) (cg.EventKind, error) {
		if t.hidden == hidden {
			return "", nil
		}
		if _, err := tx.Exec(ctx, `UPDATE class_messages SET hidden = $2, hidden_at = CASE WHEN $2 THEN now() END,
			hidden_by = CASE WHEN $2 THEN 'moderator' END WHERE id = $1`, id, hidden); err != nil {
			return "", err
		}
		action, kind := "unhide", cg.EventRestored
		if hidden {
			action, kind = "hide", cg.EventHidden
		}
		_, err := tx.Exec(ctx, `INSERT INTO moderation_audit (moderator_id, message_id, action) VALUES ($1, $2, $3)`, moderator, id, action)
		return kind, err
	})
}

// eraseSQL erases the due messages $1 (in that order): each becomes a tombstone without content
// or pseudonym and takes the next position of its room, in the order given. The caller holds
// the rooms' rows. A message no longer due (its class was deleted meanwhile) is left out.
const eraseSQL = `
WITH erased AS (
	UPDATE class_messages m
	   SET content = NULL, anon_id = NULL, client_msg_id = NULL, deleted_at = coalesce(deleted_at, now()), erase_at = NULL
	 WHERE m.id = ANY($1) AND m.erase_at IS NOT NULL
	RETURNING m.id, m.class_id, array_position($1, m.id) AS ord),
numbered AS (
	SELECT id, class_id, row_number() OVER (PARTITION BY class_id ORDER BY ord) AS rn,
	       count(*) OVER (PARTITION BY class_id) AS n
	  FROM erased),
room AS (
	UPDATE rooms r SET last_seq = r.last_seq + x.n
	  FROM (SELECT class_id, max(n) AS n FROM numbered GROUP BY class_id) x
	 WHERE r.class_id = x.class_id
	RETURNING r.class_id, r.last_seq),
ev AS (
	INSERT INTO room_events (class_id, seq, kind, message_id)
	SELECT nb.class_id, room.last_seq - nb.n + nb.rn, 'erased', nb.id
	  FROM numbered nb JOIN room ON room.class_id = nb.class_id
	RETURNING class_id, seq, message_id)
SELECT seq, message_id FROM ev ORDER BY class_id, seq`

// eraseDue tombstones up to limit messages whose erasure time is not after now, each an event of
// its room, and returns the events. It runs in tx, which holds the erasure job's lock.
func eraseDue(ctx context.Context, tx pgx.Tx, now time.Time, limit int) ([]*cg.RoomEvent, error) {
	rows, err := tx.Query(ctx, `SELECT id, class_id FROM class_messages WHERE erase_at <= $1 ORDER BY erase_at LIMIT $2`, now, limit)
	if err != nil {
		return nil, err
	}
	var ids []cg.MessageID
	var classes []cg.ClassID
	for rows.Next() {
		var id cg.MessageID
		var class cg.ClassID
		if err := rows.Scan(&id, &class); err != nil {
			rows.Close()
			return nil, err
		}
		ids, classes = append(ids, id), append(classes, class)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(ids) == 0 {
		return nil, err
	}
	// The rooms first, in id order as the batch publish takes them, then the messages: the order
	// every writer of messages locks in.
	if _, err := tx.Exec(ctx, `SELECT FROM rooms WHERE class_id = ANY($1) ORDER BY class_id FOR UPDATE`, classes); err != nil {
		return nil, err
	}
	rows, err = tx.Query(ctx, eraseSQL, ids)
	if err != nil {
		return nil, err
	}
	var evs []*cg.RoomEvent
	var erased []cg.MessageID
	for rows.Next() {
		e := &cg.RoomEvent{Kind: cg.EventErased}
		var id cg.MessageID
		if err := rows.Scan(&e.Seq, &id); err != nil {
			rows.Close()
			return nil, err
		}
		evs, erased = append(evs, e), append(erased, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// The tombstones as they are now; the rooms are held, so reply counts are those at the
	// events' positions.
	rows, err = tx.Query(ctx, `SELECT `+messageColumns+` FROM class_messages WHERE id = ANY($1)`, erased)
	if err != nil {
		return nil, err
	}
	msgs, err := collectMessages(rows)
	if err != nil {
		return nil, err
	}
	byID := make(map[cg.MessageID]*cg.Message, len(msgs))
	for _, m := range msgs {
		byID[m.ID] = m
	}
	for i, e := range evs {
		if e.Message = byID[erased[i]]; e.Message == nil {
			return nil, errors.New("erased message vanished")
		}
	}
	return evs, nil
}
