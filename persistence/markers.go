package persistence

import (
	"context"

	cg "github.com/commongrounds/commongrounds"
)

// MarkerStore keeps the users' read markers and counts what they have not read. It implements
// cg.ReadMarkerStore.
type MarkerStore struct{ db *DB }

var _ cg.ReadMarkerStore = (*MarkerStore)(nil)

// NewMarkerStore returns the marker store of db.
func NewMarkerStore(db *DB) *MarkerStore { return &MarkerStore{db: db} }

// SetReadMarker moves the marker forward in one statement: the class's existence, the user's
// enrollment and the room's last position are read with the upsert, which clamps seq to that
// position and keeps the greater of the old and new marker.
func (s *MarkerStore) SetReadMarker(ctx context.Context, user cg.UserID, class cg.ClassID, seq int64) (int64, bool, error) {
	if !cg.ValidUUID(string(class)) {
		return 0, false, cg.ErrClassNotFound
	}
	var exists, enrolled bool
	var marker, before *int64
	err := s.db.Pool.QueryRow(ctx, `
		WITH r AS (
			SELECT EXISTS (SELECT 1 FROM classes WHERE id = $2) AS class_exists,
			       EXISTS (SELECT 1 FROM user_classes WHERE user_id = $1 AND class_id = $2) AS enrolled,
			       coalesce((SELECT last_seq FROM rooms WHERE class_id = $2), 0) AS last_seq),
		prev AS (SELECT seq FROM read_markers WHERE user_id = $1 AND class_id = $2),
		up AS (
			INSERT INTO read_markers (user_id, class_id, seq)
			SELECT $1, $2, LEAST($3::bigint, r.last_seq) FROM r WHERE r.enrolled
			ON CONFLICT (user_id, class_id) DO UPDATE
			   SET seq = GREATEST(read_markers.seq, EXCLUDED.seq),
			       updated_at = CASE WHEN EXCLUDED.seq > read_markers.seq THEN now() ELSE read_markers.updated_at END
			RETURNING seq)
		SELECT r.class_exists, r.enrolled, (SELECT seq FROM up), (SELECT seq FROM prev) FROM r`,
		user, class, seq).Scan(&exists, &enrolled, &marker, &before)
	switch {
	case err != nil:
		return 0, false, wrap("set read marker", err)
	case !exists:
		return 0, false, cg.ErrClassNotFound
	case !enrolled || marker == nil:
		return 0, false, errNotEnrolled
	}
	return *marker, before == nil || *marker > *before, nil
}

// ListUserRooms returns the classes user is enrolled in, in the order of ListUserClasses, each
// with the user's read marker and unread count. A count is an index range scan of the room's
// messages (class_id, seq) after the marker that stops at the cap: it reads at most
// cg.UnreadCap+1 messages by others, plus the user's own, hidden and deleted ones it passes.
func (s *MarkerStore) ListUserRooms(ctx context.Context, user cg.UserID) ([]*cg.RoomUnread, error) {
	rows, err := s.db.Pool.Query(ctx, `
		SELECT `+prefixedClassColumns+`, coalesce(rm.seq, 0),
		       (SELECT count(*) FROM (
		            SELECT 1 FROM class_messages m
		             WHERE m.class_id = c.id AND m.seq > coalesce(rm.seq, 0)
		               AND NOT m.hidden AND m.deleted_at IS NULL AND m.user_id IS DISTINCT FROM $1
		             ORDER BY m.seq LIMIT $2) unread)
		  FROM user_classes uc
		  JOIN classes c ON c.id = uc.class_id
		  LEFT JOIN read_markers rm ON rm.user_id = uc.user_id AND rm.class_id = uc.class_id
		 WHERE uc.user_id = $1
		 ORDER BY c.term, c.subject, c.catalog_number, coalesce(c.class_section, ''), c.id`, user, cg.UnreadCap+1)
	if err != nil {
		return nil, wrap("list user rooms", err)
	}
	defer rows.Close()
	out := []*cg.RoomUnread{}
	for rows.Next() {
		r := &cg.RoomUnread{}
		if r.Class, err = scanClass(rows, &r.ReadSeq, &r.Unread); err != nil {
			return nil, wrap("list user rooms", err)
		}
		if r.Unread > cg.UnreadCap {
			r.Unread, r.UnreadMore = cg.UnreadCap, true
		}
		out = append(out, r)
	}
	return out, wrap("list user rooms", rows.Err())
}
