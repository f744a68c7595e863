package persistence

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	cg "github.com/commongrounds/commongrounds"
)

// MessageStore stores the messages of class rooms. It implements cg.MessageStore.
type MessageStore struct {
	db *DB
	// MembersCounted is where room-access lookups stop counting a class's members; it must be
	// at least the anonymity threshold. Counting further would cost every subscribe more (to
	// 100: 30 % fewer lookups a second in BenchmarkRoomAccess). Default: cg.DefaultAnonymityK.
	MembersCounted int
}

var _ cg.MessageStore = (*MessageStore)(nil)

// NewMessageStore returns the message store of db.
func NewMessageStore(db *DB) *MessageStore { return &MessageStore{db: db} }

// messageColumns are read by scanMessage, in this order.
const messageColumns = `id, class_id, seq, anon_id, content, parent_id, reply_count, created_at, hidden, deleted_at IS NOT NULL, edited_at, hidden_by`

func scanMessage(row pgx.Row) (*cg.Message, error) {
	var m cg.Message
	if err := row.Scan(&m.ID, &m.Room, &m.Seq, &m.AnonID, &m.Content, &m.ParentID, &m.ReplyCount, &m.CreatedAt, &m.Hidden, &m.Deleted, &m.EditedAt, &m.HiddenBy); err != nil {
		return nil, err
	}
	return visible(&m), nil
}

