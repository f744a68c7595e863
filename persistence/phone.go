package persistence

import (
	"context"
	"crypto/subtle"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	cg "github.com/commongrounds/commongrounds"
)

// PhoneStore stores phone verifications and contact lists. Numbers appear here only as keyed
// hashes (HMAC-SHA256 under a pepper kept outside the database), codes only as keyed hashes.
type PhoneStore struct{ db *DB }

// NewPhoneStore returns the phone store of db.
func NewPhoneStore(db *DB) *PhoneStore { return &PhoneStore{db: db} }

// SavePhoneVerification replaces the pending verification of user with one for the number
// phoneHash (under pepper version pepperVersion) and the code codeHash.
func (s *PhoneStore) SavePhoneVerification(ctx context.Context, user cg.UserID, phoneHash []byte, pepperVersion int, codeHash []byte, expiresAt time.Time) error {
	_, err := s.db.Pool.Exec(ctx, `
		INSERT INTO phone_verifications (user_id, phone_hash, pepper_version, code_hash, expires_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (user_id) DO UPDATE
		   SET phone_hash = EXCLUDED.phone_hash, pepper_version = EXCLUDED.pepper_version,
		       code_hash = EXCLUDED.code_hash, expires_at = EXCLUDED.expires_at,
		       attempts = 0, created_at = now()`,
		user, phoneHash, pepperVersion, codeHash, expiresAt)
	return wrap("save phone verification", err)
}

// phoneLockSQL makes the verifications of one number ($1, its hash) take turns, until commit.
const phoneLockSQL = `SELECT pg_advisory_xact_lock(hashtextextended('phone_hash:' || encode($1::bytea, 'hex'), 0))`

// errInvalidCode is the answer to every code that does not verify a number.
func errInvalidCode(msg string) error { return cg.Errorf(cg.EINVALIDCODE, "%s", msg) }

