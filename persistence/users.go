package persistence

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	cg "github.com/commongrounds/commongrounds"
)

// UserStore stores accounts.
type UserStore struct{ db *DB }

// NewUserStore returns the user store of db.
func NewUserStore(db *DB) *UserStore { return &UserStore{db: db} }

const userColumns = `id, email, computing_id, email_verified, phone_verified, role, created_at`

func scanUser(row pgx.Row) (*cg.User, error) {
	var u cg.User
	err := row.Scan(&u.ID, &u.Email, &u.ComputingID, &u.EmailVerified, &u.PhoneVerified, &u.Role, &u.CreatedAt)
	return &u, err
}

// FindUserByID returns the user with id; user_not_found if there is none.
func (s *UserStore) FindUserByID(ctx context.Context, id cg.UserID) (*cg.User, error) {
	if !cg.ValidUUID(string(id)) {
		return nil, cg.Errorf(cg.EUSERNOTFOUND, "No such user.")
	}
	u, err := scanUser(s.db.Pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if err != nil {
		return nil, notFound("find user", err, cg.EUSERNOTFOUND, "No such user.")
	}
	return u, nil
}

// FindUserByEmail returns the user with the (lower-case) e-mail address; user_not_found if none.
func (s *UserStore) FindUserByEmail(ctx context.Context, email string) (*cg.User, error) {
	if !cg.StorableText(email) {
		return nil, cg.Errorf(cg.EUSERNOTFOUND, "No such user.")
	}
	u, err := scanUser(s.db.Pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE email = $1`, email))
	if err != nil {
		return nil, notFound("find user", err, cg.EUSERNOTFOUND, "No such user.")
	}
	return u, nil
}

// FindUserByComputingID returns the user with the computing id; user_not_found if none.
func (s *UserStore) FindUserByComputingID(ctx context.Context, computingID string) (*cg.User, error) {
	if !cg.StorableText(computingID) {
		return nil, cg.Errorf(cg.EUSERNOTFOUND, "No such user.")
	}
	u, err := scanUser(s.db.Pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE computing_id = $1`, computingID))
	if err != nil {
		return nil, notFound("find user", err, cg.EUSERNOTFOUND, "No such user.")
	}
	return u, nil
}

// UpsertVerifiedUser returns the user with email, creating it when missing, and marks the
// address verified. computingID is set on creation.
func (s *UserStore) UpsertVerifiedUser(ctx context.Context, email, computingID string) (*cg.User, error) {
	u, err := scanUser(s.db.Pool.QueryRow(ctx, `
		INSERT INTO users (email, computing_id, email_verified) VALUES ($1, NULLIF($2, ''), true)
		ON CONFLICT (email) DO UPDATE SET email_verified = true
		RETURNING `+userColumns, email, computingID))
	if err != nil {
		return nil, wrap("upsert user", err)
	}
	return u, nil
}

// SetRole sets the role of the user with email; user_not_found if there is none.
func (s *UserStore) SetRole(ctx context.Context, email string, role cg.Role) error {
	tag, err := s.db.Pool.Exec(ctx, `UPDATE users SET role = $2 WHERE email = $1`, email, role)
	if err != nil {
		return wrap("set role", err)
	}
	if tag.RowsAffected() == 0 {
		return cg.Errorf(cg.EUSERNOTFOUND, "No user with that e-mail address.")
	}
	return nil
}

// DeleteUser deletes the user and everything it owns, the sign-in links of its address
// included. Its messages lose their author and keep their content and pseudonym, so that nothing
// other students see changes at the moment of the deletion. When eraseWithin is positive, each
// of them is also scheduled for erasure at an independent random time within eraseWithin from
// now (see EraseDue); the migration's trigger does both.
func (s *UserStore) DeleteUser(ctx context.Context, id cg.UserID, eraseWithin time.Duration) error {
	if !cg.ValidUUID(string(id)) {
		return nil
	}
	spread := ""
	if eraseWithin > 0 {
		spread = fmt.Sprintf("%d milliseconds", eraseWithin.Milliseconds())
	}
	// A pending phone verification goes first: VerifyPhoneCode locks it before the users rows,
	// and a deletion that reached it only through the cascade, holding the users row, would
	// take the two in the other order and could deadlock with it.
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('commongrounds.erase_spread', $1, true)`, spread); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM phone_verifications WHERE user_id = $1`, id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			WITH gone AS (DELETE FROM users WHERE id = $1 RETURNING email)
			DELETE FROM magic_links WHERE email IN (SELECT email FROM gone)`, id)
		return err
	})
	return wrap("delete user", err)
}

// errSignIn is the answer to a token whose session is missing, expired or revoked.
var errSignIn = cg.Errorf(cg.EUNAUTHORIZED, "Sign in first.")

// SessionStore stores sessions.
type SessionStore struct{ db *DB }

// NewSessionStore returns the session store of db.
func NewSessionStore(db *DB) *SessionStore { return &SessionStore{db: db} }

// CreateSession stores a session of user with the hash of its token, and returns it.
func (s *SessionStore) CreateSession(ctx context.Context, id cg.SessionID, user cg.UserID, tokenHash []byte, expiresAt time.Time) error {
	_, err := s.db.Pool.Exec(ctx, `INSERT INTO sessions (id, user_id, token_hash, expires_at) VALUES ($1, $2, $3, $4)`,
		id, user, tokenHash, expiresAt)
	return wrap("create session", err)
}

// FindSession returns the unexpired session id whose token hash matches; unauthorized if none.
func (s *SessionStore) FindSession(ctx context.Context, id cg.SessionID, tokenHash []byte) (*cg.Session, error) {
	if !cg.ValidUUID(string(id)) {
		return nil, errSignIn
	}
	var ss cg.Session
	err := s.db.Pool.QueryRow(ctx, `
		SELECT s.id, s.user_id, u.role, s.expires_at, s.last_used_at
		  FROM sessions s JOIN users u ON u.id = s.user_id
		 WHERE s.id = $1 AND s.token_hash = $2 AND s.expires_at > now()`, id, tokenHash).
		Scan(&ss.ID, &ss.UserID, &ss.Role, &ss.ExpiresAt, &ss.LastUsed)
	if err != nil {
		return nil, notFound("find session", err, cg.EUNAUTHORIZED, errSignIn.Message)
	}
	return &ss, nil
}

// TouchSession records that the session was used, at most once a minute.
func (s *SessionStore) TouchSession(ctx context.Context, id cg.SessionID) error {
	_, err := s.db.Pool.Exec(ctx, `UPDATE sessions SET last_used_at = now() WHERE id = $1 AND last_used_at < now() - interval '1 minute'`, id)
	return wrap("touch session", err)
}

// DeleteSession revokes the session.
func (s *SessionStore) DeleteSession(ctx context.Context, id cg.SessionID) error {
	_, err := s.db.Pool.Exec(ctx, `DELETE FROM sessions WHERE id = $1`, id)
	return wrap("delete session", err)
}
