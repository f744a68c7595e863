package persistence

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	cg "github.com/commongrounds/commongrounds"
)

// FriendStore stores friend requests, friendships and blocks.
//
// A pair of users has at most one relationship row, whoever asked first (a unique index on
// the unordered pair enforces it). Its status is PENDING (user_id_1 asked user_id_2),
// ACCEPTED, or REJECTED (the recipient said no). Every change that depends on the pair's
// current state runs in a transaction holding an advisory lock on the pair, so two users who
// ask each other at the same moment end up with exactly one accepted friendship.
//
// Rules:
//   - Asking someone who already asked you accepts their request.
//   - Asking again while your request is pending, or after it was rejected, is already_exists:
//     a rejection stands until the other user asks you in turn, which replaces it with their
//     new request.
//   - Only the recipient answers a request. Accepting works on a pending or rejected request
//     (the recipient may change their mind); rejecting works on a pending one.
//   - A block (one-sided, in user_blocks) deletes the pair's relationship and refuses requests
//     either way until it is lifted; lifting it does not bring the friendship back.
type FriendStore struct{ db *DB }

// NewFriendStore returns the friend store of db.
func NewFriendStore(db *DB) *FriendStore { return &FriendStore{db: db} }

// Friendship statuses.
const (
	StatusPending  = "PENDING"
	StatusAccepted = "ACCEPTED"
	StatusRejected = "REJECTED"
)

// FriendRequest is a relationship as one of its two users sees it: User is the other one.
type FriendRequest struct {
	ID        string
	User      cg.PublicUser
	Status    string
	CreatedAt time.Time
}

// Friend is a user with whom a friendship was accepted, and since when.
type Friend struct {
	cg.PublicUser
	Since time.Time
}

// Suggestion is a user one might know: how many classes the two share, and whether the user's
// verified phone number is among the caller's imported contacts.
type Suggestion struct {
	User          cg.PublicUser
	SharedClasses int
	InContacts    bool
}

// lockPair takes the transaction-scoped advisory lock of the unordered pair a, b.
func lockPair(ctx context.Context, tx pgx.Tx, a, b cg.UserID) error {
	_, err := tx.Exec(ctx, `
		SELECT pg_advisory_xact_lock(hashtextextended(least($1::text, $2::text) || '|' || greatest($1::text, $2::text), 7))`,
		a, b)
	return err
}