// VerifyPhoneCode checks codeHash against the pending verification of user at now, under a
// row lock so that concurrent guesses are counted one by one.
//
// On a match the verification ends and the user gets the verified number; an account that had
// the same number verified loses it (numbers change hands, and the newest holder has just
// proved possession). Otherwise a wrong try is counted and the verification is deleted at the
// maxAttempts-th; invalid_code is returned, as it is when nothing is pending or the code has
// expired.
func (s *PhoneStore) VerifyPhoneCode(ctx context.Context, user cg.UserID, codeHash []byte, now time.Time, maxAttempts int) (err error) {
	tx, err := s.db.Pool.Begin(ctx)
	if err != nil {
		return wrap("verify phone: begin", err)
	}
	defer func() {
		if rbErr := tx.Rollback(ctx); rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) && err == nil {
			err = wrap("verify phone: rollback", rbErr)
		}
	}()
	var (
		phoneHash, stored []byte
		version, attempts int
		expiresAt         time.Time
	)
	err = tx.QueryRow(ctx, `
		SELECT phone_hash, pepper_version, code_hash, attempts, expires_at
		  FROM phone_verifications WHERE user_id = $1 FOR UPDATE`, user).
		Scan(&phoneHash, &version, &stored, &attempts, &expiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return errInvalidCode("No code is pending; ask for a new one.")
	}
	if err != nil {
		return wrap("verify phone: find", err)
	}
	if !now.Before(expiresAt) || attempts >= maxAttempts {
		if _, err := tx.Exec(ctx, `DELETE FROM phone_verifications WHERE user_id = $1`, user); err != nil {
			return wrap("verify phone: delete", err)
		}
		if err := tx.Commit(ctx); err != nil {
			return wrap("verify phone: commit", err)
		}
		return errInvalidCode("The code has expired; ask for a new one.")
	}
	if subtle.ConstantTimeCompare(stored, codeHash) != 1 {
		msg := "The code is not right."
		if attempts+1 >= maxAttempts {
			_, err = tx.Exec(ctx, `DELETE FROM phone_verifications WHERE user_id = $1`, user)
			msg = "The code is not right, and it is now void; ask for a new one."
		} else {
			_, err = tx.Exec(ctx, `UPDATE phone_verifications SET attempts = attempts + 1 WHERE user_id = $1`, user)
		}
		if err != nil {
			return wrap("verify phone: count try", err)
		}
		if err := tx.Commit(ctx); err != nil {
			return wrap("verify phone: commit", err)
		}
		return errInvalidCode(msg)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM phone_verifications WHERE user_id = $1`, user); err != nil {
		return wrap("verify phone: delete", err)
	}
	// The two rows this changes are locked first, in id order: publishing locks authors in
	// that order too (FOR KEY SHARE, which a change of phone_hash, a unique key, conflicts with),
	// so the two cannot deadlock. Verifications of one number take turns (phoneLockSQL), so the
	// number's holder cannot change between the lock and the release below.
	if _, err := tx.Exec(ctx, phoneLockSQL, phoneHash); err != nil {
		return wrap("verify phone: lock number", err)
	}
	if _, err := tx.Exec(ctx, `SELECT FROM users WHERE id = $2 OR phone_hash = $1 ORDER BY id FOR UPDATE`, phoneHash, user); err != nil {
		return wrap("verify phone: lock", err)
	}
	if _, err := tx.Exec(ctx, `
		UPDATE users SET phone_hash = NULL, phone_pepper_version = NULL, phone_verified = false
		 WHERE phone_hash = $1 AND id <> $2`, phoneHash, user); err != nil {
		return wrap("verify phone: release number", err)
	}
	tag, err := tx.Exec(ctx, `
		UPDATE users SET phone_hash = $2, phone_pepper_version = $3, phone_verified = true
		 WHERE id = $1`, user, phoneHash, version)
	if err != nil {
		return wrap("verify phone: set number", err)
	}
	if tag.RowsAffected() == 0 {
		return cg.Errorf(cg.EUSERNOTFOUND, "No such user.")
	}
	if err := tx.Commit(ctx); err != nil {
		return wrap("verify phone: commit", err)
	}
	return nil
}

// ContactMatch is a user found in a contact list, with the state of the friendship between the
// user who looked and this one (null when there is none).
type ContactMatch struct {
	UserID           cg.UserID `json:"user_id"`
	Email            string    `json:"email"`
	ComputingID      *string   `json:"computing_id"`
	FriendshipStatus *string   `json:"friendship_status"`
}

// ImportContacts stores the contact hashes of user (kept for friend suggestions) and returns
// the other users whose verified number is among them, ordered by e-mail address. Users that
// blocked user, or that user blocked, are left out.
func (s *PhoneStore) ImportContacts(ctx context.Context, user cg.UserID, hashes [][]byte) (_ []ContactMatch, err error) {
	matches := []ContactMatch{}
	if len(hashes) == 0 {
		return matches, nil
	}
	tx, err := s.db.Pool.Begin(ctx)
	if err != nil {
		return nil, wrap("import contacts: begin", err)
	}
	defer func() {
		if rbErr := tx.Rollback(ctx); rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) && err == nil {
			err = wrap("import contacts: rollback", rbErr)
		}
	}()
	if _, err := tx.Exec(ctx, `
		INSERT INTO user_contacts (user_id, phone_hash)
		SELECT $1, h FROM unnest($2::bytea[]) AS h
		ON CONFLICT (user_id, phone_hash) DO NOTHING`, user, hashes); err != nil {
		return nil, wrap("import contacts: store", err)
	}
	rows, err := tx.Query(ctx, `
		SELECT u.id, u.email, u.computing_id, f.status::text
		  FROM users u
		  LEFT JOIN friendships f
		    ON (f.user_id_1 = $1 AND f.user_id_2 = u.id) OR (f.user_id_2 = $1 AND f.user_id_1 = u.id)
		 WHERE u.phone_hash = ANY($2::bytea[]) AND u.phone_verified AND u.id <> $1
		   AND NOT EXISTS (
		       SELECT 1 FROM user_blocks b
		        WHERE (b.blocker_id = $1 AND b.blocked_id = u.id)
		           OR (b.blocker_id = u.id AND b.blocked_id = $1))
		 ORDER BY u.email`, user, hashes)
	if err != nil {
		return nil, wrap("import contacts: match", err)
	}
	matches, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (ContactMatch, error) {
		var m ContactMatch
		err := row.Scan(&m.UserID, &m.Email, &m.ComputingID, &m.FriendshipStatus)
		return m, err
	})
	if err != nil {
		return nil, wrap("import contacts: scan", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, wrap("import contacts: commit", err)
	}
	if matches == nil {
		matches = []ContactMatch{}
	}
	return matches, nil
}