func collectMessages(rows pgx.Rows) ([]*cg.Message, error) {
	defer rows.Close()
	var out []*cg.Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

var (
	errNotEnrolled = cg.Errorf(cg.ENOTENROLLED, "Enroll in the class first.")
	errMsgNotFound = cg.Errorf(cg.ENOTFOUND, "No such message.")
)

// newAnonID returns a random pseudonym such as Anon_a3f2e1.
func newAnonID() cg.AnonID {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return cg.AnonID("Anon_" + hex.EncodeToString(b))
}

// RoomAccess returns the user's pseudonym in the class, creating a random one on first use.
func (s *MessageStore) RoomAccess(ctx context.Context, user cg.UserID, class cg.ClassID) (cg.AnonID, error) {
	res := s.roomAccess(ctx, user, class)
	return res.Anon, res.Err
}

// membersSQL counts the users enrolled in the class %s, up to $3 (MembersCounted).
const membersSQL = `(SELECT count(*) FROM (SELECT 1 FROM user_classes m WHERE m.class_id = %s LIMIT $3) members)`

// membersCounted returns MembersCounted or its default.
func (s *MessageStore) membersCounted() int {
	if s.MembersCounted <= 0 {
		return cg.DefaultAnonymityK
	}
	return s.MembersCounted
}

// roomAccess is RoomAccess with the count of the class's members.
func (s *MessageStore) roomAccess(ctx context.Context, user cg.UserID, class cg.ClassID) cg.AccessResult {
	if !cg.ValidUUID(string(class)) {
		return cg.AccessResult{Err: cg.ErrClassNotFound}
	}
	// One pair has a statement of its own: about half the database's work of the batch one.
	var exists, enrolled bool
	var anon *cg.AnonID
	var res cg.AccessResult
	err := s.db.Pool.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM classes WHERE id = $2),
		       EXISTS (SELECT 1 FROM user_classes WHERE user_id = $1 AND class_id = $2),
		       (SELECT anon_id FROM class_pseudonyms WHERE class_id = $2 AND user_id = $1),
		       `+fmt.Sprintf(membersSQL, "$2")+``,
		user, class, s.membersCounted()).Scan(&exists, &enrolled, &anon, &res.Members)
	if err != nil {
		return cg.AccessResult{Err: wrap("room access", err)}
	}
	var firstUse bool
	res.Anon, firstUse, res.Err = accessOf(exists, enrolled, anon)
	if firstUse {
		res.Anon, res.Err = s.drawPseudonym(ctx, user, class)
	}
	return res
}

// accessOf is the answer to a room-access lookup; firstUse means the user is enrolled and has
// no pseudonym in the class yet.
func accessOf(exists, enrolled bool, anon *cg.AnonID) (a cg.AnonID, firstUse bool, err error) {
	switch {
	case !exists:
		return "", false, cg.ErrClassNotFound
	case !enrolled:
		return "", false, errNotEnrolled
	case anon == nil:
		return "", true, nil
	}
	return *anon, false, nil
}

// roomAccessSQL looks up, for each of many (user, class) pairs, whether the class exists, whether the
// user is enrolled, the user's pseudonym there, and the class's members (up to $3).
var roomAccessSQL = `
SELECT r.ord,
       EXISTS (SELECT 1 FROM classes c WHERE c.id = r.class_id::uuid),
       EXISTS (SELECT 1 FROM user_classes uc WHERE uc.user_id = r.user_id::uuid AND uc.class_id = r.class_id::uuid),
       (SELECT p.anon_id FROM class_pseudonyms p WHERE p.class_id = r.class_id::uuid AND p.user_id = r.user_id::uuid),
       ` + fmt.Sprintf(membersSQL, "r.class_id::uuid") + `
  FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS r(user_id, class_id, ord)`

// RoomAccesses is RoomAccess for many calls, looked up in one statement; a first use draws
// its pseudonym on its own. Results are in the order of reqs.
func (s *MessageStore) RoomAccesses(ctx context.Context, reqs []cg.AccessRequest) []cg.AccessResult {
	out := make([]cg.AccessResult, len(reqs))
	if len(reqs) == 1 {
		out[0] = s.roomAccess(ctx, reqs[0].User, reqs[0].Class)
		return out
	}
	var users, classes []string
	var index []int // index[k] is the request of the statement's row k+1
	for i, r := range reqs {
		switch {
		case !cg.ValidUUID(string(r.Class)):
			out[i].Err = cg.ErrClassNotFound
		case !cg.ValidUUID(string(r.User)):
			out[i].Err = fmt.Errorf("room access: user id %q is not a UUID", r.User)
		default:
			users, classes, index = append(users, string(r.User)), append(classes, string(r.Class)), append(index, i)
		}
	}
	if len(index) == 0 {
		return out
	}
	var firstUse []int
	var exists, enrolled bool
	var anon *cg.AnonID
	var members int
	err := s.db.eachByOrdinal(ctx, roomAccessSQL, []any{users, classes, s.membersCounted()}, index, []any{&exists, &enrolled, &anon, &members}, func(i int) {
		var first bool
		out[i].Members = members
		if out[i].Anon, first, out[i].Err = accessOf(exists, enrolled, anon); first {
			firstUse = append(firstUse, i)
		}
	})
	if err != nil {
		werr := wrap("room access", err)
		for _, i := range index {
			out[i] = cg.AccessResult{Err: werr}
		}
		return out
	}
	for _, i := range firstUse {
		out[i].Anon, out[i].Err = s.drawPseudonym(ctx, reqs[i].User, reqs[i].Class)
	}
	return out
}

// drawPseudonym gives an enrolled user a pseudonym no one in the class has, or returns the one
// a concurrent call gave. A collision (one in 16.7 million per member) only draws again.
// So does a concurrent call's insert that had not committed when this statement began: the
// insert waits for it and does nothing, and the statement's snapshot, taken before that commit,
// does not show its row; the next statement's does.
func (s *MessageStore) drawPseudonym(ctx context.Context, user cg.UserID, class cg.ClassID) (cg.AnonID, error) {
	for range 8 {
		var got cg.AnonID
		err := s.db.Pool.QueryRow(ctx, `
			WITH ins AS (
				INSERT INTO class_pseudonyms (class_id, user_id, anon_id) VALUES ($1, $2, $3)
				ON CONFLICT (class_id, user_id) DO NOTHING
				RETURNING anon_id)
			SELECT anon_id FROM ins
			UNION ALL
			SELECT anon_id FROM class_pseudonyms WHERE class_id = $1 AND user_id = $2
			LIMIT 1`, class, user, newAnonID()).Scan(&got)
		if isUniqueViolation(err) || errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return "", wrap("create pseudonym", err)
		}
		return got, nil
	}
	return "", fmt.Errorf("create pseudonym: none kept after 8 draws")
}

// CreateMessage stores a message in one statement: it takes the room's next seq (the row lock on
// the room orders commits, so seq is contiguous and in commit order), inserts the message, and
// raises its parent's reply count. Enrollment is checked by the same statement, which also locks
// the author's row FOR KEY SHARE: class_messages.user_id has no foreign key (it cost a query per
// message), and the lock is what makes a concurrent deletion of the account wait for this commit
// and then unlink the message from it, and schedule its erasure when asked
// (migrations/002_message_keys.sql, 003_anonymity.sql).
func (s *MessageStore) CreateMessage(ctx context.Context, nm cg.NewMessage) (*cg.Message, bool, error) {
	if !cg.ValidUUID(string(nm.Class)) {
		return nil, false, cg.ErrClassNotFound
	}
	if nm.ParentID != nil {
		if err := s.checkParent(ctx, nm.Class, *nm.ParentID); err != nil {
			return nil, false, err
		}
	}
	// A repeated client_msg_id is rare (a retry), so it is not looked up first: the insert
	// runs into the unique key, and is rolled back with the seq it took.
	for attempt := 0; ; attempt++ {
		m, err := s.insertMessage(ctx, nm)
		switch {
		case err == nil:
			return m, true, nil
		case errors.Is(err, pgx.ErrNoRows) && nm.ClientMsgID != "" && attempt == 0:
			// A retry of a message that committed before its author left the room still
			// finds it.
			if m, err := s.findByClientMsgID(ctx, nm); err == nil {
				return m, false, nil
			} else if !errors.Is(err, pgx.ErrNoRows) {
				return nil, false, wrap("find message by client_msg_id", err)
			}
			fallthrough
		case errors.Is(err, pgx.ErrNoRows) && attempt == 0:
			// Not enrolled, no such class, or no pseudonym yet: RoomAccess tells which, and
			// creates the pseudonym, after which the insert is tried once more.
			if _, err := s.RoomAccess(ctx, nm.User, nm.Class); err != nil {
				return nil, false, err
			}
		case errors.Is(err, pgx.ErrNoRows):
			return nil, false, errNotEnrolled
		case isUniqueViolation(err) && constraintOf(err) == "class_messages_class_id_user_id_client_msg_id_key":
			// A concurrent publish with the same client_msg_id won.
			m, err := s.findByClientMsgID(ctx, nm)
			if err != nil {
				return nil, false, wrap("find message by client_msg_id", err)
			}
			return m, false, nil
		default:
			return nil, false, wrap("insert message", err)
		}
	}
}

func (s *MessageStore) insertMessage(ctx context.Context, nm cg.NewMessage) (*cg.Message, error) {
	var clientMsgID *string
	if nm.ClientMsgID != "" {
		clientMsgID = &nm.ClientMsgID
	}
	return scanMessage(s.db.Pool.QueryRow(ctx, `
		WITH author AS (
			SELECT p.anon_id
			  FROM users u
			  JOIN user_classes uc ON uc.user_id = u.id
			  JOIN class_pseudonyms p ON p.class_id = uc.class_id AND p.user_id = uc.user_id
			 WHERE u.id = $2 AND uc.class_id = $1
			   FOR KEY SHARE OF u),
		room AS (
			INSERT INTO rooms (class_id, last_seq)
			SELECT $1, 1 FROM author
			ON CONFLICT (class_id) DO UPDATE SET last_seq = rooms.last_seq + 1
			RETURNING last_seq),
		msg AS (
			INSERT INTO class_messages (id, class_id, seq, user_id, anon_id, content, parent_id, client_msg_id)
			SELECT $6, $1, room.last_seq, $2, author.anon_id, $3, $4, $5 FROM room, author
			RETURNING `+messageColumns+`),
		parent AS (
			UPDATE class_messages SET reply_count = reply_count + 1
			 WHERE id = $4 AND EXISTS (SELECT 1 FROM msg))
		SELECT * FROM msg`,
		nm.Class, nm.User, nm.Content, nm.ParentID, clientMsgID, newMessageID()))
}

func (s *MessageStore) findByClientMsgID(ctx context.Context, nm cg.NewMessage) (*cg.Message, error) {
	return scanMessage(s.db.Pool.QueryRow(ctx, `SELECT `+messageColumns+` FROM class_messages
		WHERE class_id = $1 AND user_id = $2 AND client_msg_id = $3`, nm.Class, nm.User, nm.ClientMsgID))
}

// checkParent requires parent to be a root message of the class (threads are one level deep).
func (s *MessageStore) checkParent(ctx context.Context, class cg.ClassID, parent cg.MessageID) error {
	invalid := cg.Errorf(cg.EINVALIDPARENT, "parent_id must be a message of this room that is not itself a reply.")
	if !cg.ValidUUID(string(parent)) {
		return invalid
	}
	var ok bool
	err := s.db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM class_messages WHERE id = $1 AND class_id = $2 AND parent_id IS NULL)`,
		parent, class).Scan(&ok)
	if err != nil {
		return wrap("check parent", err)
	}
	if !ok {
		return invalid
	}
	return nil
}