// blockedBetween reports whether either user blocks the other.
func blockedBetween(ctx context.Context, q pgx.Tx, a, b cg.UserID) (bool, error) {
	var blocked bool
	err := q.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM user_blocks
		                WHERE (blocker_id = $1 AND blocked_id = $2) OR (blocker_id = $2 AND blocked_id = $1))`,
		a, b).Scan(&blocked)
	return blocked, err
}

// relationship is a friendships row.
type relationship struct {
	id        string
	from, to  cg.UserID
	status    string
	createdAt time.Time
}

const pairCondition = `LEAST(user_id_1, user_id_2) = LEAST($1::uuid, $2::uuid) AND GREATEST(user_id_1, user_id_2) = GREATEST($1::uuid, $2::uuid)`

// findPair returns the relationship of a and b, locked for update; pgx.ErrNoRows if none.
func findPair(ctx context.Context, tx pgx.Tx, a, b cg.UserID) (*relationship, error) {
	var r relationship
	err := tx.QueryRow(ctx, `
		SELECT id, user_id_1, user_id_2, status, created_at FROM friendships
		 WHERE `+pairCondition+` FOR UPDATE`, a, b).Scan(&r.id, &r.from, &r.to, &r.status, &r.createdAt)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// publicUser returns the user with id as others see it.
func publicUser(ctx context.Context, tx pgx.Tx, id cg.UserID) (cg.PublicUser, error) {
	var u cg.PublicUser
	err := tx.QueryRow(ctx, `SELECT id, email, computing_id FROM users WHERE id = $1`, id).Scan(&u.ID, &u.Email, &u.ComputingID)
	return u, err
}

// RequestFriend sends a friend request from one user to another. If the other user had already
// asked, the two become friends at once and accepted is true; otherwise the new request is
// pending. Errors: self_request, user_not_found, blocked (a block either way), already_exists
// (a pending request of from's, a rejected one, or a friendship).
func (s *FriendStore) RequestFriend(ctx context.Context, from, to cg.UserID) (req *FriendRequest, accepted bool, err error) {
	if !cg.ValidUUID(string(to)) {
		return nil, false, cg.Errorf(cg.EUSERNOTFOUND, "No such user.")
	}
	if strings.EqualFold(string(from), string(to)) {
		return nil, false, cg.Errorf(cg.ESELFREQUEST, "You cannot send a friend request to yourself.")
	}
	err = pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		if err := lockPair(ctx, tx, from, to); err != nil {
			return err
		}
		other, err := publicUser(ctx, tx, to)
		if errors.Is(err, pgx.ErrNoRows) {
			return cg.Errorf(cg.EUSERNOTFOUND, "No such user.")
		} else if err != nil {
			return err
		}
		if blocked, err := blockedBetween(ctx, tx, from, to); err != nil {
			return err
		} else if blocked {
			return cg.Errorf(cg.EBLOCKED, "You cannot send a friend request to this user.")
		}
		r, err := findPair(ctx, tx, from, to)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			r = &relationship{from: from, to: to, status: StatusPending}
			err = tx.QueryRow(ctx, `
				INSERT INTO friendships (user_id_1, user_id_2) VALUES ($1, $2) RETURNING id, created_at`,
				from, to).Scan(&r.id, &r.createdAt)
			if err != nil {
				return err
			}
		case err != nil:
			return err
		case r.status == StatusAccepted:
			return cg.Errorf(cg.ECONFLICT, "You are already friends.")
		case r.from == from:
			// Pending or rejected: either way the request stands as it is.
			return cg.Errorf(cg.ECONFLICT, "You have already sent this user a friend request.")
		case r.status == StatusPending:
			// The other user asked first: this request answers theirs.
			r.status = StatusAccepted
			accepted = true
			if _, err := tx.Exec(ctx, `UPDATE friendships SET status = 'ACCEPTED', accepted_at = now() WHERE id = $1`, r.id); err != nil {
				return err
			}
		default:
			// from had rejected to's request; from's new request replaces it.
			r.from, r.to, r.status = from, to, StatusPending
			err := tx.QueryRow(ctx, `
				UPDATE friendships SET user_id_1 = $2, user_id_2 = $3, status = 'PENDING', created_at = now(), accepted_at = NULL
				 WHERE id = $1 RETURNING created_at`, r.id, from, to).Scan(&r.createdAt)
			if err != nil {
				return err
			}
		}
		req = &FriendRequest{ID: r.id, User: other, Status: r.status, CreatedAt: r.createdAt}
		return nil
	})
	if isCode(err, "23503") { // the other user was deleted meanwhile
		return nil, false, cg.Errorf(cg.EUSERNOTFOUND, "No such user.")
	}
	if err != nil {
		return nil, false, wrap("request friend", err)
	}
	return req, accepted, nil
}

// AnswerFriendRequest accepts or rejects the friend request id addressed to user. Accepting an
// accepted request or rejecting a rejected one changes nothing. Errors: not_found (no such
// request, or user is not its recipient), already_exists (rejecting an accepted friendship).
func (s *FriendStore) AnswerFriendRequest(ctx context.Context, user cg.UserID, id string, accept bool) (*FriendRequest, error) {
	notFoundErr := cg.Errorf(cg.ENOTFOUND, "No such friend request.")
	if !cg.ValidUUID(id) {
		return nil, notFoundErr
	}
	var req *FriendRequest
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		var r relationship
		err := tx.QueryRow(ctx, `
			SELECT id, user_id_1, user_id_2, status, created_at FROM friendships
			 WHERE id = $1 AND user_id_2 = $2 FOR UPDATE`, id, user).Scan(&r.id, &r.from, &r.to, &r.status, &r.createdAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFoundErr
		} else if err != nil {
			return err
		}
		switch {
		case accept && r.status != StatusAccepted:
			r.status = StatusAccepted
			_, err = tx.Exec(ctx, `UPDATE friendships SET status = 'ACCEPTED', accepted_at = now() WHERE id = $1`, r.id)
		case !accept && r.status == StatusAccepted:
			return cg.Errorf(cg.ECONFLICT, "You are already friends; remove the friend instead.")
		case !accept && r.status == StatusPending:
			r.status = StatusRejected
			_, err = tx.Exec(ctx, `UPDATE friendships SET status = 'REJECTED' WHERE id = $1`, r.id)
		}
		if err != nil {
			return err
		}
		other, err := publicUser(ctx, tx, r.from)
		if err != nil {
			return err
		}
		req = &FriendRequest{ID: r.id, User: other, Status: r.status, CreatedAt: r.createdAt}
		return nil
	})
	if err != nil {
		return nil, wrap("answer friend request", err)
	}
	return req, nil
}

// ListFriendRequests returns the pending requests addressed to user (incoming), or the pending
// and rejected requests user sent (outgoing), newest first.
func (s *FriendStore) ListFriendRequests(ctx context.Context, user cg.UserID, incoming bool) ([]*FriendRequest, error) {
	sql := `
		SELECT f.id, u.id, u.email, u.computing_id, f.status, f.created_at
		  FROM friendships f JOIN users u ON u.id = f.user_id_1
		 WHERE f.user_id_2 = $1 AND f.status = 'PENDING'
		 ORDER BY f.created_at DESC, f.id`
	if !incoming {
		sql = `
		SELECT f.id, u.id, u.email, u.computing_id, f.status, f.created_at
		  FROM friendships f JOIN users u ON u.id = f.user_id_2
		 WHERE f.user_id_1 = $1 AND f.status IN ('PENDING', 'REJECTED')
		 ORDER BY f.created_at DESC, f.id`
	}
	rows, err := s.db.Pool.Query(ctx, sql, user)
	if err != nil {
		return nil, wrap("list friend requests", err)
	}
	reqs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*FriendRequest, error) {
		var r FriendRequest
		err := row.Scan(&r.ID, &r.User.ID, &r.User.Email, &r.User.ComputingID, &r.Status, &r.CreatedAt)
		return &r, err
	})
	if err != nil {
		return nil, wrap("list friend requests", err)
	}
	return reqs, nil
}

// notBlockedWith is a condition on friend_id that leaves out users blocked by or blocking $1.
const notBlockedWith = `NOT EXISTS (SELECT 1 FROM user_blocks b
	 WHERE (b.blocker_id = $1 AND b.blocked_id = friend_id) OR (b.blocker_id = friend_id AND b.blocked_id = $1))`

// ListFriends returns user's friends with the time each friendship was accepted, ordered by
// e-mail address.
func (s *FriendStore) ListFriends(ctx context.Context, user cg.UserID) ([]*Friend, error) {
	rows, err := s.db.Pool.Query(ctx, `
		SELECT friend_id, friend_email, friend_computing_id, since
		  FROM get_user_friends($1)
		 WHERE `+notBlockedWith+`
		 ORDER BY friend_email`, user)
	if err != nil {
		return nil, wrap("list friends", err)
	}
	friends, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Friend, error) {
		var f Friend
		err := row.Scan(&f.ID, &f.Email, &f.ComputingID, &f.Since)
		return &f, err
	})
	if err != nil {
		return nil, wrap("list friends", err)
	}
	return friends, nil
}

// Unfriend ends the friendship of user and other, or withdraws user's pending request to
// other. A rejection user received stays (so that it cannot be turned into a new request), and
// so does a request other sent (answer it instead). Nothing to end is not an error.
// Errors: user_not_found for an id that is not a UUID.
func (s *FriendStore) Unfriend(ctx context.Context, user, other cg.UserID) error {
	if !cg.ValidUUID(string(other)) {
		return cg.Errorf(cg.EUSERNOTFOUND, "No such user.")
	}
	_, err := s.db.Pool.Exec(ctx, `
		DELETE FROM friendships
		 WHERE `+pairCondition+`
		   AND (status = 'ACCEPTED' OR (status = 'PENDING' AND user_id_1 = $1))`, user, other)
	return wrap("unfriend", err)
}

// Block makes user block other: their relationship, whatever its state, is deleted, and
// neither can send the other a request until the block is lifted. Blocking twice is not an
// error. Errors: self_request, user_not_found.
func (s *FriendStore) Block(ctx context.Context, user, other cg.UserID) error {
	if !cg.ValidUUID(string(other)) {
		return cg.Errorf(cg.EUSERNOTFOUND, "No such user.")
	}
	if strings.EqualFold(string(user), string(other)) {
		return cg.Errorf(cg.ESELFREQUEST, "You cannot block yourself.")
	}
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		if err := lockPair(ctx, tx, user, other); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO user_blocks (blocker_id, blocked_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, user, other); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM friendships WHERE `+pairCondition, user, other)
		return err
	})
	if isCode(err, "23503") {
		return cg.Errorf(cg.EUSERNOTFOUND, "No such user.")
	}
	return wrap("block", err)
}

// Unblock lifts user's block of other, if any. It does not restore the friendship the block
// ended. Errors: self_request, user_not_found for an id that is not a UUID.
func (s *FriendStore) Unblock(ctx context.Context, user, other cg.UserID) error {
	if !cg.ValidUUID(string(other)) {
		return cg.Errorf(cg.EUSERNOTFOUND, "No such user.")
	}
	if strings.EqualFold(string(user), string(other)) {
		return cg.Errorf(cg.ESELFREQUEST, "You cannot block yourself.")
	}
	_, err := s.db.Pool.Exec(ctx, `DELETE FROM user_blocks WHERE blocker_id = $1 AND blocked_id = $2`, user, other)
	return wrap("unblock", err)
}

// ListBlocked returns the users user blocked, with the time of each block, ordered by e-mail
// address: the list to lift them from.
func (s *FriendStore) ListBlocked(ctx context.Context, user cg.UserID) ([]*Friend, error) {
	rows, err := s.db.Pool.Query(ctx, `
		SELECT u.id, u.email, u.computing_id, b.created_at
		  FROM user_blocks b JOIN users u ON u.id = b.blocked_id
		 WHERE b.blocker_id = $1
		 ORDER BY u.email`, user)
	if err != nil {
		return nil, wrap("list blocked", err)
	}
	blocked, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Friend, error) {
		var f Friend
		err := row.Scan(&f.ID, &f.Email, &f.ComputingID, &f.Since)
		return &f, err
	})
	return blocked, wrap("list blocked", err)
}