// ListMessages returns a page of the room's history in ascending seq, and the room's last event
// position, from one snapshot: the page is the room's state at that position.
func (s *MessageStore) ListMessages(ctx context.Context, class cg.ClassID, f cg.MessageFilter) (*cg.MessagePage, error) {
	page := &cg.MessagePage{}
	err := pgx.BeginTxFunc(ctx, s.db.Pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT coalesce((SELECT last_seq FROM rooms WHERE class_id = $1), 0)`, class).Scan(&page.LastSeq); err != nil {
			return err
		}
		var rows pgx.Rows
		var err error
		switch {
		case f.AfterSeq != nil:
			rows, err = tx.Query(ctx, `SELECT `+messageColumns+` FROM class_messages
				WHERE class_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, class, *f.AfterSeq, f.Limit)
		case f.BeforeSeq != nil:
			rows, err = tx.Query(ctx, `SELECT `+messageColumns+` FROM class_messages
				WHERE class_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`, class, *f.BeforeSeq, f.Limit)
		default:
			rows, err = tx.Query(ctx, `SELECT `+messageColumns+` FROM class_messages
				WHERE class_id = $1 ORDER BY seq DESC LIMIT $2`, class, f.Limit)
		}
		if err != nil {
			return err
		}
		page.Messages, err = collectMessages(rows)
		return err
	})
	if err != nil {
		return nil, wrap("list messages", err)
	}
	if f.AfterSeq == nil {
		slices.Reverse(page.Messages)
	}
	return page, nil
}