// largeClass is a condition on the class id named by its argument: at least $k users are
// enrolled in it. The count stops at $k, so it costs at most k index entries.
func largeClass(class, k string) string {
	return `(SELECT count(*) FROM (SELECT 1 FROM user_classes e WHERE e.class_id = ` + class + ` LIMIT ` + k + `) big) >= ` + k
}

// FriendsInClass returns user's friends enrolled in class, ordered by e-mail address. A class
// with fewer than k users enrolled shows nobody: there, knowing who is enrolled would narrow its
// pseudonyms to fewer than k people. Errors: class_not_found.
func (s *FriendStore) FriendsInClass(ctx context.Context, user cg.UserID, class cg.ClassID, k int) ([]cg.PublicUser, error) {
	if !cg.ValidUUID(string(class)) {
		return nil, cg.ErrClassNotFound
	}
	var exists bool
	if err := s.db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM classes WHERE id = $1)`, class).Scan(&exists); err != nil {
		return nil, wrap("friends in class", err)
	}
	if !exists {
		return nil, cg.ErrClassNotFound
	}
	rows, err := s.db.Pool.Query(ctx, `
		SELECT friend_id, friend_email, friend_computing_id
		  FROM get_friends_in_class($1, $2)
		 WHERE `+notBlockedWith+`
		   AND `+largeClass("$2::uuid", "$3::int")+`
		 ORDER BY friend_email`, user, class, k)
	if err != nil {
		return nil, wrap("friends in class", err)
	}
	friends, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (cg.PublicUser, error) {
		var u cg.PublicUser
		err := row.Scan(&u.ID, &u.Email, &u.ComputingID)
		return u, err
	})
	if err != nil {
		return nil, wrap("friends in class", err)
	}
	return friends, nil
}

// AreFriends reports whether user and other have an accepted friendship.
func (s *FriendStore) AreFriends(ctx context.Context, user, other cg.UserID) (bool, error) {
	if !cg.ValidUUID(string(other)) || !cg.ValidUUID(string(user)) {
		return false, nil
	}
	var ok bool
	err := s.db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM friendships WHERE `+pairCondition+` AND status = 'ACCEPTED')`,
		user, other).Scan(&ok)
	return ok, wrap("are friends", err)
}