// LastSeqs returns the last event position of each room; rooms without events are 0.
func (s *MessageStore) LastSeqs(ctx context.Context, classes []cg.ClassID) (map[cg.ClassID]int64, error) {
	out := make(map[cg.ClassID]int64, len(classes))
	for _, c := range classes {
		out[c] = 0
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT class_id, last_seq FROM rooms WHERE class_id = ANY($1)`, classes)
	if err != nil {
		return nil, wrap("last seqs", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c cg.ClassID
		var seq int64
		if err := rows.Scan(&c, &seq); err != nil {
			return nil, wrap("last seqs", err)
		}
		out[c] = seq
	}
	return out, wrap("last seqs", rows.Err())
}

// Thread returns the root of the thread that id belongs to and the root's replies in seq order.
func (s *MessageStore) Thread(ctx context.Context, class cg.ClassID, id cg.MessageID) (*cg.Message, []*cg.Message, error) {
	if !cg.ValidUUID(string(id)) {
		return nil, nil, errMsgNotFound
	}
	root, err := scanMessage(s.db.Pool.QueryRow(ctx, `SELECT `+messageColumns+` FROM class_messages
		WHERE class_id = $1 AND id = (SELECT coalesce(parent_id, id) FROM class_messages WHERE id = $2 AND class_id = $1)`, class, id))
	if err != nil {
		return nil, nil, notFound("thread root", err, cg.ENOTFOUND, "No such message.")
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT `+messageColumns+` FROM class_messages
		WHERE parent_id = $1 ORDER BY seq`, root.ID)
	if err != nil {
		return nil, nil, wrap("thread replies", err)
	}
	replies, err := collectMessages(rows)
	if err != nil {
		return nil, nil, wrap("thread replies", err)
	}
	return root, replies, nil
}