// CommonClasses returns the classes with at least k users enrolled that both user and other are
// enrolled in (a smaller class would tell user which of its few pseudonyms may be other's). Only
// friends may see them. Errors: not_found when the two are not friends (also for an unknown
// user, so that the answer does not tell which).
func (s *FriendStore) CommonClasses(ctx context.Context, user, other cg.UserID, k int) ([]*cg.Class, error) {
	notFriends := cg.Errorf(cg.ENOTFOUND, "You are not friends with this user.")
	if !cg.ValidUUID(string(other)) {
		return nil, notFriends
	}
	var classes []*cg.Class
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		var friends bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM friendships WHERE `+pairCondition+` AND status = 'ACCEPTED')`,
			user, other).Scan(&friends); err != nil {
			return err
		}
		if !friends {
			return notFriends
		}
		rows, err := tx.Query(ctx, `SELECT `+classColumns+` FROM get_common_classes($1, $2) c
			WHERE `+largeClass("c.id", "$3::int")+`
			ORDER BY term, subject, catalog_number, coalesce(class_section, ''), id`, user, other, k)
		if err != nil {
			return err
		}
		classes, err = collectClasses(rows)
		return err
	})
	if err != nil {
		return nil, wrap("common classes", err)
	}
	return classes, nil
}

// Suggestions returns up to limit users whom user may know: those who share at least two
// classes of at least k enrolled users with user, and those whose verified phone number is
// among user's imported contacts. Classes with fewer than k users are neither counted nor
// enough to list anyone: a stranger's membership of one would narrow its pseudonyms to fewer
// than k people.
// It leaves out user, anyone user has a relationship with (friend, pending or rejected
// request), and anyone blocked by or blocking user. They are ranked by shared classes, then
// contacts first, then e-mail address. Only enrollment and contacts are consulted: nothing
// about anyone's messages or pseudonyms.
func (s *FriendStore) Suggestions(ctx context.Context, user cg.UserID, limit, k int) ([]*Suggestion, error) {
	if limit < 1 || limit > MaxLimit {
		return nil, cg.Errorf(cg.EINVALIDLIMIT, "limit must be between 1 and %d.", MaxLimit)
	}
	rows, err := s.db.Pool.Query(ctx, `
		WITH shared AS (
			SELECT other.user_id, count(*) AS n
			  FROM user_classes mine
			  JOIN user_classes other ON other.class_id = mine.class_id AND other.user_id <> mine.user_id
			 WHERE mine.user_id = $1
			   AND `+largeClass("mine.class_id", "$3::int")+`
			 GROUP BY other.user_id
		), contacts AS (
			SELECT DISTINCT u.id AS user_id
			  FROM user_contacts c
			  JOIN users u ON u.phone_hash = c.phone_hash AND u.phone_verified
			 WHERE c.user_id = $1
		), candidates AS (
			SELECT coalesce(s.user_id, c.user_id) AS friend_id, coalesce(s.n, 0) AS n, c.user_id IS NOT NULL AS in_contacts
			  FROM shared s FULL JOIN contacts c ON c.user_id = s.user_id
		)
		SELECT u.id, u.email, u.computing_id, cand.n, cand.in_contacts
		  FROM candidates cand JOIN users u ON u.id = cand.friend_id
		 WHERE (cand.n >= 2 OR cand.in_contacts)
		   AND cand.friend_id <> $1
		   AND `+notBlockedWith+`
		   AND NOT EXISTS (SELECT 1 FROM friendships f
		                    WHERE LEAST(f.user_id_1, f.user_id_2) = LEAST($1::uuid, cand.friend_id)
		                      AND GREATEST(f.user_id_1, f.user_id_2) = GREATEST($1::uuid, cand.friend_id))
		 ORDER BY cand.n DESC, cand.in_contacts DESC, u.email
		 LIMIT $2`, user, limit, k)
	if err != nil {
		return nil, wrap("suggestions", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Suggestion, error) {
		var sg Suggestion
		err := row.Scan(&sg.User.ID, &sg.User.Email, &sg.User.ComputingID, &sg.SharedClasses, &sg.InContacts)
		return &sg, err
	})
	if err != nil {
		return nil, wrap("suggestions", err)
	}
	return out, nil
}