// RevealAuthor returns the author of a message and audits the reveal in the same transaction:
// there is no reveal without its audit row.
func (s *MessageStore) RevealAuthor(ctx context.Context, id cg.MessageID, moderator cg.UserID, reason string) (*cg.PublicUser, error) {
	if !cg.ValidUUID(string(id)) {
		return nil, errMsgNotFound
	}
	var u cg.PublicUser
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT u.id, u.email, u.computing_id FROM class_messages m JOIN users u ON u.id = m.user_id WHERE m.id = $1`, id).
			Scan(&u.ID, &u.Email, &u.ComputingID)
		if err != nil {
			return notFound("reveal author", err, cg.ENOTFOUND, "No such message, or its author deleted the account.")
		}
		var r *string
		if reason != "" {
			r = &reason
		}
		_, err = tx.Exec(ctx, `INSERT INTO moderation_audit (moderator_id, message_id, action, reason) VALUES ($1, $2, 'reveal_author', $3)`, moderator, id, r)
		return err
	})
	if err != nil {
		return nil, wrap("reveal author", err)
	}
	return &u, nil
}

// flaggedCursor is the position after the last message of a page of flagged messages.
type flaggedCursor struct {
	FlagCount int       `json:"f"`
	CreatedAt time.Time `json:"c"`
	ID        string    `json:"i"`
}

// ListFlagged returns flagged messages, most flagged first, then newest first.
func (s *MessageStore) ListFlagged(ctx context.Context, limit int, cursor string) ([]*cg.FlaggedMessage, string, error) {
	cur := flaggedCursor{FlagCount: 1 << 30, CreatedAt: time.Now().Add(time.Hour), ID: "ffffffff-ffff-ffff-ffff-ffffffffffff"}
	if cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || json.Unmarshal(raw, &cur) != nil || !cg.ValidUUID(cur.ID) {
			return nil, "", cg.Errorf(cg.EINVALID, "The cursor is not one this server gave out.")
		}
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT `+messageColumns+`, flag_count FROM class_messages
		WHERE flag_count > 0 AND (flag_count, created_at, id) < ($1, $2, $3)
		ORDER BY flag_count DESC, created_at DESC, id DESC LIMIT $4`, cur.FlagCount, cur.CreatedAt, cur.ID, limit+1)
	if err != nil {
		return nil, "", wrap("list flagged", err)
	}
	defer rows.Close()
	var out []*cg.FlaggedMessage
	for rows.Next() {
		var fm cg.FlaggedMessage
		m := &fm.Message
		if err := rows.Scan(&m.ID, &m.Room, &m.Seq, &m.AnonID, &m.Content, &m.ParentID, &m.ReplyCount, &m.CreatedAt, &m.Hidden, &m.Deleted, &m.EditedAt, &m.HiddenBy, &fm.FlagCount); err != nil {
			return nil, "", wrap("list flagged", err)
		}
		visible(m)
		out = append(out, &fm)
	}
	if err := rows.Err(); err != nil {
		return nil, "", wrap("list flagged", err)
	}
	ids := make([]cg.MessageID, len(out))
	for i, fm := range out {
		ids[i] = fm.ID
	}
	versions, err := s.versions(ctx, ids)
	if err != nil {
		return nil, "", err
	}
	for _, fm := range out {
		fm.Versions = versions[fm.ID]
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		raw, _ := json.Marshal(flaggedCursor{FlagCount: last.FlagCount, CreatedAt: last.CreatedAt, ID: string(last.ID)})
		next = base64.RawURLEncoding.EncodeToString(raw)
	}
	return out, next, nil
}
